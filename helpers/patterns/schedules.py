"""Schedules: delayed jobs, repeats, and a cron scheduler that survives a crash.

- ``q.enqueue_in(timedelta(seconds=1), ...)`` / ``q.enqueue_at(when, ...)``
  park a job in the ``ScheduledJobRegistry``; a worker started with the
  scheduler moves it to the queue when it is due (lessons 12, 13);
- ``repeat=Repeat(times=2, interval=1)``: after it finishes, RQ runs the same
  job again, twice more, a second apart;
- RQ 3's **cron scheduler** (``rq cron config.py``, :class:`rq.cron.CronScheduler`)
  is a process of its own that enqueues registered jobs on an interval or a
  cron expression. Two things about it matter in production, and this module
  addresses both in a subclass, :class:`CourseCronScheduler`:

  1. its ``CronJob.enqueue`` uses a plain ``Queue``, with RQ's default
     serializer, pickle: the course's JSON workers cannot read those jobs.
     The subclass enqueues through :func:`helpers.workers.queue` (JSON);
  2. it keeps its schedule only in memory: after a restart, the next tick
     comes from the clock, so every tick that fell while it was down is
     **lost** (it never runs one twice). With ``catch_up=True`` the subclass
     records the last tick it enqueued in Redis, in the same transaction as
     the job itself (``MULTI``/``EXEC``), and on start enqueues every tick
     since: nothing lost, and nothing twice, since a tick is either enqueued
     and recorded, or neither.

Run one (as the lesson does, through :mod:`helpers.processes`)::

    python -m helpers.patterns.schedules --name every-second --queue patterns-flow \\
        --cron "* * * * * *" [--catch-up]

(croniter reads a sixth field as seconds.) Two such schedulers on the same
name at once would both enqueue: run one, as with ``rq cron``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import redis
from rq import cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL, RQ_KEY_PREFIX
from rq.job import Job

from helpers.patterns.keys import job_connection, key, redis_time_ms
from helpers.processes import BackgroundProcess
from helpers.server import logs_dir, redis_url
from helpers.workers import queue, redis_connection

MAX_CATCH_UP = 1000  # ticks enqueued at one start, at most (a scheduler down for days)
RECORD_TICK = "helpers.patterns.schedules.record_tick"


def ticks_key(name: str) -> str:
    """Hash: tick (epoch seconds) -> how many times schedule ``name``'s job ran for it."""
    return key("ticks", name)


def lateness_key(name: str) -> str:
    """List: how late (ms, Redis's clock) each run of schedule ``name`` was."""
    return key("late", name)


def last_tick_key(name: str) -> str:
    """The last tick (epoch seconds) schedule ``name`` enqueued (``catch_up`` only)."""
    return key("cron", name, "last")


def record_tick(name: str, tick: int) -> None:
    """Job: count one run of schedule ``name`` for ``tick`` (epoch seconds),
    and how late it ran."""
    connection = job_connection()
    connection.hincrby(ticks_key(name), str(tick), 1)
    connection.rpush(lateness_key(name), redis_time_ms(connection) - tick * 1000)


class CourseCronJob(CronJob):
    """RQ's ``CronJob``, enqueueing through the course's JSON queue, with
    the tick it is for in its arguments and id (``<name>-<epoch s>``)."""

    def __init__(self, *args: Any, catch_up: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catch_up = catch_up

    def enqueue(self, connection: redis.Redis) -> Job:
        """Enqueue the job for the tick now due; with ``catch_up``, record
        the tick in the same transaction."""
        due = self.next_enqueue_time or datetime.now(timezone.utc)
        tick = int(due.timestamp())
        q = queue(self.queue_name, connection)
        with connection.pipeline() as pipeline:  # MULTI ... EXEC
            job = q.enqueue(
                self.func_name,
                args=(self.name, tick),
                job_id=f"{self.name}-{tick}",
                pipeline=pipeline,
                **self.job_options,
            )
            if self.catch_up:
                pipeline.set(last_tick_key(self.name), tick)
            # RQ's own bookkeeping, as CronJob.enqueue does it (``rq`` monitoring reads it)
            assert job.enqueued_at is not None
            pipeline.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(
                self.name, pipeline, enqueue_timestamp=job.enqueued_at.timestamp()
            )
            pipeline.execute()
        logging.getLogger("rq.cron").info("Enqueued %s for tick %s", job.id, tick)
        return job


class CourseCronScheduler(CronScheduler):
    """RQ's ``CronScheduler`` with JSON jobs and, with ``catch_up``, a
    schedule that a restart neither loses nor repeats."""

    def __init__(self, connection: redis.Redis, *, catch_up: bool = False, name: str = "") -> None:
        super().__init__(connection, name=name)
        self.catch_up = catch_up

    def register_tick(
        self, func: Callable[..., Any], queue_name: str, name: str, cron: str
    ) -> CronJob:
        """Register ``func`` (``record_tick``) on ``cron`` under ``name``."""
        job = CourseCronJob(
            queue_name=queue_name, func=func, cron=cron, name=name, catch_up=self.catch_up
        )
        if self.catch_up:
            last = self.connection.get(last_tick_key(name))
            if last is not None:  # resume after the last tick enqueued
                job.latest_enqueue_time = datetime.fromtimestamp(int(last), timezone.utc)
                job.next_enqueue_time = job.get_next_enqueue_time()
        self._cron_jobs.append(job)
        self.log.info(
            "Registered %s on %s with cron %r (catch up: %s)", name, queue_name, cron, self.catch_up
        )
        return job

    def enqueue_jobs(self) -> list[CronJob]:
        """RQ's: each due job once, the next tick from the clock. With
        ``catch_up``: every due tick in turn, the next one after it."""
        if not self.catch_up:
            return super().enqueue_jobs()
        enqueued: list[CronJob] = []
        for job in self._cron_jobs:
            for _ in range(MAX_CATCH_UP):
                if not job.should_run():
                    break
                due = job.next_enqueue_time
                job.enqueue(self.connection)
                job.set_enqueue_time(due)
                enqueued.append(job)
        return enqueued


def scheduler_key(name: str) -> str:
    """RQ's hash for the cron scheduler ``name`` (it exists while it runs)."""
    return f"{RQ_KEY_PREFIX}:cron_scheduler:{name}"


def start_cron_scheduler(
    name: str,
    queue_name: str,
    *,
    cron: str = "* * * * * *",
    catch_up: bool = False,
    wait: bool = True,
) -> BackgroundProcess:
    """Start a :class:`CourseCronScheduler` process for schedule ``name``
    (its scheduler is named the same), logging to a file of its own; returns
    once it has registered in Redis (unless ``wait`` is false: then
    :func:`wait_cron_ready`). ``.kill()`` is the crash, ``.stop()`` a graceful stop."""
    args = ["helpers.patterns.schedules", "--name", name, "--queue", queue_name, "--cron", cron]
    if catch_up:
        args.append("--catch-up")
    process = BackgroundProcess.start(
        args,
        log_file=logs_dir() / f"cron-{name}-{uuid.uuid4().hex[:6]}.log",
        env=dict(os.environ, REDIS_URL=redis_url()),
    )
    if wait:
        wait_cron_ready(process)
    return process


def wait_cron_ready(process: BackgroundProcess, timeout_s: float = 20.0) -> None:
    """Wait until the cron scheduler ``process`` has registered itself (its
    log says so: RQ's key may still be there from a predecessor killed before)."""
    process.wait_for_output(lambda lines: any("registering birth" in x for x in lines), timeout_s)


@dataclass(frozen=True)
class TickReport:
    """What one schedule did, tick by tick, from its first tick to its last."""

    name: str
    ticks: int  # every second from the first tick that ran to the last
    ran: int  # runs in all
    missing: list[int]  # ticks (seconds after the first) that never ran: lost
    twice: list[int]  # ticks that ran more than once
    late_ms_max: int  # the latest a run came after its tick

    def as_dict(self) -> dict[str, object]:
        """For a table, one row per schedule."""
        return dict(self.__dict__)


def tick_report(connection: redis.Redis, name: str, every_s: int = 1) -> TickReport:
    """Count schedule ``name``'s runs per tick (see :func:`record_tick`)."""
    counts = {int(t): int(n) for t, n in connection.hgetall(ticks_key(name)).items()}
    late = [int(x) for x in connection.lrange(lateness_key(name), 0, -1)]
    if not counts:
        return TickReport(name, 0, 0, [], [], 0)
    first, last = min(counts), max(counts)
    expected = range(first, last + 1, every_s)
    return TickReport(
        name=name,
        ticks=len(expected),
        ran=sum(counts.values()),
        missing=[t - first for t in expected if t not in counts],
        twice=[t - first for t, n in sorted(counts.items()) if n > 1],
        late_ms_max=max(late, default=0),
    )


def wait_for_runs(connection: redis.Redis, name: str, timeout_s: float = 30.0) -> int:
    """Wait until every job schedule ``name`` enqueued has run (its RQ cron
    history against :func:`ticks_key`); returns how many ran."""
    history = f"{RQ_KEY_PREFIX}:cron_job:{name}:jobs"
    deadline = time.monotonic() + timeout_s
    while True:
        ran = sum(int(n) for n in connection.hvals(ticks_key(name)))
        if ran >= connection.zcard(history):
            return ran
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{name}: {ran} of {connection.zcard(history)} runs after {timeout_s} s"
            )
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.patterns.schedules",
        description="RQ's cron scheduler with JSON jobs (and, with --catch-up, a durable schedule).",
    )
    parser.add_argument("--name", required=True, help="the schedule's (and scheduler's) name")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--cron", default="* * * * * *", help="a sixth field is seconds")
    parser.add_argument(
        "--catch-up", action="store_true", help="enqueue the ticks missed while down"
    )
    args = parser.parse_args(argv)
    # The job function by its module's name, not __main__'s: the allow-list names it so.
    from helpers.patterns.schedules import CourseCronScheduler as Scheduler  # noqa: PLC0415
    from helpers.patterns.schedules import record_tick  # noqa: PLC0415

    scheduler = Scheduler(redis_connection(), catch_up=args.catch_up, name=args.name)
    scheduler.register_tick(record_tick, args.queue, args.name, args.cron)
    scheduler.start()  # until SIGTERM (graceful) or SIGKILL (a crash)
    return 0


if __name__ == "__main__":
    sys.exit(main())
