"""Background processes: the course's one way to start, watch and stop them.

Everything a lesson or a test runs in the background (RQ workers, the
subscriber, stream consumers, the HTTP service, rq-dashboard, the bench's
listener, JupyterLab in the browser tests) is a :class:`BackgroundProcess`:
a pid, a log file holding its output, a graceful :meth:`~BackgroundProcess.stop`
(SIGTERM, then SIGKILL if it hangs) and a hard :meth:`~BackgroundProcess.kill`.

Each is started through this module's launcher::

    python -m helpers.processes --stop-with-pid PID MODULE [ARGS...]

which watches process ``PID`` (the notebook kernel, the test session) from a
thread and, once it is gone, stops the process gracefully (SIGTERM to itself,
SIGKILL after a grace period), then runs ``python -m MODULE ARGS`` in the
same process. So nothing a kernel started outlives it, even when the kernel
dies by SIGKILL and runs no clean-up at all.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

STOP_GRACE_S = 10.0  # after SIGTERM, how long a process gets before SIGKILL
ORPHAN_GRACE_S = 5.0  # the same, once the process that started it is gone

P = TypeVar("P", bound="BackgroundProcess")


def pid_running(pid: int) -> bool:
    """Is process ``pid`` running on this machine (a zombie is not)?"""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), whatever
    process group or session they moved to."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def terminate(pids: list[int], timeout_s: float = STOP_GRACE_S) -> None:
    """SIGTERM each of ``pids`` and wait (up to ``timeout_s`` in all) until
    none is running (a zombie counts as gone)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(pid_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid``, its process group if it leads one, and every process
    below it (found first: RQ's work-horses, for one, live in groups of
    their own). Returns the pids killed."""
    below = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    for each in [pid, *below]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)
    return [pid, *below]


def stop_when_gone(pid: int, interval: float = 0.5, grace_s: float = ORPHAN_GRACE_S) -> None:
    """Watch process ``pid`` from a daemon thread; once it is gone (a notebook
    kernel that died, a service killed with SIGKILL), send this process
    SIGTERM, its graceful stop, and SIGKILL this process and what runs below
    it if it is still alive ``grace_s`` seconds later (a process stuck on
    purpose, or a handler that never returns).

    When ``pid`` is this process's parent, being re-parented also counts as
    gone (the dead parent may not be reaped yet)."""
    was_parent = os.getppid() == pid

    def gone() -> bool:
        return (was_parent and os.getppid() != pid) or not pid_running(pid)

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        kill_tree(os.getpid())

    threading.Thread(target=watch, name=f"stop-when-{pid}-gone", daemon=True).start()


@dataclass
class BackgroundProcess:
    """A process started by :meth:`start`, its output in ``log_file``."""

    args: list[str]
    log_file: Path | None  # None: it writes to its starter's stdout and stderr
    process: subprocess.Popen[bytes] = field(repr=False)

    @classmethod
    def start(
        cls: type[P],
        module_args: Sequence[str],
        *,
        log_file: Path | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        new_session: bool = True,
        stop_at_exit: bool = True,
        **fields: object,
    ) -> P:
        """Run ``python -m <module_args>`` (or ``python FILE.py ARGS``) in the background, its output
        appended to ``log_file`` (``None``: this process's own stdout and
        stderr), stopping by itself once this process is gone.

        ``new_session``: its own session and process group, so a Ctrl+C or a
        kill of the starter's group does not reach it (the default).
        ``stop_at_exit``: a graceful stop when this interpreter exits normally.
        ``fields``: the extra fields of a subclass."""
        args = [sys.executable, "-m", "helpers.processes", "--stop-with-pid", str(os.getpid())]
        args += list(module_args)
        environment = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        with contextlib.ExitStack() as stack:
            log = None
            if log_file is not None:
                log_file.parent.mkdir(parents=True, exist_ok=True)
                log = stack.enter_context(open(log_file, "ab"))
            process = subprocess.Popen(
                args,
                env=environment,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=new_session,
            )
        started = cls(args, log_file, process, **fields)
        if stop_at_exit:
            atexit.register(started._stop_at_exit)
        return started

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """True until the process has exited."""
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Its exit code, None while it runs (negative: killed by that signal)."""
        return self.process.poll()

    def output(self) -> str:
        """Everything the process has written so far."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text()

    def lines(self, prefix: str = "") -> list[str]:
        """The lines of :meth:`output` that start with ``prefix``."""
        return [line for line in self.output().splitlines() if line.startswith(prefix)]

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; returns its exit code."""
        return self.process.wait(timeout)

    def wait_for_output(
        self, predicate: Callable[[list[str]], bool], timeout: float = 30.0
    ) -> list[str]:
        """Block until ``predicate(lines so far)`` holds and return the lines;
        ``TimeoutError`` (with the output) if it does not within ``timeout``
        seconds or the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline or not self.running:
                state = "still running" if self.running else f"exited with {self.returncode}"
                raise TimeoutError(
                    f"{self.describe()}: condition not met ({state}); output:\n{self.output()}"
                )
            time.sleep(0.02)

    def wait_until_ready(self, ready: Callable[[], bool], timeout: float, name: str) -> None:
        """Block until ``ready()`` holds (a service answers, say). ``RuntimeError``
        with its output if the process exits first; after ``timeout`` seconds,
        stop it and raise ``TimeoutError`` with its output."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.running:
                raise RuntimeError(
                    f"{name} exited with {self.returncode}:\n{self.output()[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"{name} was not ready within {timeout:g} s:\n{self.output()[-2000:]}"
                )
            time.sleep(0.05)

    def wait_for_lines(self, prefix: str, count: int, timeout: float = 60.0) -> list[str]:
        """Wait until the output holds ``count`` lines starting with ``prefix``
        (e.g. ``"Seat reservation job"``) and return them."""
        self.wait_for_output(lambda _lines: len(self.lines(prefix)) >= count, timeout)
        return self.lines(prefix)

    def describe(self) -> str:
        """The command it runs, without the interpreter and the launcher."""
        return " ".join(self.args[5:])

    def stop(self, timeout: float = STOP_GRACE_S) -> int:
        """Graceful stop: SIGTERM (a worker finishes its job, a service its
        requests), then :meth:`kill` if it has not exited after ``timeout``
        seconds. Returns the exit code."""
        atexit.unregister(self._stop_at_exit)  # nothing left to do at exit
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> list[int]:
        """Hard stop, as when a machine dies: SIGKILL to the process and every
        process below it; nothing is cleaned up. Returns the pids killed."""
        atexit.unregister(self._stop_at_exit)
        killed = kill_tree(self.process.pid)
        self.process.wait()
        return killed

    def _stop_at_exit(self) -> None:
        if self.running:
            self.stop(timeout=STOP_GRACE_S)

    def __enter__(self: P) -> P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """The launcher: ``--stop-with-pid PID MODULE [ARGS...]``: watch PID, then
    run MODULE (or a ``.py`` file) as ``__main__`` with ARGS (parsed by hand:
    ARGS are MODULE's)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[0] != "--stop-with-pid" or not argv[1].isdigit():
        print("usage: python -m helpers.processes --stop-with-pid PID MODULE [ARGS...]")
        return 2
    stop_when_gone(int(argv[1]))
    sys.argv = [argv[2], *argv[3:]]
    if argv[2].endswith(".py"):  # a file, run as ``python FILE`` would (the checker's)
        sys.path[0] = str(Path(argv[2]).resolve().parent)
        runpy.run_path(argv[2], run_name="__main__")
    else:
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
