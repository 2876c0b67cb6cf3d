"""One small module per CLI subcommand: parse, call, print."""
