"""A cluster that judges itself: a real LocalCluster(processes=True, n_workers=2,
threads_per_worker=2) keeps each worker's recording on its host (record_cluster with
keep_on_workers=True), and `inspector summary/report/compare --dask SCHEDULER NAME` judges them
on the workers and combines their summaries here: the same verdicts and JSON keys as the merged
file of the same recordings, and one line where the cluster cannot answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import turns
from conftest import inspector_cli
from machine import for_the_recording, skip_or_fail

from inspector.analyze.cluster import combine_workers
from inspector.record.dask_kept import read_note
from inspector.recording.merge import Source, merge
from inspector.text.cluster import DETAIL_WORKERS, ClusterText

pytestmark = pytest.mark.timeout(900)

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
TASK_S = 4.0  # each worker runs 2 tasks of this long at once, per map


class KeptCluster:
    def __init__(self, proc: subprocess.Popen[str], address: str, worker_dir: Path) -> None:
        self.proc = proc
        self.address = address
        self.worker_dir = worker_dir

    def kept(self, name: str) -> list[Path]:
        return sorted((self.worker_dir / name).glob("worker-*.sqlite"))

    def set_worker_version(self, version: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"version {version}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "OK"

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return inspector_cli(command, "--dask", self.address, "--worker-dir",
                             str(self.worker_dir), *args, timeout=300)


@pytest.fixture(scope="module")
def kept_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptCluster]:
    try:
        import distributed  # noqa: F401  (the test extra installs it)
    except ImportError:
        skip_or_fail("Dask is not installed: pip install -e '.[test]'")
    worker_dir = tmp_path_factory.mktemp("workers")
    with turns.alone():  # until both maps are recorded: their verdicts are judged
        proc = subprocess.Popen([PY, str(WORKLOADS / "dask_kept.py"), str(worker_dir),
                                 str(TASK_S)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, preexec_fn=for_the_recording())
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()  # the cluster's set-up and both maps: a hang guard below
    assert line.startswith("READY "), f"the cluster script said {line!r}"
    try:
        yield KeptCluster(proc, line.split()[1], worker_dir)
    finally:
        proc.stdin.close()
        proc.wait(120)


@pytest.fixture(scope="module")
def merged_json(kept_cluster: KeptCluster, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Any]:
    """`summary --json` of the merged file of the same kept recordings (merged as record_cluster
    merges: labelled by worker, on the clock measured at collection)."""
    out = tmp_path_factory.mktemp("merged") / "python.sqlite"
    sources = []
    for path in kept_cluster.kept("python"):
        note = read_note(path)
        assert note is not None
        sources.append(Source(path, note.worker, note.clock_offset_s, note.clock_uncertainty_s))
    merge(sources, out)
    done = inspector_cli("summary", "--json", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_each_worker_keeps_its_recording_on_its_host(kept_cluster: KeptCluster) -> None:
    for name in ("python", "numpy"):
        kept = kept_cluster.kept(name)
        assert [p.name for p in kept] == ["worker-0.sqlite", "worker-1.sqlite"]
        for path in kept:
            note = read_note(path)
            assert note is not None and note.worker == path.stem.removeprefix("worker-")
            # the clock was measured at collection: on one machine, tiny
            assert note.clock_uncertainty_s is not None and abs(note.clock_offset_s) < 0.05
            assert (path.stat().st_mode & 0o777) == 0o600
        assert not list((kept_cluster.worker_dir / name).glob("*.log"))  # recorder logs gone


def test_record_dask_keeps_them_on_the_workers_from_outside(kept_cluster: KeptCluster) -> None:
    kept = kept_cluster.kept("cli")
    assert [p.name for p in kept] == ["worker-0.sqlite", "worker-1.sqlite"]
    notes = [read_note(p) for p in kept]
    assert all(n is not None and n.command is None for n in notes)  # it only watched them
    said_ = (kept_cluster.worker_dir / "record-cli.log").read_text()
    assert f"kept on their 1 host(s), each as {kept_cluster.worker_dir / 'cli'}/worker-WORKER" \
        f".sqlite" in said_, said_
    assert f"inspector summary --dask {kept_cluster.address} cli" in said_
    done = kept_cluster.cli("summary", "--json", "cli")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["command"] is None and [w["label"] for w in data["workers"]] == ["0", "1"]
    # the pure-Python tasks ran while it recorded: their threads are in it
    names = [t["name"] or "" for w in data["workers"] for t in w["diagnosis"]["threads"]
             if t["cpu_s"] > 0.2]
    assert sum("Dask-Default-Threads" in n for n in names) >= 2, names


def _verdicts(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(w["label"], w["host"], w["bound"], w["gil_limited"], w["parallel_threads"],
             w["oversubscribed"], w["advice"], w["working_threads"], w["sentence"])
            for w in data["workers"]]


def test_summary_on_the_workers_gives_the_merged_files_verdicts(
        kept_cluster: KeptCluster, merged_json: dict[str, Any]) -> None:
    done = kept_cluster.cli("summary", "--json", "python")
    assert done.returncode == 0, done.stderr
    on_workers = json.loads(done.stdout)
    assert _verdicts(on_workers) == _verdicts(merged_json)
    assert on_workers["verdict"] == merged_json["verdict"]
    assert on_workers["hosts"] == merged_json["hosts"]
    # the JSON contract: the same keys as a merged file's, all the way down to each worker's
    # diagnosis and each thread
    assert set(on_workers) == set(merged_json)
    for ours, theirs in zip(on_workers["workers"], merged_json["workers"]):
        assert set(ours) == set(theirs)
        assert set(ours["diagnosis"]) == set(theirs["diagnosis"])
        assert {t["tid"] for t in ours["diagnosis"]["threads"]} == \
               {t["tid"] for t in theirs["diagnosis"]["threads"]}
    # where it ran and what it took is said on stderr (stdout is the contract)
    assert "analysed on 2 workers: 2 recordings" in done.stderr
    assert "s of the workers' CPU" in done.stderr


def test_summary_text_on_the_workers_leads_with_the_verdict_and_its_cost(
        kept_cluster: KeptCluster, merged_json: dict[str, Any]) -> None:
    done = kept_cluster.cli("summary", "python")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "analysed on 2 workers" in out.splitlines()[3]
    assert f"VERDICT: {merged_json['verdict']['evidence'][0]}" in out
    assert out.index("WORKER 0:") < out.index("WORKER 1:")


def test_report_on_the_workers_answers_with_the_clusters_verdict(
        kept_cluster: KeptCluster, merged_json: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "python.html"
    done = kept_cluster.cli("report", "python", "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert merged_json["verdict"]["evidence"][0] in html
    assert "worker 0:" in html and "worker 1:" in html
    assert "stayed on the workers" in html


def test_compare_on_the_workers_takes_two_runs_of_one_script_as_one_row(
        kept_cluster: KeptCluster) -> None:
    # both were recorded by record_cluster in one script: runs of one command, one row (as
    # compare makes of the merged files of that script), its recordings named
    done = kept_cluster.cli("compare", "--json", "python", "numpy")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert row["runs"] == 2 and sorted(row["recordings"]) == ["numpy", "python"]
    assert row["verdict"]["evidence"][0].startswith("cluster: 2 of 2 workers on 1 host")
    assert row["cpu_s"] > 0 and row["threads"] >= 4
    assert "python: analysed on 2 workers" in done.stderr
    assert "numpy: analysed on 2 workers" in done.stderr


def test_a_worker_of_another_inspector_version_is_one_line(kept_cluster: KeptCluster) -> None:
    import inspector

    kept_cluster.set_worker_version("9.9.9")
    try:
        done = kept_cluster.cli("summary", "python")
    finally:
        kept_cluster.set_worker_version(inspector.__version__)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"inspector {inspector.__version__} here but 9.9.9 on worker tcp://" in done.stderr
    assert "(and 1 more)" in done.stderr


@pytest.mark.parametrize("command, args, status, words", [
    ("summary", ["--dask", "tcp://127.0.0.1:1", "python"], 1, "cannot reach the Dask scheduler"),
    ("summary", ["--worker-dir", "/tmp", "python"], 2, "--worker-dir goes with --dask"),
    ("compare", ["--dask", "tcp://127.0.0.1:1", "a/b", "c"], 1, "cannot name a recording"),
    ("record", ["--dask", "tcp://127.0.0.1:1", "--duration", "1", "--worker-dir", "/tmp"], 2,
     "--worker-dir goes with --keep-on-workers"),
    ("record", ["--dask", "tcp://127.0.0.1:1", "--duration", "1", "--keep-on-workers",
                "--report"], 2, "inspector report --dask SCHEDULER NAME"),
    ("record", ["--keep-on-workers", "--", "true"], 2, "go with --dask"),
    ("record", ["--dask", "tcp://127.0.0.1:1", "--duration", "1", "--keep-on-workers", "-o",
                "../up"], 1, "cannot name a recording"),
])
def test_dask_bad_input_is_one_line(command: str, args: list[str], status: int,
                                    words: str) -> None:
    done = inspector_cli(command, *args, timeout=120)
    assert done.returncode == status
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_name_no_worker_keeps_is_one_line(kept_cluster: KeptCluster) -> None:
    done = kept_cluster.cli("summary", "nosuch")
    assert done.returncode == 1
    assert "no worker of the cluster keeps a recording named 'nosuch'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_big_cluster_is_told_by_hosts_workers_and_its_busiest_threads(
        kept_cluster: KeptCluster) -> None:
    from inspector.record.dask_analysis import judge_kept
    from inspector.report.page import render_cluster_page

    judged = [judge_kept(str(p), p.stem) for p in kept_cluster.kept("python")]
    summaries = [j.summary for j in judged if j.summary is not None]
    assert len(summaries) == 2
    # the two real workers' summaries as if from 6 hosts of 2 workers each
    many = [replace(s, verdict=replace(s.verdict, index=2 * h + i, host=f"host{h:02d}",
                                       label=f"{h}-{s.verdict.label}"))
            for h in range(6) for i, s in enumerate(summaries)]
    assert len(many) > DETAIL_WORKERS
    cd = combine_workers(many)
    text = ClusterText("twelve").render(cd)
    assert "HOSTS (6):" in text and "WORKERS (12):" in text
    assert text.index("HOSTS (6):") < text.index("WORKERS (12):") < text.index("BUSIEST THREADS")
    every = sum(len(w.diagnosis.threads) for w in cd.workers)
    assert f"BUSIEST THREADS (12 of {every};" in text
    busiest = text.split("BUSIEST THREADS")[1]
    assert busiest.count("Dask-Default-Threads") >= 8  # the task threads did the work
    assert "(parent " not in text  # no process-by-process listing
    assert text.count("WORKER ") == 0 and text.count("worker 5-1:") == 1
    html = render_cluster_page(cd, "twelve")
    assert "6 hosts</h3>" in html and "12 workers</h3>" in html
    assert f"The 12 busiest of {every} threads" in html


def test_each_kept_file_is_judged_once_on_its_host_by_its_worker_or_a_neighbour() -> None:
    pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[test]'")
    from inspector.record.dask_analysis import assign_kept
    from inspector.record.dask_kept import KeptFile

    def on(host: str, *workers: str) -> list[KeptFile]:
        return [KeptFile(host, f"/k/run/worker-{w}.sqlite", w, 1) for w in workers]

    # host a: workers 0 and 1 both list a's files, one of them left by worker 9 (gone);
    # host b: worker 2 and the file of worker 0 there (a name reused across hosts)
    listing = {"tcp://a:1": ("a", on("a", "0", "1", "9")),
               "tcp://a:2": ("a", on("a", "0", "1", "9")),
               "tcp://b:1": ("b", on("b", "2", "0"))}
    names = {"tcp://a:1": "0", "tcp://a:2": "1", "tcp://b:1": "2"}
    work = {(f.host, f.worker): address for address, f in assign_kept(listing, names)}
    assert len(work) == 5  # each file once, though two workers listed host a's
    assert work[("a", "0")] == "tcp://a:1" and work[("a", "1")] == "tcp://a:2"
    assert work[("a", "9")] in ("tcp://a:1", "tcp://a:2")  # its worker left: a neighbour
    assert work[("b", "2")] == "tcp://b:1"
    assert work[("b", "0")] == "tcp://b:1"  # worker 0 is on host a: not the one to read b's
