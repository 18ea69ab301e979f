"""A warm process that runs the workflow's rule scripts, so that a job costs its arithmetic and
not Python's start-up.

Each rule script is a fresh ``python`` process (Snakemake's ``script:``), and importing what a
job needs (pandas, scipy, formulaic, statsmodels, numba, matplotlib, the glmflow modules) takes
many times the work a typical job does. Here the first job of a run starts this server
(``python -m glmflow.jobserver``), which imports all of that once and then forks a child per
job: the child starts warm, takes the job's working directory, environment and standard
streams, and runs the very script file Snakemake wrote (its preamble included) with ``runpy``.
The script's own process, the client, waits for the child's exit status and exits with it, so
Snakemake sees an ordinary job.

- One server per version of the code: the socket's name is a digest of the Python executable,
  the package's location and the content of every package file, so an edited module gets a new
  server (the old one exits when idle, after ``IDLE_SECONDS``).
- Only its own user may connect (the peer's uid is checked): the socket is an abstract one,
  which every local process could otherwise reach. And a client talks only to its own user's
  server: its name shows in ``/proc/net/unix``, so another user could bind it first; a client
  checks the listening process's uid (SO_PEERCRED) before sending anything, and finding another
  user's process there, says so and runs its script in its own process.
- A child takes its client's process state (umask, resource limits, nice value, CPU affinity),
  or, where the server may not give it that, the client runs the script itself; a child killed
  by a signal is reported to its client, which dies of the same signal.
- A child dies with its client: the server watches each client's connection and kills the
  child when it closes (Ctrl-C, SIGTERM from Snakemake, SIGKILL of the run).
- The server is single-threaded when it forks (OpenBLAS with one thread, numba's pools not
  started): every job runs BLAS on one thread, as every rule declares ``threads: 1``; numba's
  thread count is set per job to the rule's ``threads``.
- Snakemake's ``benchmark:`` files keep the job's wall time (``s``); their memory and CPU
  columns are the client's, not the child's.
- Not used on SLURM nodes (``SLURM_JOB_ID`` set: a job's processes must stay inside its
  allocation), nor where ``GLMFLOW_JOBSERVER=0``; if no server can be reached the script runs
  in its own process, as it always did.
"""

# measured: the imports took 0.5-0.8 s of the 0.03-0.2 s of work a typical job does (the default
# config's 77 jobs ran 40 s on 2 cores); with the server (python -m glmflow.bench workflow)
# 40.3 s -> 15.2 s, and 1.13 s -> 0.24 s per added GLM

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import os
import resource
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

from glmflow import job

PACKAGE = Path(__file__).resolve().parent
IDLE_SECONDS = 30.0  # the server exits after this long without a job
START_SECONDS = 30.0  # how long a client waits for the server to answer
# What the rule scripts import: loaded once by the server, so that children start warm.
PRELOAD = [
    "pickle", "snakemake.iocontainers", "snakemake.logging", "pandas", "pyarrow.parquet", "scipy.special",
    "scipy.optimize", "scipy.sparse.linalg", "statsmodels.regression.linear_model", "matplotlib",
    "glmflow.io", "glmflow.data", "glmflow.datafile", "glmflow.formula", "glmflow.models", "glmflow.summaries",
    "glmflow.likelihood", "glmflow.interpret", "glmflow.comparisons", "glmflow.study", "glmflow.simulate",
    "glmflow.glmm", "glmflow.glmm_likelihood", "glmflow.figures", "glmflow.report",
]  # fmt: skip
IN_CHILD = False  # True in a job's process forked by the server (glmflow.io logs it)
RUN_HERE = b"run it yourself"  # the answer of a server that found itself unsafe to fork
# A child's first message, before the job runs: a client that does not get it (the server
# exited idle with the connection waiting, or the child failed to set up) runs the script
# itself, and a client that got it never does (the job would run twice).
STARTED = b"started"
KILLED = b"killed "  # the server's word to a client whose job's process a signal killed: "killed <pid> <signal>"
OOM_HINT = ": an out-of-memory kill (the kernel's log says so: `journalctl -k` or `dmesg`), or a kill by hand"


def enabled() -> bool:
    return os.environ.get("GLMFLOW_JOBSERVER", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def server_name() -> str:
    """The abstract socket's name for this Python and this exact package content."""
    digest = hashlib.sha256(f"{sys.executable}\0{PACKAGE}\0".encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2"):
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"glmflow-jobserver-{os.getuid()}-{digest.hexdigest()[:24]}"


class ForeignServer(Exception):
    """Another user's process listens on this user's server name."""


def _connect(name: str) -> socket.socket | None:
    """A connection to the server listening on ``name``; None if none listens. ForeignServer if
    the one that does is another user's (nothing is sent to it: a job's environment and streams)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        client.connect("\0" + name)
        owner = _peer_uid(client)
    except OSError:
        client.close()
        return None
    if owner != os.getuid():
        client.close()
        raise ForeignServer(
            f"glmflow: the job server socket @{name} is held by another user's process (uid {owner}), "
            f"not by uid {os.getuid()}: nothing was sent to it and this job runs in its own process; to "
            "use the job server again, have that process stopped (GLMFLOW_JOBSERVER=0 silences this)"
        )
    return client


def _reach_server(name: str) -> socket.socket | None:
    """A connection to the server, started here if none answers; None if it cannot start."""
    connection = _connect(name)
    if connection is not None:
        return connection
    server = subprocess.Popen(  # it outlives this job: its own session, no inherited streams
        [sys.executable, "-m", "glmflow.jobserver", name],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd="/",
    )  # fmt: skip
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        connection = _connect(name)
        if connection is not None:
            return connection
        if server.poll() is not None:  # it exited: another client's server took the name, or it failed
            return _connect(name)
        time.sleep(0.01)
    return None


def delegate(script: str, threads: int) -> None:
    """Run this rule script in the server and exit with its status; return (and run it here)
    only when no server can be reached or the job cannot be handed over."""
    try:
        connection = _reach_server(server_name())
    except ForeignServer as error:
        print(error, file=sys.stderr)
        return
    if connection is None:
        return
    header = json.dumps(
        {"script": script, "cwd": os.getcwd(), "env": dict(os.environ), "threads": threads, "state": process_state()}
    )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        socket.send_fds(connection, [header.encode()], [0, 1, 2])
        answer = connection.recv(16)
    except OSError:
        return
    if answer != STARTED:  # RUN_HERE, or the server went away before a child took the job
        return
    try:  # from here the job runs there: its exit status, the signal that killed it, or nothing
        status = connection.recv(64)
    except OSError:
        status = b""
    if status.startswith(KILLED):
        _die_as_the_job(*(int(part) for part in status[len(KILLED) :].split(b" ")))
    os._exit(status[0] if status else 1)


def _die_as_the_job(pid: int, number: int) -> None:
    """The job's process was killed by a signal (an out-of-memory kill is SIGKILL): say which,
    and die of it, so that Snakemake reports it as it does for a job in its own process."""
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else "?"
    print(f"glmflow: this job's process (pid {pid}, forked by the glmflow job server) was killed by signal "
          f"{number} ({name}){OOM_HINT if number == signal.SIGKILL else ''}", file=sys.stderr, flush=True)  # fmt: skip
    if number not in (signal.SIGKILL, signal.SIGSTOP):  # the others may have a handler here
        signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)  # a signal that does not end a process by default


# The limits a job inherits from its caller (ulimit), carried over to the child that runs it
LIMITS = [
    name
    for name in ("AS", "CORE", "CPU", "DATA", "FSIZE", "MEMLOCK", "NOFILE", "NPROC", "RSS", "STACK")
    if hasattr(resource, f"RLIMIT_{name}")
]


def process_state() -> dict:
    """What a process passes to its children besides its environment and streams, and the job
    server's forked child would otherwise take from the server: the file-creation mask (a 0600
    output stays 0600), resource limits, nice value and CPU affinity."""
    umask = os.umask(0)
    os.umask(umask)
    return {
        "umask": umask,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "limits": {name: resource.getrlimit(getattr(resource, f"RLIMIT_{name}")) for name in LIMITS},
    }


def take_process_state(state: dict) -> None:
    """Become as the caller is (``process_state``); OSError where the server's own limits do not
    allow it (a higher hard limit, a lower nice value, CPUs outside its set): the job then runs
    in the caller's process, as without the server."""
    os.umask(state["umask"])
    os.setpriority(os.PRIO_PROCESS, 0, state["nice"])
    os.sched_setaffinity(0, state["affinity"])
    for name, (soft, hard) in state["limits"].items():
        try:
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (soft, hard))
        except ValueError as error:  # raising a hard limit is "not allowed" (ValueError)
            raise OSError(f"RLIMIT_{name}: {error}") from None


def stop() -> bool:
    """Ask this code's server, if one runs, to exit (after its running jobs); True if one did."""
    try:
        connection = _connect(server_name())
    except ForeignServer:
        return False
    if connection is None:
        return False
    with connection:
        connection.send(json.dumps({"stop": True}).encode())
        connection.recv(1)  # closed when the server has exited
    return True


def _child(connection: socket.socket, header: dict, descriptors: list[int]) -> None:
    """In the forked process: become the job (streams, directory, environment), run it, send
    its status and exit; never returns into the server's loop."""
    global IN_CHILD
    IN_CHILD = job.FORKED = True
    status = 1
    try:
        for target, descriptor in enumerate(descriptors):
            os.dup2(descriptor, target)
            os.close(descriptor)
        os.chdir(header["cwd"])
        os.environ.clear()
        os.environ.update(header["env"])
        try:
            take_process_state(header["state"])
        except OSError:
            connection.send(RUN_HERE)  # not as the caller: the caller runs the job itself
            status = 0
            return
        numba = importlib.import_module("numba")  # preloaded with glmflow.glmm
        numba.set_num_threads(max(1, min(int(header["threads"]), numba.config.NUMBA_NUM_THREADS)))
        connection.send(STARTED)
        status = _run(header["script"])
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send(bytes([status & 0xFF]))
    finally:
        os._exit(status & 0xFF)


def _run(script: str) -> int:
    """The script as ``python script`` runs it: its exit status, a traceback on an error."""
    try:
        sys.argv = [script]
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 (printed as Python prints an uncaught exception)
        traceback.print_exc()
        return 1
    return 0


def _peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end (for a client's connection: the server's, as it
    was when it called listen)."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _same_user(connection: socket.socket) -> bool:
    return _peer_uid(connection) == os.getuid()


def threads() -> int:
    """This process's threads (Linux; 1 where /proc cannot tell)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def serve(listener: socket.socket, forking: bool = True) -> None:
    """Fork a child per connection; kill a child whose client went away; reap them; exit when
    idle (and no child is left). Not ``forking``: answer every client ``RUN_HERE``."""
    children: dict[socket.socket, int] = {}  # the client's connection -> its child's pid
    last = time.monotonic()
    while children or time.monotonic() - last < IDLE_SECONDS:
        readable, _, _ = select.select([listener, *children], [], [], 1.0)
        for connection in readable:
            if connection is listener:
                continue
            try:  # a client's end closed (or it sent something, which it never does): its job ends
                connection.recv(1)
            except OSError:
                pass
            try:
                os.kill(children[connection], signal.SIGKILL)
            except ProcessLookupError:
                pass
        for connection, pid in list(children.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                _tell_signal(connection, pid, status)
                connection.close()
                del children[connection]
                last = time.monotonic()
        if listener not in readable:
            continue
        connection, _ = listener.accept()
        try:
            if not _same_user(connection):
                raise PermissionError
            message, descriptors, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            header = json.loads(message.decode())
        except (OSError, ValueError):
            connection.close()
            continue
        if header.get("stop"):
            listener.close()
            for pid in children.values():
                os.waitpid(pid, 0)
            return  # the stopping client's connection closes as this process exits
        if not forking:
            for descriptor in descriptors:
                os.close(descriptor)
            connection.send(RUN_HERE)
            connection.close()
            last = time.monotonic()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            for other in children:
                other.close()
            _child(connection, header, descriptors)
        for descriptor in descriptors:
            os.close(descriptor)
        children[connection] = pid
        last = time.monotonic()


def _tell_signal(connection: socket.socket, pid: int, status: int) -> None:
    """Tell a client that a signal killed its job's process (the child could not say it)."""
    if os.WIFSIGNALED(status):
        try:
            connection.send(KILLED + f"{pid} {os.WTERMSIG(status)}".encode())
        except OSError:  # the client has gone (the server killed the child for that)
            pass


def single_threaded_environment() -> None:
    """The server's settings, before anything heavy loads. One BLAS thread (no thread pool to
    break at fork; numba's pool is started per child, sized to its rule's threads); and nothing
    may start a thread before a fork (a lock held by another thread stays locked for ever in the
    child): pyarrow's jemalloc starts a background thread when it loads, numexpr (through
    pandas) a thread pool, unless told otherwise."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                     "NUMEXPR_MAX_THREADS"):  # fmt: skip
        os.environ[variable] = "1"
    os.environ["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
    os.environ["GLMFLOW_IN_JOBSERVER"] = "1"


def preload() -> None:
    """Import what the rule scripts use; then move it all to the collector's permanent
    generation, so that a child's collections never walk (and so never copy on write) the pages
    it lies on."""
    # a simulate_cell job took 0.30 s without the freeze, 0.19 s with it
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 (a job that needs it fails with the error in its own log)
            pass
    gc.collect()
    gc.freeze()


def main(name: str) -> None:
    single_threaded_environment()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:  # bound before the imports, so that clients arriving meanwhile wait instead of starting more
        listener.bind("\0" + name)
    except OSError:
        return  # another client's server has the name
    listener.listen(64)
    preload()
    # A thread that some import started anyway: forking is then unsafe, and every client is told
    # to run its script itself (as without the server).
    serve(listener, forking=threads() == 1)


if __name__ == "__main__":  # run as the module glmflow.jobserver, not as a copy named __main__
    importlib.import_module("glmflow.jobserver").main(sys.argv[1])
