"""The recording's meta table: read from the file, checked, and the older layouts of its
settings moved into today's."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from inspector.errors import RecordingError
from inspector.recording.schema import FORMAT_NAME, FORMAT_VERSION
from inspector.recording.untrusted import READ_FAILURES, said

# Meta keys the reader and Recording rely on, and the JSON types they must have.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "duration_s": (int, float), "cpu_count": (int,), "interval_s": (int, float),
    "start_time_unix": (int, float), "complete": (bool,), "command": (list,),
    "exit_code": (int, type(None)), "settings": (dict,), "stacks": (dict,),
}
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "interval_s": (int, float), "rate_hz": (int, float), "stacks": (bool,),
}


def read_meta(db: sqlite3.Connection, path: Path) -> dict[str, Any]:
    try:
        rows = db.execute("SELECT key, value FROM meta").fetchall()
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: not an inspector recording ({said(e)})") from None
    meta: dict[str, Any] = {}
    for key, value in rows:
        try:
            meta[str(key)] = json.loads(value)
        except (TypeError, ValueError):
            raise RecordingError(
                f"{path}: corrupt recording (bad meta value for {key!r})") from None
    if meta.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not an inspector recording")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"{path}: corrupt recording (no format version)")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is newer than this inspector reads "
            f"({FORMAT_VERSION}); upgrade inspector")
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, types)
                            or (isinstance(value, bool) and bool not in types)):
            raise RecordingError(
                f"{path}: corrupt recording (meta {key} is a {type(value).__name__})")
    if not all(isinstance(part, str) for part in meta.get("command", [])):
        raise RecordingError(f"{path}: corrupt recording (meta command is not text)")
    meta["settings"] = _settings(meta)
    for key, types in _SETTING_TYPES.items():
        value = meta["settings"].get(key)
        if key in meta["settings"] and (not isinstance(value, types)
                                        or (isinstance(value, bool) and bool not in types)):
            raise RecordingError(
                f"{path}: corrupt recording (setting {key} is a {type(value).__name__})")
    return meta


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    """meta["settings"], the one record of how the recording was sampled. Files written
    before it held every setting kept interval_s at the top level and the stack rate under
    meta["stacks"] as well: those copies move into it here, and only here."""
    settings = dict(meta.get("settings") or {})
    legacy_interval = meta.pop("interval_s", None)
    if "interval_s" not in settings and legacy_interval is not None:
        settings["interval_s"] = legacy_interval
    stacks = meta.get("stacks")
    if isinstance(stacks, dict) and "rate_hz" in stacks:
        stacks = meta["stacks"] = dict(stacks)
        legacy_rate = stacks.pop("rate_hz")
        if "rate_hz" not in settings and legacy_rate is not None:
            settings["rate_hz"] = legacy_rate
    return settings


