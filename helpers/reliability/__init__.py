"""Reliable jobs with RQ (lessons 12 and 13): retries, crashed workers,
idempotency; graceful shutdown, monitoring and security.

What RQ gives, and what the course adds on top:

- **Retries** (``Retry(max=3, interval=[1, 2, 4])``): RQ re-runs a job that
  raised. With intervals the retry waits in the ``ScheduledJobRegistry`` and
  needs a worker started with the scheduler. :func:`flaky_send` fails its
  first attempts to show it; :func:`send_unless_blocked` fails until its cause is fixed.
- **Crashed workers.** A worker killed with SIGKILL (or a machine that dies)
  leaves its job in the ``StartedJobRegistry`` with status ``started``. RQ
  itself notices only when the registry entry expires (about 90 s after the
  worker's last heartbeat) *and* a worker's maintenance pass runs (every 10
  minutes by default). :func:`recover_abandoned_jobs` finds them at once: an
  entry whose worker is dead (:func:`worker_alive`). It then hands them to
  RQ's own clean-up, which retries a job that has retries left and moves the
  others to the ``FailedJobRegistry`` (``AbandonedJobError``). It edits RQ's
  private keys: tested with the RQ versions in :data:`TESTED_RQ_VERSIONS`.
- :func:`crash` kills a worker like a power cut: the worker *and* its
  work-horse (RQ puts the work-horse in its own process group, so killing
  the worker's group alone leaves the work-horse running the job).
- **Idempotency.** A job may run twice (at-least-once). :func:`notify_once`
  records the notification and an idempotency key in one atomic step (a Lua
  script), so a second run cannot notify again.
- **Monitoring and security** (lesson 13): :func:`registry_counts`,
  :func:`rq_info`, :func:`start_dashboard` (rq-dashboard on loopback), a
  harmless demonstration of why pickle is dangerous (:class:`HarmlessPayload`),
  and an ACL user for the queues (:data:`QUEUE_USER_RULES`, :func:`create_acl_user`).

One module per part, everything re-exported here (``reliability.X``, and the
job functions' dotted paths ``"helpers.reliability.<function>"`` for RQ):

- :mod:`~helpers.reliability.keys`: lesson 12's and 13's queues and Redis keys;
- :mod:`~helpers.reliability.jobs`: the job functions workers run;
- :mod:`~helpers.reliability.idempotency`: :func:`notify_once` and its Lua script;
- :mod:`~helpers.reliability.recovery`: :func:`crash`, :func:`recover_abandoned_jobs`;
- :mod:`~helpers.reliability.supervisor`: :class:`Supervisor`;
- :mod:`~helpers.reliability.monitoring`: waiting, logs, registries, ``rq info``,
  rq-dashboard;
- :mod:`~helpers.reliability.security`: the pickle demonstration, the queue user's
  ACL rules, a throwaway server.
"""

from __future__ import annotations

from helpers.reliability.idempotency import (
    _NOTIFY_ONCE,
    IDEMPOTENCY_TTL_S,
    idempotency_key,
    notify_naively,
    notify_once,
)
from helpers.reliability.jobs import (
    GatewayRejected,
    GatewayUnavailable,
    attempt_gaps,
    flaky_send,
    hold_until,
    release,
    send_notification_once,
    send_unless_blocked,
)
from helpers.reliability.keys import (
    EXECUTIONS,
    NAMESPACE,
    OPERATIONS_QUEUE,
    OUTBOX,
    QUEUE,
    attempts_key,
    blocked_key,
    release_key,
)
from helpers.reliability.monitoring import (
    Dashboard,
    log_lines,
    registry_counts,
    rq_info,
    start_dashboard,
    wait_for_status,
)
from helpers.reliability.recovery import (
    TESTED_RQ_VERSIONS,
    Recovery,
    abandoned_after_s,
    crash,
    orphans_key,
    recover_abandoned_jobs,
    worker_alive,
)
from helpers.reliability.security import (
    QUEUE_USER_RULES,
    UNPICKLING_EFFECTS,
    HarmlessPayload,
    connecting_as,
    create_acl_user,
    record_unpickling,
    throwaway_server,
)
from helpers.reliability.supervisor import Supervisor

__all__ = [
    "_NOTIFY_ONCE",  # printed by lesson 12
    "hold_until",
    "QUEUE_USER_RULES",
    "TESTED_RQ_VERSIONS",
    "connecting_as",
    "create_acl_user",
    "EXECUTIONS",
    "IDEMPOTENCY_TTL_S",
    "NAMESPACE",
    "OPERATIONS_QUEUE",
    "OUTBOX",
    "QUEUE",
    "UNPICKLING_EFFECTS",
    "Dashboard",
    "GatewayRejected",
    "GatewayUnavailable",
    "HarmlessPayload",
    "Recovery",
    "Supervisor",
    "abandoned_after_s",
    "attempt_gaps",
    "attempts_key",
    "blocked_key",
    "crash",
    "flaky_send",
    "idempotency_key",
    "log_lines",
    "notify_naively",
    "notify_once",
    "orphans_key",
    "record_unpickling",
    "recover_abandoned_jobs",
    "registry_counts",
    "release",
    "release_key",
    "rq_info",
    "send_notification_once",
    "send_unless_blocked",
    "start_dashboard",
    "throwaway_server",
    "wait_for_status",
    "worker_alive",
]
