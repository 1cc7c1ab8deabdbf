"""The bench's harness: its keys, how much each measurement does
(:class:`Settings`), one run's results (:class:`Run`), and the timing helpers
every measurement uses."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from helpers.notifications import BLACKLISTED_NUMBERS, NOTIFICATION_JOBS

KEY_PREFIX = "bench:"  # every key the bench writes starts with it
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
    """A job that does nothing, in a package (``helpers.bench``, whose
    ``__init__`` re-exports it) that a worker imports only when it first runs
    it: a forking worker's work-horse imports it again for every job, since
    the parent never did."""


@dataclass(frozen=True)
class Settings:
    """How much each measurement does: every loop stops at a count or a time."""

    name: str  # "quick", "full" or "smoke" (``meta["size"]``)
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
    http_s: float  # seconds of each HTTP load (no warm-up, like wrk)
    # Service processes of the one multi-process HTTP row (1: no such row). Every
    # other HTTP row runs one service process, as the original ran one Node process.
    http_workers: int = 2


QUICK = Settings(
    name="quick", quick=True, max_s=1.0, ping_count=20_000, raw_count=10_000, enqueue_count=3_000,
    fork_jobs=40, simple_jobs=300, processes=(1, 2, 4), notifications=10_000,
    trace_jobs=20, pubsub_messages=500, http_s=1.0,
)  # fmt: skip


FULL = Settings(
    name="full", quick=False, max_s=3.0, ping_count=100_000, raw_count=50_000, enqueue_count=20_000,
    fork_jobs=200, simple_jobs=2_000, processes=(1, 2, 3, 4), notifications=40_000,
    trace_jobs=50, pubsub_messages=2_000, http_s=5.0,
)  # fmt: skip


# Every figure, check and detail of a quick run, each from far fewer items: for
# tests of the bench's structure, not of its figures (see :func:`quick_settings`).
SMOKE = Settings(
    name="smoke", quick=True, max_s=1.0, ping_count=1_000, raw_count=500, enqueue_count=200,
    fork_jobs=8, simple_jobs=30, processes=QUICK.processes, notifications=1_000,
    trace_jobs=5, pubsub_messages=100, http_s=0.3, http_workers=QUICK.http_workers,
)  # fmt: skip

SIZE_ENV = "COURSE_BENCH_SIZE"  # "smoke": quick runs use SMOKE


def quick_settings() -> Settings:
    """What a quick run does: :data:`QUICK`, or :data:`SMOKE` when
    ``COURSE_BENCH_SIZE=smoke`` is in the environment (the course's tests set
    it where they check that a run measures everything, not how fast)."""
    size = os.environ.get(SIZE_ENV, "").strip().lower()
    if size in ("", QUICK.name):
        return QUICK
    if size == SMOKE.name:
        return SMOKE
    raise ValueError(f"{SIZE_ENV}={size!r}: expected {SMOKE.name!r}, {QUICK.name!r} or unset")


DESCRIPTIONS: dict[str, str] = {
    "redis_ping_per_s": "PING, one round trip each",
    "redis_ping_pipelined_per_s": "PING, 100 per round trip (pipeline)",
    "redis_cpu_us_per_ping": "Redis CPU per PING, one a round trip (loop's CPU / PINGs)",
    "redis_cpu_us_per_ping_pipelined": "Redis CPU per PING, 100 a round trip (loop's CPU / PINGs)",
    "raw_queue_per_s": "list queue: LPUSH, then BRPOP, one round trip each",
    "raw_queue_reliable_per_s": "list queue, reliable: LPUSH, BLMOVE, LREM (ack)",
    "raw_queue_pipelined_per_s": "list queue: LPUSH / RPOP, 100 per round trip",
    "rq_enqueue_per_s": "RQ enqueue, one job at a time",
    "rq_enqueue_many_per_s": "RQ enqueue_many, 100 jobs per pipeline",
    "rq_job_serialize_us": "build + serialize an RQ job (JSON), no Redis (loop / jobs)",
    "rq_process_per_s": "RQ jobs done: default forking Worker (fork per job)",
    "rq_process_fork_import_per_s": "RQ jobs done: forking Worker, job module imported per job",
    "rq_process_simple_per_s": "RQ jobs done: 1 SimpleWorker process (no fork)",
    "redis_cpu_us_per_job": "Redis CPU per RQ job, 1 SimpleWorker (run's CPU / jobs)",
    "os_fork_ms": "fork + exit + wait of an idle process (20 timed, divided)",
    "notifications_per_s": "notifications sent: fast path (100 a job, 2 SimpleWorkers)",
    "redis_cpu_us_per_notification": "Redis CPU per notification, fast path (run's CPU / sent)",
    "rq_commands_per_job": "Redis commands per RQ job (enqueue + worker)",
    "rq_round_trips_per_job": "round trips per RQ job (enqueue + worker)",
    "fastpath_commands_per_notification": "Redis commands per notification, fast path",
    "fastpath_round_trips_per_notification": "round trips per notification, fast path",
    "pubsub_p50_ms": "publish to receive, median (listener in another process)",
    "pubsub_p99_ms": "publish to receive, 99th percentile",
    "http_reserve_per_s_16": "GET /reserve_product/2, stock 10, 16 conns, 1 service process",
    "http_reserve_per_s_64": "GET /reserve_product/2, stock 10, 64 conns, 1 service process",
    "http_reserve_p99_ms_64": "GET /reserve_product/2 latency p99, 64 conns, 1 process",
    "http_service_cpu_us_per_request": "service CPU per request (reserve, 64 conns, 1 process)",
    "http_redis_cpu_us_per_request": "Redis CPU per request (the same load)",
    "http_loadgen_cpu_us_per_request": "load generator CPU per request (the same load)",
    "http_list_per_s_16": "GET /list_products/1, 16 conns, 1 service process",
    "http_list_per_s_64": "GET /list_products/1, 64 conns, 1 service process",
}


def describe(key: str) -> str:
    """What a result key measures (scaled variants are named after their base)."""
    if key in DESCRIPTIONS:
        return DESCRIPTIONS[key]
    if key.startswith("rq_process_simple_x"):
        n = key.removeprefix("rq_process_simple_x").removesuffix("_per_s")
        return f"RQ jobs done: {n} SimpleWorker processes"
    if key.startswith("http_reserve_x"):
        n = key.removeprefix("http_reserve_x").removesuffix("_per_s_64")
        return f"GET /reserve_product/2, stock 10, 64 conns, {n} service processes"
    return ""


def bench_key_patterns() -> list[str]:
    """Glob patterns of every key the bench creates (its lock excepted)."""
    return [f"{KEY_PREFIX}*", f"rq:*:{KEY_PREFIX}*", f"rq:*:{JOB_ID_PREFIX}*"]


def clear_bench_keys(client: redis.Redis) -> int:
    """Delete the bench's keys (not its lock) and its RQ registrations."""
    deleted = 0
    for pattern in bench_key_patterns():
        batch = [k for k in client.scan_iter(match=pattern, count=1000) if _text(k) != LOCK_KEY]
        for start in range(0, len(batch), 1000):
            deleted += int(client.delete(*batch[start : start + 1000]))
    for registry_set in ("rq:queues", "rq:workers"):
        members = [m for m in client.smembers(registry_set) if f":{KEY_PREFIX}" in _text(m)]
        if members:
            client.srem(registry_set, *members)
    return deleted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _clear_queue(client: redis.Redis, name: str) -> None:
    """Remove a bench queue's jobs and registries."""
    clear_bench_keys(client)
    client.srem("rq:queues", f"rq:queue:{name}")


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


def bench_notifications(count: int) -> list[dict[str, str]]:
    """``count`` valid notifications (the original's, without blacklisted numbers)."""
    allowed = [n for n in NOTIFICATION_JOBS if n["phoneNumber"] not in BLACKLISTED_NUMBERS]
    return [allowed[i % len(allowed)] for i in range(count)]


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used since it started (``INFO cpu``:
    user + system, all its threads). The difference over a loop of many
    commands, divided by their number, is Redis's cost per command, I/O
    included; any other client of that server at the time adds to it."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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
    group: str = ""  # the group being measured
    groups: dict[str, str] = field(default_factory=dict)  # figure -> its group

    def client(self, decode: bool = False) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=decode)

    def record(self, key: str, value: float) -> None:
        self.results[key] = round(value, 3)
        self.groups[key] = self.group
        self.echo(f"  {key:<38} {value:>12,.2f}   {describe(key)}")
