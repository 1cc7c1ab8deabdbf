"""The work every library does in the comparison, and where it leaves its marks.

Every library runs the same three kinds of job, each taking the course's id
of the job (``<queue>-<n>``) as its first argument:

- the original's notification job of task 7 (:func:`send_notification`:
  progress 0%, a blacklist, progress 50%, the line ``Sending notification
  to ...``), on queue ``push_notification_code_2``, whose progress and outcome
  go to an event list that the creator prints as the original's lines;
- a trivial job, :func:`record_done`'s one ``RPUSH`` of its id: the same for
  every library, so rates compare like for like;
- the crash drill's job, :func:`drill_step`: count the run, maybe hold (so
  that the drill kills a worker while it certainly runs a job), do the side
  effect (an ``RPUSH``, deliberately *not* idempotent, so a second run shows).

Each library has a Redis database of its own on the course server (or
``REDIS_URL``): :data:`DATABASES`, :func:`library_url`. Its queues, the
library's own keys and the keys below never meet another library's, and
each clears only the keys it made (:data:`OWN_KEYS`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from helpers.programs.t7_job_creator import NOTIFICATION_JOBS
from helpers.programs.t7_job_processor import BLACKLISTED_NUMBERS, send_notification
from helpers.server import redis_url

__all__ = [
    "BLACKLISTED_NUMBERS",
    "DATABASES",
    "NOTIFICATION_JOBS",
    "QUEUE",
    "SETTINGS",
    "SETTINGS_ENV",
    "drill_step",
    "job_ids",
    "library_url",
    "notification_lines",
    "record_done",
    "record_event",
    "send_notification",
]

QUEUE = "push_notification_code_2"  # the original's queue of task 7, in every library
LIBRARIES = ("rq", "celery", "dramatiq", "arq")
#: Each library's own database number on the server (far from the 0 the lessons use).
DATABASES: dict[str, int] = {"rq": 11, "celery": 12, "dramatiq": 13, "arq": 14}

DEFAULT, AT_LEAST_ONCE = "default", "at_least_once"
SETTINGS = (DEFAULT, AT_LEAST_ONCE)
SETTINGS_ENV = "COURSE_COMPARE_SETTINGS"  # tells a worker process which settings to use

PREFIX = "compare:"  # the comparison's own keys, in each library's database
DONE = f"{PREFIX}done"  # list: ids of trivial jobs done
EVENTS = f"{PREFIX}events"  # list: JSON events of the notification jobs
EXECUTIONS = f"{PREFIX}executions"  # hash: drill job id -> runs of its function
EFFECTS = f"{PREFIX}effects"  # list: one drill job id per side effect done
HELD = f"{PREFIX}held"  # hash: drill job id -> pid of the process holding it
HOLD_LIMIT_S = 60.0  # a held job nobody kills goes on after this long

HOLD_BEFORE, HOLD_AFTER = "before", "after"  # held before or after its side effect


def settings() -> str:
    """The settings this worker process runs with (``$COURSE_COMPARE_SETTINGS``)."""
    value = os.environ.get(SETTINGS_ENV, DEFAULT)
    if value not in SETTINGS:
        raise ValueError(f"{SETTINGS_ENV}={value!r}: expected one of {SETTINGS}")
    return value


def library_url(library: str, base: str | None = None) -> str:
    """The course server's URL (or ``base``) with ``library``'s database number."""
    db = DATABASES[library]
    parts = urlsplit(base or redis_url())
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query), db=str(db))
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{db}"))


def job_ids(kind: str, count: int) -> list[str]:
    """``count`` ids of the course's form, ``<queue>-<kind>-<n>`` (``kind``
    empty: ``<queue>-<n>``, the notification jobs)."""
    middle = f"{kind}-" if kind else ""
    return [f"{QUEUE}-{middle}{n}" for n in range(1, count + 1)]


def number(job_id: str) -> int:
    """The job's number, as the original printed it: ``push_notification_code_2-7`` -> 7."""
    return int(job_id.rsplit("-", 1)[1])


# --- what the jobs do (each library calls these from its own job functions) ---


def record_done(client: redis.Redis, job_id: str) -> None:
    """The trivial job: one ``RPUSH`` of its id."""
    client.rpush(DONE, job_id)


def record_event(client: redis.Redis, job_id: str, kind: str, **fields: object) -> None:
    """A notification job's event (``progress`` with ``percent``, ``completed``,
    ``failed`` with ``error``), for the creator to print."""
    client.rpush(EVENTS, json.dumps({"job": job_id, "kind": kind, **fields}))


def drill_step(client: redis.Redis, job_id: str, hold: str) -> int:
    """The drill's job: count the run; on the first run of a job marked
    ``hold``, say so in :data:`HELD` and wait there (to be killed) before
    (``"before"``) or after (``"after"``) the side effect; the side effect is
    one ``RPUSH`` of the id to :data:`EFFECTS`. Returns the run's number."""
    run = int(client.hincrby(EXECUTIONS, job_id, 1))
    if run == 1 and hold == HOLD_BEFORE:
        _hold(client, job_id)
    client.rpush(EFFECTS, job_id)
    if run == 1 and hold == HOLD_AFTER:
        _hold(client, job_id)
    return run


def _hold(client: redis.Redis, job_id: str) -> None:
    client.hset(HELD, job_id, os.getpid())
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline and client.hexists(HELD, job_id):
        time.sleep(0.01)


def notification_progress(client: redis.Redis, job_id: str) -> Callable[[int], None]:
    """The ``progress`` callback of :func:`send_notification` for ``job_id``."""
    return lambda percent: record_event(client, job_id, "progress", percent=percent)


# --- the creator's side -------------------------------------------------------


def read_events(client: redis.Redis) -> list[dict[str, object]]:
    """Every notification event recorded so far, in order."""
    return [json.loads(raw) for raw in client.lrange(EVENTS, 0, -1)]


def wait_for_events(
    client: redis.Redis, ids: Sequence[str], timeout: float = 60.0
) -> list[dict[str, object]]:
    """Block until every job of ``ids`` has a completed or failed event; return the events."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(client)
        ended = {e["job"] for e in events if e["kind"] in ("completed", "failed")}
        if set(ids) <= ended:
            return events
        if time.monotonic() > deadline:
            raise TimeoutError(f"no outcome after {timeout:g} s for {sorted(set(ids) - ended)}")
        time.sleep(0.02)


def event_line(event: dict[str, object]) -> str:
    """The original's line for one event."""
    n = number(str(event["job"]))
    if event["kind"] == "progress":
        return f"Notification job {n} {event['percent']}% complete"
    if event["kind"] == "completed":
        return f"Notification job {n} completed"
    return f"Notification job {n} failed: {event['error']}"


def notification_lines(ids: Sequence[str], events: Iterable[dict[str, object]]) -> list[str]:
    """The original's lines: one ``created`` line per job, then each job's
    events, job by job in creation order (each job's in the order they
    happened), so the output is the same however the workers interleave."""
    lines = [f"Notification job created: {number(job_id)}" for job_id in ids]
    events = list(events)
    for job_id in ids:
        lines += [event_line(e) for e in events if e["job"] == job_id]
    return lines


def outcome(events: Iterable[dict[str, object]]) -> dict[str, int]:
    """How many jobs completed and how many failed."""
    kinds = [e["kind"] for e in events]
    return {"completed": kinds.count("completed"), "failed": kinds.count("failed")}
