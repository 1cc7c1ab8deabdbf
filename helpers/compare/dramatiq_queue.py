"""The work on Dramatiq, with its Redis broker.

Jobs are *actors* (``@dramatiq.actor``); ``actor.send(...)`` enqueues a
message. The worker is ``dramatiq helpers.compare.dramatiq_queue
--processes N --threads 1`` (one job at a time per process; Dramatiq's
default is a process per core with 8 threads each). Outcomes come from a
*middleware*, :class:`NotificationEvents` (``after_process_message`` sees
each message's result or exception); Dramatiq keeps no progress, so the job
records its own. The actors take no retries (Dramatiq's default is 20, with
backoff), so a blacklisted number fails once, as in the original.

Settings: Dramatiq acknowledges a message *after* it is processed, by
default: a message a worker took sits in that worker's acknowledgement set
until then. If the worker dies, another worker's broker moves the dead
one's messages back to the queue in a *maintenance* pass, once the dead
worker's heartbeat is older than ``heartbeat_timeout`` (default 60 s; a
pass runs on about 1 in 1,000 broker commands). **Default**: those
defaults. **At least once**: the same guarantee, sooner:
``heartbeat_timeout`` :data:`HEARTBEAT_TIMEOUT_MS` and maintenance on every
command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Middleware

from helpers.compare import work
from helpers.compare.library import QueueLibrary
from helpers.processes import BackgroundProcess

HEARTBEAT_TIMEOUT_MS = 2_000  # at least once: a worker silent for 2 s is dead


def broker_options(settings: str) -> dict[str, int]:
    """The RedisBroker options of ``settings``."""
    if settings == work.AT_LEAST_ONCE:
        return {"heartbeat_timeout": HEARTBEAT_TIMEOUT_MS, "maintenance_chance": MAINTENANCE_SCALE}
    return {}


class NotificationEvents(Middleware):
    """Reports each notification job's outcome as an event for the creator."""

    def after_process_message(
        self, broker: RedisBroker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if message.actor_name != "process_notification":
            return
        job_id = message.args[0]
        if exception is None:
            work.record_event(broker.client, job_id, "completed")
        else:
            work.record_event(broker.client, job_id, "failed", error=str(exception))


# A worker process reads where and how from its environment (set by DramatiqLibrary);
# the creator's side, in a notebook or a test, publishes to its database.
_worker = bool(os.environ.get(work.SETTINGS_ENV))
broker = RedisBroker(
    url=os.environ["REDIS_URL"] if _worker else work.library_url("dramatiq"),
    **broker_options(work.settings() if _worker else work.DEFAULT),
)
broker.add_middleware(NotificationEvents())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=work.QUEUE, max_retries=0)
def process_notification(job_id: str, data: dict[str, str]) -> None:
    """The original's job."""
    progress = work.notification_progress(broker.client, job_id)
    work.send_notification(data["phoneNumber"], data["message"], progress)


@dramatiq.actor(queue_name=work.QUEUE, max_retries=0)
def record_done(job_id: str) -> None:
    """The trivial job."""
    work.record_done(broker.client, job_id)


@dramatiq.actor(queue_name=work.QUEUE, max_retries=0)
def drill_job(job_id: str, hold: str) -> int:
    """The drill's job."""
    return work.drill_step(broker.client, job_id, hold)


class DramatiqLibrary(QueueLibrary):
    """Dramatiq 2 with its Redis broker (Lua scripts, acknowledgement sets, heartbeats)."""

    name = "dramatiq"
    distribution = "dramatiq"
    library_keys = ("dramatiq:*",)
    ready_line = "Worker process is ready for action."
    ready_once = False
    describe_settings = {
        work.DEFAULT: "acks after processing; a dead worker's messages are requeued "
        "after heartbeat_timeout 60 s, by a maintenance pass (1 command in 1,000)",
        work.AT_LEAST_ONCE: f"the same, heartbeat_timeout {HEARTBEAT_TIMEOUT_MS} ms, "
        "maintenance on every command",
    }

    def start_workers(self, processes: int, settings: str = work.DEFAULT) -> BackgroundProcess:
        return self.start(
            ["dramatiq", "helpers.compare.dramatiq_queue", "--processes", str(processes),
             "--threads", "1", "--queues", work.QUEUE],
            settings,
            processes,
        )  # fmt: skip

    def enqueue_records(self, ids: Sequence[str]) -> None:
        for job_id in ids:
            record_done.send(job_id)

    def enqueue_notifications(self, ids: Sequence[str], jobs: Sequence[dict[str, str]]) -> None:
        for job_id, data in zip(ids, jobs, strict=True):
            process_notification.send(job_id, data)

    def enqueue_drill(self, jobs: Sequence[tuple[str, str]], settings: str) -> None:
        for job_id, hold in jobs:
            drill_job.send(job_id, hold)

    def pending(self, ids: Sequence[str]) -> list[str]:
        # Messages in the queue or in any worker's acknowledgement set.
        text = " ".join(
            raw.decode() if isinstance(raw, bytes) else raw
            for raw in self.client.hvals(f"dramatiq:{work.QUEUE}.msgs")
        )
        return [job_id for job_id in ids if f'"{job_id}"' in text]
