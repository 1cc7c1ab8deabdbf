"""Priorities: queues in priority order, ``at_front``, starvation.

An RQ worker started on ``[high, low]`` takes its next job from the first
queue that has one (RQ's default dequeue strategy): ``low`` runs only when
``high`` is empty. ``at_front=True`` puts a job at the head of its own queue.
While ``high`` never empties, ``low`` never runs: *starvation*. The cure
used here keeps the order for most workers and gives ``low`` a worker of its
own that prefers it (``[low, high]``), so it always moves and helps with
``high`` when ``low`` is empty. (RQ also has ``rq worker
--dequeue-strategy round_robin``, which takes the queues in turn.)

The jobs only record their label in :func:`ran_key`, in the order they ran.
"""

from __future__ import annotations

import redis

from helpers.patterns.keys import job_connection, key
from helpers.workers import queue


def ran_key() -> str:
    """The list of job labels, in the order the jobs ran."""
    return key("ran")


def record_run(label: str) -> None:
    """Job: note that job ``label`` ran (a short piece of work)."""
    job_connection().rpush(ran_key(), label)


def record_and_feed(label: str, remaining: int, queue_name: str) -> None:
    """Job: note ``label``, then, while ``remaining`` > 0, enqueue the next job
    of the feed on ``queue_name`` before finishing: a queue that never empties
    (urgent work that keeps coming)."""
    connection = job_connection()
    connection.rpush(ran_key(), label)
    if remaining > 0:
        prefix, number = label.rsplit("-", 1)
        queue(queue_name, connection).enqueue(
            "helpers.patterns.priorities.record_and_feed",
            f"{prefix}-{int(number) + 1}",
            remaining - 1,
            queue_name,
        )


def run_order(connection: redis.Redis) -> list[str]:
    """The labels of the jobs that ran, in order."""
    return [
        label.decode() if isinstance(label, bytes) else label
        for label in connection.lrange(ran_key(), 0, -1)
    ]


def positions(order: list[str], prefix: str) -> list[int]:
    """Where (1 = first) the jobs whose label starts with ``prefix`` ran."""
    return [i + 1 for i, label in enumerate(order) if label.startswith(prefix)]
