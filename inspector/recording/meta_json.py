"""The meta table's untrusted JSON read once into a `Meta`, and a `Meta` written back as
that JSON. A key load() cannot do without (REQUIRED_KEYS) of the wrong kind, not finite or
out of range (schema.py's MAX_REAL, int64) is a RecordingError, as is any value nested
deeper than MAX_META_DEPTH; any other key of the wrong kind or out of range reads as None;
unknown keys go to `extra`. Standard library only: a writer may use `meta_to_json`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional, cast

from inspector.errors import RecordingError
from inspector.recording.calibration import Calibration
from inspector.recording.meta import (
    Backend,
    Gil,
    Interpreter,
    LeftRunning,
    MergeMeta,
    MergeSource,
    Meta,
    Mode,
    RateChange,
    RecorderCpu,
    Settings,
    StacksMeta,
)
from inspector.recording.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INT64_MAX,
    INT64_MIN,
    MAX_REAL,
)
from inspector.recording.untrusted import READ_FAILURES, said

# What load() and Recording read a file by: refused when present with a value of the wrong
# kind (null included, but for exit_code), not finite, or out of range. `interval_s` is an
# older file's place for settings.interval_s. Every other key is read as None when wrong.
REQUIRED_KEYS = ("format", "format_version", "command", "cpu_count", "duration_s",
                 "start_time_unix", "complete", "exit_code", "settings", "interval_s",
                 "stacks", "merge")

_MODES: tuple[Mode, ...] = ("launch", "attach", "merged")
_BACKENDS: tuple[Backend, ...] = ("procfs", "psutil")
_GILS: tuple[Gil, ...] = ("enabled", "disabled")
_NOT_FIELDS = {"format", "interval_s"}  # read, but no field of Meta holds them as they are
# How deep a meta value may nest: the recorder and merge write at most 6 levels
# (merge.sources[i].meta.stacks.rates_hz_used[j]). JSON nested deeper than the interpreter's
# recursion limit fails json itself; somewhat less deep, whatever walks it again (a copy,
# merge writing it back) fails in its turn.
MAX_META_DEPTH = 32


def read_meta(db: sqlite3.Connection, path: Path) -> Meta:
    """The file's meta, checked; raises RecordingError."""
    return parse_meta(meta_json(db, path), path)


def meta_json(db: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The meta table as it is: key -> JSON value, each parsed but not checked."""
    try:
        rows = db.execute("SELECT key, value FROM meta").fetchall()
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: not an inspector recording ({said(e)})") from None
    meta: dict[str, Any] = {}
    for key, value in rows:
        try:
            meta[str(key)] = json.loads(value)
        except (TypeError, ValueError, RecursionError):
            raise RecordingError(
                f"{path}: corrupt recording (bad meta value for {key!r})") from None
        if _depth(meta[str(key)]) > MAX_META_DEPTH:
            raise RecordingError(f"{path}: corrupt recording (meta value for {key!r} nested"
                                 f" deeper than {MAX_META_DEPTH})")
    return meta


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar: 0), without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_META_DEPTH:  # deeper is refused whatever lies below
            pending.extend((child, level + 1) for child in children)
    return deepest


def parse_meta(raw: Mapping[str, Any], path: Path, where: str = "meta ",
               format_version: Optional[int] = None) -> Meta:
    """`raw` (a meta table's JSON) as a Meta; `where` names it in a refusal. With
    `format_version` None it is a file's own meta, whose format is checked; else it is a
    merged recording's source, held in a file of that version."""
    c = _Required(raw, path, where)
    if format_version is None:
        format_version = _format_version(raw, path)
    else:
        format_version = _int(raw.get("format_version")) or format_version
    settings_raw = dict(c.mapping("settings") or {})
    stacks_raw = c.mapping("stacks") or {}
    # Files written before settings held every setting kept these elsewhere: moved here.
    legacy_interval = c.number("interval_s", low=0.0)
    if "interval_s" not in settings_raw and legacy_interval is not None:
        settings_raw["interval_s"] = legacy_interval
    if "rate_hz" not in settings_raw and stacks_raw.get("rate_hz") is not None:
        settings_raw["rate_hz"] = stacks_raw["rate_hz"]
    s = _Required(settings_raw, path, where + "settings.")
    settings = Settings(s.number("interval_s", low=0.0), s.number("rate_hz", low=0.0),
                        s.flag("stacks"), _extra(settings_raw, Settings))
    merge = c.mapping("merge")
    duration_s = c.number("duration_s", low=0.0)
    return Meta(
        format_version=format_version,
        mode=_choice(raw.get("mode"), _MODES),
        command=c.texts("command"),
        cwd=_text(raw.get("cwd")),
        hostname=_text(raw.get("hostname")),
        platform=_text(raw.get("platform")),
        machine=_text(raw.get("machine")),
        recorder_python=_text(raw.get("recorder_python")),
        inspector_version=_text(raw.get("inspector_version")),
        cpu_count=c.whole("cpu_count", low=1),
        settings=settings,
        start_time_unix=c.number("start_time_unix", low=0.0),
        stacks=_stacks(stacks_raw),
        recorder_cpu=_recorder_cpu(raw.get("recorder_cpu")),
        interpreters=tuple(Interpreter(_text(i.get("exe")), _text(i.get("version")),
                                       _choice(i.get("gil"), _GILS))
                           for i in _objects(raw.get("interpreters"))),
        exit_code=c.whole("exit_code", null=True),
        duration_s=duration_s if duration_s is not None else 0.0,
        left_running=tuple(LeftRunning(_positive_int(p.get("pid")), _text(p.get("name")))
                           for p in _objects(raw.get("left_running"))),
        complete=bool(c.flag("complete")),
        ticks=_count(raw.get("ticks")),
        lagged_ticks=_count(raw.get("lagged_ticks")),
        ptrace_scope=_int(raw.get("ptrace_scope")),
        clk_tck=_positive_int(raw.get("clk_tck")),
        target_pid=_positive_int(raw.get("target_pid")),
        target_start_s=_number(raw.get("target_start_s")),
        target_exit_s=_number(raw.get("target_exit_s")),
        backend=_choice(raw.get("backend"), _BACKENDS) if "backend" in raw else "procfs",
        merge=(_merge(merge, path, where + "merge.", format_version)
               if merge is not None else None),
        calibration=_calibration(raw.get("calibration")),
        calibration_end=_calibration(raw.get("calibration_end")),
        extra=_extra(raw, Meta, _NOT_FIELDS))


def _calibration(raw: Any) -> Optional[Calibration]:
    return Calibration.from_dict(raw) if isinstance(raw, Mapping) else None


def meta_to_json(meta: Meta) -> dict[str, Any]:
    """`meta` as the meta table's JSON (key -> value); what parse_meta reads back as the
    same Meta. None is left out, and `extra` is written back beside the known keys."""
    return {"format": FORMAT_NAME, **cast(dict[str, Any], _json(meta))}


def _json(value: Any) -> Any:
    if isinstance(value, RateChange):  # the file keeps it as [t_s, pid, rate]
        return [value.t_s, value.pid, value.rate_hz]
    if isinstance(value, Calibration):  # every field, None included: from_dict needs them
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _json(getattr(value, f.name)) for f in fields(value)
               if f.name != "extra" and getattr(value, f.name) is not None}
        return {**out, **getattr(value, "extra", {})}
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


class _Required:
    """Reads the keys of one JSON object that load() cannot do without: a value of the
    wrong kind is the file's fault, and is refused in one line naming the key."""

    def __init__(self, raw: Mapping[str, Any], path: Path, where: str) -> None:
        self.raw, self.path, self.where = raw, path, where

    def fail(self, key: str, why: str) -> NoReturn:
        raise RecordingError(f"{self.path}: corrupt recording ({self.where}{key} {why})")

    def _wrong(self, key: str) -> NoReturn:
        self.fail(key, f"is a {type(self.raw[key]).__name__}")

    def number(self, key: str, low: float = -MAX_REAL, high: float = MAX_REAL
               ) -> Optional[float]:
        if key not in self.raw:
            return None
        value = self.raw[key]
        if not _is_number(value):
            self._wrong(key)
        if not low <= value <= high:  # NaN and the infinities too
            self.fail(key, f"is {_shown(value)}")
        return cast(float, value)

    def whole(self, key: str, low: int = INT64_MIN, null: bool = False) -> Optional[int]:
        value = self.raw.get(key)
        if key not in self.raw or (value is None and null):
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self._wrong(key)
        if not low <= value <= INT64_MAX:
            self.fail(key, f"is {_shown(value)}")
        return value

    def flag(self, key: str) -> Optional[bool]:
        if key not in self.raw:
            return None
        if not isinstance(self.raw[key], bool):
            self._wrong(key)
        return cast(bool, self.raw[key])

    def mapping(self, key: str) -> Optional[Mapping[str, Any]]:
        if key not in self.raw:
            return None
        if not isinstance(self.raw[key], dict):
            self._wrong(key)
        return cast(Mapping[str, Any], self.raw[key])

    def texts(self, key: str) -> tuple[str, ...]:
        if key not in self.raw:
            return ()
        value = self.raw[key]
        if not isinstance(value, list):
            self._wrong(key)
        if not all(isinstance(part, str) for part in value):
            self.fail(key, "is not text")
        return tuple(value)


def _format_version(raw: Mapping[str, Any], path: Path) -> int:
    if raw.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not an inspector recording")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"{path}: corrupt recording (no format version)")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {_shown(version)} is newer than this inspector"
            f" reads ({FORMAT_VERSION}); upgrade inspector")
    return version


def _stacks(raw: Mapping[str, Any]) -> StacksMeta:
    changes = []
    for change in _list(raw.get("rates_hz_used")):
        if isinstance(change, list) and len(change) == 3:
            t_s, pid, rate = _number(change[0]), _positive_int(change[1]), _positive(change[2])
            if t_s is not None and pid is not None and rate is not None:
                changes.append(RateChange(t_s, pid, rate))
    return StacksMeta(
        enabled=_flag(raw.get("enabled")), reason=_text(raw.get("reason")),
        sampler=_text(raw.get("sampler")), py_spy_version=_text(raw.get("py_spy_version")),
        mode=_text(raw.get("mode")), chunk_s=_positive(raw.get("chunk_s")),
        run_lengths_s=tuple(v for v in map(_positive, _list(raw.get("run_lengths_s")))
                            if v is not None),
        budget_cores=_positive(raw.get("budget_cores")),
        rate_hz_used=_positive(raw.get("rate_hz_used")), rates_hz_used=tuple(changes),
        gil_rate_hz=_positive(raw.get("gil_rate_hz")),
        # stacks.rate_hz is an older file's settings.rate_hz: moved, not extra
        extra=_extra(raw, StacksMeta, {"rate_hz"}))


def _recorder_cpu(raw: Any) -> Optional[RecorderCpu]:
    if not isinstance(raw, dict):
        return None
    return RecorderCpu(*(_non_negative(raw.get(f.name)) for f in fields(RecorderCpu)))


def _merge(raw: Mapping[str, Any], path: Path, where: str, format_version: int) -> MergeMeta:
    """A merged recording's sources: each one's label, clock and own meta (checked as a
    file's own is: parts() rebuilds a Recording of it)."""
    c = _Required(raw, path, where)
    listed = raw.get("sources")
    if not isinstance(listed, list):
        c.fail("sources", f"is a {type(listed).__name__}" if "sources" in raw else "is missing")
    sources = []
    for i, s in enumerate(listed):
        if not isinstance(s, dict):
            c.fail(f"sources[{i}]", f"is a {type(s).__name__}")
        own = _Required(s, path, f"{where}sources[{i}].").mapping("meta") or {}
        ids = s.get("proc_ids")
        host = _text(s.get("host")) or f"host{i + 1}"
        sources.append(MergeSource(
            label=_text(s.get("label")) or str(i), path=_text(s.get("path")) or "", host=host,
            start_time_unix=_number(s.get("start_time_unix")),
            clock_offset_s=_number(s.get("clock_offset_s")) or 0.0,
            clock_uncertainty_s=_number(s.get("clock_uncertainty_s")),
            shift_s=_number(s.get("shift_s")) or 0.0,
            proc_ids=((ids[0], ids[1]) if isinstance(ids, list) and len(ids) == 2
                      and _int(ids[0]) is not None and _int(ids[1]) is not None else None),
            pid_offset=_int(s.get("pid_offset")) or 0,
            meta=parse_meta(own, path, f"{where}sources[{i}].meta.", format_version)))
    cores = raw.get("cpu_count_by_host")
    return MergeMeta(
        hosts=tuple(h for h in _list(raw.get("hosts")) if isinstance(h, str)),
        cpu_count_by_host={str(h): n for h, n in (cores.items() if isinstance(cores, dict)
                                                  else ()) if _positive_int(n) is not None},
        sources=tuple(sources),
        command_ran_workers=raw.get("command_ran_workers") is True)


# Any other key: its value if it is of the kind the key holds, else None.

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> Optional[float]:
    """A finite number as the file has it (an int stays an int: 20 Hz prints as 20), within
    MAX_REAL of 0."""
    return value if _is_number(value) and -MAX_REAL <= value <= MAX_REAL else None


def _shown(value: Any) -> str:
    """A number for a refusal: Python will not write an int of 4,300 digits or more."""
    return repr(value) if not isinstance(value, int) or abs(value) < 10**20 else "too large"


def _positive(value: Any) -> Optional[float]:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _non_negative(value: Any) -> Optional[float]:
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _int(value: Any) -> Optional[int]:
    return (value if isinstance(value, int) and not isinstance(value, bool)
            and INT64_MIN <= value <= INT64_MAX else None)


def _count(value: Any) -> Optional[int]:
    number = _int(value)
    return number if number is not None and number >= 0 else None


def _positive_int(value: Any) -> Optional[int]:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _flag(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _choice(value: Any, choices: tuple[Any, ...]) -> Any:
    return value if isinstance(value, str) and value in choices else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The entries of a JSON list of objects; any other entry is skipped."""
    return [v for v in _list(value) if isinstance(v, dict)]


def _extra(raw: Mapping[str, Any], record: type, consumed: Collection[str] = ()
           ) -> dict[str, Any]:
    """The keys of `raw` that `record` has no field for: a newer recorder's, kept."""
    known = {f.name for f in fields(record)} - {"extra"}
    return {k: v for k, v in raw.items() if k not in known and k not in consumed}
