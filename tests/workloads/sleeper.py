"""Sleeps: does nothing for 1 s."""

import time

time.sleep(1.0)
