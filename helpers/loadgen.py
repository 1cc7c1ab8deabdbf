"""A small HTTP load generator for services on this machine (loopback only).

``wrk`` is not always installed, and needs no more than this: N keep-alive
connections, each sending ``GET`` after ``GET`` (one request in flight per
connection, like ``wrk``), for a bounded time and a bounded number of
requests. Raw sockets and ``asyncio.Protocol`` (with uvloop when installed)
keep the generator's own cost small, so what it measures is mostly the
server. Responses are counted by status and by body, so a load run also
says, for instance, how many reservations were confirmed and how many refused.

It is one process on one event loop, the counterpart of ``wrk -t1`` (one
thread); being Python, it spends more CPU per request than ``wrk`` does, and
on a small machine that CPU is taken from the server it loads
(:mod:`helpers.bench` measures both). Like ``wrk``, it counts from the first
request unless given a warm-up.

From Python::

    result = run_load("http://127.0.0.1:1245/reserve_product/1", connections=16, duration_s=5)
    print(result.summary())

From a shell::

    python -m helpers.loadgen http://127.0.0.1:1245/reserve_product/1 -c 16 -d 5

Only loopback addresses are accepted (127.0.0.0/8, ``localhost``, ``::1``):
a load test never leaves the machine. Runs stop by themselves: at most
``MAX_DURATION_S`` seconds and ``MAX_CONNECTIONS`` connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

MAX_DURATION_S = 120.0
MAX_CONNECTIONS = 1024
MAX_DISTINCT_BODIES = 20  # bodies counted one by one; any more are lumped together
OTHER_BODIES = b"(other bodies)"

T = TypeVar("T")


@dataclass
class LoadResult:
    """What a load run measured. ``requests`` counts completed responses
    after the warm-up; ``statuses`` and ``bodies`` count them by value."""

    url: str
    connections: int
    duration_s: float
    requests: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: Counter[bytes] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list, repr=False)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def latency_percentile(self, percent: float) -> float:
        """Latency (seconds) below which ``percent`` % of requests completed."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, int(len(ordered) * percent / 100))
        return ordered[index]

    def merge(self, other: LoadResult) -> None:
        """Add another run's counts (used when several processes share a load)."""
        self.requests += other.requests
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.bodies.update(other.bodies)
        self.latencies_s.extend(other.latencies_s)
        self.duration_s = max(self.duration_s, other.duration_s)
        self.connections += other.connections

    def summary(self) -> str:
        """A few lines for people: rate, latency, statuses, bodies."""
        lines = [
            f"{self.url}: {self.connections} connections, {self.duration_s:.1f} s",
            f"  {self.requests} requests, {self.requests_per_s:,.0f} requests/s, "
            f"{self.errors} errors",
            f"  latency p50 {self.latency_percentile(50) * 1000:.2f} ms, "
            f"p99 {self.latency_percentile(99) * 1000:.2f} ms",
            f"  statuses: {dict(sorted(self.statuses.items()))}",
        ]
        for body, count in self.bodies.most_common():
            lines.append(f"  {count:>8} × {body.decode(errors='replace')}")
        return "\n".join(lines)


def check_loopback(host: str) -> None:
    """Refuse any host that is not this machine's loopback."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host!r}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_loopback:
            raise ValueError(f"{host} is not a loopback address: load tests stay on this machine")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, read its response, repeat."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.done: asyncio.Future[None] = run.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if not self.run.may_send():
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = _content_length(head)
            if length is None:  # no Content-Length: not a response we can frame
                self.run.errors += 1
                assert self.transport is not None
                self.transport.close()
                return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            self.run.record(head, body, time.perf_counter() - self.sent_at)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.run.errors += 1
        if not self.done.done():
            self.done.set_result(None)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


class _Run:
    """Shared state of one load run (one event loop)."""

    def __init__(self, url: str, duration_s: float, max_requests: int | None, warmup_s: float):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port/path URLs: {url!r}")
        check_loopback(parts.hostname)
        self.host = parts.hostname
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: helpers.loadgen\r\n\r\n"
        ).encode()
        self.loop = asyncio.get_running_loop()
        self.started = time.perf_counter()
        self.measure_from = self.started + warmup_s
        self.deadline = self.measure_from + duration_s
        self.max_requests = max_requests
        self.sent = 0
        self.errors = 0
        self.statuses: Counter[int] = Counter()
        self.bodies: Counter[bytes] = Counter()
        self.latencies: list[float] = []

    def may_send(self) -> bool:
        if time.perf_counter() >= self.deadline:
            return False
        if self.max_requests is not None and self.sent >= self.max_requests:
            return False
        self.sent += 1
        return True

    def record(self, head: bytes, body: bytes, latency: float) -> None:
        if time.perf_counter() < self.measure_from:
            return
        self.statuses[int(head[9:12])] += 1
        if body in self.bodies or len(self.bodies) < MAX_DISTINCT_BODIES:
            self.bodies[body] += 1
        else:
            self.bodies[OTHER_BODIES] += 1
        self.latencies.append(latency)


async def load(
    url: str,
    *,
    connections: int = 16,
    duration_s: float = 5.0,
    max_requests: int | None = None,
    warmup_s: float = 0.0,
) -> LoadResult:
    """Run a load against ``url`` in the running event loop.

    ``connections`` keep-alive connections send requests back to back for
    ``duration_s`` seconds after ``warmup_s`` seconds of warm-up (not
    counted), or until ``max_requests`` requests have been sent in all.
    """
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be between 1 and {MAX_CONNECTIONS}")
    if not 0 < duration_s + warmup_s <= MAX_DURATION_S:
        raise ValueError(f"a run lasts at most {MAX_DURATION_S} s")
    run = _Run(url, duration_s, max_requests, warmup_s)
    results = await asyncio.gather(
        *(
            run.loop.create_connection(lambda: _Connection(run), run.host, run.port)
            for _ in range(connections)
        ),
        return_exceptions=True,
    )
    protocols = []
    for outcome in results:
        if isinstance(outcome, BaseException):
            run.errors += 1
        else:
            protocols.append(outcome[1])
    if protocols:
        # Every connection closes itself at the deadline; the timeout is a safety net.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(p.done for p in protocols)), duration_s + warmup_s + 30
            )
        for p in protocols:
            if p.transport is not None:
                p.transport.close()
    measured = min(time.perf_counter(), run.deadline) - run.measure_from
    return LoadResult(
        url=url,
        connections=connections,
        duration_s=max(measured, 0.0),
        requests=sum(run.statuses.values()),
        errors=run.errors,
        statuses=run.statuses,
        bodies=run.bodies,
        latencies_s=run.latencies,
    )


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (uvloop if installed). Inside a
    running loop (a notebook cell), run it on a thread of its own."""
    try:
        import uvloop  # noqa: PLC0415

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return runner(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = runner(coroutine)
        except BaseException as error:  # handed back to the caller's thread
            box["error"] = error

    thread = threading.Thread(target=target, name="loadgen")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_load(
    url: str,
    *,
    connections: int = 16,
    duration_s: float = 5.0,
    max_requests: int | None = None,
    warmup_s: float = 0.0,
) -> LoadResult:
    """Blocking :func:`load` on its own event loop; usable from a notebook cell."""
    return _run_coroutine(
        load(
            url,
            connections=connections,
            duration_s=duration_s,
            max_requests=max_requests,
            warmup_s=warmup_s,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.loadgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("url", help="http://127.0.0.1:PORT/path (loopback only)")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("-n", "--requests", type=int, default=None, help="stop after N requests")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted, first")
    args = parser.parse_args(argv)
    try:
        result = run_load(
            args.url,
            connections=args.connections,
            duration_s=args.duration,
            max_requests=args.requests,
            warmup_s=args.warmup,
        )
    except ValueError as error:
        parser.error(str(error))
    print(result.summary())
    return 0 if result.requests else 1


if __name__ == "__main__":
    sys.exit(main())
