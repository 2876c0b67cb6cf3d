"""3 pure-Python threads in the main interpreter and 3 in a subinterpreter (Python 3.12+).

argv[1]: 'isolated' (the default: the subinterpreter has a GIL of its own) or 'legacy'
(it shares the main GIL). Prints one JSON line {role: native thread id} once all 6
run, then runs for 60 s or until its stdin closes.
"""

import json
import os
import sys
import threading
import time

try:
    import _interpreters as interpreters  # 3.13
except ImportError:
    import _xxsubinterpreters as interpreters  # 3.12

CONFIG = sys.argv[1] if len(sys.argv) > 1 else "isolated"
SPIN = """
import os, threading, time
def spin(role):
    os.write({fd}, f"{{role}} {{threading.get_native_id()}}\\n".encode())
    end = time.monotonic() + 60
    while time.monotonic() < end:
        sum(i * i for i in range(1000))
threads = [threading.Thread(target=spin, args=(f"sub-{{i}}",)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def spin(role, fd):
    os.write(fd, f"{role} {threading.get_native_id()}\n".encode())
    end = time.monotonic() + 60
    while time.monotonic() < end:
        sum(i * i for i in range(1000))


def end_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


read_fd, write_fd = os.pipe()
threading.Thread(target=end_when_stdin_closes, daemon=True).start()
if CONFIG == "isolated":
    interp = interpreters.create()
elif sys.version_info >= (3, 13):
    interp = interpreters.create(CONFIG)
else:
    interp = interpreters.create(isolated=False)
threading.Thread(target=interpreters.run_string, args=(interp, SPIN.format(fd=write_fd)),
                 daemon=True).start()
for i in range(3):
    threading.Thread(target=spin, args=(f"main-{i}", write_fd), daemon=True).start()
tids = {}
with os.fdopen(read_fd) as lines:
    while len(tids) < 6:
        role, tid = lines.readline().split()
        tids[role] = int(tid)
print(json.dumps(tids), flush=True)
time.sleep(60)
os._exit(0)
