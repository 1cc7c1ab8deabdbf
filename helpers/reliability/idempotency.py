"""Idempotency: a notification recorded at most once, however often its job runs.

A job may run twice (at-least-once delivery). :func:`notify_once` records the
notification and an idempotency key in one atomic step (a Lua script), so a
second run cannot notify again; :func:`notify_naively` is what a job does
without one.
"""

from __future__ import annotations

import time

import redis

from helpers.reliability.keys import NAMESPACE, OUTBOX

IDEMPOTENCY_TTL_S = 7 * 24 * 3600  # keep a "sent" mark longer than any retry could take


# SET NX and RPUSH in one script: the mark and the notification happen
# together or not at all, even if the worker dies between two commands.
_NOTIFY_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


def idempotency_key(notification_id: str, prefix: str = NAMESPACE) -> str:
    """The key that says notification ``notification_id`` was sent."""
    return f"{prefix}:sent:{notification_id}"


def notify_once(
    connection: redis.Redis,
    notification_id: str,
    text: str,
    *,
    outbox: str = OUTBOX,
    prefix: str = NAMESPACE,
    ttl_s: int = IDEMPOTENCY_TTL_S,
) -> bool:
    """Append ``text`` to the ``outbox`` list unless notification
    ``notification_id`` was already sent; True if it was sent now.

    The idempotency key (``<prefix>:sent:<id>``, SET NX) and the RPUSH run as
    one Lua script (EVALSHA), so no crash can leave one without the other."""
    script = connection.register_script(_NOTIFY_ONCE)
    key = idempotency_key(notification_id, prefix)
    return bool(script(keys=[key, outbox], args=[str(time.time()), ttl_s, text]))


def notify_naively(connection: redis.Redis, text: str, *, outbox: str = OUTBOX) -> bool:
    """Append ``text`` to the outbox every time: what a job does without an
    idempotency key. Run twice, it notifies twice."""
    connection.rpush(outbox, text)
    return True
