"""`inspector export`: a real recording of four GIL-bound threads (tests/workloads/gil_threads.py)
exported to each format and read back by the tools people use: the trace events checked by
a strict schema and imported by speedscope's built app; the speedscope file checked by the
schema speedscope ships and imported by its app in headless Chromium; the pprof profile read
by `go tool pprof`. Each is compared with the recording it came from.

Needs: Debian's chromium, golang-go and npm (speedscope and ajv are installed from the npm
registry once, into tests/artifacts/npm/, which git ignores).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import browser, chromium_available
from conftest import copy_of, inspector_cli, inspector_clis

import inspector
from inspector.analyze import STATES, thread_states
from inspector.export.perfetto import STATE_NAMES, STATE_TRACK_TID_OFFSET

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
NPM_DIR = ARTIFACTS / "npm"                     # git ignores tests/artifacts/
NPM_PACKAGES = ("speedscope@1.25.0", "ajv@8.20.0")
THREADS = ("MainThread", "arith-0", "arith-1", "arith-2", "arith-3")
HOT_FUNCTION = "arithmetic"

# The trace-event format (the Chrome "Trace Event Format" document) restricted to what
# the perfetto export writes, strictly: no field it does not define, every field it needs.
TRACE_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["traceEvents"],
    "additionalProperties": False,
    "properties": {
        "traceEvents": {"type": "array", "items": {"$ref": "#/definitions/event"}},
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "otherData": {"type": "object"},
    },
    "definitions": {
        "id": {"type": "integer", "minimum": 0, "maximum": 4294967295},
        "time": {"type": "number", "minimum": 0},
        "event": {"oneOf": [
            {"$ref": "#/definitions/metadata"},
            {"$ref": "#/definitions/complete"},
            {"$ref": "#/definitions/counter"},
        ]},
        "metadata": {
            "type": "object",
            "required": ["ph", "name", "pid", "args"],
            "additionalProperties": False,
            "properties": {
                "ph": {"const": "M"},
                "name": {"enum": ["process_name", "process_labels", "process_sort_index",
                                  "thread_name", "thread_sort_index"]},
                "pid": {"$ref": "#/definitions/id"},
                "tid": {"$ref": "#/definitions/id"},
                "args": {"type": "object", "minProperties": 1, "maxProperties": 1,
                         "properties": {"name": {"type": "string", "minLength": 1},
                                        "labels": {"type": "string"},
                                        "sort_index": {"type": "integer"}}},
            },
            "allOf": [
                {"if": {"properties": {"name": {"enum": ["process_name", "thread_name"]}}},
                 "then": {"properties": {"args": {"required": ["name"]}}}},
                {"if": {"properties": {"name": {"pattern": "^thread_"}}},
                 "then": {"required": ["tid"]}},
            ],
        },
        "complete": {
            "type": "object",
            "required": ["ph", "name", "pid", "tid", "ts", "dur", "args"],
            "additionalProperties": False,
            "properties": {
                "ph": {"const": "X"},
                "name": {"type": "string", "minLength": 1},
                "pid": {"$ref": "#/definitions/id"},
                "tid": {"$ref": "#/definitions/id"},
                "ts": {"$ref": "#/definitions/time"},
                "dur": {"$ref": "#/definitions/time"},
                "args": {"type": "object"},
            },
        },
        "counter": {
            "type": "object",
            "required": ["ph", "name", "pid", "ts", "args"],
            "additionalProperties": False,
            "properties": {
                "ph": {"const": "C"},
                "name": {"type": "string", "minLength": 1},
                "pid": {"$ref": "#/definitions/id"},
                "ts": {"$ref": "#/definitions/time"},
                "args": {"type": "object", "minProperties": 1,
                         "additionalProperties": {"type": "number"}},
            },
        },
    },
}

# Validates a JSON file against a JSON schema with ajv; prints the errors and exits 1 if not.
VALIDATE_JS = """
const Ajv = require("ajv");
const fs = require("fs");
const [schemaPath, dataPath] = process.argv.slice(2);
const ajv = new Ajv({allErrors: true, strict: false});
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaPath, "utf8")));
if (!validate(JSON.parse(fs.readFileSync(dataPath, "utf8")))) {
  console.log(JSON.stringify(validate.errors.slice(0, 10)));
  process.exit(1);
}
console.log("valid");
"""


def _one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    stderr = result.stderr
    assert result.returncode == status, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, gil_threads_recording: Path) -> Path:
    # a copy: the exports are written beside it
    return copy_of(gil_threads_recording, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def rec(recording: Path) -> inspector.Recording:
    return inspector.load(recording)


@pytest.fixture(scope="module")
def exported(recording: Path) -> dict[str, Path]:
    """Each format written where `inspector export` puts it by default."""
    endings = {"perfetto": ".perfetto.json", "speedscope": ".speedscope.json", "pprof": ".pb.gz"}
    out = {fmt: recording.with_name(recording.stem + ending) for fmt, ending in endings.items()}
    for fmt, result in zip(out, inspector_clis(*(["export", str(recording), "--format", fmt]
                                                 for fmt in out))):
        assert result.returncode == 0, result.stderr
        assert f"written to {out[fmt]}" in result.stderr
    return out


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """speedscope's built app and ajv, from the npm registry, installed once."""
    npm = shutil.which("npm")
    assert npm, "npm must be installed (Debian's npm package; .ci/run installs it)"
    stamp = NPM_DIR / "installed.txt"
    if not stamp.is_file() or stamp.read_text() != " ".join(NPM_PACKAGES):
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([npm, "install", "--prefix", str(NPM_DIR), "--no-audit",
                                 "--no-fund", "--ignore-scripts", *NPM_PACKAGES],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        stamp.write_text(" ".join(NPM_PACKAGES))
    (NPM_DIR / "validate.cjs").write_text(VALIDATE_JS)
    return NPM_DIR / "node_modules"


def _validate(node_modules: Path, schema: Path, data: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node must be installed (Debian's npm package brings it)"
    return subprocess.run([node, str(node_modules.parent / "validate.cjs"), str(schema),
                           str(data)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    assert chromium_available(), "Debian's chromium must be installed (.ci/run installs it)"
    with browser() as b:
        yield b


def _span_seconds(rec: inspector.Recording) -> dict[tuple[int, int], float]:
    """Per thread: seconds its stack spans cover, each cut where the thread's next began."""
    out: dict[tuple[int, int], float] = {}
    for (pid, tid), g in rec.stacks.sort_values("t_s").groupby(["pid", "tid"]):
        starts = g["t_s"].to_numpy()
        ends = starts + g["duration_s"].to_numpy()
        ends[:-1] = [min(e, s) for e, s in zip(ends[:-1], starts[1:])]
        out[(int(pid), int(tid))] = float((ends - starts).sum())
    return out


# --- perfetto (trace-event JSON) -------------------------------------------------------

def _trace(exported: dict[str, Path]) -> list[dict[str, Any]]:
    return json.loads(exported["perfetto"].read_text(encoding="utf-8"))["traceEvents"]


def test_perfetto_trace_passes_a_strict_trace_event_schema(
        exported: dict[str, Path], node_modules: Path, tmp_path: Path) -> None:
    schema = tmp_path / "trace-event-schema.json"
    schema.write_text(json.dumps(TRACE_EVENT_SCHEMA))
    result = _validate(node_modules, schema, exported["perfetto"])
    assert result.returncode == 0, result.stdout + result.stderr
    # and the schema does reject what is not a trace event
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"traceEvents": [{"ph": "X", "name": "f", "pid": 1, "tid": 1,
                                                "ts": 0, "args": {}}]}))
    assert _validate(node_modules, schema, bad).returncode == 1


def test_perfetto_slices_on_each_track_nest(exported: dict[str, Path]) -> None:
    """Viewers draw a track's slices as a stack of nested intervals: a slice that starts
    inside another must end inside it too."""
    by_track: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in _trace(exported):
        if e["ph"] == "X":
            by_track[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    assert by_track
    for track, slices in by_track.items():
        open_ends: list[float] = []
        for start, end in sorted(slices, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start + 1e-3:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1] + 1e-3, (track, start, end)
            open_ends.append(end)


def test_perfetto_names_the_process_by_its_command_and_each_thread_as_python_does(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    events = _trace(exported)
    pid = int(rec.processes["pid"].iloc[0])
    process_names = {e["pid"]: e["args"]["name"] for e in events
                     if e["ph"] == "M" and e["name"] == "process_name"}
    assert "gil_threads.py" in process_names[pid]
    thread_names = {e["tid"]: e["args"]["name"] for e in events
                    if e["ph"] == "M" and e["name"] == "thread_name"}
    for row in rec.threads.itertuples():
        assert thread_names[row.tid] == row.name
        assert thread_names[row.tid + STATE_TRACK_TID_OFFSET] == f"{row.name} (state)"
    assert set(THREADS) <= set(thread_names.values())


def test_perfetto_state_slices_account_for_every_sampled_interval(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    states = thread_states(rec)
    slices = [e for e in _trace(exported)
              if e["ph"] == "X" and e["tid"] >= STATE_TRACK_TID_OFFSET]
    assert {e["name"] for e in slices} <= set(STATE_NAMES.values())
    assert all("syscall" in e["args"] for e in slices)
    for tid, group in states.groupby("tid"):
        mine = [e for e in slices if e["tid"] == tid + STATE_TRACK_TID_OFFSET]
        assert sum(e["dur"] for e in mine) / 1e6 == pytest.approx(group["dt_s"].sum(), abs=1e-5)
        for state in STATES:
            recorded = group[f"{state}_s"].sum()
            in_trace = sum(e["args"].get(f"{state}_s", 0.0) for e in mine)
            assert in_trace == pytest.approx(recorded, abs=1e-4), (tid, state)
    # the arithmetic threads spent time on a CPU and waiting for the GIL or a core
    # (each slice is named by its largest state: four GIL-bound threads sharing one core are
    # mostly "GIL wait", so the seconds in the slices' args are what to check)
    arith = [e["args"] for e in slices if e["tid"] - STATE_TRACK_TID_OFFSET in
             set(rec.threads.loc[rec.threads["name"].str.startswith("arith"), "tid"])]
    assert sum(a.get("cpu_s", 0.0) for a in arith) > 0.5
    assert sum(a.get("gil_s", 0.0) + a.get("runqueue_s", 0.0) for a in arith) > 0.5


def test_perfetto_stack_slices_cover_the_sampled_stacks(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    spans = _span_seconds(rec)
    slices = [e for e in _trace(exported) if e["ph"] == "X" and e["tid"] < STATE_TRACK_TID_OFFSET]
    for (_pid, tid), seconds in spans.items():
        mine = sorted((e for e in slices if e["tid"] == tid), key=lambda e: (e["ts"], -e["dur"]))
        # the time the slices cover (their union: a child lies inside its parent, and the
        # roots of spans one after another may overlap by a rounded microsecond). Summing
        # "roots" found with a 1-ms slack counted a child that began within 1 ms of its
        # parent's end as a root too: 2.58 s against 2.48 s in a CI-sim under load.
        covered, start, end = 0.0, None, None
        for e in mine:
            if end is None or e["ts"] > end:
                if end is not None:
                    covered += end - start
                start, end = e["ts"], e["ts"] + e["dur"]
            else:
                end = max(end, e["ts"] + e["dur"])
        if end is not None:
            covered += end - start
        assert covered / 1e6 == pytest.approx(seconds, rel=0.02, abs=0.02), tid
    hot = defaultdict(float)
    names = dict(zip(rec.threads["tid"], rec.threads["name"]))
    for e in slices:
        if e["name"] == HOT_FUNCTION:
            assert e["args"]["file"].endswith("gil_threads.py")
            hot[names[e["tid"]]] += e["dur"] / 1e6
    assert set(hot) == {"arith-0", "arith-1", "arith-2", "arith-3"}
    assert all(seconds > 1.0 for seconds in hot.values()), hot


def test_perfetto_counts_cpu_rss_and_threads_per_process(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    counters = defaultdict(list)
    for e in _trace(exported):
        if e["ph"] == "C":
            counters[e["name"]].append(next(iter(e["args"].values())))
    ps = rec.process_samples
    assert len(counters["CPU"]) == ps["cpu_percent"].notna().sum()
    assert max(counters["CPU"]) == pytest.approx(ps["cpu_percent"].max(), abs=0.001)
    assert max(counters["RSS"]) == pytest.approx(ps["rss_bytes"].max() / 2**20, abs=0.001)
    assert max(counters["Threads"]) == 5


# --- speedscope ------------------------------------------------------------------------

def _speedscope(exported: dict[str, Path]) -> dict[str, Any]:
    return json.loads(exported["speedscope"].read_text(encoding="utf-8"))


def test_speedscope_file_passes_the_schema_speedscope_ships(
        exported: dict[str, Path], node_modules: Path) -> None:
    schema = node_modules / "speedscope" / "dist" / "release" / "file-format-schema.json"
    result = _validate(node_modules, schema, exported["speedscope"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_speedscope_has_one_profile_per_thread_weighted_in_seconds(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    doc = _speedscope(exported)
    frames = doc["shared"]["frames"]
    spans = _span_seconds(rec)
    rows = rec.stacks.groupby("tid").size()
    by_tid = {int(re.search(r"tid (\d+)\)$", p["name"]).group(1)): p for p in doc["profiles"]}
    assert set(by_tid) == {tid for _, tid in spans}
    names = dict(zip(rec.threads["tid"], rec.threads["name"]))
    for tid, profile in by_tid.items():
        assert profile["name"].startswith(f"{names[tid]} (pid ")
        assert profile["unit"] == "seconds"
        assert len(profile["samples"]) == len(profile["weights"]) == rows[tid]
        pid = int(rec.stacks.loc[rec.stacks["tid"] == tid, "pid"].iloc[0])
        assert sum(profile["weights"]) == pytest.approx(spans[(pid, tid)], abs=1e-6)
        leaves = {frames[s[-1]]["name"] for s in profile["samples"]}
        if names[tid].startswith("arith"):
            assert HOT_FUNCTION in leaves
    # it opens on a thread that did the work
    assert doc["profiles"][doc["activeProfileIndex"]]["name"].startswith("arith-")


def _open_in_speedscope(chromium: Any, node_modules: Path, path: Path, shot: str
                        ) -> tuple[str, list[str], list[str]]:
    """Imports `path` into speedscope's app; returns the sandwich table's text for the
    profile it opens on, every profile's title, and the console errors."""
    app = node_modules / "speedscope" / "dist" / "release" / "index.html"
    page = chromium.new_page(viewport={"width": 1360, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(app.as_uri(), wait_until="load")
        page.set_input_files("input#file", str(path))
        counter = page.get_by_text(re.compile(r"^\(\d+/\d+\)$"))
        counter.wait_for(timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{shot}-flamechart.png"))
        page.get_by_text("Sandwich").click()
        page.get_by_text("Symbol Name").wait_for(timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / f"{shot}-sandwich.png"))
        sandwich = page.inner_text("body")
        # the title says "NAME (n/N)"; the app's "p" and "n" keys move to the previous and
        # the next profile (stopping at the first and the last)
        count = int(re.search(r"/(\d+)\)", counter.inner_text()).group(1))
        for _ in range(count):
            page.keyboard.press("p")
        titles = []
        for _ in range(count):
            titles.append(counter.locator("..").inner_text())
            page.keyboard.press("n")
        return sandwich, titles, errors
    finally:
        page.close()


def test_speedscope_app_shows_every_thread_and_the_hot_function(
        exported: dict[str, Path], node_modules: Path, chromium: Any) -> None:
    sandwich, titles, errors = _open_in_speedscope(chromium, node_modules,
                                                   exported["speedscope"], "speedscope")
    assert not errors
    assert HOT_FUNCTION in sandwich              # the opening thread is an arith- one
    assert len(titles) == len(THREADS)
    for name in THREADS:
        assert any(t.startswith(f"{name} (pid ") for t in titles), titles


def test_perfetto_trace_imports_into_speedscope_as_a_real_consumer(
        exported: dict[str, Path], node_modules: Path, chromium: Any) -> None:
    """speedscope reads trace-event JSON too: every thread's stack and state tracks show."""
    _, titles, errors = _open_in_speedscope(chromium, node_modules, exported["perfetto"],
                                            "perfetto-in-speedscope")
    assert not errors
    assert len(titles) == 2 * len(THREADS)
    for name in THREADS:
        assert any(f", {name} (tid" in t for t in titles), titles
        assert any(f", {name} (state) (tid" in t for t in titles), titles


# --- pprof -----------------------------------------------------------------------------

def _go_pprof(*args: str) -> str:
    go = shutil.which("go")
    assert go, "go must be installed (Debian's golang-go package; .ci/run installs it)"
    result = subprocess.run([go, "tool", "pprof", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _raw_samples(text: str) -> list[tuple[int, int, dict[str, str]]]:
    """(samples, wall ns, labels) per sample of `go tool pprof -raw`."""
    out: list[tuple[int, int, dict[str, str]]] = []
    body = text.split("Samples:", 1)[1].split("Locations", 1)[0]
    for line in body.splitlines():
        m = re.match(r"^\s+(\d+)\s+(\d+): [\d ]+$", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), {}))
        elif out and ":[" in line:
            out[-1][2].update(re.findall(r"(\w+):\[([^\]]*)\]", line))
    return out


def test_pprof_is_a_gzipped_profile_go_tool_pprof_reads_with_the_hot_function_on_top(
        exported: dict[str, Path]) -> None:
    assert exported["pprof"].read_bytes()[:2] == b"\x1f\x8b"
    top = _go_pprof("-top", str(exported["pprof"]))
    # a flat time of 10 s or more ("10371.43ms") fills its column: no leading space
    rows = [line.split() for line in top.splitlines() if re.match(r"^\s*[\d.]+m?s ", line)]
    assert rows[0][-1] == HOT_FUNCTION, top
    assert "Type: wall" in top


def test_pprof_samples_carry_pid_tid_thread_name_and_state_and_add_up_to_the_recording(
        exported: dict[str, Path], rec: inspector.Recording) -> None:
    samples = _raw_samples(_go_pprof("-raw", str(exported["pprof"])))
    assert samples
    for _, _, labels in samples:
        assert set(labels) == {"pid", "tid", "thread_name", "state"}, labels
        assert labels["state"] in STATES
    assert sum(s[0] for s in samples) == int(rec.stacks["samples"].sum())
    spans = _span_seconds(rec)
    assert sum(s[1] for s in samples) / 1e9 == pytest.approx(sum(spans.values()), abs=1e-3)
    names = dict(zip(rec.threads["tid"], rec.threads["name"]))
    wall_by_thread: dict[str, float] = defaultdict(float)
    for _, wall_ns, labels in samples:
        assert labels["thread_name"] == names[int(labels["tid"])]
        assert int(labels["pid"]) == int(rec.processes["pid"].iloc[0])
        wall_by_thread[labels["thread_name"]] += wall_ns / 1e9
    for (_, tid), seconds in spans.items():
        assert wall_by_thread[names[tid]] == pytest.approx(seconds, abs=1e-3)
    tags = _go_pprof("-tags", str(exported["pprof"]))
    for name in THREADS:
        assert name in tags


# --- the command -----------------------------------------------------------------------

def test_export_to_standard_output(recording: Path) -> None:
    result = inspector_cli("export", str(recording), "-f", "pprof", "-o", "-", text=False)
    assert result.returncode == 0, result.stderr.decode()
    assert gzip.decompress(result.stdout)          # a whole gzip stream, nothing else


def test_a_missing_recording_is_one_line_and_exit_1(tmp_path: Path) -> None:
    line = _one_line_error(inspector_cli("export", str(tmp_path / "nope.sqlite"), "-f", "pprof"), 1)
    assert "nope.sqlite" in line


def test_a_file_that_is_not_a_recording_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("not a database")
    _one_line_error(inspector_cli("export", str(bogus), "-f", "speedscope"), 1)


def test_an_unknown_format_is_one_line_and_exit_2(recording: Path) -> None:
    line = _one_line_error(inspector_cli("export", str(recording), "--format", "svg"), 2)
    assert "svg" in line and "perfetto" in line


def test_an_output_in_a_missing_folder_is_one_line_and_exit_1(
        recording: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "trace.json"
    line = _one_line_error(inspector_cli("export", str(recording), "-f", "perfetto", "-o",
                                         str(target)), 1)
    assert str(target) in line
    assert not target.exists()


def test_a_recording_without_samples_exports_empty_but_valid_files(
        tmp_path: Path, node_modules: Path) -> None:
    """`true` ends before anything is sampled: every format still writes a file its
    readers accept."""
    recording = tmp_path / "true.sqlite"
    assert inspector_cli("record", "-q", "-o", str(recording), "--", "true").returncode == 0
    for result in inspector_clis(*(["export", str(recording), "-f", fmt, "-o", str(tmp_path / fmt)]
                                   for fmt in ("perfetto", "speedscope", "pprof"))):
        assert result.returncode == 0, result.stderr
    schema = node_modules / "speedscope" / "dist" / "release" / "file-format-schema.json"
    assert _validate(node_modules, schema, tmp_path / "speedscope").returncode == 0
    trace_schema = tmp_path / "trace-event-schema.json"
    trace_schema.write_text(json.dumps(TRACE_EVENT_SCHEMA))
    assert _validate(node_modules, trace_schema, tmp_path / "perfetto").returncode == 0
    assert "Type: wall" in _go_pprof("-top", str(tmp_path / "pprof"))


def test_exporting_onto_the_recording_itself_is_refused(recording: Path) -> None:
    before = recording.read_bytes()
    line = _one_line_error(inspector_cli("export", str(recording), "-f", "perfetto", "-o",
                                         str(recording)), 1)
    assert "recording itself" in line
    assert recording.read_bytes() == before


def test_the_library_entry_refuses_an_unknown_format(rec: inspector.Recording) -> None:
    from inspector.errors import UsageError
    from inspector.export import export

    with pytest.raises(UsageError, match="svg"):
        export(rec, "svg")
    assert export(rec, "speedscope").startswith(b"{")
