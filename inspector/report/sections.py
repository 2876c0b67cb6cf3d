"""The report's HTML sections that are words and tables rather than charts: the verdict,
the process/thread tree, blocked event loops and the run itself. Every value that came
from the target passes through `esc`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Optional

import pandas as pd

from inspector.analyze import Diagnosis, ThreadFacts
from inspector.analyze.vocabulary import FLAGS, STATES, THREAD_STATES, advice_of, bound_term
from inspector.recording import Meta, RecorderCpu
from inspector.report.markup import esc, table, tag
from inspector.report.model import STATE_COLORS, ProcessView, ReportModel, ThreadView
from inspector.text.evidence import basis_text, cores_sentence, said, say
from inspector.text.summary import prediction_sentence
from inspector.text.terminal import seconds_text

# Threads listed per process in the tree; the quieter rest are counted in one line.
MAX_TREE_THREADS = 16
# Longer command lines are cut in the tree (the full one is in the run section).
MAX_COMMAND_CHARS = 160
# Lines of the problems table; the rest are counted.
MAX_PROBLEM_ROWS = 30
# Blocked event loops listed; the rest are counted.
MAX_BLOCK_ROWS = 50


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
            tip.append(f"{THREAD_STATES[s].word} {share:.0f}%")
    return f'<div class="bar" title="{esc(", ".join(tip))}">{"".join(parts)}</div>'


def state_legend() -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{STATE_COLORS[s]}"></i>{esc(THREAD_STATES[s].word)}</span>'
        for s in STATES) + "</div>"


# -- 1. the verdict ---------------------------------------------------------------------------

def verdict_section(diagnosis: Optional[Diagnosis], facts: Mapping[str, str],
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
    v = diagnosis.verdict
    bound = bound_term(v.bound).phrase
    flags = [term.phrase for flag, term in FLAGS.items() if getattr(v, flag)]
    headline = bound[:1].upper() + bound[1:] + (": " + ", ".join(flags) if flags else "")
    advice = advice_of(v.advice)
    evidence = "".join(tag("li", esc(e)) for e in said(v.evidence))
    notes = "".join(tag("li", esc(n)) for n in said(diagnosis.notes))
    badge_cls = f"advice advice-{esc(v.advice)}"
    return (
        '<div class="verdict">'
        f"<h2>{esc(headline)}</h2>"
        f'<div class="{badge_cls}"><b>{esc(advice.title)}</b>'
        f"<span>{esc(advice.sentence)}</span></div>"
        f'<p class="cores">{esc(cores_sentence(diagnosis.cores))}.</p>'
        f'<div class="tiles">{tiles}</div>'
        + _phases(diagnosis) + _predictions(diagnosis)
        + f"<h3>Evidence</h3><ul class=\"evidence\">{evidence}</ul>"
        + (f'<h3>Notes</h3><ul class="notes">{notes}</ul>' if notes else "")
        + "</div>")


def _phases(d: Diagnosis) -> str:
    """The run's phases when its behaviour changed: a table, the costliest marked."""
    if len(d.phases) < 2:
        return ""
    rows = "".join(
        tag("tr", tag("td", esc(f"{ph.start_s:.1f}–{ph.end_s:.1f} s"))
            + tag("td", esc(ph.kind)) + tag("td", esc(f"{ph.share:.0%}"), class_="n")
            + tag("td", esc(f"{ph.cores_mean:.2f}"), class_="n")
            + tag("td", "the verdict above" if ph == d.verdict_phase else ""))
        for ph in d.phases)
    head = "".join(tag("th", h) for h in ("when", "phase", "of the run", "cores at once", ""))
    return ("<h3>Phases</h3><p>The program's behaviour changed during the run; the verdict "
            "and advice address the phase that cost the most wall time.</p>"
            + tag("table", tag("thead", tag("tr", head)) + tag("tbody", rows),
                  class_="phases"))


def _predictions(d: Diagnosis) -> str:
    """Predicted speed-ups of the same work under each model, each with its basis."""
    from inspector.analyze.predict import Prediction

    if not d.predicted:
        return ""
    items = []
    for model, p in d.predicted.items():
        if isinstance(p, Prediction):
            items.append(tag("li", tag("b", esc(prediction_sentence(p))) + " — "
                             + esc(basis_text(p.basis))))
        else:
            items.append(tag("li", tag("b", esc(model)) + ": no estimate — " + esc(p)))
    machine = (f'<p class="note">Machine: {esc(say(d.machine))}.</p>'
               if d.machine is not None else "")
    return ("<h3>Predicted speed-up over this run</h3><ul class=\"predicted\">"
            + "".join(items) + "</ul>" + machine)


# -- 2. processes and threads -----------------------------------------------------------------

def _python_cell(p: ProcessView) -> str:
    if not p.is_python:
        return '<span class="muted">no</span>'
    gil = {"enabled": "with GIL", "disabled": "free-threaded (no GIL)"}.get(
        p.python_gil or "", "GIL unknown")
    return esc(f"{p.python_version or '?'}, {gil}")


def _lifetime(start: Optional[float], end: Optional[float]) -> str:
    return f"{seconds_text(start or 0.0) if start is not None else '?'} – {seconds_text(end)}"


def tree_section(model: ReportModel, diagnosis: Optional[Diagnosis],
                 cpu_s_by_thread: Mapping[tuple[int, int], float]) -> str:
    proc_facts = {p.proc_id: p for p in diagnosis.processes} if diagnosis else {}
    thread_facts = ({(t.proc_id, t.tid): t for t in diagnosis.threads} if diagnosis else {})
    n_threads = sum(len(p.threads) for p in model.processes)
    intro = ""
    if diagnosis and diagnosis.peak_t_s is not None:
        peak_rows = diagnosis.htop_rows_peak
        at = diagnosis.peak_t_s
        n_peak = len(diagnosis.peak_processes)
        intro = (
            f"<p class=\"lead\">At its busiest (t = {at:.1f} s)"
            f", htop (default settings: one row per thread) would have shown "
            f"<b>{peak_rows} row{'s' if peak_rows != 1 else ''}</b>. They were "
            f"<b>{n_peak} process{'es' if n_peak != 1 else ''}</b> with "
            f"<b>{diagnosis.peak_threads} threads</b> in all. A thread's row "
            "in htop shows its thread id in the PID column and its process's command; only "
            "separate processes can run Python code on separate cores at once (with a GIL)."
            "</p>")
    sampled = bool(cpu_s_by_thread)
    rows = []
    for p in model.processes:
        pf = proc_facts.get(p.proc_id)
        pad = f"padding-left:{0.4 + 1.4 * p.depth:.1f}em"
        parent = "" if p.depth == 0 else f" (child of {p.ppid})"
        role = "the command you ran" if p.is_target else "process" + parent
        cmd = " ".join(p.cmdline) or p.name
        short = cmd if len(cmd) <= MAX_COMMAND_CHARS else cmd[:MAX_COMMAND_CHARS] + "…"
        cpu = (f"{pf.cpu_percent_mean:.0f}% mean, {pf.cpu_percent_peak:.0f}% peak"
               if pf is not None and sampled else "–")
        exit_note = "" if p.exit_code is None else f" · exit {p.exit_code}"
        rows.append(
            f'<tr class="proc"><td style="{pad}"><span class="dot" '
            f'style="background:{esc(p.color)}"></span><b>{p.pid}</b></td>'
            f"<td>{esc(role)}</td>"
            f'<td><code title="{esc(cmd)}">{esc(short)}</code></td>'
            f"<td>{_python_cell(p)}</td><td>{esc(cpu)}</td>"
            f"<td>{state_bar(pf.state_s if pf is not None else {})}</td>"
            f"<td>{esc(_lifetime(p.start_s, p.end_s) + exit_note)}</td></tr>")
        ranked = sorted(p.threads, key=lambda t: -cpu_s_by_thread.get((p.proc_id, t.tid), 0.0))
        shown = set(id(t) for t in ranked[:MAX_TREE_THREADS])
        for t in p.threads:
            if id(t) not in shown:
                continue
            rows.append(_thread_row(p, t, thread_facts.get((p.proc_id, t.tid)),
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


def _thread_row(p: ProcessView, t: ThreadView, tf: Optional[ThreadFacts],
                cpu_s: Optional[float]) -> str:
    pad = f"padding-left:{1.8 + 1.4 * p.depth:.1f}em"
    what = ("main thread of " if t.tid == p.pid else "thread of ") + f"process {p.pid}"
    cpu = f"{cpu_s:.1f} s CPU" if cpu_s is not None else "–"
    return (f'<tr class="thread"><td style="{pad}">{t.tid}</td><td>{esc(what)}</td>'
            f"<td>{esc(t.name)}</td><td></td><td>{esc(cpu)}</td>"
            f"<td>{state_bar(tf.state_s if tf is not None else {})}</td>"
            f"<td>{esc(_lifetime(t.start_s, t.end_s))}</td></tr>")


# -- 7. blocked event loops -------------------------------------------------------------------

def loops_section(diagnosis: Optional[Diagnosis], model: ReportModel) -> str:
    if diagnosis is None:
        return '<p class="muted">No diagnosis was made, so event loops were not examined.</p>'
    blocks = diagnosis.event_loop_blocks
    if not blocks:
        return ("<p>No asyncio event loop was blocked for 100 ms or more (or none ran: "
                "blocks are found from the sampled Python stacks).</p>")
    names = {(t.pid, t.tid): t.label for t in model.threads}
    rows = []
    for b in sorted(blocks, key=lambda b: -b.duration_s)[:MAX_BLOCK_ROWS]:
        where = b.frame or b.function or "?"
        rows.append([
            esc(b.pid), esc(names.get((b.pid, b.tid), b.tid)), esc(f"{b.start_s:.2f} s"),
            f"<b>{esc(seconds_text(b.duration_s))}</b>", f"<code>{esc(b.function or '?')}</code>",
            f"<code>{esc(where)}</code>", f"<code>{esc(b.coroutine or '')}</code>"])
    more = (f'<p class="note">The {MAX_BLOCK_ROWS} longest of {len(blocks)} blocks.</p>'
            if len(blocks) > MAX_BLOCK_ROWS else "")
    return ("<p>While a loop's thread runs one callback, every other task on that loop waits. "
            "These stretches (outlined in black on the timeline) kept a loop from its "
            "selector for 100 ms or more:</p>"
            + table(["pid", "thread", "from", "blocked for", "function", "where", "task"],
                    rows, cls="blocks") + more)


# -- 8. the run itself ------------------------------------------------------------------------

def run_section(meta: Meta, problems: pd.DataFrame, model: ReportModel,
                interval_s: float, stack_rate_hz: float,
                recording_path: str | None = None) -> str:
    start = meta.start_time_unix
    started = (_dt.datetime.fromtimestamp(float(start)).strftime("%Y-%m-%d %H:%M:%S")
               if start is not None else "?")
    interp = "; ".join(
        f"{_known(i.version)} ({_known(i.exe)}), "
        + {"enabled": "with a GIL", "disabled": "free-threaded, no GIL"}.get(
            str(i.gil), "GIL unknown") for i in meta.interpreters) or "no Python process seen"
    stacks = meta.stacks
    if stacks.enabled:
        stack_text = (f"py-spy {_known(stacks.py_spy_version)}, "
                      f"{stack_rate_hz:g} Hz, "
                      f"{_known(stacks.mode)} mode")
        if stacks.gil_rate_hz:
            stack_text += f"; GIL holder sampled at {stacks.gil_rate_hz} Hz"
    else:
        stack_text = "not sampled" + (f": {stacks.reason}" if stacks.reason else "")
    exit_code = meta.exit_code
    pairs: list[tuple[str, str]] = [
        ("command", f"<code>{esc(' '.join(meta.command))}</code>"),
        ("mode", esc("ran it" if meta.mode == "launch" else
                     f"attached to pid {_known(meta.target_pid)}"
                     if meta.mode == "attach" else _known(meta.mode))),
        ("working directory", f"<code>{esc(_known(meta.cwd))}</code>"),
        ("started", esc(started)),
        ("duration", esc(seconds_text(float(meta.duration_s)))),
        ("exit code", esc("–" if exit_code is None else exit_code)),
        ("Python", esc(interp)),
        ("CPU cores", esc(_known(meta.cpu_count))),
        ("sampling", esc(f"{_SAMPLED_BY.get(str(meta.backend), '/proc')} every "
                         f"{interval_s:g} s; Python stacks: {stack_text}")),
        ("sampling rounds", esc(f"{_known(meta.ticks)}, of which "
                                f"{_known(meta.lagged_ticks, 0)} started late")),
        ("recorder's own CPU", esc(_recorder_cpu_text(meta.recorder_cpu))),
        ("complete", esc("yes" if meta.complete else
                         "no: the recorder did not finish (killed?); the data ends early")),
        ("machine", esc(f"{_known(meta.hostname)}, {_known(meta.platform)}")),
        ("recorded by", esc(f"inspector {_known(meta.inspector_version)} on Python "
                            f"{_known(meta.recorder_python)}")),
    ]
    if recording_path is not None:
        pairs.append(("exports", _export_links(recording_path)))
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="run">{dl}</dl>' + _problems(problems)


def _known(value: Any, unknown: Any = "?") -> Any:
    """A meta value, or what to say where the recording does not say."""
    return unknown if value is None else value


def _recorder_cpu_text(cpu: Optional[RecorderCpu]) -> str:
    """meta.recorder_cpu as a sentence (an older file has none; a damaged one, None)."""
    if cpu is None or cpu.mean_cores is None:
        return "not measured (an older recording)"
    own, spy = cpu.own_cores, cpu.py_spy_cores
    parts = (f" (itself {own:.1%}, py-spy {spy:.1%})"
             if own is not None and spy is not None else "")
    return f"{cpu.mean_cores:.1%} of one core on average{parts}"


# meta.backend -> how threads were sampled (an older file has none: /proc)
_SAMPLED_BY = {
    "procfs": "/proc",
    "psutil": "psutil (no /proc here, or INSPECTOR_BACKEND=psutil): each thread's CPU only, so "
              "a thread is on a CPU or not and its waits are 'other' (the GIL, locks, I/O and "
              "sleep cannot be told apart)",
}

# Where each export opens (inspector export's formats; docs/export.md).
EXPORT_VIEWERS = {"perfetto": ("ui.perfetto.dev", "https://ui.perfetto.dev"),
                  "speedscope": ("speedscope.app", "https://www.speedscope.app"),
                  "pprof": ("go tool pprof, Pyroscope, Grafana, Parca", None)}


def _export_links(recording_path: str) -> str:
    """Each export's file beside the recording (linked: it is there once written) with the
    command that writes it and the viewer that opens it."""
    import os.path
    import urllib.parse

    from inspector.export import FORMATS

    recording = os.path.basename(recording_path)
    stem = os.path.splitext(recording)[0]
    items = []
    for fmt, ending in FORMATS.items():
        name = stem + ending
        viewer, url = EXPORT_VIEWERS.get(fmt, (fmt, None))
        opens = f'<a href="{esc(url)}">{esc(viewer)}</a>' if url else esc(viewer)
        items.append(
            f'<li><a href="{esc(urllib.parse.quote(name))}">{esc(name)}</a> for {opens}: '
            f"<code>inspector export {esc(recording)} -f {esc(fmt)}</code></li>")
    return ('<ul class="exports">' + "".join(items) + "</ul>"
            "<small>beside the recording; each is written by the command shown</small>")


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


def key_facts(meta: Meta, diagnosis: Optional[Diagnosis],
              model: ReportModel, total_cpu_s: Optional[float]) -> dict[str, str]:
    d = diagnosis
    out = {
        "duration": seconds_text(float(meta.duration_s)),
        "processes": str(d.process_count if d else len(model.processes)),
        "threads at peak": str(d.peak_threads if d else sum(len(p.threads)
                                                            for p in model.processes)),
        "htop rows at peak": str(d.htop_rows_peak if d else "?"),
        "CPU cores": str(_known(meta.cpu_count)),
    }
    if d is not None and d.usable_cores and d.usable_cores < d.cpu_count:
        out["usable by it"] = f"{d.usable_cores:g} ({d.cores_limited_by or 'limited'})"
    if total_cpu_s is not None:
        duration = float(meta.duration_s)
        mean = 100 * total_cpu_s / duration if duration > 0 else 0.0
        out["CPU used (mean)"] = f"{mean:.0f}%"
    return out


def nothing(text: str) -> str:
    return f'<p class="nothing">{esc(text)}</p>'

