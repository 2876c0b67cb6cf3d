"""Issue 24 item 2: every form of secret on a command line is masked before it is written, and
what is not a secret stays readable. One real recording of a process tree whose children carry
each form (programs named mysql, redis-cli, curl... that only sleep, and `sh -c` scripts); the
rules are docs/security.md's table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_faults import TIMEOUT_S, record_argv

import inspector
from inspector.cli import main as cli_main
from inspector.record.secrets import MASK, SecretMask

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
SH_TAIL = "; sleep 2; :"  # `:` last: the shell stays itself (not exec'd into sleep) meanwhile


@dataclass(frozen=True)
class Form:
    program: str  # a fake program of this name (it sleeps), or "sh -c" for a script
    args: tuple[str, ...]
    secret: str
    stored: tuple[str, ...]  # the args as the recording keeps them


FORMS = (
    Form("mysql", ("-uroot", "-pS3c-mysql-glued", "shop"), "S3c-mysql-glued",
         ("-uroot", "-p***", "shop")),
    Form("mysql", ("-u", "root", "-p", "S3c-mysql-apart", "shop"), "S3c-mysql-apart",
         ("-u", "root", "-p", "***", "shop")),
    Form("mysqldump", ("--single-transaction", "-pS3c-dump"), "S3c-dump",
         ("--single-transaction", "-p***")),
    Form("redis-cli", ("-h", "cache", "-a", "S3c-redis", "ping"), "S3c-redis",
         ("-h", "cache", "-a", "***", "ping")),
    Form("curl", ("-u", "bob:S3c-curl-u", "https://example.com/"), "S3c-curl-u",
         ("-u", "bob:***", "https://example.com/")),
    Form("curl", ("--user=bob:S3c-curl-user", "https://example.com/"), "S3c-curl-user",
         ("--user=bob:***", "https://example.com/")),
    Form("curl", ("--user", "bob:S3c-curl-user2", "-s"), "S3c-curl-user2",
         ("--user", "bob:***", "-s")),
    Form("tool", ("--pass", "S3c-pass"), "S3c-pass", ("--pass", "***")),
    Form("tool", ("DB_PASS=S3c-db-pass", "run"), "S3c-db-pass", ("DB_PASS=***", "run")),
    Form("tool", ("--auth", "S3c-auth"), "S3c-auth", ("--auth", "***")),
    Form("tool", ("--key", "S3c-key"), "S3c-key", ("--key", "***")),
    Form("tool", ("--db-password", "S3c-db-password"), "S3c-db-password",
         ("--db-password", "***")),
    Form("tool", ("https://bob:pa/ss@S3c-url-at@db.example.com:5432/x",),
         "S3c-url-at", ("https://bob:***@db.example.com:5432/x",)),
    Form("tool", ("postgresql://app:S3c/url/slash@db/x",), "S3c/url/slash",
         ("postgresql://app:***@db/x",)),
    Form("git", ("clone", "https://ghp_S3cGitHubToken0123456789@github.com/o/r"),
         "ghp_S3cGitHubToken0123456789", ("clone", "https://***@github.com/o/r")),
    Form("curl", ("-H", "Cookie: session=S3c-cookie; theme=dark", "https://example.com/"),
         "S3c-cookie", ("-H", "Cookie: ***", "https://example.com/")),
    Form("curl", ("-b", "session=S3c-cookie-b", "https://example.com/"), "S3c-cookie-b",
         ("-b", "***", "https://example.com/")),
    Form("curl", ("-d", '{"user": "bob", "password": "S3c-json"}'), "S3c-json",
         ("-d", '{"user": "bob", "password": "***"}')),
    Form("sshpass", ("-p", "S3c-sshpass", "ssh", "host"), "S3c-sshpass",
         ("-p", "***", "ssh", "host")),
    Form("ldapsearch", ("-D", "cn=admin", "-w", "S3c-ldap"), "S3c-ldap",
         ("-D", "cn=admin", "-w", "***")),
    Form("docker", ("login", "-u", "bob", "-p", "S3c-docker", "registry"), "S3c-docker",
         ("login", "-u", "bob", "-p", "***", "registry")),
    Form("smbclient", ("-U", "bob%S3c-smb", "//host/share"), "S3c-smb",
         ("-U", "bob%***", "//host/share")),
    Form("mount", ("-o", "username=bob,password=S3c-mount,uid=1"), "S3c-mount",
         ("-o", "username=bob,password=***,uid=1")),
    Form("sh -c", (': PGPASSWORD="S3c quoted pg" psql -h db' + SH_TAIL,), "S3c quoted pg",
         (': PGPASSWORD="***" psql -h db' + SH_TAIL,)),
    Form("sh -c", (": API_KEY='S3c-single-quoted' ./load" + SH_TAIL,), "S3c-single-quoted",
         (": API_KEY='***' ./load" + SH_TAIL,)),
    Form("sh -c", (": mysql -uroot -pS3c-sh-mysql shop" + SH_TAIL,), "S3c-sh-mysql",
         (": mysql -uroot -p*** shop" + SH_TAIL,)),
    Form("sh -c", (": redis-cli -a S3c-sh-redis ping && : curl -u bob:S3c-sh-curl x"
                   + SH_TAIL,), "S3c-sh-redis",
         (": redis-cli -a *** ping && : curl -u bob:*** x" + SH_TAIL,)),
    Form("sh -c", (": deploy --token 'S3c two words'" + SH_TAIL,), "S3c two words",
         (": deploy --token '***'" + SH_TAIL,)),
)

# Spawns every form's process at once, then waits for them all: each is seen alive.
TREE = ("import json, subprocess, sys\n"
        "procs = [subprocess.Popen(argv) for argv in json.load(open(sys.argv[1]))]\n"
        "for p in procs: p.wait()\n")


def fake_program(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        path.write_text("#!/bin/sh\nsleep 2\n:\n")
        path.chmod(0o755)
    return path


def argv_of(form: Form, bin_dir: Path) -> list[str]:
    if form.program == "sh -c":
        return ["/bin/sh", "-c", *form.args]
    return [str(fake_program(bin_dir, form.program)), *form.args]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, inspector.Recording]:
    tmp = tmp_path_factory.mktemp("forms")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    commands = tmp / "commands.json"
    commands.write_text(json.dumps([argv_of(f, bin_dir) for f in FORMS]))
    out = tmp / "forms.sqlite"
    proc = subprocess.run(record_argv(out, [PY, "-c", TREE, str(commands)],
                                      ("-q", "--no-stacks")),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return out, inspector.load(out)


@pytest.mark.parametrize("form", FORMS, ids=[f"{f.program}:{f.secret}" for f in FORMS])
def test_each_form_of_secret_is_masked_and_its_option_kept(
        recorded: tuple[Path, inspector.Recording], form: Form) -> None:
    out, rec = recorded
    assert form.secret.encode() not in out.read_bytes()
    cmdlines = [tuple(c) for c in rec.processes.cmdline]
    if form.program == "sh -c":
        assert ("/bin/sh", "-c", *form.stored) in cmdlines, cmdlines
    else:  # run by the kernel as `/bin/sh PATH ARGS` (its #! line)
        assert any(c[1:2] and c[1].endswith(f"/bin/{form.program}") and c[2:] == form.stored
                   for c in cmdlines), cmdlines


# What is not a secret stays as it was: the same rules, without a process to show it.
KEPT = (
    ["ssh", "-p", "22", "host"],  # -p is a port but for mysql-like programs
    ["mkdir", "-p", "a/b"],
    ["python", "run.py", "--passes=3", "--author", "me", "--keys", "a,b"],
    ["docker", "login", "--password-stdin", "-u", "bob"],  # a flag with no value
    ["curl", "-u", "bob", "https://example.com/"],  # a user alone: curl asks
    ["git", "clone", "https://github.com/o/r", "ssh://git@host/r"],
    ["psql", "-h", "db", "-U", "app"],
)


@pytest.mark.parametrize("argv", KEPT, ids=[a[0] for a in KEPT])
def test_what_is_not_a_secret_is_kept_as_it_was(argv: list[str]) -> None:
    assert SecretMask().command(argv) == argv


def test_a_stack_frame_keeps_its_file_and_line() -> None:
    frame = "load (/app/tokens.py:12);get_key (/app/keys.py:4)"
    assert SecretMask().text(frame) == frame


# -- record --dask: every worker's recorder gets the options ------------------------------

CLIENT_SECRET = "S3c-client-cmdline"


def test_record_dask_passes_redact_and_gil_check_on_and_masks_the_merged_file(
        tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[test]'")
    proc = subprocess.run([PY, str(WORKLOADS / "dask_options.py"), str(tmp_path), "1",
                           f"--password={CLIENT_SECRET}", "--redact", "Default-Threads",
                           "--gil-check", "--linger", "0.5"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # record_cluster's merged file stores the client script's command line: masked
    client = tmp_path / "client.sqlite"
    assert CLIENT_SECRET.encode() not in client.read_bytes()
    assert f"--password={MASK}" in inspector.load(client).meta.command
    # `record --dask --redact`: the worker's own file and the merged one
    cli = tmp_path / "cli.sqlite"
    files = [cli, *(tmp_path / "cli-workers").glob("*.sqlite")]
    assert len(files) == 2, files
    for path in files:
        assert b"Default-Threads" not in path.read_bytes(), path
    names = set(inspector.load(cli).threads["name"].dropna())
    assert any(f"Dask-{MASK}-" in n for n in names), names
    # --gil-check ran on the worker
    worker = inspector.load(files[1])
    assert worker.meta.stacks.gil_rate_hz is not None, worker.meta.stacks


@pytest.mark.parametrize("args, words", [
    (["--interval", "0"], "--interval must be between"),
    (["--rate", "5000"], "--rate must be between"),
    (["--linger", "-1"], "--linger must be 0 or more"),
    (["--redact", "("], "--redact is not a valid regular expression"),
])
def test_record_dask_refuses_settings_no_recorder_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    # checked before the scheduler is looked for (this one is never there); the first as
    # its own process (`python -m inspector`, start-up to exit), the others through the
    # same main(), in this process
    argv = ["record", "-o", str(tmp_path / "x.sqlite"), "--dask", "tcp://127.0.0.1:9",
            "--duration", "1", *args]
    if args == ["--interval", "0"]:
        done = subprocess.run([PY, "-m", "inspector", *argv], capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        status, err = done.returncode, done.stderr
    else:
        status, err = cli_main(argv), capsys.readouterr().err
    assert status == 2, err
    assert words in err and len(err.strip().splitlines()) == 1, err
