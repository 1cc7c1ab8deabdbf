"""Push notification jobs: the original's tasks 6, 7 and 8 with RQ.

The job functions and data are the reference programs' own
(:mod:`helpers.programs.t6_job_processor`, ``t7_job_processor``,
``t6_job_creator``, ``t7_job_creator``), gathered here for the lessons:

- :func:`send_notification` (lesson 06) prints the original's line; in a
  worker it lands in the worker's log.
- :func:`send_notification_with_blacklist` (lesson 07): progress 0%, fails for
  :data:`BLACKLISTED_NUMBERS` with ``Phone number <n> is blacklisted``, else
  progress 50%, prints the line, completes.
- :func:`process_notification` and :func:`process_notification_with_blacklist`
  are the job functions RQ runs, by these names: each takes the job's data,
  the dict ``{"phoneNumber": ..., "message": ...}``, as its only argument.
- :data:`FIRST_JOB` (lesson 06) and :data:`NOTIFICATION_JOBS` (lesson 07, the
  eleven jobs in the original's order).
- :func:`create_push_notifications_jobs` (lessons 07 and 08) validates a list
  of job data, then enqueues one job per item on ``push_notification_code_3``
  (or any queue). Like the original, calling it is enough for each job's four
  lines to print: ``Notification job created: <n>`` at once, then
  ``Notification job <n> <p>% complete``, ``... completed``, ``... failed:
  <error>`` as they happen, from a listener thread of the calling process
  (:func:`helpers.job_events.creator_listener`).
  :func:`helpers.job_events.wait_until_done` waits for them.
- :func:`process_notification_at_gate` (lesson 07) holds each job while the
  queue's gate is closed (:func:`close_gate`, :func:`open_gate`), so that
  two workers visibly run two jobs at once.

Events (progress, completed, failed) come from :mod:`helpers.job_events`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from rq import Queue
from rq.job import get_current_job

from helpers.job_events import job_number
from helpers.programs import t6_job_processor, t7_job_processor
from helpers.programs.t6_job_creator import FIRST_JOB
from helpers.programs.t6_job_processor import send_notification
from helpers.programs.t7_job_creator import NOTIFICATION_JOBS
from helpers.programs.t7_job_processor import BLACKLISTED_NUMBERS
from helpers.programs.t7_job_processor import QUEUE as PROGRESS_QUEUE  # lesson 07
from helpers.programs.t7_job_processor import (
    send_notification as send_notification_with_blacklist,
)
from helpers.programs.t8_job import (  # lesson 08's task: the reference is the one copy
    JOB_PREFIX,
    TESTED_QUEUE,
    create_push_notifications_jobs,
    enqueue_batch,
    validate_job,
)

__all__ = [
    "BLACKLISTED_NUMBERS",
    "FIRST_JOB",
    "GATE_TIMEOUT_S",
    "JOB_PREFIX",
    "NOTIFICATION_JOBS",
    "PROGRESS_QUEUE",
    "TESTED_QUEUE",
    "BlacklistedNumber",
    "close_gate",
    "create_push_notifications_jobs",
    "enqueue_batch",
    "gate_key",
    "open_gate",
    "process_notification",
    "process_notification_at_gate",
    "process_notification_with_blacklist",
    "send_notification",
    "send_notification_with_blacklist",
    "validate_job",
    "wait_until_running",
]


class BlacklistedNumber(ValueError):
    """The phone number may not receive notifications: a type of its own for
    jobs that want one (the reliability drill's, :mod:`helpers.drill`); lesson
    07's processor raises a plain ``ValueError`` with the same message."""


# The job functions are defined here, not re-exported: jobs name them
# ``helpers.notifications.<name>``, and the workers' allow-list names each job
# function where it is defined (helpers.allowlist.COURSE_JOBS).


def process_notification(data: Mapping[str, str]) -> None:
    """Job function of lesson 06: the reference processor's
    (:func:`helpers.programs.t6_job_processor.process_notification`)."""
    t6_job_processor.process_notification(data)


def process_notification_with_blacklist(data: Mapping[str, str]) -> None:
    """Job function of lessons 07 and 08, reporting progress as job events: the
    reference processor's (:func:`helpers.programs.t7_job_processor.process_notification`)."""
    t7_job_processor.process_notification(data)


# --- lesson 07: a gate, to see two jobs run at once for certain ---------------

GATE_TIMEOUT_S = 120.0  # a gate nobody opens holds a job at most this long


def gate_key(queue_name: str) -> str:
    """The key that, while it exists, holds the gated jobs of ``queue_name``
    (cleared with the queue's keys, :func:`helpers.workers.queue_keys`)."""
    return f"jobs:gate:{queue_name}"


def close_gate(queue: Queue) -> None:
    """Hold every job of ``queue`` that runs :func:`process_notification_at_gate`."""
    queue.connection.set(gate_key(queue.name), "closed")


def open_gate(queue: Queue) -> None:
    """Let the held jobs of ``queue`` go on."""
    queue.connection.delete(gate_key(queue.name))


def process_notification_at_gate(data: Mapping[str, str]) -> None:
    """Lesson 07's job function: wait while the queue's gate is closed (at
    most :data:`GATE_TIMEOUT_S`), then :func:`process_notification_with_blacklist`.
    With the gate closed, each worker holds the job it took: with two
    workers, two jobs are running at once, certainly, not by luck of timing."""
    job = get_current_job()
    if job is not None:
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while job.connection.exists(gate_key(job.origin)) and time.monotonic() < deadline:
            time.sleep(0.02)
    process_notification_with_blacklist(data)


def wait_until_running(queue: Queue, count: int, timeout: float = 30.0) -> list[str]:
    """Block until ``count`` jobs of ``queue`` are running (in RQ's started
    registry) and return their ids, in creation order."""
    deadline = time.monotonic() + timeout
    while len(running := queue.started_job_registry.get_job_ids(cleanup=False)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(running)} of {count} jobs running after {timeout:g}s")
        time.sleep(0.02)
    return sorted(running, key=job_number)
