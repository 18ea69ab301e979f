"""The warm job server (issue 12): a rule script runs in a process forked by it, its exit status
and errors come back to the script's own process, a job dies with that process, and the
workflow's results are the same with and without it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import SMALL_CONFIG, copy_workflow, result_hashes, snakemake

from glmflow import jobserver

# What Snakemake's preamble leaves in a rule script's __main__: the job (with its threads) and
# the script's real file; then the script's first glmflow import hands the job to the server.
CLIENT = """
import sys
class Job:
    threads = 1
snakemake = Job()
__real_file__ = sys.argv[1]
import glmflow
print("ran in its own process")
sys.exit(99)
"""


@pytest.fixture
def client(tmp_path):
    """Run a job script through the server as a rule script's process would."""
    (tmp_path / "client.py").write_text(CLIENT)

    def run(job_text, wait=True, **environment):
        job = tmp_path / "job.py"
        job.write_text(job_text)
        env = {**os.environ, **environment}
        command = [sys.executable, str(tmp_path / "client.py"), str(job)]
        if not wait:
            return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    yield run
    jobserver.stop()


def test_a_job_runs_forked_by_the_server_and_its_status_comes_back(client, tmp_path):
    result = client(
        "import os, pathlib\n"
        "from glmflow import jobserver\n"
        "pathlib.Path('where.txt').write_text(f'{os.getpid()} {jobserver.IN_CHILD} {os.environ[\"MARK\"]}')\n"
        "print('out of the job')\n"
        "raise SystemExit(3)\n",
        MARK="from the client",
    )
    assert result.returncode == 3 and result.stdout == "out of the job\n"  # its streams, its status
    pid, in_child, mark = (tmp_path / "where.txt").read_text().split(" ", 2)  # its directory, its environment
    assert in_child == "True" and mark == "from the client"


def test_an_error_in_the_job_is_printed_and_fails_it(client):
    result = client("raise ValueError('the job failed')\n")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ValueError: the job failed" in result.stderr


def test_without_the_server_the_script_runs_in_its_own_process(client):
    result = client("raise SystemExit(0)\n", GLMFLOW_JOBSERVER="0")
    assert result.returncode == 99 and result.stdout == "ran in its own process\n"
    result = client("raise SystemExit(0)\n", SLURM_JOB_ID="123")  # on a cluster node
    assert result.returncode == 99


def test_a_job_dies_with_its_scripts_process(client, tmp_path):
    process = client("import os, pathlib, time\npathlib.Path('pid').write_text(str(os.getpid()))\ntime.sleep(60)\n",
                     wait=False)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "pid").read_text())
    assert child != process.pid
    os.kill(process.pid, signal.SIGKILL)  # as a killed run, or Snakemake cancelling the job
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"job process {child} still runs after its script's process was killed")


def test_the_server_serves_one_version_of_the_code(monkeypatch, tmp_path):
    package = tmp_path / "glmflow"
    package.mkdir()
    (package / "models.py").write_text("x = 1\n")
    monkeypatch.setattr(jobserver, "PACKAGE", package)
    before = jobserver.server_name()
    (package / "models.py").write_text("x = 2\n")
    assert jobserver.server_name() != before


def test_the_workflow_gives_the_same_results_without_the_server(small_run, tmp_path, monkeypatch):
    directory = copy_workflow(tmp_path / "own-processes", SMALL_CONFIG)
    monkeypatch.setenv("GLMFLOW_JOBSERVER", "0")
    snakemake(directory)
    assert result_hashes(directory) == result_hashes(small_run)
    assert "(its own process)" in (directory / "logs" / "models" / "glm_fare.log").read_text()
    assert "(forked by the glmflow job server)" in (small_run / "logs" / "models" / "glm_fare.log").read_text()


def test_the_server_is_one_thread_when_it_forks():
    """A thread alive at a fork leaves its locks locked for ever in the child (pyarrow's jemalloc
    and numexpr each start threads when they load, unless told otherwise)."""
    code = "from glmflow import jobserver as j; j.single_threaded_environment(); j.preload(); print(j.threads())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "1"


def test_a_server_that_cannot_fork_safely_sends_the_job_back(monkeypatch):
    """With a thread running (here: this test's), the server answers RUN_HERE and the script's
    own process runs the job."""
    monkeypatch.setattr(jobserver, "IDLE_SECONDS", 0.5)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(f"\0glmflow-test-{os.getpid()}")
    listener.listen(4)
    server = threading.Thread(target=jobserver.serve, args=(listener, False))
    server.start()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    client.connect(f"\0glmflow-test-{os.getpid()}")
    socket.send_fds(client, [b'{"script": "x.py", "cwd": "/", "env": {}, "threads": 1}'], [0, 1, 2])
    assert client.recv(16) == jobserver.RUN_HERE
    client.close()
    server.join(timeout=10)
    assert not server.is_alive()


def test_a_job_the_server_never_started_runs_in_the_scripts_process():
    """A server that takes a job but goes away before a child starts it (it exited, or the child
    failed to set up): the client runs its script itself instead of failing the job; it exits
    with a status only after a child said STARTED."""
    code = (
        "import os, socket, threading\n"
        "from glmflow import jobserver\n"
        "name = f'glmflow-test-gone-{os.getpid()}'\n"
        "listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
        "listener.bind('\\0' + name)\n"
        "listener.listen(1)\n"
        "def take_and_go():\n"
        "    connection, _ = listener.accept()\n"
        "    socket.recv_fds(connection, 1 << 20, 3)\n"
        "    connection.close()\n"
        "threading.Thread(target=take_and_go).start()\n"
        "jobserver._reach_server = lambda _: jobserver._connect(name)\n"
        "jobserver.delegate('job.py', 1)\n"
        "print('the script runs here')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "the script runs here\n", result.stderr


OTHER_USER = "glmflow_other"


def other_user() -> tuple[int, int]:
    """(uid, gid) of a second local user, created if missing (needs root)."""
    import pwd

    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        created = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
                                 capture_output=True, text=True)  # fmt: skip
        if created.returncode != 0:
            pytest.fail(f"cannot create the second user {OTHER_USER} with useradd: {created.stderr.strip()}")
        entry = pwd.getpwnam(OTHER_USER)
    return entry.pw_uid, entry.pw_gid


def impostor(name: str, uid: int, gid: int) -> tuple[int, int]:
    """Another user's process holding this user's server name: (its pid, a pipe on which it
    writes how many bytes its clients sent it, when it exits after 20 s or a SIGTERM)."""
    ready, ready_in = os.pipe()
    report, report_in = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other user: only os and socket calls from here, then os._exit
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            listener.bind("\0" + name)
            listener.listen(64)
            received = 0
            signal.signal(signal.SIGTERM, lambda *_: (os.write(report_in, str(received).encode()), os._exit(0)))
            os.write(ready_in, b"1")
            listener.settimeout(20)
            while True:
                connection, _ = listener.accept()
                connection.settimeout(2)
                try:
                    while data := connection.recv(1 << 20):
                        received += len(data)
                except OSError:
                    pass
        except BaseException:  # noqa: BLE001 (the parent sees no "ready" and fails)
            pass
        os.write(report_in, b"-1")
        os._exit(0)
    os.close(ready_in)
    os.close(report_in)
    if os.read(ready, 1) != b"1":
        os.waitpid(pid, 0)
        pytest.fail(f"the second user {OTHER_USER} could not bind the server's name")
    os.close(ready)
    return pid, report


def test_a_client_never_talks_to_another_users_server(client):
    """Another local user binds the (visible) server name first: the job runs in its own process
    with a message, and the impostor receives nothing (not the job's environment, nor its streams)."""
    if os.getuid() != 0:
        pytest.skip("needs root, to create and become a second local user")
    jobserver.stop()  # this user's own server, if one runs, holds the name
    uid, gid = other_user()
    pid, report = impostor(jobserver.server_name(), uid, gid)
    try:
        result = client("raise SystemExit(0)\n", SECRET="not for another user")
    finally:
        os.kill(pid, signal.SIGTERM)
        received = os.read(report, 64)
        os.waitpid(pid, 0)
    assert received == b"0"
    assert result.returncode == 99 and result.stdout == "ran in its own process\n"
    assert f"held by another user's process (uid {uid})" in result.stderr
