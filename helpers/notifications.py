"""Push notification jobs: the original's tasks 6, 7 and 8 with RQ.

- :func:`send_notification` (lesson 06) prints the original's line; in a
  worker it lands in the worker's log.
- :func:`send_notification_with_blacklist` (lesson 07): progress 0%, fails for
  :data:`BLACKLISTED_NUMBERS` with ``Phone number <n> is blacklisted``, else
  progress 50%, prints the line, completes.
- :func:`process_notification` and :func:`process_notification_with_blacklist`
  are the job functions RQ runs: each takes the job's data, the dict
  ``{"phoneNumber": ..., "message": ...}``, as its only argument.
- :func:`create_push_notifications_jobs` (lesson 08) validates a list of job
  data, then enqueues one job per item, printing ``Notification job created: <id>``.

Events (progress, completed, failed) come from :mod:`helpers.job_events`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from rq import Queue
from rq.job import Job

from helpers.job_events import (
    FAILURE_CALLBACK,
    SUCCESS_CALLBACK,
    enqueue_with_events,
    job_ids,
    report_progress,
)

FIRST_QUEUE = "push_notification_code"  # lesson 06
PROGRESS_QUEUE = "push_notification_code_2"  # lesson 07
TESTED_QUEUE = "push_notification_code_3"  # lesson 08
PREFIX = "Notification job"  # how the creator names a job in its lines

BLACKLISTED_NUMBERS: tuple[str, ...] = ("4153518780", "4153518781")

#: Lesson 06's one job.
FIRST_JOB: dict[str, str] = {
    "phoneNumber": "4153518780",
    "message": "This is the code to verify your account",
}

#: Lesson 07's eleven jobs, in the original's order.
NOTIFICATION_JOBS: list[dict[str, str]] = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153518743", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153538781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153118782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4159518782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4158718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153818782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4154318781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4151218782", "message": "This is the code 4321 to verify your account"},
]

_DIGITS = re.compile(r"[0-9]+")


class BlacklistedNumber(Exception):
    """The phone number may not receive notifications."""


def send_notification(phone_number: str, message: str) -> None:
    """Lesson 06's processor: print the original's line."""
    print(f"Sending notification to {phone_number}, with message: {message}", flush=True)


def send_notification_with_blacklist(
    phone_number: str, message: str, progress: Callable[[int], object]
) -> None:
    """Lesson 07's processor: report 0%, refuse blacklisted numbers, report
    50%, send. ``progress`` receives each percentage (in a job:
    :func:`helpers.job_events.report_progress`)."""
    progress(0)
    if phone_number in BLACKLISTED_NUMBERS:
        raise BlacklistedNumber(f"Phone number {phone_number} is blacklisted")
    progress(50)
    send_notification(phone_number, message)


def process_notification(data: Mapping[str, str]) -> None:
    """Job function of lesson 06: ``data`` is the job's ``{phoneNumber, message}``."""
    send_notification(data["phoneNumber"], data["message"])


def process_notification_with_blacklist(data: Mapping[str, str]) -> None:
    """Job function of lessons 07 and 08, reporting progress as job events."""
    send_notification_with_blacklist(data["phoneNumber"], data["message"], report_progress)


def validate_job(data: object, index: int = 0) -> None:
    """Raise a clear TypeError/ValueError unless ``data`` is a notification job:
    a dict with ``phoneNumber`` (a string of digits) and ``message`` (a
    non-empty string). ``index`` names the job in the message."""
    where = f"job {index}"
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} is not an object: {data!r}")
    for key in ("phoneNumber", "message"):
        if key not in data:
            raise ValueError(f"{where} has no {key}: {dict(data)!r}")
    phone, message = data["phoneNumber"], data["message"]
    if not isinstance(phone, str):
        raise TypeError(f"{where}: phoneNumber must be a string of digits, not {phone!r}")
    if not _DIGITS.fullmatch(phone):
        raise ValueError(f"{where}: phoneNumber must contain only digits: {phone!r}")
    if not isinstance(message, str):
        raise TypeError(f"{where}: message must be a string, not {message!r}")
    if not message.strip():
        raise ValueError(f"{where}: message is empty")


def create_push_notifications_jobs(
    jobs: Any,
    queue: Queue,
    *,
    func: str | Callable[..., Any] = process_notification_with_blacklist,
    echo: Callable[[str], object] = print,
) -> list[Job]:
    """Enqueue one job per item of ``jobs`` on ``queue`` and return the jobs.

    ``jobs`` must be a list (else ``TypeError("Jobs is not an array")``) of
    valid job data (see :func:`validate_job`); all are checked before any is
    enqueued. Each job's only argument is its data, unchanged; each gets a
    counter id and the event callbacks, and ``Notification job created: <id>``
    is printed (passed to ``echo``). On an async queue the jobs are enqueued
    in one transaction.
    """
    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")
    for index, data in enumerate(jobs):
        validate_job(data, index)
    if not jobs:
        return []
    ids = job_ids(queue.connection, queue.name, len(jobs))
    if queue.is_async:
        created = queue.enqueue_many(
            [
                Queue.prepare_data(
                    func,
                    args=(data,),
                    job_id=job_id,
                    on_success=SUCCESS_CALLBACK,
                    on_failure=FAILURE_CALLBACK,
                )
                for data, job_id in zip(jobs, ids, strict=True)
            ]
        )
    else:
        # A synchronous queue runs each job as it is enqueued: one at a time.
        created = [
            enqueue_with_events(queue, func, data, job_id=job_id)
            for data, job_id in zip(jobs, ids, strict=True)
        ]
    for job in created:
        echo(f"{PREFIX} created: {job.id}")
    return created
