"""A module that takes 0.4 s of CPU to import, as a heavy library's initialisation does: its
importer's start-up, whatever the machine's pace for the standard library."""

import time

_end = time.process_time() + 0.4
while time.process_time() < _end:
    pass
