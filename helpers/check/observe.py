"""What graders look at while the learner's programs run: a bounded wait that
stops early once those programs have exited, the jobs waiting in a queue, and
whether a printed line names a job."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from helpers.job_events import shown_id
from helpers.processes import BackgroundProcess

POLL_S = 0.02


def until(condition: Callable[[], bool], timeout_s: float, *processes: BackgroundProcess) -> bool:
    """Poll ``condition`` until it holds (True), ``timeout_s`` passes or every
    one of ``processes`` has exited (then one last look)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline or not any(p.running for p in processes):
            return condition()
        time.sleep(POLL_S)
    return True


def queued(client: redis.Redis, name: str) -> list[str]:
    """The ids waiting in RQ's queue ``name``, in order."""
    return client.lrange(f"rq:queue:{name}", 0, -1)


def names(printed: str, job_id: str) -> bool:
    """Does ``printed`` name the job: its RQ id, or its number (``<queue>-<n>`` prints ``n``)?"""
    return printed in (job_id, shown_id(job_id))
