"""8-job: ``create_push_notifications_jobs(jobs, queue)``, the original's
``createPushNotificationsJobs``.

Anything but a list is refused with the original's ``Jobs is not an array``.
Every job is checked before any is enqueued (:func:`validate_job`), so bad
input gets a clear error and loses nothing. Then one job per item, its data
the job's only argument, with counter ids and the event callbacks
(:func:`enqueue_batch`), and each job's lines as they happen:
``Notification job created: <n>`` at once, then ``... <p>% complete``,
``... completed``, ``... failed: <error>`` from a listener thread of this
process (:func:`helpers.job_events.creator_listener`, lesson 07).

Run as a program, it creates two jobs on a synchronous queue (RQ's
``is_async=False``): they run at once, in this process, leaving nothing queued.
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
    creator_listener,
    enqueue_with_events,
    job_ids,
)
from helpers.workers import queue as course_queue

TESTED_QUEUE = "push_notification_code_3"
JOB_PREFIX = "Notification job"  # how the lines name a job
#: The job function, by name: the worker imports it (lesson 07's processor).
JOB_FUNCTION = "helpers.notifications.process_notification_with_blacklist"

_DIGITS = re.compile(r"[0-9]+")


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
    func: str | Callable[..., Any] = JOB_FUNCTION,
    echo: Callable[[str], object] = print,
) -> list[Job]:
    """Validate ``jobs``, enqueue one job per item on ``queue`` and return them;
    each job's lines go to ``echo``."""
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


def main() -> None:
    """Two of lesson 07's jobs, run at once by a synchronous queue: one
    blacklisted (fails), one sent (completes)."""
    synchronous = course_queue(TESTED_QUEUE, is_async=False)
    create_push_notifications_jobs(
        [
            {
                "phoneNumber": "4153518780",
                "message": "This is the code 1234 to verify your account",
            },
            {
                "phoneNumber": "4153518743",
                "message": "This is the code 4321 to verify your account",
            },
        ],
        synchronous,
    )


if __name__ == "__main__":
    main()
