"""The pure pieces of the analysis on stack texts as py-spy writes them: which frames wait on
the program itself, which are an asyncio loop in or out of its selector, what a sampled
syscall means, and how blocked-loop stretches are cut."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.analyze.eventloop import LOOP_BLOCK_MIN_S, loop_blocks
from inspector.analyze.frames import Frame, parse_frame, stack_facts
from inspector.analyze.states import _wait_kind

LIB = "/usr/lib/python3.11"
BOOT = (f"Thread._bootstrap ({LIB}/threading.py:1002);"
        f"Thread._bootstrap_inner ({LIB}/threading.py:1045);Thread.run ({LIB}/threading.py:982)")
LOOP = (f"<module> (/app/main.py:30);run ({LIB}/asyncio/runners.py:190);"
        f"Runner.run ({LIB}/asyncio/runners.py:118);"
        f"BaseEventLoop.run_until_complete ({LIB}/asyncio/base_events.py:640);"
        f"BaseEventLoop.run_forever ({LIB}/asyncio/base_events.py:607);"
        f"BaseEventLoop._run_once ({LIB}/asyncio/base_events.py:1922)")
IN_SELECTOR = LOOP + f";EpollSelector.select ({LIB}/selectors.py:468)"
IN_HANDLER = LOOP + (f";Handle._run ({LIB}/asyncio/events.py:80);"
                     "handler (/app/main.py:12);crunch (/app/main.py:5)")


def test_a_condition_wait_under_user_code_waits_on_the_program() -> None:
    facts = stack_facts(f"{BOOT};consume (/app/w.py:9);Queue.get ({LIB}/queue.py:171);"
                        f"Condition.wait ({LIB}/threading.py:327)")
    assert facts.waits_on_program
    assert facts.leaf == f"Condition.wait ({LIB}/threading.py:327)"
    assert facts.user_leaf == "consume (/app/w.py:9)"


def test_ordinary_code_on_top_does_not_wait_on_the_program() -> None:
    facts = stack_facts(f"{BOOT};work (/app/w.py:7)")
    assert not facts.waits_on_program and facts.user_leaf == "work (/app/w.py:7)"


def test_a_thread_running_a_c_target_is_not_taken_for_a_lock_wait() -> None:
    # threading.Thread(target=time.sleep) or a C function: Thread.run is on top
    assert not stack_facts(BOOT).waits_on_program


def test_a_pool_result_handler_reading_its_pipe_waits_on_the_program() -> None:
    facts = stack_facts(f"{BOOT};Pool._handle_results ({LIB}/multiprocessing/pool.py:579);"
                        f"Connection.recv ({LIB}/multiprocessing/connection.py:249);"
                        f"Connection._recv_bytes ({LIB}/multiprocessing/connection.py:413)")
    assert facts.waits_on_program


def test_installed_libraries_count_as_the_programs_code() -> None:
    facts = stack_facts(f"{BOOT};get (/venv/lib/python3.11/site-packages/requests/api.py:73)")
    assert facts.user_leaf == "get (/venv/lib/python3.11/site-packages/requests/api.py:73)"


def test_an_asyncio_loop_in_and_out_of_its_selector() -> None:
    waiting, running = stack_facts(IN_SELECTOR), stack_facts(IN_HANDLER)
    assert waiting.in_loop and waiting.in_selector
    assert running.in_loop and not running.in_selector
    assert running.user_leaf == "crunch (/app/main.py:5)"
    assert not stack_facts(f"{BOOT};work (/app/w.py:7)").in_loop


def test_what_a_sampled_syscall_means() -> None:
    user = stack_facts(f"{BOOT};work (/app/w.py:7)")
    lock = stack_facts(f"{BOOT};Event.wait ({LIB}/threading.py:629);"
                       f"Condition.wait ({LIB}/threading.py:327)")
    nothing = stack_facts(None)
    assert _wait_kind("running", "R", user, True) is None
    assert _wait_kind("futex", "S", user, True) == "gil"
    assert _wait_kind("futex", "S", user, False) == "lock"      # free-threaded: no GIL
    assert _wait_kind("futex", "S", lock, True) == "lock"
    assert _wait_kind("futex", "S", nothing, True) == "lock"    # no stack: no GIL claim
    assert _wait_kind("clock_nanosleep", "S", user, True) == "sleep"
    assert _wait_kind("recvfrom", "S", user, True) == "io"
    assert _wait_kind("wait4", "S", nothing, False) == "lock"   # a shell waiting for a child
    assert _wait_kind(None, "D", nothing, False) == "io"


def _spans(rows: list[tuple[float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame({"t_s": [r[0] for r in rows], "duration_s": [r[1] for r in rows],
                         "pid": 7, "tid": 7, "stack": [r[2] for r in rows]})


def test_a_loop_out_of_its_selector_long_enough_is_a_block_named_by_its_function() -> None:
    blocks = loop_blocks(_spans([
        (0.00, 0.20, IN_SELECTOR),
        (0.20, 0.05, IN_HANDLER),
        (0.25, 0.10, IN_HANDLER.replace("main.py:5", "main.py:6")),
        (0.35, 0.30, IN_SELECTOR),
    ]))
    assert len(blocks) == 1
    b = blocks[0]
    assert (b.pid, b.tid, b.start_s, b.function, b.coroutine) == (7, 7, 0.2, "crunch", "handler")
    assert abs(b.duration_s - 0.15) < 1e-9


def test_short_stretches_and_non_loop_threads_are_not_blocks() -> None:
    short = LOOP_BLOCK_MIN_S * 0.9
    assert loop_blocks(_spans([(0.0, 0.1, IN_SELECTOR), (0.1, short, IN_HANDLER),
                               (0.1 + short, 0.1, IN_SELECTOR)])) == []
    assert loop_blocks(_spans([(0.0, 1.0, f"{BOOT};work (/app/w.py:7)")])) == []


def test_a_gap_without_samples_ends_a_block() -> None:
    blocks = loop_blocks(_spans([(0.0, 0.08, IN_HANDLER), (0.5, 0.08, IN_HANDLER)]))
    assert blocks == []


# -- frames from a hostile file (issue 24 item 3) --------------------------------------------

# The regex parse_frame replaced, as the reference for what a frame means: it backtracked
# quadratically on texts such as 'a (' repeated.
OLD_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*):(?P<line>\d+)\)$")


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(["a", " (", "(", ")", ":", "1", "\u0663", "\u00b2", "/",
                                 ".py", "\n", ";", " "]), max_size=12).map("".join))
def test_a_frame_reads_as_py_spy_writes_it_whatever_its_text(text: str) -> None:
    m = OLD_FRAME.match(text)
    expected = (Frame(m["func"], m["file"], int(m["line"])) if m is not None
                else Frame(text, "", 0))
    assert parse_frame(text) == expected


def test_a_frame_of_any_length_parses_in_time_linear_in_it() -> None:
    # 1 MB of 'a (': hours for the regex, milliseconds now; the timeout is a hang guard
    subprocess.run([sys.executable, "-c", "from inspector.analyze.frames import parse_frame\n"
                    "assert parse_frame('a (' * 350_000).file == ''\n"
                    "assert parse_frame('a (' * 350_000 + 'x.py:3)').line == 3\n"],
                   check=True, timeout=60)


def test_a_line_number_longer_than_any_file_is_no_line() -> None:
    # int() refuses 4,300 digits and more: the frame is text, not a ValueError
    text = "f (x.py:" + "9" * 5000 + ")"
    assert parse_frame(text) == Frame(text, "", 0)
    assert stack_facts(f"{BOOT};{text}").leaf == text
