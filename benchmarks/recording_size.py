"""What a recording costs on disk per thread-second at the recorder's defaults: each target
recorded at two lengths, the growth between them divided by the thread-seconds it added
(a short file is mostly SQLite's fixed pages, so bytes/thread-s of one file misleads),
and the fixed part that remains.

    python benchmarks/recording_size.py                      # this tree
    python benchmarks/recording_size.py --source /tmp/old    # another tree (git archive)

`--source` records with the inspector package found there (PYTHONPATH), so two formats
can be compared on one machine, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS = HERE / "targets"

# (name, [(label, target argv)], shortest first): the targets of issue 13.
CASES: dict[str, list[list[str]]] = {
    "1 computing + 50 Event.wait()": [
        ["cpu_threads.py", "--threads", "1", "--waiters", "50", "--work", str(w)]
        for w in (100_000, 400_000)],
    "64 idle threads": [
        ["idle.py", "--processes", "1", "--threads", "64", "--seconds", str(s)]
        for s in (5, 20, 60)],
    "8 busy threads": [
        ["cpu_threads.py", "--threads", "8", "--work", str(w)] for w in (100_000, 400_000)],
}


def _tables(path: Path) -> dict[str, int]:
    """Bytes per table and index (SQLite's dbstat), where this SQLite has it."""
    try:
        with closing(sqlite3.connect(path)) as db:
            return {str(n): int(b) for n, b in db.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")}
    except sqlite3.Error:
        return {}


def record(argv: Sequence[str], out: Path, source: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    subprocess.run([sys.executable, "-m", "inspector", "record", "-q", "-o", str(out), "--",
                    sys.executable, str(TARGETS / argv[0]), *argv[1:]],
                   check=True, env=env, cwd=str(source or REPO), timeout=900,
                   stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(REPO))
    import inspector  # this tree's reader reads both formats
    from inspector.recording.meta_json import meta_to_json

    rec = inspector.load(out)
    return {"bytes": out.stat().st_size,
            "thread_s": len(rec.thread_samples) * rec.interval_s,
            "thread_samples": len(rec.thread_samples),
            "duration_s": rec.duration_s,
            "format_version": rec.meta.format_version,
            "recorder_cpu": meta_to_json(rec.meta).get("recorder_cpu"),
            "tables": _tables(out)}


def measure(source: Path | None, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, runs in CASES.items():
        done = []
        for i, argv in enumerate(runs):
            r = record(argv, workdir / f"{name.split()[0]}-{i}.sqlite", source)
            r["argv"] = argv
            done.append(r)
            print(json.dumps({"case": name, **r}), file=sys.stderr)
        short, long = done[0], done[-1]
        growth = ((long["bytes"] - short["bytes"]) / (long["thread_s"] - short["thread_s"])
                  if long["thread_s"] > short["thread_s"] else None)
        fixed = short["bytes"] - growth * short["thread_s"] if growth is not None else None
        results[name] = {"runs": done, "growth_bytes_per_thread_s": growth,
                         "fixed_bytes": fixed}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, help="record with the inspector tree here")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="inspector-size-") as tmp:
        results = measure(args.source, Path(tmp))
    print("| target | growth (B per thread-s) | fixed part (KB) | longest file (KB) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        g, f = r["growth_bytes_per_thread_s"], r["fixed_bytes"]
        print(f"| {name} | {g:.0f} | {f / 1e3:.0f} | {r['runs'][-1]['bytes'] / 1e3:.0f} |"
              if g is not None else f"| {name} | – | – | – |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
