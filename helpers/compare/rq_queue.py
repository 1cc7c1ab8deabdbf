"""The work on RQ, as the course runs it.

The notification jobs are the course's own: :func:`helpers.job_events.enqueue_with_events`
of lesson 07's job function, whose progress and outcome are job events
(:mod:`helpers.job_events`). Workers are :func:`helpers.workers.start_worker`'s
(RQ's default forking ``Worker``, JSON, the allow-list). The trivial and
drill jobs below are plain functions that RQ imports by name.

Settings: **default**: a job is taken with ``BLMOVE`` into the worker's
list and recorded in the started registry; if the worker dies, RQ notices
(60-90 s later, then in a maintenance pass) and *fails* the job as
abandoned: it never runs again. **At least once**: the jobs carry
``Retry(max=3)`` and, after a crash, the course's
:func:`helpers.reliability.recover_abandoned_jobs` (lesson 12) hands what
the dead worker held back to RQ at once, which retries it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from rq import Retry
from rq.job import JobStatus, get_current_job

from helpers.bench.harness import redis_url_set
from helpers.compare import work
from helpers.compare.library import QueueLibrary
from helpers.job_events import JobEvents, enqueue_with_events
from helpers.processes import BackgroundProcess
from helpers.reliability import crash, recover_abandoned_jobs
from helpers.workers import WorkerProcess, queue, queue_keys, redis_connection, start_worker

JOB_FUNCTION = "helpers.notifications.process_notification_with_blacklist"  # lesson 07's


@contextlib.contextmanager
def _quiet_registry() -> Iterator[None]:
    """RQ warns (on stderr, in a notebook's cell) of each abandoned job it
    moves to the failed registry: the drill counts them instead."""
    registry_logger = logging.getLogger("rq.registry")
    level = registry_logger.level
    registry_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        registry_logger.setLevel(level)


def record_done(job_id: str) -> None:
    """The trivial job."""
    work.record_done(get_current_job().connection, job_id)


def drill_job(job_id: str, hold: str) -> int:
    """The drill's job."""
    return work.drill_step(get_current_job().connection, job_id, hold)


class RQLibrary(QueueLibrary):
    """RQ 3: one Redis list per queue, a forking worker, registries."""

    name = "rq"
    distribution = "rq"
    library_keys = tuple(queue_keys(work.QUEUE))
    describe_settings = {
        work.DEFAULT: "a job held by a dead worker is failed as abandoned (after 60-90 s), never re-run",
        work.AT_LEAST_ONCE: "Retry(max=3) on each job, and the course's recover_abandoned_jobs "
        "(lesson 12) run once a second, as a supervisor would",
    }

    def __init__(self) -> None:
        super().__init__()
        self.queue = queue(work.QUEUE, redis_connection(self.url))

    def clear(self) -> int:
        with _quiet_registry():
            recover_abandoned_jobs(self.queue)  # forget the dead workers of an earlier run
        return super().clear()

    def start_workers(self, processes: int, settings: str = work.DEFAULT) -> BackgroundProcess:
        with redis_url_set(self.url):  # start_worker's workers use REDIS_URL
            return start_worker(work.QUEUE, concurrency=processes)

    def kill(self, workers: BackgroundProcess) -> list[int]:
        assert isinstance(workers, WorkerProcess)
        return crash(workers)  # lesson 12's power cut: workers and work-horses

    def recover(self, settings: str) -> list[str]:
        if settings != work.AT_LEAST_ONCE:
            return []
        with _quiet_registry():
            return recover_abandoned_jobs(self.queue).jobs

    def enqueue_records(self, ids: Sequence[str]) -> None:
        for job_id in ids:
            self.queue.enqueue(record_done, job_id, job_id=job_id)

    def enqueue_notifications(self, ids: Sequence[str], jobs: Sequence[dict[str, str]]) -> None:
        for job_id, data in zip(ids, jobs, strict=True):
            enqueue_with_events(self.queue, JOB_FUNCTION, data, job_id=job_id)

    def enqueue_drill(self, jobs: Sequence[tuple[str, str]], settings: str) -> None:
        retry = Retry(max=3) if settings == work.AT_LEAST_ONCE else None
        for job_id, hold in jobs:
            self.queue.enqueue(drill_job, job_id, hold, job_id=job_id, retry=retry)

    def pending(self, ids: Sequence[str]) -> list[str]:
        # Waiting to run (again), or started with a retry left: running now, or
        # held by a dead worker, which RQ hands back once it notices (without a
        # retry left, RQ fails such a job as abandoned).
        pending = []
        for job_id in ids:
            job = self.queue.fetch_job(job_id)
            status = job.get_status(refresh=False) if job is not None else None
            if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED) or (
                status == JobStatus.STARTED and (job.retries_left or 0) > 0
            ):
                pending.append(job_id)
        return pending

    def notifications(self, timeout: float = 60.0) -> tuple[list[str], dict[str, int]]:
        ids = work.job_ids("", len(work.NOTIFICATION_JOBS))
        events = JobEvents(self.queue, self.queue.connection)  # before the jobs
        self.enqueue_notifications(ids, work.NOTIFICATION_JOBS)
        received = events.wait_for(ids, timeout)
        as_dicts = [
            {"job": e.job_id, "kind": e.kind, "percent": e.progress, "error": e.error}
            for e in received
        ]
        return work.notification_lines(ids, as_dicts), work.outcome(as_dicts)
