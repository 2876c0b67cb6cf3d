"""Threads in every common futex wait at once, for telling GIL waits from lock waits.

4 pure-Python threads (3 of them wait for the GIL at any moment), a thread in lock.acquire(),
one in lock.acquire(timeout=30), one in event.wait(), one in event.wait(30), one in queue.get(),
one in condition.wait(), a parked ThreadPoolExecutor worker, and the main thread in join().
Prints one JSON line {role: native thread id} when all are started, then runs until its stdin
closes (the test ends it) or for SECONDS (argv[1], default 60). Runs on Python 3.9+.
"""

import json
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
END = time.monotonic() + SECONDS

tids = {}
started = threading.Barrier(11)  # 4 GIL threads + 6 waiters + main


def register(role):
    tids[role] = threading.get_native_id()
    started.wait()


def arithmetic(role):
    register(role)
    total = 0
    while time.monotonic() < END:
        for i in range(5000):
            total += i * i % 7


held = threading.Lock()
held.acquire()
event = threading.Event()
jobs = queue.Queue()
condition = threading.Condition()


def in_lock_acquire():
    register("lock.acquire()")
    held.acquire()


def in_lock_acquire_timeout():
    register("lock.acquire(timeout=30)")
    while not held.acquire(timeout=30):
        pass


def in_event_wait():
    register("event.wait()")
    event.wait()


def in_event_wait_timeout():
    register("event.wait(30)")
    while not event.wait(30):
        pass


def in_queue_get():
    register("queue.get()")
    jobs.get()


def in_condition_wait():
    register("condition.wait()")
    with condition:
        condition.wait()


def end_when_stdin_closes():
    # Ends the program when the test closes our stdin (or dies): a read, not a futex wait.
    sys.stdin.buffer.read()
    os._exit(0)


def end_at_deadline():
    time.sleep(max(0.0, END - time.monotonic()))
    os._exit(0)


threads = [threading.Thread(target=arithmetic, args=(f"gil-{i}",), name=f"gil-{i}", daemon=True)
           for i in range(4)]
threads += [threading.Thread(target=f, name=f.__name__, daemon=True)
            for f in (in_lock_acquire, in_lock_acquire_timeout, in_event_wait,
                      in_event_wait_timeout, in_queue_get, in_condition_wait)]
for t in threads:
    t.start()
threading.Thread(target=end_when_stdin_closes, daemon=True).start()
threading.Thread(target=end_at_deadline, daemon=True).start()

pool = ThreadPoolExecutor(max_workers=1)
tids["pool worker"] = pool.submit(threading.get_native_id).result()  # then it parks in get()
started.wait()
tids["main in join()"] = threading.get_native_id()
print(json.dumps(tids), flush=True)
threads[4].join()  # the thread in lock.acquire(): never returns
