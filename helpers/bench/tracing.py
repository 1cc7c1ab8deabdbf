"""Where the commands go: every command the server runs, recorded with
MONITOR, per client; commands and round trips per RQ job and per
notification of the fast path. MONITOR slows the server down a lot: it
counts, it never times.

MONITOR shows commands, not writes: a pipeline *with* a transaction (redis-py's
default, and what RQ uses) shows as ``MULTI`` ... ``EXEC`` and is counted as
one round trip; a pipeline without one (``transaction=False``) looks like
separate commands. :func:`counting_client` counts round trips on the client
side instead, the same way for both."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from helpers import fastpath
from helpers.bench.harness import (
    JOB_ID_PREFIX,
    JOBS_QUEUE,
    KEY_PREFIX,
    NOTIFY_NS,
    NOTIFY_QUEUE,
    TRIVIAL_JOB,
    Run,
    _clear_queue,
    bench_notifications,
    redis_url_set,
)
from helpers.workers import queue, start_worker

FRAMING = frozenset({"MULTI", "EXEC"})


@dataclass
class Trace:
    """Commands seen by MONITOR, per client address (``lua`` for scripts)."""

    commands: dict[str, list[str]] = field(default_factory=dict)

    def round_trips(self, address: str) -> int:
        """Requests a client sent: a MULTI ... EXEC block (a redis-py
        pipeline) counts once, every other command once."""
        trips = 0
        inside = False
        for name in self.commands.get(address, []):
            if name == "MULTI":
                inside = True
                trips += 1
            elif name == "EXEC":
                inside = False
            elif not inside:
                trips += 1
        return trips

    def commands_of(self, addresses: Iterable[str]) -> int:
        """How many commands these clients sent, MULTI/EXEC framing not counted."""
        return sum(n for name, n in self.count(addresses).items() if name not in FRAMING)

    def count(self, addresses: Iterable[str]) -> Counter[str]:
        """Commands of these clients, by name."""
        total: Counter[str] = Counter()
        for address in addresses:
            total.update(self.commands.get(address, []))
        return total


def trace_commands(url: str, action: Callable[[], None], timeout: float = 30.0) -> Trace:
    """Run ``action`` while MONITOR records every command the server executes.

    MONITOR slows the server down a lot: use it to count, never to time.
    """
    marker = f"{KEY_PREFIX}trace-end-{os.getpid()}-{time.monotonic_ns()}"
    watcher = redis.Redis.from_url(url, socket_timeout=timeout)
    trace = Trace()
    with watcher.monitor() as monitor:
        try:
            action()
        finally:
            with redis.Redis.from_url(url, single_connection_client=True) as client:
                marker_address = client.client_info()["addr"]
                client.echo(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = monitor.next_command()
            if entry["command"].upper().startswith("ECHO") and marker in entry["command"]:
                break
            address = (
                "lua"
                if entry.get("client_type") == "lua"
                else f"{entry['client_address']}:{entry['client_port']}"
            )
            if address != marker_address:
                trace.commands.setdefault(address, []).append(
                    entry["command"].split(" ")[0].upper()
                )
    watcher.close()
    return trace


@dataclass
class Writes:
    """Requests a client wrote (see :func:`counting_client`)."""

    count: int = 0


def counting_client(url: str, **kwargs: Any) -> tuple[redis.Redis, Writes]:
    """A client of ``url`` that counts its writes, and that count.

    redis-py writes one command alone, or a whole pipeline (with or without
    a transaction) in one write, then reads the replies: one write is one
    round trip. A connection's opening handshake (``HELLO``, ``CLIENT
    SETNAME`` ...) is not counted. Close it with ``client.close()`` and
    ``client.connection_pool.disconnect()``."""
    writes = Writes()
    pool = redis.ConnectionPool.from_url(url, **kwargs)
    base: type[Any] = pool.connection_class

    class CountingConnection(base):  # type: ignore[misc, valid-type]
        _handshake = False

        def connect_check_health(self, *args: Any, **kw: Any) -> Any:
            self._handshake = True
            try:
                return super().connect_check_health(*args, **kw)
            finally:
                self._handshake = False

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if not self._handshake:
                writes.count += 1
            super().send_packed_command(command, check_health)

    pool.connection_class = CountingConnection
    return redis.Redis(connection_pool=pool), writes


def named_url(url: str, name: str) -> str:
    """``url`` asking redis-py to name every connection ``name`` (CLIENT SETNAME)."""
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


ENQUEUER, POLLER, WORKER = "bench-enqueuer", "bench-poller", "bench-worker"


def _sides(trace: Trace, client: redis.Redis) -> tuple[list[str], list[str]]:
    """Addresses of the creator's and the workers' connections in ``trace``,
    found by connection name. RQ renames one worker connection after the
    worker; a forking worker's work-horses open connections that are closed
    by the time we look: any address no longer connected is a work-horse's."""
    names = {c["addr"]: c.get("name", "") for c in client.client_list()}
    creator = [a for a in trace.commands if names.get(a) == ENQUEUER]
    workers = [
        a
        for a in trace.commands
        if a != "lua" and (a not in names or names[a] not in (ENQUEUER, POLLER, ""))
    ]
    return creator, workers


def _traced_workers(
    url: str,
    queue_name: str,
    worker_class: str,
    action: Callable[[redis.Redis, redis.Redis], None],
) -> tuple[Trace, list[str], list[str]]:
    """Start one named worker, run ``action(creator, poller)`` (two clients)
    under MONITOR; returns the trace and the creator's and workers' addresses."""
    creator = redis.Redis.from_url(named_url(url, ENQUEUER))
    poller = redis.Redis.from_url(named_url(url, POLLER))
    with redis_url_set(named_url(url, WORKER)):
        workers = start_worker(queue_name, worker_class=worker_class, allow=[TRIVIAL_JOB])
    try:
        trace = trace_commands(url, lambda: action(creator, poller))
        creator_side, worker_side = _sides(trace, poller)
        return trace, creator_side, worker_side
    finally:
        workers.stop(timeout=15)
        _clear_queue(poller, queue_name)
        creator.close()
        poller.close()


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)


def trace_rq_jobs(url: str, jobs: int, worker_class: str = "simple") -> dict[str, Any]:
    """Enqueue ``jobs`` trivial jobs one by one and let one worker run them,
    under MONITOR. Returns commands and round trips per job, for the creator
    and the worker, and the commands by name."""

    def action(creator: redis.Redis, poller: redis.Redis) -> None:
        q = queue(JOBS_QUEUE, creator)
        for i in range(jobs):
            q.enqueue(TRIVIAL_JOB, job_id=f"{JOB_ID_PREFIX}t-{i}")
        _wait(lambda: poller.zcard(q.finished_job_registry.key) >= jobs)
        time.sleep(0.05)  # the worker's last bookkeeping after the job is marked finished

    trace, creator, workers = _traced_workers(url, JOBS_QUEUE, worker_class, action)
    return {
        "jobs": jobs,
        "enqueue_commands_per_job": trace.commands_of(creator) / jobs,
        "enqueue_round_trips_per_job": sum(trace.round_trips(a) for a in creator) / jobs,
        "worker_commands_per_job": trace.commands_of(workers) / jobs,
        "worker_round_trips_per_job": sum(trace.round_trips(a) for a in workers) / jobs,
        "lua_commands_per_job": len(trace.commands.get("lua", [])) / jobs,
        "enqueue_by_command": dict(trace.count(creator).most_common()),
        "worker_by_command": dict(trace.count(workers).most_common()),
    }


def trace_fastpath(url: str, notifications: int) -> dict[str, Any]:
    """The fast path under MONITOR: commands and round trips per notification
    (the creator's and one SimpleWorker's), and the commands by name."""

    def action(creator: redis.Redis, poller: redis.Redis) -> None:
        q = queue(NOTIFY_QUEUE, creator)
        fastpath.enqueue_notification_batches(q, bench_notifications(notifications), ns=NOTIFY_NS)
        _wait(lambda: fastpath.sent_count(poller, NOTIFY_NS) >= notifications)
        time.sleep(0.05)

    with redis.Redis.from_url(url) as client:
        client.script_load(fastpath.SEND_SCRIPT)  # so the trace shows no NOSCRIPT retry
    trace, creator, workers = _traced_workers(url, NOTIFY_QUEUE, "simple", action)
    sides = creator + workers
    return {
        "notifications": notifications,
        "commands_per_notification": trace.commands_of(sides) / notifications,
        "round_trips_per_notification": sum(trace.round_trips(a) for a in sides) / notifications,
        "lua_commands_per_notification": len(trace.commands.get("lua", [])) / notifications,
        "by_command": dict(trace.count(sides).most_common()),
    }


def measure_trace(run: Run) -> None:
    """Count (not time) what one job and one notification cost in Redis."""
    rq_trace = trace_rq_jobs(run.url, run.settings.trace_jobs)
    run.record(
        "rq_commands_per_job",
        rq_trace["enqueue_commands_per_job"] + rq_trace["worker_commands_per_job"],
    )
    run.record(
        "rq_round_trips_per_job",
        rq_trace["enqueue_round_trips_per_job"] + rq_trace["worker_round_trips_per_job"],
    )
    run.details["rq_trace"] = rq_trace
    run.details["rq_fork_trace"] = trace_rq_jobs(run.url, 5, "fork")
    fast = run.details["fastpath_trace"] = trace_fastpath(run.url, fastpath.BATCH_SIZE * 5)
    run.record("fastpath_commands_per_notification", fast["commands_per_notification"])
    run.record("fastpath_round_trips_per_notification", fast["round_trips_per_notification"])
