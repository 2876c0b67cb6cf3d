"""Six external commands run one after another, each waiting 0.3 s (`sleep`): the parent waits
for each in turn. Nothing computes, yet running them at once would finish ~6x sooner."""

import subprocess

for _ in range(6):
    subprocess.run(["sleep", "0.3"], check=True)
