"""The report's HTML sections that are words and tables rather than charts: the verdict,
the process/thread tree, blocked event loops and the run itself. Every value that came
from the target passes through `esc`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Optional

import pandas as pd

from inspector.report.markup import esc, table, tag
from inspector.report.model import (
    STATE_CAPTIONS,
    STATE_COLORS,
    STATES,
    ProcessView,
    ReportModel,
    ThreadView,
)

# Threads listed per process in the tree; the quieter rest are counted in one line.
MAX_TREE_THREADS = 16
# Longer command lines are cut in the tree (the full one is in the run section).
MAX_COMMAND_CHARS = 160
# Lines of the problems table; the rest are counted.
MAX_PROBLEM_ROWS = 30
# Blocked event loops listed; the rest are counted.
MAX_BLOCK_ROWS = 50

BOUND_HEADLINES = {
    "cpu": "CPU-bound",
    "io": "I/O-bound",
    "mixed": "Mixed: CPU and I/O",
    "idle": "Mostly idle",
}
ADVICE = {
    "multiprocessing": (
        "Use processes for the CPU work",
        "Run the CPU-bound Python code in processes (multiprocessing, or "
        "concurrent.futures.ProcessPoolExecutor): each process has its own interpreter and "
        "GIL, so they use a core each."),
    "threading": (
        "Threads fit",
        "The work waits on I/O in few, quick waits; threads release the GIL while they "
        "wait, so a thread pool (concurrent.futures.ThreadPoolExecutor) overlaps them well."),
    "asyncio": (
        "Use asyncio for the waiting",
        "Many slow waits at once: asyncio runs thousands of them on one thread with cheap "
        "tasks, where threads would cost a stack and a GIL hand-off each."),
    "keep": (
        "Keep the concurrency model you have",
        "The way this program is split into processes and threads already fits its work."),
}


def _fmt_s(value: Optional[float]) -> str:
    if value is None or pd.isna(value):
        return "–"
    if value >= 100:
        return f"{value:.0f} s"
    return f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def state_bar(state_s: Mapping[str, float]) -> str:
    """A thin stacked bar of how a thread (or process) spent its time, with a legend tip."""
    total = sum(float(state_s.get(s, 0.0)) for s in STATES)
    if total <= 0:
        return '<span class="muted">no samples</span>'
    parts, tip = [], []
    for s in STATES:
        v = float(state_s.get(s, 0.0))
        if v <= 0:
            continue
        share = 100 * v / total
        parts.append(f'<span style="width:{share:.2f}%;background:{STATE_COLORS[s]}"></span>')
        if share >= 0.5:
            tip.append(f"{STATE_CAPTIONS[s]} {share:.0f}%")
    return f'<div class="bar" title="{esc(", ".join(tip))}">{"".join(parts)}</div>'


def state_legend() -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{STATE_COLORS[s]}"></i>{esc(STATE_CAPTIONS[s])}</span>'
        for s in STATES) + "</div>"


# -- 1. the verdict ---------------------------------------------------------------------------

def verdict_section(diagnosis: Optional[dict[str, Any]], facts: Mapping[str, str],
                    empty_reason: Optional[str]) -> str:
    tiles = "".join(
        f'<div class="tile"><div class="num">{esc(v)}</div><div class="cap">{esc(k)}</div></div>'
        for k, v in facts.items())
    if empty_reason:
        return (f'<div class="verdict empty"><h2>No samples in this recording</h2>'
                f"<p>{esc(empty_reason)}</p></div>" + f'<div class="tiles">{tiles}</div>')
    if diagnosis is None:
        return ('<div class="verdict"><h2>Measured facts</h2><p class="muted">No diagnosis '
                "was made for this report.</p></div>" + f'<div class="tiles">{tiles}</div>')
    v = diagnosis.get("verdict") or {}
    bound = BOUND_HEADLINES.get(str(v.get("bound")), str(v.get("bound") or "?"))
    flags = []
    if v.get("gil_limited"):
        flags.append("held to one core by the GIL")
    if v.get("parallel_threads"):
        flags.append("threads really ran in parallel")
    if v.get("oversubscribed"):
        flags.append("more runnable threads than cores")
    headline = bound + (": " + ", ".join(flags) if flags else "")
    advice_key = str(v.get("advice") or "")
    advice_title, advice_text = ADVICE.get(advice_key, (advice_key or "No advice", ""))
    evidence = "".join(tag("li", esc(e)) for e in v.get("evidence") or [])
    notes = "".join(tag("li", esc(n)) for n in diagnosis.get("notes") or [])
    badge_cls = f"advice advice-{esc(advice_key)}"
    return (
        '<div class="verdict">'
        f"<h2>{esc(headline)}</h2>"
        f'<div class="{badge_cls}"><b>{esc(advice_title)}</b>'
        f"<span>{esc(advice_text)}</span></div>"
        f'<div class="tiles">{tiles}</div>'
        f"<h3>Evidence</h3><ul class=\"evidence\">{evidence}</ul>"
        + (f'<h3>Notes</h3><ul class="notes">{notes}</ul>' if notes else "")
        + "</div>")


# -- 2. processes and threads -----------------------------------------------------------------

def _python_cell(p: ProcessView) -> str:
    if not p.is_python:
        return '<span class="muted">no</span>'
    gil = {"enabled": "with GIL", "disabled": "free-threaded (no GIL)"}.get(
        p.python_gil or "", "GIL unknown")
    return esc(f"{p.python_version or '?'}, {gil}")


def _lifetime(start: Optional[float], end: Optional[float]) -> str:
    return f"{_fmt_s(start or 0.0) if start is not None else '?'} – {_fmt_s(end)}"


def tree_section(model: ReportModel, diagnosis: Optional[dict[str, Any]],
                 cpu_s_by_thread: Mapping[tuple[int, int], float]) -> str:
    proc_facts = {int(p["proc_id"]): p for p in (diagnosis or {}).get("processes", [])
                  if "proc_id" in p}
    thread_facts = {(int(t["proc_id"]), int(t["tid"])): t
                    for t in (diagnosis or {}).get("threads", []) if "proc_id" in t}
    n_threads = sum(len(p.threads) for p in model.processes)
    intro = ""
    if diagnosis and diagnosis.get("peak_t_s") is not None:
        peak_rows = int(diagnosis.get("htop_rows_peak") or 0)
        peak_procs = diagnosis.get("peak_processes") or []
        at = diagnosis.get("peak_t_s")
        n_peak = len(peak_procs)
        intro = (
            f"<p class=\"lead\">At its busiest{f' (t = {at:.1f} s)' if at is not None else ''}"
            f", htop (default settings: one row per thread) would have shown "
            f"<b>{peak_rows} row{'s' if peak_rows != 1 else ''}</b>. They were "
            f"<b>{n_peak} process{'es' if n_peak != 1 else ''}</b> with "
            f"<b>{int(diagnosis.get('peak_threads') or 0)} threads</b> in all. A thread's row "
            "in htop shows its thread id in the PID column and its process's command; only "
            "separate processes can run Python code on separate cores at once (with a GIL)."
            "</p>")
    sampled = bool(cpu_s_by_thread)
    rows = []
    for p in model.processes:
        pf = proc_facts.get(p.proc_id, {})
        pad = f"padding-left:{0.4 + 1.4 * p.depth:.1f}em"
        parent = "" if p.depth == 0 else f" (child of {p.ppid})"
        role = "the command you ran" if p.is_target else "process" + parent
        cmd = " ".join(p.cmdline) or p.name
        short = cmd if len(cmd) <= MAX_COMMAND_CHARS else cmd[:MAX_COMMAND_CHARS] + "…"
        cpu = (f"{pf['cpu_percent_mean']:.0f}% mean, {pf['cpu_percent_peak']:.0f}% peak"
               if "cpu_percent_mean" in pf and sampled else "–")
        exit_note = "" if p.exit_code is None else f" · exit {p.exit_code}"
        rows.append(
            f'<tr class="proc"><td style="{pad}"><span class="dot" '
            f'style="background:{esc(p.color)}"></span><b>{p.pid}</b></td>'
            f"<td>{esc(role)}</td>"
            f'<td><code title="{esc(cmd)}">{esc(short)}</code></td>'
            f"<td>{_python_cell(p)}</td><td>{esc(cpu)}</td>"
            f"<td>{state_bar(pf.get('state_s') or {})}</td>"
            f"<td>{esc(_lifetime(p.start_s, p.end_s) + exit_note)}</td></tr>")
        ranked = sorted(p.threads, key=lambda t: -cpu_s_by_thread.get((p.proc_id, t.tid), 0.0))
        shown = set(id(t) for t in ranked[:MAX_TREE_THREADS])
        for t in p.threads:
            if id(t) not in shown:
                continue
            rows.append(_thread_row(p, t, thread_facts.get((p.proc_id, t.tid), {}),
                                    cpu_s_by_thread.get((p.proc_id, t.tid))))
        hidden = len(p.threads) - len(shown)
        if hidden > 0:
            rows.append(f'<tr class="more"><td style="padding-left:{1.8 + 1.4 * p.depth:.1f}em"'
                        f' colspan="7">… and {hidden} quieter threads of process {p.pid}'
                        "</td></tr>")
    head = "".join(tag("th", esc(h)) for h in (
        "htop PID", "what it really is", "name / command", "Python", "CPU",
        "where the time went", "alive"))
    summary = (f"<p>{len(model.processes)} process{'es' if len(model.processes) != 1 else ''}"
               f" and {n_threads} threads over the whole run.</p>")
    return (intro + summary + state_legend()
            + f'<table class="tree"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _thread_row(p: ProcessView, t: ThreadView, tf: Mapping[str, Any],
                cpu_s: Optional[float]) -> str:
    pad = f"padding-left:{1.8 + 1.4 * p.depth:.1f}em"
    what = ("main thread of " if t.tid == p.pid else "thread of ") + f"process {p.pid}"
    cpu = f"{cpu_s:.1f} s CPU" if cpu_s is not None else "–"
    return (f'<tr class="thread"><td style="{pad}">{t.tid}</td><td>{esc(what)}</td>'
            f"<td>{esc(t.name)}</td><td></td><td>{esc(cpu)}</td>"
            f"<td>{state_bar(tf.get('state_s') or {})}</td>"
            f"<td>{esc(_lifetime(t.start_s, t.end_s))}</td></tr>")


# -- 7. blocked event loops -------------------------------------------------------------------

def loops_section(diagnosis: Optional[dict[str, Any]], model: ReportModel) -> str:
    if diagnosis is None:
        return '<p class="muted">No diagnosis was made, so event loops were not examined.</p>'
    blocks = diagnosis.get("event_loop_blocks") or []
    if not blocks:
        return ("<p>No asyncio event loop was blocked for 100 ms or more (or none ran: "
                "blocks are found from the sampled Python stacks).</p>")
    names = {(t.pid, t.tid): t.label for t in model.threads}
    rows = []
    for b in sorted(blocks, key=lambda b: -float(b.get("duration_s") or 0))[:MAX_BLOCK_ROWS]:
        where = b.get("frame") or b.get("function") or "?"
        rows.append([
            esc(b.get("pid")), esc(names.get((b.get("pid"), b.get("tid")), b.get("tid"))),
            esc(f"{float(b.get('start_s') or 0):.2f} s"),
            f"<b>{esc(_fmt_s(float(b.get('duration_s') or 0)))}</b>",
            f"<code>{esc(b.get('function') or '?')}</code>",
            f"<code>{esc(where)}</code>", f"<code>{esc(b.get('coroutine') or '')}</code>"])
    more = (f'<p class="note">The {MAX_BLOCK_ROWS} longest of {len(blocks)} blocks.</p>'
            if len(blocks) > MAX_BLOCK_ROWS else "")
    return ("<p>While a loop's thread runs one callback, every other task on that loop waits. "
            "These stretches (outlined in black on the timeline) kept a loop from its "
            "selector for 100 ms or more:</p>"
            + table(["pid", "thread", "from", "blocked for", "function", "where", "task"],
                    rows, cls="blocks") + more)


# -- 8. the run itself ------------------------------------------------------------------------

def run_section(meta: Mapping[str, Any], problems: pd.DataFrame, model: ReportModel,
                interval_s: float, stack_rate_hz: float) -> str:
    command = meta.get("command") or []
    start = meta.get("start_time_unix")
    started = (_dt.datetime.fromtimestamp(float(start)).strftime("%Y-%m-%d %H:%M:%S")
               if isinstance(start, (int, float)) else "?")
    interpreters = meta.get("interpreters") or []
    interp = "; ".join(
        f"{i.get('version', '?')} ({i.get('exe', '?')}), "
        + {"enabled": "with a GIL", "disabled": "free-threaded, no GIL"}.get(
            str(i.get("gil")), "GIL unknown") for i in interpreters) or "no Python process seen"
    stacks = meta.get("stacks") or {}
    if stacks.get("enabled"):
        stack_text = (f"py-spy {stacks.get('py_spy_version', '?')}, "
                      f"{stack_rate_hz:g} Hz, "
                      f"{stacks.get('mode', '?')} mode")
        if stacks.get("gil_rate_hz"):
            stack_text += f"; GIL holder sampled at {stacks['gil_rate_hz']} Hz"
    else:
        stack_text = "not sampled" + (f": {stacks['reason']}" if stacks.get("reason") else "")
    exit_code = meta.get("exit_code")
    pairs: list[tuple[str, str]] = [
        ("command", f"<code>{esc(' '.join(str(c) for c in command))}</code>"),
        ("mode", esc("ran it" if meta.get("mode") == "launch" else
                     f"attached to pid {meta.get('target_pid', '?')}"
                     if meta.get("mode") == "attach" else meta.get("mode", "?"))),
        ("working directory", f"<code>{esc(meta.get('cwd', '?'))}</code>"),
        ("started", esc(started)),
        ("duration", esc(_fmt_s(float(meta.get("duration_s") or 0.0)))),
        ("exit code", esc("–" if exit_code is None else exit_code)),
        ("Python", esc(interp)),
        ("CPU cores", esc(meta.get("cpu_count", "?"))),
        ("sampling", esc(f"/proc every {interval_s:g}"
                         f" s; Python stacks: {stack_text}")),
        ("sampling rounds", esc(f"{meta.get('ticks', '?')}, of which "
                                f"{meta.get('lagged_ticks', 0)} started late")),
        ("complete", esc("yes" if meta.get("complete") else
                         "no: the recorder did not finish (killed?); the data ends early")),
        ("machine", esc(f"{meta.get('hostname', '?')}, {meta.get('platform', '?')}")),
        ("recorded by", esc(f"inspector {meta.get('inspector_version', '?')} on Python "
                            f"{meta.get('recorder_python', '?')}")),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="run">{dl}</dl>' + _problems(problems)


def _problems(problems: pd.DataFrame) -> str:
    if problems.empty:
        return "<h3>What could not be sampled</h3><p>Nothing: every read succeeded.</p>"
    grouped: list[tuple[str, str, int, str, str]] = []
    for (source, kind), g in problems.groupby(["source", "kind"], sort=False, dropna=False):
        pids = sorted({int(p) for p in g["pid"].dropna()})
        pid_text = ", ".join(str(p) for p in pids[:8]) + (" …" if len(pids) > 8 else "")
        details = [str(d) for d in g["detail"].dropna() if str(d)]
        grouped.append((str(source), str(kind), len(g), pid_text, details[0] if details else ""))
    grouped.sort(key=lambda r: -r[2])
    rows = [[esc(s), esc(k), esc(n), esc(p), esc(d)] for s, k, n, p, d in
            grouped[:MAX_PROBLEM_ROWS]]
    return ("<h3>What could not be sampled</h3>"
            + table(["source", "kind", "times", "pids", "first detail"], rows, cls="problems"))


def key_facts(meta: Mapping[str, Any], diagnosis: Optional[dict[str, Any]],
              model: ReportModel, total_cpu_s: Optional[float]) -> dict[str, str]:
    d = diagnosis or {}
    out = {
        "duration": _fmt_s(float(meta.get("duration_s") or 0.0)),
        "processes": str(d.get("process_count", len(model.processes))),
        "threads at peak": str(d.get("peak_threads", sum(len(p.threads)
                                                          for p in model.processes))),
        "htop rows at peak": str(d.get("htop_rows_peak", "?")),
        "CPU cores": str(meta.get("cpu_count", "?")),
    }
    if total_cpu_s is not None:
        duration = float(meta.get("duration_s") or 0.0)
        mean = 100 * total_cpu_s / duration if duration > 0 else 0.0
        out["CPU used (mean)"] = f"{mean:.0f}%"
    return out


def nothing(text: str) -> str:
    return f'<p class="nothing">{esc(text)}</p>'

