"""The JSON contract of `summary --json`, `compare --json` and the demo's rows: the analysis's
models as plain data, their evidence worded by text/evidence.py. Keys are only ever added.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from inspector.analyze.cluster import ClusterDiagnosis, WorkerVerdict
from inspector.analyze.comparison import ComparedRun
from inspector.analyze.evidence import MachineBasis
from inspector.analyze.model import Diagnosis, Verdict
from inspector.analyze.predict import MODELS, Prediction
from inspector.text.base import TextRenderer
from inspector.text.evidence import basis_text, cores_sentence, said, say, worker_sentence


def rounded(x: float | None, digits: int = 3) -> float | None:
    """A number as the JSON gives it (None stays None)."""
    return None if x is None else round(x, digits)


def verdict_data(v: Verdict) -> dict[str, Any]:
    return {"bound": v.bound, "gil_limited": v.gil_limited,
            "parallel_threads": v.parallel_threads, "oversubscribed": v.oversubscribed,
            "advice": v.advice, "evidence": said(v.evidence)}


def prediction_data(p: Prediction) -> dict[str, Any]:
    return {"model": p.model, "speedup": round(p.speedup, 2), "low": round(p.low, 2),
            "high": round(p.high, 2), "workers": p.workers, "basis": basis_text(p.basis)}


def diagnosis_data(d: Diagnosis) -> dict[str, Any]:
    return {
        "command": list(d.command),
        "exit_code": d.exit_code,
        "duration_s": d.duration_s,
        "cpu_count": d.cpu_count,
        "process_count": d.process_count,
        "peak_threads": d.peak_threads,
        "htop_rows_peak": d.htop_rows_peak,
        "processes": [p.to_dict() for p in d.processes],
        "threads": [t.to_dict() for t in d.threads],
        "verdict": verdict_data(d.verdict),
        "event_loop_blocks": [b.to_dict() for b in d.event_loop_blocks],
        "peak_t_s": d.peak_t_s,
        "peak_processes": [
            {**asdict(p), "cmdline": list(p.cmdline), "thread_names": list(p.thread_names)}
            for p in d.peak_processes],
        "intervals": d.intervals,
        "stacks_enabled": d.stacks_enabled,
        "notes": said(d.notes),
        "usable_cores": d.usable_cores,
        "cores_limited_by": d.cores_limited_by,
        "cores": cores_sentence(d.cores),
        "wall": d.wall.to_dict() if d.wall is not None else None,
        "phases": [ph.to_dict() for ph in d.phases],
        "verdict_phase": d.verdict_phase.to_dict() if d.verdict_phase is not None else None,
        "lock_contention": (d.lock_contention.to_dict()
                            if d.lock_contention is not None else None),
        "loop_starved": [b.to_dict() for b in d.loop_starved],
        "predicted": {m: (prediction_data(p) if isinstance(p, Prediction)
                          else {"speedup": None, "reason": p})
                      for m, p in d.predicted.items()},
        "recorder_cores": rounded(d.recorder_cores),
        "other_cores": rounded(d.other_cores),
        "gil_waits_by_address_share": rounded(d.gil_waits_by_address_share),
        "machine": machine_data(d.machine) if d.machine is not None else None,
    }


def machine_data(m: MachineBasis) -> dict[str, Any]:
    """What the predictions took from the machine: measured beside the recording, or assumed."""
    c = m.capacity
    return {"measured": c.measured, "processes": c.processes,
            "process_gain": {"low": round(c.process_gain.low, 3),
                             "mid": round(c.process_gain.mid, 3),
                             "high": round(c.process_gain.high, 3)},
            "gil_cost": {"low": round(c.gil_cost.low, 3), "mid": round(c.gil_cost.mid, 3),
                         "high": round(c.gil_cost.high, 3)},
            "fork_start_s": round(c.fork_start_s, 4), "spawn_start_s": round(c.spawn_start_s, 4),
            "thread_start_s": round(c.thread_start_s, 6),
            "io_concurrency": m.io_concurrency, "io_concurrency_own": m.io_concurrency_own,
            "io_concurrency_asked": m.asked, "fork_start_is_pool": c.pooled,
            "basis": say(m)}


def worker_data(w: WorkerVerdict) -> dict[str, Any]:
    return {"index": w.index, "label": w.label, "host": w.host,
            "pids": list(w.pids), "working_threads": w.working_threads,
            "busy_cores": round(w.busy_cores, 3), "cpu_s": round(w.cpu_s, 3),
            "bound": w.bound, "gil_limited": w.gil_limited,
            "parallel_threads": w.parallel_threads,
            "oversubscribed": w.oversubscribed, "advice": w.advice,
            "sentence": worker_sentence(w), "clock_offset_s": w.clock_offset_s,
            "clock_uncertainty_s": w.clock_uncertainty_s,
            "diagnosis": diagnosis_data(w.diagnosis)}


# A merged recording's predictions are its workers' own: each worker's work would change
# model on its own.
CLUSTER_PREDICTION = "a cluster is predicted worker by worker: see workers[].diagnosis.predicted"


def cluster_data(cd: ClusterDiagnosis) -> dict[str, Any]:
    """A merged recording answers the keys one run's does (the cluster's verdict under
    `verdict`; what is one run's alone, such as its phases, empty or null), then `hosts`,
    `workers` and `clock`. Counts add the workers'; `peak_threads` is the sum of each
    worker's peak (their peaks need not have coincided)."""
    diags = [w.diagnosis for w in cd.workers]
    cpu = sum(h.cpu_count for h in cd.hosts)
    usable = sum(min(float(h.cpu_count), max((w.diagnosis.usable_cores for w in h.workers),
                                             default=float(h.cpu_count))) for h in cd.hosts)
    notes = list(dict.fromkeys(n for d in diags for n in said(d.notes)))
    peak = sum(d.peak_threads for d in diags)
    return {
        "command": list(cd.command) if cd.command is not None else None,
        "exit_code": cd.exit_code,
        "duration_s": round(cd.duration_s, 3),
        "cpu_count": cpu,
        "process_count": sum(d.process_count for d in diags),
        "peak_threads": peak,
        "htop_rows_peak": peak,
        "processes": [p.to_dict() for d in diags for p in d.processes],
        "threads": [t.to_dict() for d in diags for t in d.threads],
        "verdict": verdict_data(cd.verdict),
        "event_loop_blocks": [b.to_dict() for d in diags for b in d.event_loop_blocks],
        "peak_t_s": None,
        "peak_processes": [],
        "intervals": sum(d.intervals for d in diags),
        "stacks_enabled": any(d.stacks_enabled for d in diags),
        "notes": notes,
        "usable_cores": round(usable, 3),
        "cores_limited_by": None,
        "cores": (f"{cpu} cores on {len(cd.hosts)} host{'s' if len(cd.hosts) != 1 else ''}, "
                  f"{usable:g} usable by the workers"),
        "wall": None,
        "phases": [],
        "verdict_phase": None,
        "lock_contention": None,
        "loop_starved": [b.to_dict() for d in diags for b in d.loop_starved],
        "predicted": {m: {"speedup": None, "reason": CLUSTER_PREDICTION}
                      for m in MODELS},
        "recorder_cores": None,
        "other_cores": None,
        "gil_waits_by_address_share": None,
        "hosts": [{"host": h.host, "cpu_count": h.cpu_count,
                   "workers": [w.label for w in h.workers]} for h in cd.hosts],
        "workers": [worker_data(w) for w in cd.workers],
        "clock": say(cd.clocks),
    }


def compared_data(row: ComparedRun) -> dict[str, Any]:
    """A row of `compare --json` and the demo's JSON."""
    f = row.facts
    return {
        "label": f.label, "job": f.job, "variant": f.variant, "recording": str(f.path),
        "command": f.command, "wall_s": round(row.wall_s, 3),
        "speedup": round(row.speedup, 3), "baseline": row.baseline,
        "cpu_percent": round(row.cpu_percent, 1), "cpu_s": round(row.cpu_s, 3),
        "processes": f.processes, "threads": f.threads, "rss_peak_bytes": f.rss_peak_bytes,
        "exit_code": f.exit_code, "verdict": verdict_data(f.verdict),
        "runs": len(row.runs),
        "wall_s_runs": [round(r.wall_s, 3) for r in row.runs],
        "wall_s_min": round(row.wall_s_min, 3), "wall_s_max": round(row.wall_s_max, 3),
        "speedup_low": round(row.speedup_low, 3),
        "speedup_high": round(row.speedup_high, 3),
        "within_noise": row.within_noise,
        "predicted_speedup": rounded(row.predicted_speedup),
        "predicted_low": rounded(row.predicted_low),
        "predicted_high": rounded(row.predicted_high),
        "predicted_basis": (basis_text(row.predicted_basis)
                            if row.predicted_basis is not None else None),
        "predicted_machine": (say(row.predicted_machine)
                              if row.predicted_machine is not None else None),
        # each recording once: the demo times runs it does not record, each standing for
        # its variant's recording
        "recordings": list(dict.fromkeys(str(r.path) for r in row.runs)),
        "exit_codes": [r.exit_code for r in row.runs],
        "foreign_load_runs": [rounded(r.foreign_load) for r in row.runs],
        "busy_runs": row.busy_runs,
    }


class JsonRenderer(TextRenderer[Any]):
    """Any model this module turns into data, as indented JSON."""

    def __init__(self, data: Any) -> None:
        self.data = data  # model -> plain data

    def render(self, model: Any) -> str:
        return json.dumps(self.data(model), indent=2) + "\n"

    def lines(self, model: Any) -> list[str]:
        return self.render(model).splitlines()


DIAGNOSIS_JSON = JsonRenderer(diagnosis_data)
CLUSTER_JSON = JsonRenderer(cluster_data)
