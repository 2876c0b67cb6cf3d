"""`python -m inspector ...` runs the same CLI as the `inspector` command."""

from inspector.cli import main

raise SystemExit(main())
