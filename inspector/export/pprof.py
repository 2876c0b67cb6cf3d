"""A recording's Python stacks as a gzipped pprof profile (profile.proto), which `go tool
pprof`, Pyroscope, Grafana and Parca read. Each sample is a stack on one thread in one state,
labelled pid, tid, thread_name and state, with two values: samples and wall nanoseconds.

The protobuf encoding is written here by hand: profile.proto is small and stable, and a
varint/length-delimited writer of a few lines spares a protobuf dependency and its generated
code.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from inspector import __version__
from inspector.export import common

if TYPE_CHECKING:
    from inspector.analyze.frames import Frame
    from inspector.recording import Recording

# The state of time no thread_states interval covers (before a thread's second /proc sample):
# thread_states' own word for "could not tell".
UNKNOWN_STATE = "other"

# profile.proto field numbers (github.com/google/pprof/blob/main/proto/profile.proto)
_PROFILE_SAMPLE_TYPE, _PROFILE_SAMPLE, _PROFILE_MAPPING, _PROFILE_LOCATION = 1, 2, 3, 4
_PROFILE_FUNCTION, _PROFILE_STRING_TABLE, _PROFILE_TIME_NANOS = 5, 6, 9
_PROFILE_DURATION_NANOS, _PROFILE_PERIOD_TYPE, _PROFILE_PERIOD = 10, 11, 12
_PROFILE_COMMENT, _PROFILE_DEFAULT_SAMPLE_TYPE = 13, 14
_VALUE_TYPE_TYPE, _VALUE_TYPE_UNIT = 1, 2
_SAMPLE_LOCATION_ID, _SAMPLE_VALUE, _SAMPLE_LABEL = 1, 2, 3
_LABEL_KEY, _LABEL_STR, _LABEL_NUM = 1, 2, 3
_MAPPING_ID, _MAPPING_FILENAME = 1, 5
_MAPPING_HAS_FUNCTIONS, _MAPPING_HAS_FILENAMES, _MAPPING_HAS_LINE_NUMBERS = 7, 8, 9
_LOCATION_ID, _LOCATION_MAPPING_ID, _LOCATION_LINE = 1, 2, 4
_LINE_FUNCTION_ID, _LINE_LINE = 1, 2
# No system_name: pprof would "demangle" it into the name, and cut '<module>' to nothing.
_FUNCTION_ID, _FUNCTION_NAME, _FUNCTION_FILENAME = 1, 2, 4


# --- protobuf wire format: varints (type 0) and length-delimited fields (type 2) ---

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1          # int64 negatives as two's complement, as protobuf does
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _packed_field(number: int, values: Iterable[int]) -> bytes:
    payload = b"".join(_varint(v) for v in values)
    return _bytes_field(number, payload) if payload else b""


class _Strings:
    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.index)
        return found


def profile(rec: Recording, states: pd.DataFrame) -> bytes:
    """The uncompressed profile.proto message."""
    strings = _Strings()
    functions: dict[tuple[str, str], int] = {}
    locations: dict[tuple[int, int], int] = {}
    function_msgs: list[bytes] = []
    location_msgs: list[bytes] = []

    def location_of(frame: Frame) -> int:
        fkey = (frame.func or "?", frame.file)
        fid = functions.get(fkey)
        if fid is None:
            fid = functions[fkey] = len(functions) + 1
            function_msgs.append(_int_field(_FUNCTION_ID, fid)
                                 + _int_field(_FUNCTION_NAME, strings(fkey[0]))
                                 + _int_field(_FUNCTION_FILENAME, strings(frame.file)))
        lkey = (fid, frame.line)
        lid = locations.get(lkey)
        if lid is None:
            lid = locations[lkey] = len(locations) + 1
            line = _int_field(_LINE_FUNCTION_ID, fid) + _int_field(_LINE_LINE, frame.line)
            location_msgs.append(_int_field(_LOCATION_ID, lid)
                                 + _int_field(_LOCATION_MAPPING_ID, 1)
                                 + _bytes_field(_LOCATION_LINE, line))
        return lid

    # (pid, tid, stack text, state) -> [samples, wall ns]
    totals: dict[tuple[int, int, str, str], list[int]] = {}
    stacks_of: dict[str, tuple[Frame, ...]] = {}
    runs = common.state_runs(states)
    run_arrays = (runs["start_s"].to_numpy(), runs["end_s"].to_numpy(),
                  runs["state"].astype(str).to_numpy())
    runs_of = {(pid, tid): tuple(a[lo:hi] for a in run_arrays)
               for pid, tid, lo, hi in common.thread_slices(runs)}
    for pid, tid, spans in common.thread_spans(rec):
        thread_runs = runs_of.get((pid, tid))
        for span in spans:
            stacks_of.setdefault(span.stack_text, span.stack)
            for state, seconds, samples in _split_by_state(span, thread_runs):
                entry = totals.setdefault((pid, tid, span.stack_text, state), [0, 0])
                entry[0] += samples
                entry[1] += int(round(seconds * 1e9))

    listed = common.threads(rec)
    names = {(t.pid, t.tid): t.name for t in listed}
    hosts = {(t.pid, t.tid): t.host for t in listed if t.host}  # merged recordings only
    samples_type = _value_type(strings, "samples", "count")
    wall_type = _value_type(strings, "wall", "nanoseconds")
    key_pid, key_tid = strings("pid"), strings("tid")
    key_name, key_state = strings("thread_name"), strings("state")
    sample_msgs = []
    for (pid, tid, text, state), (count, wall_ns) in totals.items():
        leaf_first = [location_of(f) for f in reversed(stacks_of[text])]
        labels = [
            _int_field(_LABEL_KEY, key_pid) + _int_field(_LABEL_NUM, pid),
            _int_field(_LABEL_KEY, key_tid) + _int_field(_LABEL_NUM, tid),
            _int_field(_LABEL_KEY, key_name)
            + _int_field(_LABEL_STR, strings(names.get((pid, tid), f"thread {tid}"))),
            _int_field(_LABEL_KEY, key_state) + _int_field(_LABEL_STR, strings(state)),
        ]
        if (pid, tid) in hosts:
            labels.append(_int_field(_LABEL_KEY, strings("host"))
                          + _int_field(_LABEL_STR, strings(hosts[(pid, tid)])))
        sample_msgs.append(_packed_field(_SAMPLE_LOCATION_ID, leaf_first)
                           + _packed_field(_SAMPLE_VALUE, [count, wall_ns])
                           + b"".join(_bytes_field(_SAMPLE_LABEL, lab) for lab in labels))

    # One mapping stands for the interpreter: locations carry their functions and lines
    # already, which tells pprof there is nothing to symbolize.
    mapping = (_int_field(_MAPPING_ID, 1) + _int_field(_MAPPING_FILENAME, strings("python"))
               + _int_field(_MAPPING_HAS_FUNCTIONS, 1) + _int_field(_MAPPING_HAS_FILENAMES, 1)
               + _int_field(_MAPPING_HAS_LINE_NUMBERS, 1))
    rate = rec.stack_rate_hz
    command = common.command_text(rec.meta.command, "?")
    comment = strings(f"inspector {__version__} recording of: {command}")
    start_unix = rec.meta.start_time_unix
    out = [
        _bytes_field(_PROFILE_SAMPLE_TYPE, samples_type),
        _bytes_field(_PROFILE_SAMPLE_TYPE, wall_type),
        *(_bytes_field(_PROFILE_SAMPLE, s) for s in sample_msgs),
        _bytes_field(_PROFILE_MAPPING, mapping),
        *(_bytes_field(_PROFILE_LOCATION, m) for m in location_msgs),
        *(_bytes_field(_PROFILE_FUNCTION, m) for m in function_msgs),
    ]
    tail = [
        _int_field(_PROFILE_TIME_NANOS,
                   int(float(start_unix) * 1e9) if start_unix is not None else 0),
        _int_field(_PROFILE_DURATION_NANOS, int(rec.duration_s * 1e9)),
        _bytes_field(_PROFILE_PERIOD_TYPE, _value_type(strings, "wall", "nanoseconds")),
        _int_field(_PROFILE_PERIOD, int(round(1e9 / max(rate, 1.0)))),
        _int_field(_PROFILE_COMMENT, comment),
        _int_field(_PROFILE_DEFAULT_SAMPLE_TYPE, strings("wall")),
    ]
    # every string is interned by now; the table goes in its order, "" first
    table = [_bytes_field(_PROFILE_STRING_TABLE, s.encode("utf-8", "replace"))
             for s in strings.index]
    return b"".join(out + table + tail)


def to_bytes(rec: Recording, states: pd.DataFrame) -> bytes:
    # mtime 0: the same recording gives the same bytes
    return gzip.compress(profile(rec, states), mtime=0)


def _value_type(strings: _Strings, kind: str, unit: str) -> bytes:
    return _int_field(_VALUE_TYPE_TYPE, strings(kind)) + _int_field(_VALUE_TYPE_UNIT,
                                                                    strings(unit))


def _split_by_state(span: common.Span, runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None
                    ) -> list[tuple[str, float, int]]:
    """The span cut where the thread's main state changed: (state, seconds, samples) per
    piece. Samples are shared out in proportion to time and rounded so they add up to the
    span's own count."""
    length = span.end_s - span.start_s
    if runs is None or length <= 0:
        return [(UNKNOWN_STATE, max(length, 0.0), span.samples)]
    starts, ends, states = runs
    first = int(np.searchsorted(ends, span.start_s, side="right"))
    pieces: list[tuple[str, float]] = []
    cursor = span.start_s
    for i in range(first, len(starts)):
        if starts[i] >= span.end_s:
            break
        lo, hi = max(starts[i], span.start_s), min(ends[i], span.end_s)
        if lo > cursor:
            pieces.append((UNKNOWN_STATE, lo - cursor))
        if hi > lo:
            pieces.append((str(states[i]), hi - lo))
        cursor = max(cursor, hi)
    if span.end_s > cursor:
        pieces.append((UNKNOWN_STATE, span.end_s - cursor))
    out = []
    done_s, given = 0.0, 0
    for state, seconds in pieces:
        done_s += seconds
        upto = int(round(span.samples * done_s / length))
        out.append((state, seconds, upto - given))
        given = upto
    return out
