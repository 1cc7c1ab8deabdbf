"""The work on Celery: Redis as the broker and the result backend.

Tasks are functions decorated with ``@app.task``; the worker is
``celery -A helpers.compare.celery_queue worker``, its default prefork pool
with ``--concurrency N`` child processes (gossip, mingle and the worker
heartbeat are off: cluster chatter, slow to start, not delivery).
Progress is Celery's ``self.update_state(state="PROGRESS", meta=...)``,
outcomes the task class's ``on_success`` / ``on_failure`` handlers.

Settings: **default**: the worker acknowledges a message just before it
runs the task (``acks_late=False``), so a worker that dies loses the task
it was running; the messages it had reserved (up to 4 per process,
``worker_prefetch_multiplier``) are not acknowledged yet and come back after
the ``visibility_timeout``, an hour by default. **At least once** (Celery's documented
recipe): ``task_acks_late=True`` (acknowledge after the task returns),
``task_reject_on_worker_lost=True``, ``worker_prefetch_multiplier=1``; on
Redis an unacknowledged message goes back to the queue once its
``visibility_timeout`` has passed (default 1 hour; here
:data:`VISIBILITY_TIMEOUT_S`, restored by the next sweep of a live worker).
A task that runs longer than the visibility timeout is delivered again
*while it runs*: set it above your longest task.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery, Task

from helpers.compare import work
from helpers.compare.library import QueueLibrary
from helpers.processes import BackgroundProcess

VISIBILITY_TIMEOUT_S = 3  # at least once: redeliver what a dead worker held after 3 s

app = Celery("compare")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=work.QUEUE,
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def configure(url: str, settings: str) -> None:
    """Point the app at ``url`` (broker and results), with ``settings``."""
    app.conf.update(broker_url=url, result_backend=url)
    if settings == work.AT_LEAST_ONCE:
        app.conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            broker_transport_options={
                "visibility_timeout": VISIBILITY_TIMEOUT_S,
                "unacked_restore_interval": 1,  # sweep every second (default 10)
                "unacked_restore_throttle": 1,  # and scan on every sweep (default every 10th)
            },
        )


_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    """The jobs' own Redis client (one per process: prefork children fork after import)."""
    url = app.conf.broker_url
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


class NotificationTask(Task):
    """Reports each notification job's outcome as an event for the creator."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        work.record_event(_redis(), args[0], "completed")

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        work.record_event(_redis(), args[0], "failed", error=str(exc))


@app.task(bind=True, base=NotificationTask, name="compare.process_notification")
def process_notification(self: Task, job_id: str, data: dict[str, str]) -> None:
    """The original's job: progress as task state (what ``AsyncResult.info``
    shows) and as an event (so the creator hears every step)."""

    def progress(percent: int) -> None:
        self.update_state(state="PROGRESS", meta={"progress": percent})
        work.record_event(_redis(), job_id, "progress", percent=percent)

    work.send_notification(data["phoneNumber"], data["message"], progress)


@app.task(name="compare.record_done")
def record_done(job_id: str) -> None:
    """The trivial job."""
    work.record_done(_redis(), job_id)


@app.task(name="compare.drill_job")
def drill_job(job_id: str, hold: str) -> int:
    """The drill's job."""
    return work.drill_step(_redis(), job_id, hold)


# A worker process reads where and how from its environment (set by CeleryLibrary).
if os.environ.get(work.SETTINGS_ENV):
    configure(os.environ["REDIS_URL"], work.settings())


class CeleryLibrary(QueueLibrary):
    """Celery 5 with the Redis transport (kombu) and the Redis result backend."""

    name = "celery"
    distribution = "celery"
    library_keys = ("celery*", "_kombu.*", "unacked*", f"{work.QUEUE}*")
    ready_line = "ready."
    ready_once = True
    describe_settings = {
        work.DEFAULT: "acks a task as it starts: a dead worker's running task is gone; "
        "its reserved ones (prefetch 4) come back after visibility_timeout, 1 hour",
        work.AT_LEAST_ONCE: f"task_acks_late, task_reject_on_worker_lost, prefetch 1, "
        f"visibility_timeout {VISIBILITY_TIMEOUT_S} s",
    }

    def __init__(self) -> None:
        super().__init__()
        configure(self.url, work.DEFAULT)  # the creator's side: only where to publish

    def start_workers(self, processes: int, settings: str = work.DEFAULT) -> BackgroundProcess:
        return self.start(
            ["celery", "-A", "helpers.compare.celery_queue", "worker",
             "--pool", "prefork", "--concurrency", str(processes), "--queues", work.QUEUE,
             "--hostname", f"compare-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            settings,
            processes,
        )  # fmt: skip

    def enqueue_records(self, ids: Sequence[str]) -> None:
        for job_id in ids:
            record_done.apply_async((job_id,), task_id=job_id)

    def enqueue_notifications(self, ids: Sequence[str], jobs: Sequence[dict[str, str]]) -> None:
        for job_id, data in zip(ids, jobs, strict=True):
            process_notification.apply_async((job_id, data), task_id=job_id)

    def enqueue_drill(self, jobs: Sequence[tuple[str, str]], settings: str) -> None:
        for job_id, hold in jobs:
            drill_job.apply_async((job_id, hold), task_id=job_id)

    def pending(self, ids: Sequence[str]) -> list[str]:
        # Messages still in the queue or unacknowledged (to be restored): their task ids.
        held = set(self.client.hkeys("unacked"))
        raw = [*self.client.lrange(work.QUEUE, 0, -1), *self.client.hvals("unacked")]
        text = " ".join(raw)
        return [job_id for job_id in ids if f'"{job_id}"' in text or job_id in held]
