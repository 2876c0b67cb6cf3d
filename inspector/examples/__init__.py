"""Small programs bundled with inspector to record and learn from."""
