"""The warm job server: a rule script runs in a process forked by it, its exit status
and errors come back to the script's own process, a job dies with that process, and the
workflow's results are the same with and without it."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest
from conftest import SMALL_CONFIG, copy_workflow, result_hashes, snakemake
from test_hardening import broken  # noqa: F401 (the fixture)

from glmflow import jobserver

# What Snakemake's preamble leaves in a rule script's __main__: the job (with its threads) and
# the script's real file; then the script's first statement hands the job to the server.
CLIENT = """
import sys
class Job:
    threads = 1
snakemake = Job()
__real_file__ = sys.argv[1]
import os
from glmflow import jobserver
jobserver.server_name = lambda: os.environ["TEST_JOBSERVER_NAME"]  # the test's own server
from glmflow.job import start
start(snakemake)
print("ran in its own process")
sys.exit(99)
"""


@pytest.fixture
def client(tmp_path, monkeypatch):
    """Run a job script through the server as a rule script's process would: a server of the
    test's own (its name is this test's), so that workflow runs of other tests at the same time
    keep theirs."""
    (tmp_path / "client.py").write_text(CLIENT)
    name = f"glmflow-jobserver-test-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setattr(jobserver, "server_name", lambda: name)

    def run(job_text, wait=True, preexec=None, **environment):
        job = tmp_path / "job.py"
        job.write_text(job_text)
        env = {**os.environ, "TEST_JOBSERVER_NAME": name, **environment}
        command = [sys.executable, str(tmp_path / "client.py"), str(job)]
        if not wait:
            return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                              preexec_fn=preexec)  # fmt: skip

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


# The workflow's results with and without the server: test_workflow.py's two runs.


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


def test_a_job_runs_with_its_caller_s_umask_limits_nice_and_affinity(client, tmp_path):
    """The server's child took the server's process state: outputs were 0644 where the caller's
    umask asked 0600, and ulimit, nice and taskset were ignored."""
    cpu = min(os.sched_getaffinity(0))
    nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nice = os.getpriority(os.PRIO_PROCESS, 0) + 3

    def caller():
        os.umask(0o077)
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        os.sched_setaffinity(0, {cpu})
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, nofile_hard))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    job = (
        "import json, os, resource\nfrom glmflow import jobserver\nopen('made', 'w').close()\n"
        "state = {'in_child': jobserver.IN_CHILD, 'umask': os.umask(0), 'nice': os.getpriority(os.PRIO_PROCESS, 0),"
        " 'affinity': sorted(os.sched_getaffinity(0)), 'nofile': resource.getrlimit(resource.RLIMIT_NOFILE),"
        " 'core': resource.getrlimit(resource.RLIMIT_CORE)}\n"
        "open('state.json', 'w').write(json.dumps(state))\n"
    )
    assert client("open('warm', 'w').close()\n").returncode == 0  # the server starts as the test runs
    result = client(job, preexec=caller)
    assert result.returncode == 0, result.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    assert state == {"in_child": True, "umask": 0o077, "nice": nice, "affinity": [cpu], "nofile": [200, nofile_hard],
                     "core": [0, 0]}  # fmt: skip
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o600


@pytest.mark.parametrize("server", ["1", "0"], ids=["job server", "own process"])
def test_outputs_take_the_caller_s_umask(tmp_path, monkeypatch, server):
    """snakemake under umask 077: every output 0600, with or without the server (which a first
    run under umask 022 started)."""
    directory = copy_workflow(tmp_path / "private", SMALL_CONFIG)
    monkeypatch.setenv("GLMFLOW_JOBSERVER", server)
    umask = os.umask(0o022)
    try:
        snakemake(directory, "results/data/titanic.parquet")
        os.umask(0o077)
        snakemake(directory, "results/models/glm_fare/tidy.csv", "results/figures/fit_glm_sex_fare.svg",
                  "results/figures/proportions_survival_by_sex.svg")  # fmt: skip
    finally:
        os.umask(umask)
    results = directory / "results"
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in results.rglob("*.*")}
    first = [path for path in modes if path.startswith(str(results / "data"))]  # the data job's, under 022
    assert len(first) == 3 and {modes.pop(path) for path in first} == {"0o644"}
    assert len(modes) > 10 and set(modes.values()) == {"0o600"}, modes
    where = "forked by the glmflow job server" if server == "1" else "its own process"
    assert f"({where})" in (directory / "logs" / "models" / "glm_fare.log").read_text()


def test_a_project_matplotlibrc_changes_no_figure(broken, monkeypatch):  # noqa: F811
    """matplotlib reads ./matplotlibrc when it loads: in a job's own process, a project's file
    changed every figure (the job server loads matplotlib elsewhere). Figures are made with
    matplotlib's defaults and glmflow's style only."""
    monkeypatch.setenv("GLMFLOW_JOBSERVER", "0")
    before = result_hashes(broken)
    (broken / "matplotlibrc").write_text(
        "lines.linewidth: 9\naxes.facecolor: red\nfont.size: 30\nsvg.hashsalt: stray\naxes.spines.top: True\n"
        "savefig.facecolor: blue\n"
    )
    figures = sorted((broken / "results" / "figures").glob("*.svg"))
    assert len(figures) == 6
    for figure in figures:
        figure.unlink()
    output = snakemake(broken).stderr
    assert output.count("rule figure_") + output.count("rule fit_simulation_demo") >= 6
    assert result_hashes(broken) == before
