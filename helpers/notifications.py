"""Push notification jobs: the original's tasks 6, 7 and 8 with RQ.

- :func:`send_notification` (lesson 06) prints the original's line; in a
  worker it lands in the worker's log.
- :func:`send_notification_with_blacklist` (lesson 07): progress 0%, fails for
  :data:`BLACKLISTED_NUMBERS` with ``Phone number <n> is blacklisted``, else
  progress 50%, prints the line, completes.
- :func:`process_notification` and :func:`process_notification_with_blacklist`
  are the job functions RQ runs: each takes the job's data, the dict
  ``{"phoneNumber": ..., "message": ...}``, as its only argument.
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

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from rq import Queue
from rq.job import Job, get_current_job

from helpers.job_events import (
    FAILURE_CALLBACK,
    SUCCESS_CALLBACK,
    creator_listener,
    enqueue_with_events,
    job_ids,
    job_number,
    report_progress,
)

PROGRESS_QUEUE = "push_notification_code_2"  # lesson 07
TESTED_QUEUE = "push_notification_code_3"  # lesson 08
JOB_PREFIX = "Notification job"  # how the creator names a job in its lines (seats.JOB_PREFIX)

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
    """The original's ``createPushNotificationsJobs``; each job's lines go to ``echo``."""
    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")
    for index, data in enumerate(jobs):
        validate_job(data, index)  # every job, before any is enqueued
    if not jobs:
        return []
    listener = creator_listener(queue, prefix=JOB_PREFIX)  # this process's, started once
    ids = job_ids(queue.connection, queue.name, len(jobs))
    listener.expect(ids, echo)  # before the jobs exist: no event can be missed
    try:
        created = enqueue_batch(queue, func, jobs, ids)
    except BaseException:
        listener.forget(ids)
        raise
    listener.announce(created)  # the "created" lines, then each job's events as they come
    if not queue.is_async:  # the jobs ran inside enqueue: print their lines before returning
        listener.wait(created)
    return created


def enqueue_batch(
    queue: Queue, func: str | Callable[..., Any], jobs: list[Any], ids: list[str]
) -> list[Job]:
    """One job per item of ``jobs`` (its only argument), with the ids ``ids``
    and the event callbacks. On an async queue, in one transaction; a
    synchronous queue runs each job as it is enqueued, one at a time."""
    if not queue.is_async:
        return [
            enqueue_with_events(queue, func, data, job_id=job_id)
            for data, job_id in zip(jobs, ids, strict=True)
        ]
    return queue.enqueue_many(
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
