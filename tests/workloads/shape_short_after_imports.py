"""A short program whose start-up is most of it: it imports a good part of the standard
library and a module that takes 0.4 s of CPU to import (0.5 s or more in all: five rounds at
the default interval), then eight threads wait on pipes that a writer fills three times,
0.04 s apart: about 0.12 s of work, waiting on I/O."""

import asyncio  # noqa: F401
import decimal  # noqa: F401
import email.mime.multipart  # noqa: F401
import http.server  # noqa: F401
import json  # noqa: F401
import logging.handlers  # noqa: F401
import os
import sqlite3  # noqa: F401
import threading
import time
import unittest  # noqa: F401
import urllib.request  # noqa: F401
import xml.dom.minidom  # noqa: F401
import zipfile  # noqa: F401

import _slow_to_import  # noqa: F401  (tests/workloads/, beside this script)

THREADS = 8
ROUNDS = 3
GAP_S = 0.04

pipes = [os.pipe() for _ in range(THREADS)]


def reader(fd: int) -> None:
    for _ in range(ROUNDS):
        os.read(fd, 1)


def writer() -> None:
    for _ in range(ROUNDS):
        time.sleep(GAP_S)
        for _, w in pipes:
            os.write(w, b"x")


threads = [threading.Thread(target=reader, args=(r,)) for r, _ in pipes]
threads.append(threading.Thread(target=writer))
for t in threads:
    t.start()
for t in threads:
    t.join()
