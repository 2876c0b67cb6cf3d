"""The report's "The run" section links the exports that `inspector export` writes beside
the recording, each with its command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_run_section_links_each_export_written_beside_the_recording(tmp_path: Path) -> None:
    rec = tmp_path / "gil run.sqlite"
    subprocess.run([sys.executable, "-m", "inspector", "record", "-q", "--no-stacks", "-o",
                    str(rec), "--", sys.executable, str(ROOT / "tests/workloads/gil_threads.py"),
                    "0.5"], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "inspector", "report", str(rec)], check=True,
                   capture_output=True, timeout=120)
    html = (tmp_path / "gil run.html").read_text()
    run = html[html.index('<dl class="run">'):]
    for fmt, name in (("perfetto", "gil run.perfetto.json"),
                      ("speedscope", "gil run.speedscope.json"), ("pprof", "gil run.pb.gz")):
        href = name.replace(" ", "%20")
        assert f'<a href="{href}">{name}</a>' in run
        assert f"inspector export gil run.sqlite -f {fmt}" in run
        subprocess.run([sys.executable, "-m", "inspector", "export", str(rec), "-f", fmt],
                       check=True, capture_output=True, timeout=120)
        assert (tmp_path / name).is_file()  # the link's target is where export writes it
