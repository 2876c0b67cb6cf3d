"""numpy matrix products for SECONDS (default 3): OpenBLAS runs them on a pool of native
threads of its own, which inherit the process's name (`python`)."""

import sys
import time

import numpy as np

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
a = np.random.rand(400, 400)
end = time.monotonic() + SECONDS
while time.monotonic() < end:
    a = a @ a
    a /= a.max()
