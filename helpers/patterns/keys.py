"""Lesson 16's queues and Redis keys, and what its pattern modules share."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
from rq.job import Job, get_current_job

from helpers.workers import queue_keys

NAMESPACE = "patterns"
SMS_QUEUE = "patterns-sms"  # rate limits
HIGH_QUEUE = "patterns-high"  # priorities
LOW_QUEUE = "patterns-low"
FLOW_QUEUE = "patterns-flow"  # workflows, schedules, dead letters
QUEUES = (SMS_QUEUE, HIGH_QUEUE, LOW_QUEUE, FLOW_QUEUE)


def key(*parts: object) -> str:
    """``patterns:<part>:<part>...``: a key of this lesson."""
    return ":".join([NAMESPACE, *(str(p) for p in parts)])


def lesson_keys() -> list[str]:
    """Glob patterns of every key lesson 16 creates, for
    :func:`helpers.client.clear_keys`: its own (``patterns:*``), and RQ's for
    its queues, jobs, rate limits, groups and cron schedules, all named
    ``patterns-*``."""
    patterns = [f"{NAMESPACE}:*", f"rq:*:{NAMESPACE}-*"]
    for name in QUEUES:
        patterns += queue_keys(name)
    return patterns


def wait_all(jobs: Sequence[Job], timeout_s: float = 60.0) -> list[str]:
    """Wait until every job has finished or failed; their statuses, in order.
    ``TimeoutError`` (with the statuses) after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    done = ("finished", "failed")
    while True:
        statuses = [job.get_status(refresh=True).value for job in jobs]
        if all(status in done for status in statuses):
            return statuses
        if time.monotonic() > deadline:
            raise TimeoutError(f"not all done after {timeout_s} s: {statuses}")
        time.sleep(0.05)


def job_connection() -> redis.Redis:
    """The Redis connection of the job running in this worker."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("this function runs inside an RQ job (in a worker)")
    return job.connection


def redis_time_ms(connection: redis.Redis) -> int:
    """Redis's clock, in milliseconds: one clock for every process."""
    seconds, microseconds = connection.time()
    return int(seconds) * 1000 + int(microseconds) // 1000
