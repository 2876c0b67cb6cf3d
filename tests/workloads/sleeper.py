"""Sleeps: does nothing for 2 s."""

import time

time.sleep(2.0)
