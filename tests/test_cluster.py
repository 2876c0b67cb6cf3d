"""Recording a Dask cluster: one real LocalCluster(processes=True, n_workers=2,
threads_per_worker=2) for the module, recorded every way inspector.record.dask records one
(tests/workloads/dask_cluster.py). Through record_cluster's worker plugin, the recordings
brought back, merged on one clock and judged per worker; kept on the workers
(keep_on_workers=True) and judged there by `inspector summary/report/compare --dask SCHEDULER
NAME`, which combine the workers' summaries here: the same verdicts and JSON keys as the merged
file of the same recordings; and by `inspector record --dask` from outside, both ways."""

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
from conftest import inspector_cli, inspector_clis
from in_process import inspector_here
from machine import cores_left, for_the_recording, judged_on, skip_or_fail

import inspector
from inspector.analyze.cluster import ClusterDiagnosis, combine_workers, diagnose_cluster
from inspector.record.dask_kept import read_note
from inspector.recording.merge import Source, hosts_of, is_merged, merge, parts
from inspector.text.cluster import DETAIL_WORKERS, ClusterText
from inspector.text.evidence import said, say, worker_sentence

# The cluster fixture is set up by whichever test runs first (~40 s quiet, ~3 min loaded).
pytestmark = pytest.mark.timeout(900)

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
TASK_S = 4.0  # each worker runs 2 tasks of this long at once, per map whose verdict is judged
# The same for the maps kept on the workers (their verdicts are compared with their merged
# file's, not judged) and for the recordings from outside (only who worked is read from them)
SHORT_S = 1.0


class Cluster:
    """The script's cluster, up until the module ends, and what it recorded in `folder`."""

    def __init__(self, proc: subprocess.Popen[str], address: str, folder: Path) -> None:
        self.proc = proc
        self.address = address
        self.folder = folder
        self.worker_dir = folder / "workers"
        self.python = inspector.load(folder / "python.sqlite")
        self.numpy = inspector.load(folder / "numpy.sqlite")
        self.cli = inspector.load(folder / "cli.sqlite")
        self.python_verdict: ClusterDiagnosis = diagnose_cluster(self.python)
        self.numpy_verdict: ClusterDiagnosis = diagnose_cluster(self.numpy)
        # Each worker's GIL ceiling is one core, and the other worker holds the other: what
        # other programs took beyond that is read from the recording itself.
        self.python_had_cores = judged_on(
            "the pure-Python map's workers",
            min(cores_left(w.diagnosis) for w in self.python_verdict.workers), 1)

    def kept(self, name: str) -> list[Path]:
        return sorted((self.worker_dir / name).glob("worker-*.sqlite"))

    def set_worker_version(self, version: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"version {version}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "OK"

    def by_cli(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m inspector COMMAND --dask SCHEDULER --worker-dir DIR ARGS`."""
        return inspector_cli(command, *self._on_workers(args), timeout=300)

    def here(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The same, by the CLI's main() in this process (tests/in_process.py)."""
        return inspector_here(command, *self._on_workers(args))

    def _on_workers(self, args: tuple[str, ...]) -> list[str]:
        return ["--dask", self.address, "--worker-dir", str(self.worker_dir), *args]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        import distributed  # noqa: F401  (the test extra installs it)
    except ImportError:
        skip_or_fail("Dask is not installed: pip install -e '.[test]'")
    folder = tmp_path_factory.mktemp("cluster")
    with open(folder / "stderr", "w+") as stderr:
        with turns.alone():  # until every map is recorded: the first two's verdicts are judged
            proc = subprocess.Popen([PY, str(WORKLOADS / "dask_cluster.py"), str(folder),
                                     str(TASK_S), str(SHORT_S)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True,
                                    preexec_fn=for_the_recording())
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()  # every recording made (the module's timeout guards)
        if not line.startswith("READY "):
            proc.kill()
            proc.wait()
            stderr.seek(0)
            pytest.fail(f"the cluster script said {line!r}: {stderr.read()[-3000:]}")
        try:
            yield Cluster(proc, line.split()[1], folder)
        finally:
            proc.stdin.close()
            proc.wait(120)


@pytest.fixture(scope="module")
def merged_json(cluster: Cluster) -> dict[str, Any]:
    """`summary --json` of the merged file of the pure-Python map's kept recordings (merged
    as record_cluster merges: labelled by worker, on the clock measured at collection)."""
    out = cluster.folder / "kept-python.sqlite"
    sources = []
    for path in cluster.kept("python"):
        note = read_note(path)
        assert note is not None
        sources.append(Source(path, note.worker, note.clock_offset_s, note.clock_uncertainty_s))
    merge(sources, out)
    done = inspector_here("summary", "--json", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# -- brought back and merged -----------------------------------------------------------------

def test_every_worker_is_recorded_and_merged_with_its_host(cluster: Cluster) -> None:
    for rec in (cluster.python, cluster.numpy, cluster.cli):
        assert is_merged(rec)
        ps = parts(rec)
        assert [p.label for p in ps] == ["0", "1"]  # LocalCluster's worker names
        targets = rec.processes[rec.processes["is_target"]]
        assert len(targets) == 2 and targets["pid"].nunique() == 2  # the two worker processes
        assert rec.processes["proc_id"].is_unique
        assert set(hosts_of(rec)) == {rec.meta.merge.hosts[0]}
        # each worker's own file came back through Dask too, and holds its worker alone
        for p in ps:
            own = inspector.load(Path(rec.meta.merge.sources[p.index].path))
            assert set(own.processes["pid"]) == set(p.recording.processes["pid"])
        # the offsets were measured, and on one machine they are tiny
        assert all(p.clock_uncertainty_s is not None and abs(p.clock_offset_s) < 0.05
                   for p in ps)


def test_each_worker_of_a_pure_python_map_is_gil_limited(cluster: Cluster) -> None:
    cd = cluster.python_verdict
    for w in cd.workers:  # whatever the load: two threads at work, never more than a core
        assert w.working_threads >= 2 and w.busy_cores < 1.5, worker_sentence(w)
    if not cluster.python_had_cores:
        return  # waits for a core then outweigh those for the GIL: printed above
    for w in cd.workers:
        assert w.gil_limited and w.advice == "more-processes", worker_sentence(w)
        assert "GIL-limited at" in worker_sentence(w)
        assert worker_sentence(w).endswith("use processes=True or nthreads=1 (more worker "
                                           "processes, fewer threads each)")
    assert cd.verdict.advice == "more-processes"
    assert say(cd.said).startswith("cluster: 2 of 2 workers on 1 host GIL-limited")


def test_no_worker_of_a_numpy_map_is_gil_limited(cluster: Cluster) -> None:
    cd = cluster.numpy_verdict
    assert not any(w.gil_limited for w in cd.workers), said(cd.evidence)
    assert cd.verdict.advice != "more-processes"
    for w in cd.workers:  # the NumPy threads did the work, outside the GIL
        gil_s = sum(t.state_s.get("gil", 0.0) for t in w.diagnosis.threads)
        cpu_s = sum(t.state_s.get("cpu", 0.0) for t in w.diagnosis.threads)
        assert cpu_s > 0.5 and gil_s < 0.25 * cpu_s, (gil_s, cpu_s)


def test_record_dask_records_a_running_cluster_from_outside(cluster: Cluster) -> None:
    cd = diagnose_cluster(cluster.cli)
    assert cluster.cli.meta.command[:3] == ("inspector", "record", "--dask")
    assert len(cd.workers) == 2
    # the pure-Python tasks ran while it recorded: their threads are in it
    names = [t.name or "" for w in cd.workers for t in w.diagnosis.threads if t.cpu_s > 0.2]
    assert sum("Dask-Default-Threads" in n for n in names) >= 2, names


def test_summary_shows_hosts_workers_processes_threads(cluster: Cluster) -> None:
    path = cluster.folder / "python.sqlite"
    text = inspector_cli("summary", str(path))
    assert text.returncode == 0, text.stderr
    out = text.stdout
    host = cluster.python.meta.merge.hosts[0]
    assert f"HOST {host} (" in out
    assert out.index(f"HOST {host}") < out.index("WORKER 0:") < out.index("WORKER 1:")
    assert f"VERDICT: {say(cluster.python_verdict.said)}" in out
    assert "Dask-Default-Threads" in out.split("WORKER 1:")[1]
    as_json = json.loads(inspector_here("summary", "--json", str(path)).stdout)
    assert [w["label"] for w in as_json["workers"]] == ["0", "1"]
    assert [w["gil_limited"] for w in as_json["workers"]] == [
        w.gil_limited for w in cluster.python_verdict.workers]


def test_speedscope_names_each_thread_with_its_host(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "cluster.speedscope.json"
    done = inspector_here("export", str(cluster.folder / "python.sqlite"), "-f", "speedscope",
                          "-o", str(out))
    assert done.returncode == 0, done.stderr
    host = cluster.python.meta.merge.hosts[0]
    names = [p["name"] for p in json.loads(out.read_text())["profiles"]]
    assert names and all(f"({host}, pid " in n for n in names)
    assert sum("Dask-Default-Threads" in n for n in names) >= 4  # 2 task threads x 2 workers


# -- kept on the workers and judged there ----------------------------------------------------

def test_each_worker_keeps_its_recording_on_its_host(cluster: Cluster) -> None:
    for name in ("python", "numpy"):
        kept = cluster.kept(name)
        assert [p.name for p in kept] == ["worker-0.sqlite", "worker-1.sqlite"]
        for path in kept:
            note = read_note(path)
            assert note is not None and note.worker == path.stem.removeprefix("worker-")
            # the clock was measured at collection: on one machine, tiny
            assert note.clock_uncertainty_s is not None and abs(note.clock_offset_s) < 0.05
            assert (path.stat().st_mode & 0o777) == 0o600
        assert not list((cluster.worker_dir / name).glob("*.log"))  # recorder logs gone


def test_record_dask_keeps_them_on_the_workers_from_outside(cluster: Cluster) -> None:
    kept = cluster.kept("cli")
    assert [p.name for p in kept] == ["worker-0.sqlite", "worker-1.sqlite"]
    notes = [read_note(p) for p in kept]
    assert all(n is not None and n.command is None for n in notes)  # it only watched them
    said_ = (cluster.worker_dir / "record-cli.log").read_text()
    assert f"kept on their 1 host(s), each as {cluster.worker_dir / 'cli'}/worker-WORKER" \
        f".sqlite" in said_, said_
    assert f"inspector summary --dask {cluster.address} cli" in said_
    done = cluster.here("summary", "--json", "cli")
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
        cluster: Cluster, merged_json: dict[str, Any]) -> None:
    done = cluster.by_cli("summary", "--json", "python")
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
        cluster: Cluster, merged_json: dict[str, Any]) -> None:
    done = cluster.here("summary", "python")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "analysed on 2 workers" in out.splitlines()[3]
    assert f"VERDICT: {merged_json['verdict']['evidence'][0]}" in out
    assert out.index("WORKER 0:") < out.index("WORKER 1:")


def test_report_on_the_workers_answers_with_the_clusters_verdict(
        cluster: Cluster, merged_json: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "python.html"
    done = cluster.here("report", "python", "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert merged_json["verdict"]["evidence"][0] in html
    assert "worker 0:" in html and "worker 1:" in html
    assert "stayed on the workers" in html


def test_compare_on_the_workers_takes_two_runs_of_one_script_as_one_row(
        cluster: Cluster) -> None:
    # both were recorded by record_cluster in one script: runs of one command, one row (as
    # compare makes of the merged files of that script), its recordings named
    done = cluster.here("compare", "--json", "python", "numpy")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert row["runs"] == 2 and sorted(row["recordings"]) == ["numpy", "python"]
    assert row["verdict"]["evidence"][0].startswith("cluster: 2 of 2 workers on 1 host")
    assert row["cpu_s"] > 0 and row["threads"] >= 4
    assert "python: analysed on 2 workers" in done.stderr
    assert "numpy: analysed on 2 workers" in done.stderr


def test_a_worker_of_another_inspector_version_is_one_line(cluster: Cluster) -> None:
    cluster.set_worker_version("9.9.9")
    try:
        done = cluster.here("summary", "python")
    finally:
        cluster.set_worker_version(inspector.__version__)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"inspector {inspector.__version__} here but 9.9.9 on worker tcp://" in done.stderr
    assert "(and 1 more)" in done.stderr


def test_a_name_no_worker_keeps_is_one_line(cluster: Cluster) -> None:
    done = cluster.here("summary", "nosuch")
    assert done.returncode == 1
    assert "no worker of the cluster keeps a recording named 'nosuch'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_big_cluster_is_told_by_hosts_workers_and_its_busiest_threads(
        cluster: Cluster) -> None:
    from inspector.record.dask_analysis import judge_kept
    from inspector.report.page import render_cluster_page

    judged = [judge_kept(str(p), p.stem) for p in cluster.kept("python")]
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


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, status, words", [
    (["record", "--dask", "tcp://127.0.0.1:9"], 2, "needs a positive --duration"),
    (["record", "--dask", "nonsense://x", "--duration", "1"], 1,
     "cannot reach the Dask scheduler"),
    (["record", "--dask", "tcp://127.0.0.1:9", "--duration", "1", "--pid", "1"], 2,
     "without --pid"),
    (["summary", "--dask", "tcp://127.0.0.1:1", "python"], 1, "cannot reach the Dask scheduler"),
    (["summary", "--worker-dir", "/tmp", "python"], 2, "--worker-dir goes with --dask"),
    (["compare", "--dask", "tcp://127.0.0.1:1", "a/b", "c"], 1, "cannot name a recording"),
    (["record", "--dask", "tcp://127.0.0.1:1", "--duration", "1", "--worker-dir", "/tmp"], 2,
     "--worker-dir goes with --keep-on-workers"),
    (["record", "--dask", "tcp://127.0.0.1:1", "--duration", "1", "--keep-on-workers",
      "--report"], 2, "inspector report --dask SCHEDULER NAME"),
    (["record", "--keep-on-workers", "--", "true"], 2, "go with --dask"),
    (["record", "--dask", "tcp://127.0.0.1:1", "--duration", "1", "--keep-on-workers", "-o",
      "../up"], 1, "cannot name a recording"),
])
def test_dask_bad_input_is_one_line(args: list[str], status: int, words: str,
                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[test]'")
    # our own time to reach a scheduler, cut short: none listens at port 1
    monkeypatch.setattr("inspector.record.dask.CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.chdir(tmp_path)  # where a record refused too late would write
    done = inspector_here(*args)
    assert done.returncode == status
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not list(tmp_path.iterdir())


def test_dask_bad_input_by_the_command_line_is_one_line(tmp_path: Path) -> None:
    # the real entry point: refused before Dask is imported, and by Dask's own check
    before, after = inspector_clis(
        ["record", "-o", str(tmp_path / "x.sqlite"), "--dask", "tcp://127.0.0.1:9"],
        ["summary", "--dask", "nonsense://x", "python"])
    for done, status, words in ((before, 2, "needs a positive --duration"),
                                (after, 1, "cannot reach the Dask scheduler at nonsense://x")):
        assert done.returncode == status
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not list(tmp_path.iterdir())
