"""Lesson 12's queue and its own Redis keys (``reliability:*``), and lesson 13's queue."""

from __future__ import annotations

QUEUE = "reliability"  # lesson 12's queue
OPERATIONS_QUEUE = "operations"  # lesson 13's queue (its jobs: ids operations-<n>)
NAMESPACE = "reliability"  # lesson 12's own keys: reliability:*
OUTBOX = f"{NAMESPACE}:outbox"  # notifications "sent" by lesson 12's jobs
EXECUTIONS = f"{NAMESPACE}:executions"  # hash: job id -> times the job function ran


def attempts_key(name: str) -> str:
    """Where :func:`flaky_send` counts the attempts of ``name``."""
    return f"{NAMESPACE}:attempts:{name}"


def blocked_key() -> str:
    """The set of phone numbers the pretend gateway rejects (:func:`send_unless_blocked`)."""
    return f"{NAMESPACE}:blocked"


def release_key(notification_id: str) -> str:
    """The flag :func:`release` sets to let :func:`send_notification_once` finish."""
    return f"{NAMESPACE}:release:{notification_id}"
