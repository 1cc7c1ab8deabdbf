"""The work on arq: asyncio jobs, Redis only.

Jobs are ``async`` functions taking a context (``ctx["redis"]`` is the
worker's asyncio client); a worker is ``arq helpers.compare.arq_queue.WorkerSettings``,
one process each, running ``max_jobs=1`` job at a time here (arq's default
is 10 at once, in one event loop). The creator enqueues with
``await redis.enqueue_job("name", ..., _job_id=...)``: the job id is the
creator's choice, and a second job with the same id is refused while the
first exists (arq's deduplication). arq keeps no progress and has no
callbacks: the notification job records its own events, outcomes included.

Settings: arq is at-least-once by design: a job stays in the queue (a
sorted set) until it ends; a worker marks it in progress with a key that
expires ``job_timeout`` + 10 s after it took it. If the worker dies, the
job runs again once that key expires (up to ``max_tries``, default 5).
**Default**: ``job_timeout`` 300 s, so 310 s after the crash. **At least
once**: the same with ``job_timeout`` :data:`JOB_TIMEOUT_S` (a job running
longer is cancelled: set it above your longest job).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix

from helpers.compare import work
from helpers.compare.library import QueueLibrary
from helpers.processes import BackgroundProcess

JOB_TIMEOUT_S = 1  # at least once: a dead worker's job runs again 11 s later
T = TypeVar("T")


async def process_notification(ctx: dict[str, Any], job_id: str, data: dict[str, str]) -> None:
    """The original's job: :func:`work.send_notification` is synchronous (and
    instant), so its progress events are written as it reports them, in order."""
    redis: ArqRedis = ctx["redis"]
    writes: list[asyncio.Future[Any]] = []

    def progress(percent: int) -> None:
        writes.append(asyncio.ensure_future(_event(redis, job_id, "progress", percent=percent)))

    try:
        work.send_notification(data["phoneNumber"], data["message"], progress)
    except ValueError as error:
        await asyncio.gather(*writes)
        await _event(redis, job_id, "failed", error=str(error))
        raise
    await asyncio.gather(*writes)
    await _event(redis, job_id, "completed")


async def _event(redis: ArqRedis, job_id: str, kind: str, **fields: object) -> None:
    await redis.rpush(work.EVENTS, json.dumps({"job": job_id, "kind": kind, **fields}))


async def record_done(ctx: dict[str, Any], job_id: str) -> None:
    """The trivial job."""
    await ctx["redis"].rpush(work.DONE, job_id)


async def drill_job(ctx: dict[str, Any], job_id: str, hold: str) -> int:
    """The drill's job (:func:`work.drill_step`, with arq's asyncio client)."""
    redis: ArqRedis = ctx["redis"]
    run = int(await redis.hincrby(work.EXECUTIONS, job_id, 1))
    if run == 1 and hold == work.HOLD_BEFORE:
        await _hold(redis, job_id)
    await redis.rpush(work.EFFECTS, job_id)
    if run == 1 and hold == work.HOLD_AFTER:
        await _hold(redis, job_id)
    return run


async def _hold(redis: ArqRedis, job_id: str) -> None:
    await redis.hset(work.HELD, job_id, os.getpid())
    for _ in range(int(work.HOLD_LIMIT_S * 100)):
        if not await redis.hexists(work.HELD, job_id):
            return
        await asyncio.sleep(0.01)


def _worker_redis() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ.get("REDIS_URL") or work.library_url("arq"))


class WorkerSettings:
    """arq's default settings (but one job at a time), for ``arq ...WorkerSettings``."""

    functions = [process_notification, record_done, drill_job]
    queue_name = work.QUEUE
    max_jobs = 1
    redis_settings = _worker_redis() if os.environ.get(work.SETTINGS_ENV) else RedisSettings()


class AtLeastOnceSettings:
    """The same, and a dead worker's job runs again after ``JOB_TIMEOUT_S`` + 10 s
    (arq reads a settings class's own attributes only: no inheritance)."""

    functions = WorkerSettings.functions
    queue_name = WorkerSettings.queue_name
    max_jobs = WorkerSettings.max_jobs
    redis_settings = WorkerSettings.redis_settings
    job_timeout = JOB_TIMEOUT_S


class _Loop:
    """An event loop in a thread of its own, so that synchronous code (a
    notebook cell, the measurement) can run arq's coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="arq-loop", daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class ArqLibrary(QueueLibrary):
    """arq 0.25: asyncio, a sorted set per queue, in-progress keys that expire."""

    name = "arq"
    distribution = "arq"
    library_keys = ("arq:*", work.QUEUE, f"{work.QUEUE}:health-check")
    ready_line = "Starting worker for"
    describe_settings = {
        work.DEFAULT: "a job stays queued until it ends; a dead worker's job runs again "
        "after job_timeout + 10 s = 310 s",
        work.AT_LEAST_ONCE: f"the same, job_timeout {JOB_TIMEOUT_S} s: runs again after "
        f"{JOB_TIMEOUT_S + 10} s",
    }

    def __init__(self) -> None:
        super().__init__()
        self._loop = _Loop()
        self.pool: ArqRedis = self._loop.run(
            create_pool(RedisSettings.from_dsn(self.url), default_queue_name=work.QUEUE)
        )

    def start_workers(self, processes: int, settings: str = work.DEFAULT) -> BackgroundProcess:
        name = "AtLeastOnceSettings" if settings == work.AT_LEAST_ONCE else "WorkerSettings"
        # arq runs one process per command: a launcher process starts the others.
        return self.start(
            ["helpers.compare.arq_queue", "--processes", str(processes), "--settings", name],
            settings,
            processes,
        )

    def _enqueue(self, jobs: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async def enqueue_all() -> None:
            for function, args in jobs:
                await self.pool.enqueue_job(function, *args, _job_id=args[0])

        self._loop.run(enqueue_all())

    def enqueue_records(self, ids: Sequence[str]) -> None:
        self._enqueue([("record_done", (job_id,)) for job_id in ids])

    def enqueue_notifications(self, ids: Sequence[str], jobs: Sequence[dict[str, str]]) -> None:
        self._enqueue([("process_notification", (i, d)) for i, d in zip(ids, jobs, strict=True)])

    def enqueue_drill(self, jobs: Sequence[tuple[str, str]], settings: str) -> None:
        self._enqueue([("drill_job", (job_id, hold)) for job_id, hold in jobs])

    def pending(self, ids: Sequence[str]) -> list[str]:
        return [job_id for job_id in ids if self.client.exists(job_key_prefix + job_id)]

    def close(self) -> None:
        self._loop.run(self.pool.aclose())
        self._loop.loop.call_soon_threadsafe(self._loop.loop.stop)
        super().close()


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.compare.arq_queue --processes N --settings NAME``:
    N arq worker processes (``python -m arq helpers.compare.arq_queue.NAME``),
    each a :class:`~helpers.processes.BackgroundProcess` of this one."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m helpers.compare.arq_queue")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--settings", default="WorkerSettings")
    args = parser.parse_args(argv)
    module = f"helpers.compare.arq_queue.{args.settings}"
    workers = [
        BackgroundProcess.start(["arq", module], log_file=None) for _ in range(args.processes)
    ]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(0.2) and all(w.running for w in workers):
        pass
    for w in workers:
        w.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
