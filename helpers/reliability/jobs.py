"""The job functions of lessons 12 and 13. They run in workers; the course passes
them to RQ by name (``"helpers.reliability.flaky_send"``: the package
re-exports them).

- :func:`flaky_send` fails its first attempts (retries);
- :func:`send_unless_blocked` fails until its cause is fixed (the failed job
  registry, requeue);
- :func:`send_notification_once` notifies at most once however often it runs
  (idempotency, :func:`helpers.reliability.idempotency.notify_once`); it
  holds after notifying until :func:`release`, so a kill surely lands there;
- :func:`hold_until` holds its worker until a file appears (a job that is
  surely running when a test or a lesson kills or stops something).
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from rq.job import get_current_job

from helpers.reliability.idempotency import notify_once
from helpers.reliability.keys import EXECUTIONS, OUTBOX, attempts_key, blocked_key, release_key


class GatewayUnavailable(Exception):
    """The (pretend) SMS gateway did not answer: worth retrying."""


class GatewayRejected(Exception):
    """The (pretend) SMS gateway refused the message: retrying will not help
    until someone fixes the cause."""


def _job_connection() -> redis.Redis:
    job = get_current_job()
    if job is None:
        raise RuntimeError("this function runs inside an RQ job (in a worker)")
    return job.connection


def flaky_send(name: str, failures: int) -> str:
    """Job: fail the first ``failures`` attempts (gateway down), then succeed.
    Each attempt's time is appended to ``reliability:attempts:<name>``."""
    connection = _job_connection()
    attempt = connection.rpush(attempts_key(name), f"{time.time():.3f}")
    if attempt <= failures:
        raise GatewayUnavailable(f"gateway unavailable (attempt {attempt})")
    return f"sent on attempt {attempt}"


def hold_until(path: str, timeout_s: float = 600.0) -> bool:
    """Job: wait until file ``path`` exists (True), at most ``timeout_s``
    seconds (False). A file, not a Redis key, so it works while Redis is down."""
    deadline = time.monotonic() + timeout_s
    while not Path(path).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def attempt_gaps(connection: redis.Redis, name: str) -> list[float]:
    """Seconds between consecutive attempts of :func:`flaky_send` ``name``."""
    times = [float(t) for t in connection.lrange(attempts_key(name), 0, -1)]
    return [round(b - a, 1) for a, b in zip(times, times[1:], strict=False)]


def send_unless_blocked(phone: str, message: str) -> str:
    """Job: send ``message`` to ``phone`` unless the gateway blocks the number
    (a member of :func:`blocked_key`): then raise :class:`GatewayRejected`."""
    connection = _job_connection()
    if connection.sismember(blocked_key(), phone):
        raise GatewayRejected(f"Phone number {phone} is blacklisted")
    connection.rpush(OUTBOX, f"{phone}: {message}")
    return "sent"


def send_notification_once(notification_id: str, phone: str, message: str, seconds: float) -> str:
    """Job: notify (at most once per ``notification_id``), then go on working
    (writing an audit trail, say) until :func:`release` lets it finish, at
    most ``seconds``: a crash in that window makes RQ run the job again, and
    the idempotency key stops a second notification. Counts its runs in the
    hash ``reliability:executions``."""
    connection = _job_connection()
    job = get_current_job()
    assert job is not None
    connection.hincrby(EXECUTIONS, job.id, 1)
    sent = notify_once(connection, notification_id, f"{phone}: {message}")
    deadline = time.monotonic() + seconds  # the risky window: until released
    while not connection.exists(release_key(notification_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "sent" if sent else "already sent: skipped"


def release(connection: redis.Redis, notification_id: str) -> None:
    """Let the runs of :func:`send_notification_once` ``notification_id``
    finish their work: the one holding now and any later one. A flag, not a
    token for one waiter: a run killed while it waited takes nothing with it."""
    connection.set(release_key(notification_id), "go", ex=3600)
