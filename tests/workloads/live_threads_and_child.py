"""A long-running program to look at with `inspector explain --pid`: 3 threads of pure-Python
arithmetic, 5 threads waiting on an Event, and one real child process (a sleeping Python).
Prints "ready PID CHILD_PID" once everything is started; runs until killed (at most 60 s)."""

import subprocess
import sys
import threading
import time

stop = threading.Event()


def arithmetic() -> None:
    total = 0
    while not stop.is_set():
        for i in range(5000):
            total += i * i % 7


def waiter() -> None:
    stop.wait()


child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
threads = [threading.Thread(target=arithmetic, name=f"arith-{i}", daemon=True)
           for i in range(3)]
threads += [threading.Thread(target=waiter, name=f"waiter-{i}", daemon=True) for i in range(5)]
for t in threads:
    t.start()
print(f"ready {threading.get_native_id()} {child.pid}", flush=True)
try:
    time.sleep(60)
finally:
    stop.set()
    child.kill()
    child.wait()
