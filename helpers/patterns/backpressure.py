"""Backpressure: a bounded queue says "not now" instead of growing for ever.

A queue absorbs bursts, but when work comes in faster than workers take it
for long, the queue grows, and so does the wait of every job in it: the
oldest job's *age* is the delay a user sees. A bounded queue refuses new
work past a limit and tells the client when to come back: the seat service
(``python -m helpers.api --seat-queue-limit N``, :func:`helpers.api.start_service`
with ``seat_queue_limit=N``) answers ``429 Too Many Requests`` with
``Retry-After: 1`` and ``{"status": "Too many reservations waiting"}`` once
``reserve_seat`` holds N jobs, and enqueues nothing.

:func:`flood` sends a bounded number of requests, a few at a time, on
loopback; :class:`DepthSampler` records the queue's length and its oldest
job's age meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

REJECTED = "Too many reservations waiting"
ACCEPTED = "Reservation in process"


def queue_depth(q: Queue) -> tuple[int, float]:
    """``(jobs waiting, age in s of the oldest one)`` of queue ``q`` (0 when empty)."""
    with q.connection.pipeline() as pipe:  # MULTI/EXEC: both read at one moment
        oldest, length = pipe.lindex(q.key, 0).llen(q.key).execute()
    if oldest is None:
        return length, 0.0
    try:
        job = Job.fetch(oldest.decode(), connection=q.connection, serializer=q.serializer)
    except NoSuchJobError:
        return length, 0.0
    if job.enqueued_at is None:
        return length, 0.0
    enqueued = job.enqueued_at.replace(tzinfo=job.enqueued_at.tzinfo or timezone.utc)
    return length, max(0.0, (datetime.now(timezone.utc) - enqueued).total_seconds())


@dataclass
class DepthSampler:
    """Samples ``(s since start, length, oldest age s)`` of a queue every
    ``interval_s`` from a thread, at most ``max_s`` seconds."""

    q: Queue
    interval_s: float = 0.05
    max_s: float = 60.0
    samples: list[tuple[float, int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> DepthSampler:
        """Start sampling."""
        start = time.monotonic()

        def sample() -> None:
            while not self._stop.is_set() and time.monotonic() - start < self.max_s:
                length, age = queue_depth(self.q)
                self.samples.append((round(time.monotonic() - start, 2), length, round(age, 2)))
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=sample, name="depth-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int, float]]:
        """Stop sampling; the samples."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.samples

    @property
    def max_length(self) -> int:
        """The longest the queue was."""
        return max((length for _, length, _ in self.samples), default=0)

    @property
    def max_age_s(self) -> float:
        """The oldest a waiting job was."""
        return max((age for _, _, age in self.samples), default=0.0)


@dataclass(frozen=True)
class FloodResult:
    """What the clients of :func:`flood` got back."""

    requests: int
    by_answer: dict[str, int]  # "<HTTP status> <JSON status>" -> how many
    retry_after: list[str]  # the distinct Retry-After headers of the 429s
    accepted: int  # 200 "Reservation in process"
    rejected: int  # 429 "Too many reservations waiting"
    retries: int  # requests sent again after a 429
    seconds: float


def flood(
    base_url: str,
    requests: int,
    *,
    concurrency: int = 8,
    path: str = "/reserve_seat",
    retries: int = 0,
    timeout_s: float = 30.0,
) -> FloodResult:
    """Send ``requests`` GETs to ``base_url + path``, ``concurrency`` at a
    time; with ``retries``, a client that gets a 429 waits ``Retry-After``
    seconds and tries again, at most that many times. Loopback only."""
    if not base_url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError(f"flood only loopback services, not {base_url}")
    answers: Counter[str] = Counter()
    retry_after: set[str] = set()
    counts = {"accepted": 0, "rejected": 0, "retries": 0}

    async def one(client: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        async with gate:
            for attempt in range(retries + 1):
                reply = await client.get(path)
                status = reply.json().get("status")
                answers[f"{reply.status_code} {status}"] += 1
                if reply.status_code != 429:
                    counts["accepted"] += status == ACCEPTED
                    return
                counts["rejected"] += 1
                retry_after.add(reply.headers.get("Retry-After", ""))
                if attempt < retries:
                    counts["retries"] += 1
                    await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as client:
            await asyncio.wait_for(
                asyncio.gather(*(one(client, gate) for _ in range(requests))), timeout_s * 4
            )

    started = time.monotonic()
    _run_coroutine(run())
    return FloodResult(
        requests=requests,
        by_answer=dict(sorted(answers.items())),
        retry_after=sorted(retry_after),
        accepted=counts["accepted"],
        rejected=counts["rejected"],
        retries=counts["retries"],
        seconds=round(time.monotonic() - started, 2),
    )


def _run_coroutine(coroutine: object) -> None:
    """Run ``coroutine`` to the end, also from a notebook (whose kernel
    already runs an event loop in this thread): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)  # type: ignore[arg-type]
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)  # type: ignore[arg-type]
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="flood")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
