"""Shared by every test module."""

import os

# Every diagnosis the suite makes, in this process or in a command it runs, checks that its
# advice never contradicts its predictions (inspector/analyze/diagnose.py SELF_CHECK_ENV).
os.environ.setdefault("INSPECTOR_SELF_CHECK", "1")
# Recordings skip the machine's calibration (~0.15 s each) unless a test asks for it with
# `record --calibrate`: the tests of predictions against measured speed-ups do.
os.environ.setdefault("INSPECTOR_NO_CALIBRATE", "1")
