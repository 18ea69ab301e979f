"""`python -m snakemake ...` for the tests, forked from a process that has imported Snakemake,
its plugins and the modules the Snakefile imports: each run then costs its own work, not the
imports (4.2 s of the 4.6 s a dry run of tests/config/small.yaml took on its own; 0.42 s forked).

The child is the real Snakemake command line, as `python -m snakemake` runs it: the test's
working directory, environment, process state (umask, limits, nice value and CPU affinity, as
the job server carries them), standard streams (files of the caller's), ``sys.argv`` and
``sys.path[0]`` (the working directory, as ``-m`` puts it), default signal handlers; the server
reports its exit status, or the signal that killed it, as ``subprocess`` does. The server is
this pytest process's own (its socket's name carries the pid and only the same user may
connect), is started on the first call and exits with its parent. Runs that import the
package from elsewhere (a test's edited copy on PYTHONPATH) are started as fresh processes by
the caller (conftest.snakemake), since the server has the installed package loaded.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from glmflow.jobserver import process_state, single_threaded_environment, take_process_state

# Snakemake, what the Snakefile imports, and what a run imports after its start (listed from
# the modules that a dry run and a run of tests/config/small.yaml added: 0.2 s of each start)
PRELOAD = ["snakemake.cli", "snakemake.api", "snakemake.assets", "snakemake.benchmark", "snakemake.profiles",
           "snakemake.report", "snakemake.storage", "glmflow.plan", "glmflow.runs", "glmflow.snakemake_fixes",
           "glmflow.report_plan", "glmflow.study", "glmflow.config", "glmflow.data",
           "glmflow.fingerprint", "glmflow.kernels", "PIL.Image", "argparse_dataclass", "docutils.core", "dpath",
           "fastjsonschema", "nbformat", "packaging.version", "platformdirs", "pygments.lexers",
           "pygments.formatters", "requests", "smart_open", "yte"]  # fmt: skip
_server: subprocess.Popen | None = None
MAIN = importlib.util.find_spec("snakemake.__main__").origin


def _name() -> str:
    return f"glmflow-test-snakemake-{os.getuid()}-{os.getpid()}"


def _connect() -> socket.socket:
    global _server
    name = _name()
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen([sys.executable, __file__, name, str(os.getpid())], cwd="/",
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            client.connect("\0" + name)
            return client
        except OSError:
            client.close()
            if time.monotonic() > deadline or _server.poll() is not None:
                raise RuntimeError(f"the forked-Snakemake server did not start (exit {_server.poll()})") from None
            time.sleep(0.02)


def run(arguments: list[str], cwd, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """``python -m snakemake *arguments`` in ``cwd`` with ``env``; its output captured."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, _connect() as connection:
        header = {"argv": ["snakemake", *arguments], "cwd": str(cwd), "env": env, "state": process_state()}
        header = json.dumps(header)
        socket.send_fds(connection, [header.encode()], [out.fileno(), err.fileno()])
        connection.settimeout(timeout)
        try:
            status = connection.recv(64).decode()
        except TimeoutError:
            raise subprocess.TimeoutExpired(["snakemake", *arguments], timeout) from None
        kind, _, number = status.partition(" ")
        code = int(number) if kind == "exit" else -int(number) if kind == "signal" else 1
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            [sys.executable, "-m", "snakemake", *arguments], code,
            out.read().decode(errors="replace"), err.read().decode(errors="replace"),
        )  # fmt: skip


def _child(header: dict, descriptors: list[int]) -> None:
    """In the forked process: become `python -m snakemake` in the caller's place; never returns."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, descriptor in enumerate(descriptors, start=1):
            os.dup2(descriptor, target)
            os.close(descriptor)
        os.chdir(header["cwd"])
        os.environ.clear()
        os.environ.update(header["env"])
        take_process_state(header["state"])  # umask, limits, nice value, affinity: the caller's
        sys.argv = [MAIN, *header["argv"][1:]]  # as `python -m snakemake` has it
        sys.path[0] = header["cwd"]
        from snakemake.cli import main
        from snakemake.workflow import Workflow

        Workflow._rundir = header["cwd"]  # Snakemake takes it from the cwd when it is imported
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001 (printed as Python prints an uncaught exception)
            traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # what the interpreter's exit would run (os._exit skips it)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status & 0xFF)


def _status(status: int) -> bytes:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}".encode()
    return f"exit {os.WEXITSTATUS(status)}".encode()


def serve(listener: socket.socket, parent: int) -> None:
    """Fork a child per request; send each caller its child's exit status as soon as it exits
    (a pidfd turns readable then); kill a child whose caller went away; exit when the parent has."""
    children: dict[socket.socket, tuple[int, int]] = {}  # the caller's connection -> (pid, pidfd)
    while os.getppid() == parent:
        exits = {pidfd: connection for connection, (_, pidfd) in children.items()}
        readable, _, _ = select.select([listener, *children, *exits], [], [], 1.0)
        for ready in readable:
            if ready in children:  # the caller closed its end (a timeout): the run ends
                os.kill(children[ready][0], signal.SIGKILL)
            elif ready in exits:
                connection = exits[ready]
                _, status = os.waitpid(children.pop(connection)[0], 0)
                os.close(ready)
                try:
                    connection.send(_status(status))
                except OSError:
                    pass
                connection.close()
        if listener in readable:
            connection, _ = listener.accept()
            message, descriptors, _, _ = socket.recv_fds(connection, 1 << 20, 2)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in [connection, *children]:
                    other.close()
                _child(json.loads(message.decode()), descriptors)
            for descriptor in descriptors:
                os.close(descriptor)
            children[connection] = (pid, os.pidfd_open(pid))


def _collect_plugins() -> None:
    """Snakemake's plugin registries, made here once for every child: each is a singleton that
    lists the installed plugins by scanning every folder of sys.path when it is first made. The
    children would list the same plugins (a test's working directory holds none)."""
    # the scans took 0.08-0.16 of the 0.42-0.52 CPU-s of a forked dry run of small.yaml
    from snakemake_interface_common.plugin_registry import PluginRegistryBase

    pending = [PluginRegistryBase]
    while pending:
        registry = pending.pop()
        pending.extend(registry.__subclasses__())
        if not inspect.isabstract(registry):
            registry()


def main(name: str, parent: int) -> None:
    single_threaded_environment()
    os.environ.pop("GLMFLOW_IN_JOBSERVER")  # not a job server: the runs' own jobs may use one
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind("\0" + name)
    listener.listen(16)
    for module in PRELOAD:
        importlib.import_module(module)
    for plugin in pkgutil.iter_modules():  # what Snakemake's plugin registries import at start
        if plugin.name.startswith("snakemake_"):
            importlib.import_module(plugin.name)
    _collect_plugins()
    gc.collect()
    gc.freeze()
    serve(listener, parent)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
