"""Five CPU-bound child processes run one after another (`subprocess.run`): one core is busy
at any moment, however many cores the run used over its whole life."""

import subprocess
import sys

BURN = """
import time
end = time.monotonic() + 0.3
total = 0
while time.monotonic() < end:
    for i in range(5000):
        total += i * i % 7
"""

for _ in range(5):
    subprocess.run([sys.executable, "-c", BURN], check=True)
