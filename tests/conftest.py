"""Shared by every test module."""

import os

# Every diagnosis the suite makes, in this process or in a command it runs, checks that its
# advice never contradicts its predictions (inspector/analyze/diagnose.py SELF_CHECK_ENV).
os.environ.setdefault("INSPECTOR_SELF_CHECK", "1")
