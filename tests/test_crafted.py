"""Issue 24, items 3 and 4: a crafted recording gives one error line or a result, never a
traceback, a hang or memory out of proportion to its size, through every command that reads
one; and what a recording says is never terminal control or a link to a script.

Breadth in this process (hypothesis: meta, key columns, numbers, texts, thread blocks, stack
spans, the schema; through every reader a command runs: tests/crafted.py `read_everything`);
then each subcommand end to end on the crafted files of the issue, in a process of its own
with a memory limit (RLIMIT_DATA: RLIMIT_AS would trip over numpy's reservations) and a hang
guard.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import inspector_clis
from crafted import (
    BLOCK_TABLES,
    HOSTILE_TEXTS,
    KEY_COLUMNS,
    META_KEYS,
    NESTED_META_KEYS,
    ODD_JSON,
    ODD_NUMBERS,
    SCHEMA_CHANGES,
    TABLES,
    TEXT_COLUMNS,
    BlockRows,
    BlockTexts,
    ColumnValue,
    Edit,
    ManyBlocks,
    ManySpans,
    MetaValue,
    SchemaChange,
    crafted,
    read_everything,
    unprintable,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from v1 import as_version_1

import inspector
from inspector.cli import main as cli_main
from inspector.errors import InspectorError
from inspector.recording import RecordingError
from inspector.recording.schema import BLOCK_MAX_ROWS

PY = sys.executable
HANG_S = 120          # no crafted file needs more than a few seconds: this is a hang guard
DATA_LIMIT = 2 << 30  # bytes of data a command on a ~100 KB file may map (it needs ~0.2 GB)
MAX_ROWS_ENV = "INSPECTOR_MAX_ROWS"  # lifts the size limits (recording/limits.py)
EXAMPLES = 30         # each example reads the file as every command does: ~1-2 s


@pytest.fixture(scope="module")
def base(two_process_recording: Path) -> Path:
    """A real recording: two processes, a named thread, stacks, thread blocks."""
    return two_process_recording


@pytest.fixture(scope="module")
def base_v1(base: Path) -> Path:
    """The same recording as version 1 wrote it: thread samples as rows."""
    return as_version_1(base, base.with_name("base-v1.sqlite"))


# -- what every command is run as, and must give --------------------------------------------

def _commands(path: Path, base: Path, tmp: Path) -> dict[str, list[str]]:
    out = tmp / path.stem
    return {
        "summary": ["summary", str(path)], "summary --json": ["summary", "--json", str(path)],
        "explain": ["explain", str(path)], "report": ["report", "-o", f"{out}.html", str(path)],
        **{f"export {fmt}": ["export", "-f", fmt, "-o", f"{out}.{fmt}", str(path)]
           for fmt in ("perfetto", "speedscope", "pprof")},
        "compare": ["compare", "-o", f"{out}.compare.html", str(base), str(path)],
        "merge": ["merge", "-o", f"{out}.merged.sqlite", str(base), str(path)],
    }


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _one_error_line_or_a_result(name: str, status: int, out: str, err: str) -> None:
    assert "Traceback" not in err, (name, err)
    lines = err.splitlines()
    if status != 0:
        assert len(lines) == 1 and lines[0].startswith("inspector: "), (name, status, err)
    else:
        assert all(line.startswith("inspector") for line in lines), (name, err)
    assert unprintable([out, err]) == [], (name, out[-2000:], err)


# -- item 3: the crafted recordings of the issue ---------------------------------------------

def _blocks_bomb(base: Path, path: Path) -> Path:
    """16 valid blocks of 65,536 rows that never change: a million rows in ~170 KB."""
    return crafted(base, path, [ManyBlocks(16)])


def test_blocks_claiming_more_rows_than_the_file_can_hold_are_refused_before_decoding(
        base: Path, tmp_path: Path) -> None:
    path = _blocks_bomb(base, tmp_path / "bomb.sqlite")
    with pytest.raises(RecordingError, match=f"would make 1,048,[0-9]+ rows out of its blocks"
                                             f" \\(1,048,[0-9]+ thread samples\\), more than a"
                                             f" file of [0-9,]+ bytes holds .*"
                                             f"{MAX_ROWS_ENV}=") as e:
        inspector.load(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("table", sorted(BLOCK_TABLES))
def test_blocks_of_every_kind_that_lie_are_refused_in_one_line(base: Path, tmp_path: Path,
                                                               table: str) -> None:
    """Process, stack and machine blocks are checked as thread blocks are: a bomb of rows
    that never change is refused before it is decoded, a row count that is not what the
    data holds is refused naming the blocks' table."""
    noun = BLOCK_TABLES[table].noun
    cases = {
        "bomb": ([ManyBlocks(16, table)],
                 f"would make 1,048,[0-9]+ rows out of its blocks \\(1,048,[0-9]+ {noun}\\)"),
        "rows": ([BlockRows(BLOCK_MAX_ROWS, table)],
                 f"{table.replace('_', ' ')}: block [0-9]+: data is not"),
        "no rows": ([BlockRows(0, table)], f"{table.replace('_', ' ')}: block [0-9]+: 0 rows"),
        "texts": ([ColumnValue(table, "texts", "[1]", 1)], "texts are not the dictionary"),
    }
    # (a key, in a block's data since format 4: test_reader_blocks, a NULL key refused)
    for case, (edits, said) in cases.items():
        path = crafted(base, tmp_path / f"{case}.sqlite", edits)
        with pytest.raises(RecordingError, match=said) as e:
            inspector.load(path)
        assert "\n" not in str(e.value), case


def test_the_row_limit_can_be_lifted_and_must_be_a_number(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _blocks_bomb(base, tmp_path / "bomb.sqlite")
    monkeypatch.setenv(MAX_ROWS_ENV, str(2 << 20))
    assert len(inspector.load(path).thread_samples) > 1 << 20
    monkeypatch.setenv(MAX_ROWS_ENV, "lots")
    with pytest.raises(RecordingError, match=f"{MAX_ROWS_ENV}='lots': give a whole number"):
        inspector.load(path)
    monkeypatch.setenv(MAX_ROWS_ENV, "5")
    with pytest.raises(RecordingError, match=f"more than {MAX_ROWS_ENV} \\(5\\)"):
        inspector.load(base)


def test_spans_naming_one_deep_stack_over_and_over_are_refused(base: Path,
                                                                tmp_path: Path) -> None:
    # 3,000 frames in 33 KB of text, named by 20,000 spans of ~40 bytes each: 60 M frames
    # for the exports to walk, from a file of under 1 MB
    path = crafted(base, tmp_path / "deep.sqlite",
                   [ColumnValue("stack_texts", "text", "f (x.py:1);" * 3000, 1),
                    ManySpans(20_000)])
    with pytest.raises(RecordingError, match="stack frames over its spans, more than a file"):
        inspector.load(path)
    # read in windows (summary and report of a recording too large to load), the same
    from inspector.bounded import Plan, streamed

    with pytest.raises(RecordingError, match="stack frames over its spans, more than a file"):
        streamed(path, Plan(True, 0, 0, window_s=0.1))


@pytest.mark.parametrize("value", [
    "[" * 100_000 + "]" * 100_000,               # deeper than json can go
    '{"a": ' * 5000 + "1" + "}" * 5000,
    "[" * 40 + "]" * 40,                         # deeper than any recorder writes
])
@pytest.mark.parametrize("key", ["duration_s", "hostname", "a_newer_key"])
def test_meta_nested_too_deep_is_refused(base: Path, tmp_path: Path, key: str,
                                         value: str) -> None:
    path = crafted(base, tmp_path / "deep-meta.sqlite", [MetaValue(key, value)])
    with pytest.raises(RecordingError, match=f"corrupt recording .*meta value for '{key}'"):
        inspector.load(path)


@pytest.mark.parametrize("key, value, said", [
    ("start_time_unix", "1e300", "meta start_time_unix is 1e+300"),
    ("start_time_unix", "-5", "meta start_time_unix is -5"),
    ("start_time_unix", "1e12", "meta start_time_unix is 1000000000000.0"),
    ("duration_s", "1e300", "meta duration_s is 1e+300"),
    ("duration_s", "NaN", "meta duration_s is nan"),
    ("duration_s", "Infinity", "meta duration_s is inf"),
    (("settings", "interval_s"), "1e300", "meta settings.interval_s is 1e+300"),
    ("cpu_count", "1" + "0" * 30, "meta cpu_count is too large"),
    ("cpu_count", "1" + "0" * 5000, "bad meta value for 'cpu_count'"),  # json refuses it
    ("exit_code", "-" + "9" * 30, "meta exit_code is too large"),
    ("format_version", "9" * 30, "format version too large is newer"),
])
def test_meta_numbers_out_of_range_are_refused_naming_the_key(
        base: Path, tmp_path: Path, key: str | tuple[str, str], value: str, said: str) -> None:
    path = crafted(base, tmp_path / "number.sqlite", [MetaValue(key, value)])
    with pytest.raises(RecordingError) as e:
        inspector.load(path)
    assert said in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("table, column", [
    (table, column) for table, columns in {
        "processes": ("pid", "proc_id"), "threads": ("proc_id", "pid", "tid"),
        "process_samples": ("t_s", "proc_id", "pid"),
        "thread_samples": ("t_s", "proc_id", "pid", "tid"),
        "stacks": ("t_s", "pid", "tid", "stack_id"), "stack_texts": ("stack_id", "text"),
        "stack_nodes": ("node_id", "frame_id"), "stack_frames": ("frame_id", "text"),
    }.items() for column in columns])
def test_a_null_key_column_is_refused(base: Path, base_v1: Path, tmp_path: Path, table: str,
                                      column: str) -> None:
    # samples and spans as rows, stacks as texts: a version-1 file (blocks are checked apart)
    source = (base_v1 if table in ("thread_samples", "process_samples", "stacks",
                                   "stack_texts") else base)
    path = crafted(source, tmp_path / "null.sqlite", [ColumnValue(table, column, None)])
    with pytest.raises(RecordingError, match=f"NULL in {table}.{column}"):
        inspector.load(path)


@pytest.mark.parametrize("table, column, value", [
    ("process_samples", "t_s", float("inf")), ("thread_samples", "cpu_user_s", float("-inf")),
    ("stacks", "duration_s", float("inf")), ("processes", "start_s", float("inf")),
    ("processes", "pid", 1e300), ("threads", "tid", -1e300),
])
def test_numbers_no_column_can_use_are_refused(base: Path, base_v1: Path, tmp_path: Path,
                                               table: str, column: str, value: float) -> None:
    source = base_v1 if table in ("thread_samples", "process_samples", "stacks") else base
    path = crafted(source, tmp_path / "odd.sqlite", [ColumnValue(table, column, value)])
    with pytest.raises(RecordingError, match=f"corrupt recording .*{table}.{column}"):
        inspector.load(path)


# -- item 4: what a recording says is text, on a terminal and on a page -----------------------

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\r"


def _hostile_texts(base: Path, path: Path) -> Path:
    """Escape sequences and markup wherever a recording keeps text."""
    frame = f"work{ESCAPES} (/app/{ESCAPES}</script>.py:7)"
    return crafted(base, path, [
        MetaValue("command", json.dumps([f"python{ESCAPES}", "job.py", "</script>"])),
        MetaValue("hostname", json.dumps(f"host{ESCAPES}")),
        MetaValue("cwd", json.dumps(f"/srv{ESCAPES}")),
        ColumnValue("processes", "name", f"proc{ESCAPES}", None),
        ColumnValue("processes", "cmdline", json.dumps([f"python{ESCAPES}", "-c", "x"]), None),
        ColumnValue("processes", "python_version", f"3.11{ESCAPES}", None),
        ColumnValue("processes", "cores_limited_by", f"affinity{ESCAPES}", None),
        ColumnValue("threads", "name", f"thread{ESCAPES}", None),
        ColumnValue("threads", "python_name", f"thread{ESCAPES}", None),
        ColumnValue("stacks", "thread_name", f"thread{ESCAPES}", None),
        ColumnValue("stack_texts", "text", f"main (/app/m.py:1);{frame}", None),
        ColumnValue("problems", "detail", f"detail{ESCAPES}", None),
        BlockTexts((f"S{ESCAPES}", f"futex{ESCAPES}")),
        BlockTexts((f"S{ESCAPES}",), "process_blocks"),
        BlockTexts((f"thread{ESCAPES}",), "stack_blocks"),
    ])


def test_compare_and_every_other_command_print_what_a_recording_says_as_text(
        base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every subcommand, under the memory limit and the hang guard, on a file whose texts
    are all escape sequences: it reads through, and its terminal shows them as '?'; and what
    a refusal quotes of a file's name, too. The summary of the file and the refusal of a
    missing one as their own processes (`python -m inspector`, start-up to exit); the rest
    through the same main() in this process (_cli_in_process: without an interpreter and
    pandas started for each)."""
    path = _hostile_texts(base, tmp_path / f"odd{ESCAPES}.sqlite")
    merged = tmp_path / f"{path.stem}.merged.sqlite"  # where _commands merges it
    runs = [*_commands(path, base, tmp_path).values(),
            ["summary", str(tmp_path / f"missing{ESCAPES}.sqlite")],
            ["summary", str(_blocks_bomb(base, tmp_path / f"bomb{ESCAPES}.sqlite"))]]
    whole = (["summary", str(path)], runs[-2])  # each as its own process
    done = dict(zip(map(tuple, whole), inspector_clis(*whole, timeout=HANG_S,
                                                      preexec_fn=_limits)))
    runs.append(["summary", str(merged)])  # last: what the merge among them wrote
    for argv in runs:
        if tuple(argv) not in done:
            done[tuple(argv)] = subprocess.CompletedProcess(argv,
                                                            *_cli_in_process(argv, capsys))
    for argv in runs:
        proc = done[tuple(argv)]
        refused = "missing" in argv[-1] or "bomb" in argv[-1]
        _one_error_line_or_a_result(" ".join(argv[:2]), proc.returncode, proc.stdout,
                                    proc.stderr)
        assert proc.returncode == refused, (argv, proc.stderr)
        if argv[:1] == ["summary"] and "--json" not in argv and not refused:
            assert "thread?]0;owned??[2J?31m?" in proc.stdout, proc.stdout  # shown, as text


def test_top_prints_what_its_target_says_as_text(tmp_path: Path) -> None:
    # a live target whose argv and thread names carry escape sequences (its threads wait:
    # what they do is not what is shown here)
    proc = subprocess.run(
        [PY, "-m", "inspector", "top", "--once", "--", PY, "-c",
         "import sys, threading, time\n"
         "ts = [threading.Thread(target=time.sleep, args=(5,), name=sys.argv[1])"
         " for _ in range(2)]\n"
         "for t in ts: t.start()\n"
         "for t in ts: t.join()\n", f"spinner{ESCAPES}"],
        capture_output=True, text=True, timeout=HANG_S, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "spinner?" in proc.stdout, proc.stdout
    assert unprintable([proc.stdout, proc.stderr]) == [], proc.stdout


def test_record_names_a_process_it_left_running_as_text(tmp_path: Path) -> None:
    # a child that names itself with escape sequences and outlives --linger
    child = ("open('/proc/self/comm', 'w').write('evil\\x1b[2J\\x07')\n"
             "import time; time.sleep(60)\n")
    proc = subprocess.run(
        [PY, "-m", "inspector", "record", "-q", "--no-stacks", "--linger", "0.5", "-o",
         str(tmp_path / "left.sqlite"), "--", PY, "-c",
         "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', " + repr(child)
         + "], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
         " print(p.pid, flush=True); import time; time.sleep(0.5)"],
        capture_output=True, text=True, timeout=HANG_S)
    try:
        assert proc.returncode == 0, proc.stderr
        assert "left running" in proc.stderr and "(evil?[2J?)" in proc.stderr, proc.stderr
        assert unprintable([proc.stderr]) == [], proc.stderr
    finally:
        os.kill(int(proc.stdout.split()[0]), signal.SIGKILL)


ODD_NAMES = ("javascript:alert(1)%0A.sqlite", "odd #1?.sqlite", "data:text,x.sqlite",
             "%2e%2e.sqlite")


def test_every_link_on_the_compare_page_leads_to_its_own_file(
        base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from html.parser import HTMLParser

    odd = []
    for i, name in enumerate(ODD_NAMES):  # a row each (another command), with its report
        path = crafted(base, tmp_path / name, [MetaValue("command", f'["python", "{i}.py"]')])
        path.with_suffix(".html").write_text("its report")
        odd.append(path)
    page = tmp_path / "compare.html"  # beside them, as compare writes it by default
    # the CLI in this process (compare as its own process: the test above)
    status = cli_main(["compare", "-o", str(page), str(base), *map(str, odd)])
    assert status == 0, capsys.readouterr().err

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.hrefs += [v or "" for k, v in attrs if tag == "a" and k == "href"]

    links = Links()
    links.feed(page.read_text())
    files = [h for h in links.hrefs if not h.startswith("#")]
    targets = [base, *odd, *(p.with_suffix(".html") for p in odd)]
    assert len(files) == len(targets), files
    for href in files:
        url = urllib.parse.urlsplit(urllib.parse.urljoin(page.resolve().as_uri(), href))
        assert url.scheme == "file" and not url.query and not url.fragment, href
        assert Path(urllib.parse.unquote(url.path)) in targets, href


# -- breadth: hypothesis through every reader, in this process -------------------------------

def _nested(key: tuple[str, str]) -> st.SearchStrategy[Edit]:
    return st.sampled_from(ODD_JSON).map(lambda j: MetaValue(key, j))


EDITS: st.SearchStrategy[Edit] = st.one_of(
    st.builds(MetaValue, st.sampled_from(META_KEYS),
              st.sampled_from(ODD_JSON) | st.sampled_from(HOSTILE_TEXTS).map(json.dumps)),
    st.sampled_from(NESTED_META_KEYS).flatmap(_nested),
    st.sampled_from(sorted(KEY_COLUMNS)).flatmap(lambda t: st.builds(
        ColumnValue, st.just(t), st.sampled_from(KEY_COLUMNS[t]), st.sampled_from(ODD_NUMBERS),
        st.sampled_from([1, 3, None]))),
    st.sampled_from(sorted(TEXT_COLUMNS)).flatmap(lambda t: st.builds(
        ColumnValue, st.just(t), st.sampled_from(TEXT_COLUMNS[t]),
        st.sampled_from(HOSTILE_TEXTS + (None, 7)), st.sampled_from([1, None]))),
    st.builds(BlockRows, st.sampled_from([0, -1, 1, 65_536, 2**62, None, "many"]),
              st.sampled_from(sorted(BLOCK_TABLES))),
    st.builds(ManyBlocks, st.integers(1, 24), st.sampled_from(sorted(BLOCK_TABLES))),
    st.builds(BlockTexts, st.just(HOSTILE_TEXTS[:8]), st.sampled_from(sorted(BLOCK_TABLES))),
    st.builds(ManySpans, st.integers(100, 30_000)),
    st.builds(SchemaChange, st.sampled_from(SCHEMA_CHANGES), st.sampled_from(TABLES)),
)


@contextmanager
def limited(seconds: int, data_bytes: int) -> Iterator[None]:
    """A hang guard (SIGALRM) and a ceiling on this process's data, for one example."""
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    ceiling = _data_now() + data_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (
        ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard), hard))
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _data_now() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(EDITS, min_size=1, max_size=3), version_1=st.booleans())
def test_any_crafted_recording_reads_or_is_refused_in_one_line(
        base: Path, base_v1: Path, tmp_path: Path, edits: list[Edit], version_1: bool) -> None:
    path = crafted(base_v1 if version_1 else base, tmp_path / "crafted.sqlite", edits)
    try:
        with limited(HANG_S, DATA_LIMIT):
            shown = read_everything(path, base, tmp_path)
    except InspectorError as e:
        assert "\n" not in str(e), str(e)
        return
    assert unprintable(shown) == []


# -- end to end: each subcommand on the crafted files, in a process of its own ---------------

def _cases(base: Path, tmp: Path) -> dict[str, Path]:
    """The crafted recordings of the issue, by name."""
    return {
        "blocks-bomb": _blocks_bomb(base, tmp / "bomb.sqlite"),
        "deep-json": crafted(base, tmp / "json.sqlite",
                             [MetaValue("settings", "[" * 100_000 + "]" * 100_000)]),
        # a frame the old parser took O(n^2) on: 1 MB of it, minutes (a hang guard's job)
        "long-frame": crafted(base, tmp / "frame.sqlite",
                              [ColumnValue("stack_texts", "text", "a (" * 350_000, 1)]),
        "null-pid": crafted(base, tmp / "null.sqlite", [ColumnValue("processes", "pid", None)]),
        "huge-start": crafted(base, tmp / "start.sqlite", [MetaValue("start_time_unix", "1e300")]),
        "nan-duration": crafted(base, tmp / "nan.sqlite", [MetaValue("duration_s", "NaN")]),
        "deep-spans": crafted(base, tmp / "spans.sqlite", [
            ColumnValue("stack_texts", "text", "f (x.py:1);" * 3000, 1), ManySpans(20_000)]),
    }


def test_every_subcommand_on_every_crafted_file(
        base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI's main() in this process (its modules imported already: the matrix
    costs what the commands do, not 63 interpreter start-ups), each under the memory limit
    and the hang guard (`limited`, as the breadth test above); the summary of the blocks
    bomb as its own process, start-up to exit."""
    refused = {"blocks-bomb", "deep-json", "null-pid", "huge-start", "nan-duration",
               "deep-spans"}
    for case, path in _cases(base, tmp_path).items():
        for command, argv in _commands(path, base, tmp_path).items():
            if (case, command) == ("blocks-bomb", "summary"):
                (proc,) = inspector_clis(argv, timeout=HANG_S, preexec_fn=_limits)
                status, out, err = proc.returncode, proc.stdout, proc.stderr
            else:
                status, out, err = _cli_in_process(argv, capsys)
            _one_error_line_or_a_result(f"{command} {case}", status, out, err)
            assert (status != 0) == (case in refused), (command, case, status, err)


def _cli_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]
                    ) -> tuple[int, str, str]:
    """`inspector ARGV` through main() in this process under the limits: (status, stdout,
    stderr). A traceback is the test's failure; so is a command still running after
    HANG_S, or one that maps more than DATA_LIMIT (main() turns a MemoryError into one
    line and status 1)."""
    with limited(HANG_S, DATA_LIMIT):
        status = cli_main(argv)
    out, err = capsys.readouterr()
    return status, out, err
