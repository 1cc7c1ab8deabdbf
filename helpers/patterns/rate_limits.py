"""Rate limits: a provider that accepts N notifications per second.

Two different limits, often confused:

- a **concurrency limit** bounds how many jobs run *at the same time*. RQ 3
  has one built in: ``q.enqueue(..., rate_limit=RateLimit("sms", concurrency=2))``
  holds the other jobs back with status ``rate_limited`` (in the sorted set
  ``rq:rl:<key>:rate_limited``) and lets one through each time a slot frees.
  How many run *per second* then depends on how long each job takes;
- a **rate limit over a time window** bounds how many start per window,
  whatever they take: :class:`SlidingWindowLimiter`, one Lua script on a
  sorted set of the sends of the last window, with Redis's clock, so every
  worker on every machine shares it.

A job held back by the window waits (it is *delayed*, never failed): it
sleeps until the oldest send leaves the window, then tries again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from rq import Queue
from rq.job import get_current_job

from helpers.patterns.keys import job_connection, key, redis_time_ms, wait_all

#: KEYS[1]: the window's sorted set (member: a send's id, score: its time in ms).
#: ARGV: limit, window in ms, the send's id. Returns {1, now_ms} when the send
#: may go (and records it), else {0, ms to wait until the oldest send leaves}.
#: The window is (now - window, now]: a send at t counts until t + window.
SLIDING_WINDOW_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(oldest[2]) + window - now)}
"""


@dataclass(frozen=True)
class SlidingWindowLimiter:
    """At most ``limit`` sends in any ``window_ms`` milliseconds, for
    every process that uses the same ``name``."""

    name: str
    limit: int
    window_ms: int = 1000

    @property
    def key(self) -> str:
        """The sorted set of the sends in the current window."""
        return key("window", self.name)

    def try_acquire(self, connection: redis.Redis, send_id: str) -> tuple[bool, int]:
        """One attempt: ``(True, send time in ms)`` if the send may go now (it
        is counted), else ``(False, ms to wait)``."""
        script = connection.register_script(SLIDING_WINDOW_SCRIPT)  # EVALSHA
        allowed, value = script(keys=[self.key], args=[self.limit, self.window_ms, send_id])
        return bool(allowed), int(value)

    def acquire(
        self, connection: redis.Redis, send_id: str, timeout_s: float = 60.0
    ) -> tuple[int, int]:
        """Wait for a place in the window; returns ``(send time in ms, times it
        had to wait)``. ``TimeoutError`` after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        waits = 0
        while True:
            allowed, value = self.try_acquire(connection, send_id)
            if allowed:
                return value, waits
            if time.monotonic() + value / 1000 > deadline:
                raise TimeoutError(f"no place in {self.name}'s window within {timeout_s} s")
            waits += 1
            time.sleep(value / 1000)


def sends_key(name: str) -> str:
    """The list of what went out through limiter ``name``: ``"<ms> <job id>"``."""
    return key("sent", name)


def held_key(name: str) -> str:
    """Hash: job id -> how many times it waited for limiter ``name``."""
    return key("held", name)


def send_within_rate(phone: str, message: str, name: str, limit: int, window_ms: int) -> int:
    """Job: send ``message`` to ``phone`` once the sliding window ``name``
    (``limit`` per ``window_ms``) has room; records the send's time (Redis's
    clock, ms) in :func:`sends_key` and returns it."""
    connection = job_connection()
    job = get_current_job()
    assert job is not None
    limiter = SlidingWindowLimiter(name, limit, window_ms)
    sent_at, waits = limiter.acquire(connection, job.id)
    connection.rpush(sends_key(name), f"{sent_at} {job.id}")
    if waits:
        connection.hset(held_key(name), job.id, waits)
    return sent_at


def send_slowly(phone: str, message: str, name: str, seconds: float) -> None:
    """Job: a send that takes ``seconds`` (a slow provider); appends its
    start and end (Redis's clock, ms) to :func:`runs_key` ``name``."""
    connection = job_connection()
    started = redis_time_ms(connection)
    time.sleep(seconds)
    connection.rpush(runs_key(name), f"{started} {redis_time_ms(connection)}")


def runs_key(name: str) -> str:
    """The list of ``"<start ms> <end ms>"`` of :func:`send_slowly` ``name``."""
    return key("runs", name)


def send_times(connection: redis.Redis, name: str) -> list[int]:
    """The times (ms, Redis's clock) of every send through limiter ``name``."""
    return sorted(int(line.split()[0]) for line in connection.lrange(sends_key(name), 0, -1))


def max_in_window(times_ms: Sequence[int], window_ms: int) -> int:
    """The most sends in any window ``(t - window_ms, t]``: the figure a
    provider's "N per second" is about, counted over every window, not timed."""
    times = sorted(times_ms)
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window_ms:
            first += 1
        most = max(most, last - first + 1)
    return most


def per_window(times_ms: Sequence[int], window_ms: int) -> list[int]:
    """Sends in consecutive windows of ``window_ms`` from the first send."""
    if not times_ms:
        return []
    start = min(times_ms)
    counts = [0] * ((max(times_ms) - start) // window_ms + 1)
    for t in times_ms:
        counts[(t - start) // window_ms] += 1
    return counts


def max_overlap(intervals: Sequence[tuple[int, int]]) -> int:
    """The most intervals ``(start, end)`` in progress at one moment (an end
    at the same ms as a start does not overlap it)."""
    events = sorted([(end, -1) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    running = most = 0
    for _t, change in events:
        running += change
        most = max(most, running)
    return most


def run_intervals(connection: redis.Redis, name: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` in ms of every :func:`send_slowly` ``name``."""
    pairs = (line.split() for line in connection.lrange(runs_key(name), 0, -1))
    return sorted((int(a), int(b)) for a, b in pairs)


@dataclass(frozen=True)
class WindowRun:
    """What one run of :func:`measure_window` counted."""

    workers: int
    jobs: int
    finished: int
    failed: int
    held_back: int  # jobs that had to wait at least once (delayed, not failed)
    max_in_window: int  # the most sends in any window: must not exceed the limit
    limit: int
    seconds: float  # first send to last, Redis's clock
    per_window: list[int]  # sends in consecutive windows from the first

    def as_dict(self) -> dict[str, object]:
        """For a table, one row per run."""
        return dict(self.__dict__)


def measure_window(
    q: Queue,
    limiter: SlidingWindowLimiter,
    jobs: Sequence[tuple[str, str]],
    *,
    workers: int,
    job_ids: Sequence[str],
    timeout_s: float = 60.0,
) -> WindowRun:
    """Enqueue one :func:`send_within_rate` job per ``(phone, message)`` of
    ``jobs`` (ids ``job_ids``) on ``q``, wait (up to ``timeout_s``) until
    every one has finished or failed, and count what went out when.
    ``workers`` is only recorded: the caller runs them."""
    connection = q.connection
    connection.delete(sends_key(limiter.name), held_key(limiter.name), limiter.key)
    enqueued = [
        q.enqueue(
            "helpers.patterns.rate_limits.send_within_rate",
            phone,
            message,
            limiter.name,
            limiter.limit,
            limiter.window_ms,
            job_id=job_id,
        )  # fmt: skip
        for (phone, message), job_id in zip(jobs, job_ids, strict=True)
    ]
    statuses = wait_all(enqueued, timeout_s)
    times = send_times(connection, limiter.name)
    return WindowRun(
        workers=workers,
        jobs=len(enqueued),
        finished=statuses.count("finished"),
        failed=statuses.count("failed"),
        held_back=int(connection.hlen(held_key(limiter.name))),
        max_in_window=max_in_window(times, limiter.window_ms),
        limit=limiter.limit,
        seconds=round((max(times) - min(times)) / 1000, 2) if times else 0.0,
        per_window=per_window(times, limiter.window_ms),
    )
