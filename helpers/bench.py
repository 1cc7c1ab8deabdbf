"""Throughput of every pattern the course teaches, measured in one run.

Command line::

    python -m helpers.bench [--json] [--quick] [--only GROUP ...] [--http-workers N]

Runs against the course server (or ``REDIS_URL``) and prints a table, or with
``--json`` one JSON object. Its numeric top-level keys are the figures:

==================================  =================================================
``redis_ping_per_s``                PING, one round trip each (``_pipelined``: 100 a trip)
``raw_queue_per_s``                 a Redis list as a queue: LPUSH then BRPOP, one
                                    round trip each (``_reliable``: BLMOVE + LREM ack;
                                    ``_pipelined``: 100 commands a trip)
``rq_enqueue_per_s``                RQ ``enqueue`` one by one (``_many``: ``enqueue_many``,
                                    100 jobs a pipeline)
``rq_process_per_s``                trivial jobs through RQ's default forking Worker,
                                    enqueue to finish (``_fork_import``: the job's
                                    module imported by every work-horse;
                                    ``_simple``: SimpleWorker; ``_simple_xN``: N
                                    SimpleWorker processes)
``notifications_per_s``             notifications actually sent (recorded in Redis) by
                                    the fast path of :mod:`helpers.fastpath`
``pubsub_p50_ms``, ``pubsub_p99_ms``  publish-to-receive latency, another process listening
``http_reserve_per_s_16``, ``_64``  ``GET /reserve_product/1`` on :mod:`helpers.api`, 16
                                    and 64 keep-alive connections (:mod:`helpers.loadgen`)
``rq_commands_per_job``, ...        Redis commands and round trips per job, per
                                    notification, counted with MONITOR
==================================  =================================================

Beside them: ``meta`` (machine, load, versions, seconds per group),
``checks`` (counts that must be 0: oversold units, lost or repeated
notifications, failed jobs), ``samples`` (latencies, for plots) and
``details`` (the MONITOR counts by command).

Every loop is bounded in count and in time; everything stays on loopback.
The bench's keys and queues start with ``bench:`` (jobs ``bench-...``); they
are cleared at the start and at the end. The HTTP measurement starts the
service, which sets the stock and seat keys (``item.<id>``,
``available_seats``, ``reservationEnabled``): the bench saves them first and
restores them afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import rq
from rq import Queue

from helpers import fastpath
from helpers.client import require_redis
from helpers.notifications import BLACKLISTED_NUMBERS, NOTIFICATION_JOBS
from helpers.server import redis_url
from helpers.workers import queue, start_worker

PREFIX = "bench:"
JOBS_QUEUE = "bench:jobs"
NOTIFY_QUEUE = "bench:notifications"
NOTIFY_NS = "bench:notifications"
RAW_LIST = "bench:raw"
RAW_PROCESSING = "bench:raw:processing"
CHANNEL = "bench:pubsub"
LOCK_KEY = "bench:lock"
JOB_ID_PREFIX = "bench-"
TRIVIAL_JOB = "time.time"  # a function every worker has already imported: no import per job
MODULE_JOB = "helpers.bench.noop"  # a function in a module the worker has not imported
PIPELINE_SIZE = 100
SAMPLES_KEPT = 2000  # latencies kept per distribution, for plots
GROUPS = ("ping", "raw", "enqueue", "process", "notifications", "trace", "pubsub", "http")


def noop() -> None:
    """A job that does nothing, in a module (this one) that a worker imports
    only when it first runs it: a forking worker's work-horse imports it
    again for every job, since the parent never did."""


@dataclass(frozen=True)
class Settings:
    """How much each measurement does: every loop stops at a count or a time."""

    quick: bool
    max_s: float  # time cap of one timed loop
    ping_count: int
    raw_count: int
    enqueue_count: int
    fork_jobs: int
    simple_jobs: int
    processes: tuple[int, ...]  # SimpleWorker processes to try
    notifications: int
    trace_jobs: int
    pubsub_messages: int
    http_s: float
    http_workers: int = 2  # service processes: one per core on the 2-core reference machine


QUICK = Settings(
    quick=True, max_s=1.0, ping_count=20_000, raw_count=10_000, enqueue_count=3_000,
    fork_jobs=40, simple_jobs=300, processes=(1, 2, 4), notifications=10_000,
    trace_jobs=20, pubsub_messages=500, http_s=2.0,
)  # fmt: skip
FULL = Settings(
    quick=False, max_s=3.0, ping_count=100_000, raw_count=50_000, enqueue_count=20_000,
    fork_jobs=200, simple_jobs=2_000, processes=(1, 2, 3, 4), notifications=40_000,
    trace_jobs=50, pubsub_messages=2_000, http_s=5.0,
)  # fmt: skip

DESCRIPTIONS: dict[str, str] = {
    "redis_ping_per_s": "PING, one round trip each",
    "redis_ping_pipelined_per_s": "PING, 100 per round trip (pipeline)",
    "raw_queue_per_s": "list queue: LPUSH, then BRPOP, one round trip each",
    "raw_queue_reliable_per_s": "list queue, reliable: LPUSH, BLMOVE, LREM (ack)",
    "raw_queue_pipelined_per_s": "list queue: LPUSH / RPOP, 100 per round trip",
    "rq_enqueue_per_s": "RQ enqueue, one job at a time",
    "rq_enqueue_many_per_s": "RQ enqueue_many, 100 jobs per pipeline",
    "rq_process_per_s": "RQ jobs done: default forking Worker (fork per job)",
    "rq_process_fork_import_per_s": "RQ jobs done: forking Worker, job module imported per job",
    "rq_process_simple_per_s": "RQ jobs done: SimpleWorker (no fork)",
    "notifications_per_s": "notifications sent: fast path (batches, 2 SimpleWorkers)",
    "rq_commands_per_job": "Redis commands per RQ job (enqueue + worker)",
    "rq_round_trips_per_job": "round trips per RQ job (enqueue + worker)",
    "fastpath_commands_per_notification": "Redis commands per notification, fast path",
    "fastpath_round_trips_per_notification": "round trips per notification, fast path",
    "rq_job_serialize_us": "build and serialize one RQ job (JSON), no Redis",
    "os_fork_ms": "fork + exit + wait of an idle process",
    "pubsub_p50_ms": "publish to receive, median (listener in another process)",
    "pubsub_p99_ms": "publish to receive, 99th percentile",
    "http_reserve_per_s_16": "GET /reserve_product/1, 16 connections",
    "http_reserve_per_s_64": "GET /reserve_product/1, 64 connections",
    "http_reserve_p99_ms_64": "GET /reserve_product/1 latency p99, 64 connections",
}


def describe(key: str) -> str:
    """What a result key measures (scaled variants are named after their base)."""
    if key in DESCRIPTIONS:
        return DESCRIPTIONS[key]
    if key.startswith("rq_process_simple_x"):
        n = key.removeprefix("rq_process_simple_x").removesuffix("_per_s")
        return f"RQ jobs done: {n} SimpleWorker processes"
    return ""


# --- keys -------------------------------------------------------------------


def bench_key_patterns() -> list[str]:
    """Glob patterns of every key the bench creates (its lock excepted)."""
    return [f"{PREFIX}*", f"rq:*:{PREFIX}*", f"rq:*:{JOB_ID_PREFIX}*"]


def clear_bench_keys(client: redis.Redis) -> int:
    """Delete the bench's keys (not its lock) and its RQ registrations."""
    deleted = 0
    for pattern in bench_key_patterns():
        batch = [k for k in client.scan_iter(match=pattern, count=1000) if _text(k) != LOCK_KEY]
        for start in range(0, len(batch), 1000):
            deleted += int(client.delete(*batch[start : start + 1000]))
    for registry_set in ("rq:queues", "rq:workers"):
        members = [m for m in client.smembers(registry_set) if f":{PREFIX}" in _text(m)]
        if members:
            client.srem(registry_set, *members)
    return deleted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- small timing helpers -----------------------------------------------------


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def timed_loop(step: Callable[[], int], max_items: int, max_s: float) -> tuple[int, float]:
    """Call ``step`` (which returns how many items it handled) until
    ``max_items`` are done or ``max_s`` has passed; returns (items, seconds)."""
    done = 0
    start = time.perf_counter()
    deadline = start + max_s
    while done < max_items and time.perf_counter() < deadline:
        done += step()
    return done, time.perf_counter() - start


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for an empty list)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


def _thin(values: Sequence[float], keep: int = SAMPLES_KEPT) -> list[float]:
    """At most ``keep`` values spread evenly over ``values`` (for plots)."""
    if len(values) <= keep:
        return [round(v, 4) for v in values]
    step = len(values) / keep
    return [round(values[int(i * step)], 4) for i in range(keep)]


@dataclass
class Run:
    """One bench run: where, how much, and what was found."""

    url: str
    settings: Settings
    echo: Callable[[str], object]
    results: dict[str, float] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def client(self, decode: bool = False) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=decode)

    def record(self, key: str, value: float) -> None:
        self.results[key] = round(value, 3)
        self.echo(f"  {key:<38} {value:>12,.2f}   {describe(key)}")


# --- Redis itself -------------------------------------------------------------


def measure_ping(run: Run) -> None:
    """PING one round trip at a time, then 100 per pipeline."""
    s = run.settings
    with run.client() as client:
        client.ping()
        done, seconds = timed_loop(lambda: int(bool(client.ping())), s.ping_count, s.max_s)
        run.record("redis_ping_per_s", _rate(done, seconds))

        def pipelined() -> int:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.ping()
                return sum(1 for reply in pipe.execute() if reply)

        done, seconds = timed_loop(pipelined, s.ping_count * 10, s.max_s)
        run.record("redis_ping_pipelined_per_s", _rate(done, seconds))


def measure_raw_queue(run: Run) -> None:
    """A Redis list as a queue, without RQ: the ceiling every job queue sits under."""
    s = run.settings
    with run.client() as client:
        client.delete(RAW_LIST, RAW_PROCESSING)
        counter = iter(range(10**9))

        # Producer then consumer, one command (one round trip) per item each.
        pushed, push_s = timed_loop(
            lambda: int(client.lpush(RAW_LIST, next(counter)) > 0), s.raw_count, s.max_s / 2
        )
        start = time.perf_counter()
        popped = sum(1 for _ in range(pushed) if client.brpop([RAW_LIST], timeout=1))
        run.record("raw_queue_per_s", _rate(popped, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] = pushed - popped

        # Reliable: the item moves to a processing list, and is removed (ack) when done.
        pushed, push_s = timed_loop(
            lambda: int(client.lpush(RAW_LIST, next(counter)) > 0), s.raw_count, s.max_s / 2
        )
        start = time.perf_counter()
        acked = 0
        for _ in range(pushed):
            item = client.blmove(RAW_LIST, RAW_PROCESSING, 1, "RIGHT", "LEFT")
            if item is not None:
                acked += int(client.lrem(RAW_PROCESSING, 1, item))
        run.record("raw_queue_reliable_per_s", _rate(acked, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] += pushed - acked

        # The same commands, 100 per round trip.
        def push_many() -> int:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.lpush(RAW_LIST, next(counter))
                return len(pipe.execute())

        pushed, push_s = timed_loop(push_many, s.raw_count * 5, s.max_s / 2)
        start = time.perf_counter()
        popped = 0
        for _ in range(0, pushed, PIPELINE_SIZE):
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.rpop(RAW_LIST)
                popped += sum(1 for item in pipe.execute() if item is not None)
        run.record("raw_queue_pipelined_per_s", _rate(popped, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] += pushed - popped
        client.delete(RAW_LIST, RAW_PROCESSING)


# --- RQ -------------------------------------------------------------------------


def _clear_queue(client: redis.Redis, name: str) -> None:
    """Remove a bench queue's jobs and registries."""
    clear_bench_keys(client)
    client.srem("rq:queues", f"rq:queue:{name}")


def measure_rq_enqueue(run: Run) -> None:
    """RQ's enqueue cost: one job per call, then ``enqueue_many`` in pipelines."""
    s = run.settings
    with run.client() as client:
        q = queue(JOBS_QUEUE, client)
        counter = iter(range(10**9))

        def one() -> int:
            q.enqueue(TRIVIAL_JOB, job_id=f"{JOB_ID_PREFIX}e-{next(counter)}")
            return 1

        done, seconds = timed_loop(one, s.enqueue_count, s.max_s)
        run.record("rq_enqueue_per_s", _rate(done, seconds))
        run.checks["rq_enqueue_missing"] = done - q.count
        _clear_queue(client, JOBS_QUEUE)

        def many() -> int:
            datas = [
                Queue.prepare_data(TRIVIAL_JOB, job_id=f"{JOB_ID_PREFIX}m-{next(counter)}")
                for _ in range(PIPELINE_SIZE)
            ]
            with client.pipeline() as pipe:
                q.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
            return len(datas)

        done, seconds = timed_loop(many, s.enqueue_count * 5, s.max_s)
        run.record("rq_enqueue_many_per_s", _rate(done, seconds))
        run.checks["rq_enqueue_missing"] += done - q.count
        _clear_queue(client, JOBS_QUEUE)

        # What one job costs in Python before any Redis command: build + serialize.
        from rq.job import Job  # noqa: PLC0415

        def build() -> int:
            job = Job.create(TRIVIAL_JOB, connection=client, serializer=q.serializer)
            job.to_dict()
            return 1

        done, seconds = timed_loop(build, 2_000, s.max_s / 2)
        run.record("rq_job_serialize_us", 1e6 * seconds / max(done, 1))


def process_rate(
    run: Run, worker_class: str, processes: int, jobs: int, tag: str, func: str = TRIVIAL_JOB
) -> tuple[int, float]:
    """Start ``processes`` workers of ``worker_class``, then enqueue ``jobs``
    jobs of ``func`` (pipelined, 100 at a time) and wait until they are
    finished or the time cap passes. Returns (jobs finished, seconds),
    enqueue included."""
    max_s = run.settings.max_s * 3
    with run.client() as client:
        q = queue(JOBS_QUEUE, client)
        finished_key = q.finished_job_registry.key
        failed_key = q.failed_job_registry.key
        workers = start_worker(JOBS_QUEUE, worker_class=worker_class, concurrency=processes)
        try:
            start = time.perf_counter()
            deadline = start + max_s
            for first in range(0, jobs, PIPELINE_SIZE):
                datas = [
                    Queue.prepare_data(func, job_id=f"{JOB_ID_PREFIX}{tag}-{i}")
                    for i in range(first, min(first + PIPELINE_SIZE, jobs))
                ]
                with client.pipeline() as pipe:
                    q.enqueue_many(datas, pipeline=pipe)
                    pipe.execute()
            done = 0
            while time.perf_counter() < deadline:
                done = int(client.zcard(finished_key))
                if done + int(client.zcard(failed_key)) >= jobs:
                    break
                time.sleep(0.005)
            seconds = time.perf_counter() - start
            run.checks["rq_failed_jobs"] = run.checks.get("rq_failed_jobs", 0) + int(
                client.zcard(failed_key)
            )
        finally:
            workers.stop(timeout=15)
            _clear_queue(client, JOBS_QUEUE)
    return done, seconds


def measure_rq_process(run: Run) -> None:
    """Jobs done per second: forking Worker, SimpleWorker, several processes."""
    s = run.settings
    done, seconds = process_rate(run, "fork", 1, s.fork_jobs, "f1")
    run.record("rq_process_per_s", _rate(done, seconds))
    done, seconds = process_rate(run, "fork", 1, s.fork_jobs // 4, "fi", MODULE_JOB)
    run.record("rq_process_fork_import_per_s", _rate(done, seconds))
    for n in s.processes:
        done, seconds = process_rate(run, "simple", n, s.simple_jobs * n, f"s{n}")
        key = "rq_process_simple_per_s" if n == 1 else f"rq_process_simple_x{n}_per_s"
        run.record(key, _rate(done, seconds))
    run.record("os_fork_ms", fork_cost_ms(20))


def fork_cost_ms(times: int) -> float:
    """Milliseconds to fork this process, let the child exit and reap it."""
    start = time.perf_counter()
    for _ in range(times):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    return 1000 * (time.perf_counter() - start) / times


# --- the fast notification path ---------------------------------------------


def bench_notifications(count: int) -> list[dict[str, str]]:
    """``count`` valid notifications (the original's, without blacklisted numbers)."""
    allowed = [n for n in NOTIFICATION_JOBS if n["phoneNumber"] not in BLACKLISTED_NUMBERS]
    return [allowed[i % len(allowed)] for i in range(count)]


def measure_notifications(run: Run, workers: int = 2) -> None:
    """The fast path end to end: enqueue batches (pipelined), ``workers``
    SimpleWorker processes send; counted in the outbox, checked exactly once."""
    s = run.settings
    count = s.notifications
    with run.client() as client:
        q = queue(NOTIFY_QUEUE, client)
        processes = start_worker(NOTIFY_QUEUE, worker_class="simple", concurrency=workers)
        try:
            notes = bench_notifications(count)
            start = time.perf_counter()
            deadline = start + s.max_s * 5
            chunk = fastpath.BATCH_SIZE * 10  # so that workers start before the last batch is in
            for first in range(0, count, chunk):
                fastpath.enqueue_notification_batches(q, notes[first : first + chunk], ns=NOTIFY_NS)
            sent = 0
            while time.perf_counter() < deadline:
                sent = fastpath.sent_count(client, NOTIFY_NS)
                if sent >= count:
                    break
                time.sleep(0.005)
            seconds = time.perf_counter() - start
        finally:
            processes.stop(timeout=15)
        run.record("notifications_per_s", _rate(sent, seconds))
        once = fastpath.sent_ids(client, NOTIFY_NS)
        run.checks["notifications_lost"] = count - len(once)
        run.checks["notifications_duplicated"] = sum(n - 1 for n in once.values())
        _clear_queue(client, NOTIFY_QUEUE)


# --- where the commands go: MONITOR -------------------------------------------


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
    marker = f"{PREFIX}trace-end-{os.getpid()}-{time.monotonic_ns()}"
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


def named_url(url: str, name: str) -> str:
    """``url`` asking redis-py to name every connection ``name`` (CLIENT SETNAME)."""
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


@contextlib.contextmanager
def redis_url_set(url: str) -> Iterator[None]:
    """Processes started inside (workers, the HTTP service) use ``url``."""
    saved = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = saved


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
        workers = start_worker(queue_name, worker_class=worker_class)
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


# --- pub/sub latency ----------------------------------------------------------

_LISTENER = r"""
import json, sys, time
import redis
url, channel, count, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
pubsub.subscribe(channel)
latencies = []
deadline = time.monotonic() + limit
while len(latencies) < count and time.monotonic() < deadline:
    message = pubsub.get_message(timeout=0.2)
    if message is None:
        continue
    if message["data"] == b"stop":
        break
    latencies.append(time.monotonic_ns() - int(message["data"]))
print(json.dumps(latencies))
"""


def measure_pubsub(run: Run) -> None:
    """Publish timestamps at a steady pace (about 2,000 a second) to a
    listener in another process; its receive time minus the send time is the
    latency (one machine: both read the same monotonic clock)."""
    s = run.settings
    limit = s.max_s * 5 + 5
    listener = subprocess.Popen(
        [sys.executable, "-c", _LISTENER, run.url, CHANNEL, str(s.pubsub_messages), str(limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with run.client() as client:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not client.pubsub_numsub(CHANNEL)[0][1]:
                time.sleep(0.01)
            for _ in range(s.pubsub_messages):
                client.publish(CHANNEL, str(time.monotonic_ns()))
                time.sleep(0.0005)
            client.publish(CHANNEL, "stop")
        output, _ = listener.communicate(timeout=limit + 5)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    latencies_ms = [ns / 1e6 for ns in json.loads(output or "[]")]
    run.checks["pubsub_lost"] = s.pubsub_messages - len(latencies_ms)
    run.record("pubsub_p50_ms", percentile(latencies_ms, 50))
    run.record("pubsub_p99_ms", percentile(latencies_ms, 99))
    run.samples["pubsub_latency_ms"] = _thin(latencies_ms)


# --- the HTTP service -------------------------------------------------------


def _saved(client: redis.Redis, keys: Sequence[str]) -> dict[str, bytes | None]:
    return {key: client.dump(key) for key in keys}


def _restore(client: redis.Redis, saved: dict[str, bytes | None]) -> None:
    for key, value in saved.items():
        if value is None:
            client.delete(key)
        else:
            client.restore(key, 0, value, replace=True)


def measure_http(run: Run) -> None:
    """Reservations per second through the HTTP service, then a sell-out under
    64 connections that must confirm exactly the stock, never more."""
    from helpers import api, seats, stock  # noqa: PLC0415 - only this group needs them
    from helpers.loadgen import run_load  # noqa: PLC0415

    s = run.settings
    item = 1
    key = stock.item_key(item)
    # The original's body, byte for byte (compact JSON, as Express sends it).
    confirmed = json.dumps(
        {"status": "Reservation confirmed", "itemId": item}, separators=(",", ":")
    ).encode()
    with run.client() as client:
        saved = _saved(client, [*stock.stock_keys(), seats.SEATS_KEY, seats.ENABLED_KEY])
        try:
            service = api.start_service(workers=s.http_workers, env={"REDIS_URL": run.url})
            try:
                url = f"{service.url}/reserve_product/{item}"
                for connections in (16, 64):
                    stock_before = 10**9  # never sold out: every request is a real reservation
                    client.set(key, stock_before)
                    result = run_load(
                        url, connections=connections, duration_s=s.http_s, warmup_s=0.5
                    )
                    taken = stock_before - int(client.get(key))
                    # Warm-up requests were served too: compare all confirmations to the stock taken.
                    run.record(f"http_reserve_per_s_{connections}", result.requests_per_s)
                    run.checks["http_errors"] = run.checks.get("http_errors", 0) + result.errors
                    run.checks["http_not_200"] = run.checks.get("http_not_200", 0) + sum(
                        n for status, n in result.statuses.items() if status != 200
                    )
                    run.checks["http_unconfirmed"] = (
                        run.checks.get("http_unconfirmed", 0)
                        + result.requests
                        - result.bodies.get(confirmed, 0)
                    )
                    if taken < result.bodies.get(confirmed, 0):
                        run.checks["http_oversell"] = run.checks.get("http_oversell", 0) + (
                            result.bodies[confirmed] - taken
                        )
                    run.samples[f"http_latency_ms_{connections}"] = _thin(
                        [x * 1000 for x in result.latencies_s]
                    )
                    if connections == 64:
                        run.record("http_reserve_p99_ms_64", 1000 * result.latency_percentile(99))
                # The race the original lost: 64 clients, 100 units, 2,000 requests.
                client.set(key, 100)
                sellout = run_load(url, connections=64, duration_s=s.max_s * 5, max_requests=2000)
                run.checks["http_oversell"] = run.checks.get("http_oversell", 0) + max(
                    0, sellout.bodies.get(confirmed, 0) - 100
                )
                run.checks["http_stock_below_zero"] = int(int(client.get(key)) < 0)
                run.checks["http_sellout_unsold"] = 100 - sellout.bodies.get(confirmed, 0)
            finally:
                service.stop()
        finally:
            _restore(client, saved)


# --- the run ------------------------------------------------------------------

MEASURES: dict[str, Callable[[Run], None]] = {
    "ping": measure_ping,
    "raw": measure_raw_queue,
    "enqueue": measure_rq_enqueue,
    "process": measure_rq_process,
    "notifications": measure_notifications,
    "trace": measure_trace,
    "pubsub": measure_pubsub,
    "http": measure_http,
}


def _meta(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    info = client.info("server")
    return {
        "quick": settings.quick,
        "redis_version": info.get("redis_version"),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
    }


def run_bench(
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    http_workers: int | None = None,
    url: str | None = None,
    echo: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Measure everything (or the groups in ``only``, see :data:`GROUPS`) and
    return the results: numeric figures at the top level, plus ``meta``,
    ``checks`` and ``samples``. ``echo`` receives progress lines (default:
    none)."""
    settings = QUICK if quick else FULL
    if http_workers is not None:
        settings = Settings(**{**settings.__dict__, "http_workers": http_workers})
    groups = list(only) if only else list(GROUPS)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown groups {unknown}; choose from {', '.join(GROUPS)}")
    run = Run(url or redis_url(), settings, echo or (lambda _line: None))
    started = time.perf_counter()
    with run.client() as client, redis_url_set(run.url):  # workers started use run.url too
        if not client.set(LOCK_KEY, os.getpid(), nx=True, ex=600):
            raise RuntimeError(
                f"another bench is running on this Redis ({LOCK_KEY} is set); "
                "wait for it, or delete that key if it was interrupted"
            )
        try:
            meta = _meta(client, settings)
            clear_bench_keys(client)
            timings = meta["group_s"] = {}
            for group in GROUPS:
                if group in groups:
                    group_start = time.perf_counter()
                    MEASURES[group](run)
                    timings[group] = round(time.perf_counter() - group_start, 1)
        finally:
            clear_bench_keys(client)
            client.delete(LOCK_KEY)
        meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    return {
        **run.results,
        "meta": meta,
        "checks": run.checks,
        "samples": run.samples,
        "details": run.details,
    }


def format_table(results: dict[str, Any]) -> str:
    """The results as a table for people."""
    meta = results.get("meta", {})
    load = " ".join(f"{x:.2f}" for x in meta.get("load_average", []))
    lines = [
        f"Redis {meta.get('redis_version')}, {meta.get('cpus')} CPUs, load average {load} "
        f"at the start, {'quick' if meta.get('quick') else 'full'} run in "
        f"{meta.get('elapsed_s')} s",
        f"{'figure':<38} {'value':>12}   what",
    ]
    for key, value in results.items():
        if isinstance(value, (int, float)):
            lines.append(f"{key:<38} {value:>12,.2f}   {describe(key)}")
    checks = results.get("checks", {})
    if checks:
        lines.append("checks: " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="short run (under a minute)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="measure only these groups")
    parser.add_argument(
        "--http-workers", type=int, default=None, help="processes of the HTTP service (default 2)"
    )
    args = parser.parse_args(argv)
    require_redis()
    echo = None if args.json else print
    if echo:
        echo("Measuring (every figure is a rate per second unless named _ms or _us)...")
    results = run_bench(quick=args.quick, only=args.only, http_workers=args.http_workers, echo=echo)
    if args.json:
        print(json.dumps(results))
    else:
        print()
        print(format_table(results))
    bad = {k: v for k, v in results["checks"].items() if v}
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
