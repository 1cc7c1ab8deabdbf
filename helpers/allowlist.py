"""The allow-list of job functions the course's workers run.

A job in Redis names its function by dotted path (``"os.system"``) and RQ
imports and calls whatever it names. JSON, unlike pickle, runs no code when a
job is *loaded*, but it does not limit which function is *called*: anyone
who can write to the course's Redis could enqueue ``os.system``. So the
course's workers use :class:`AllowListJob`, which runs a job only if its
function (and each callback) is

- one of the course's own job functions (:data:`COURSE_JOBS`), or
- defined in the learner's workspace package (``workspace.…``), or
- named by an extra entry: ``python -m helpers.workers --allow ENTRY`` or
  ``$COURSE_ALLOWED_JOBS`` (comma-separated), where ``a.b.f`` allows that
  function and ``a.b.*`` every function under module ``a.b``.

Any other job fails, with :class:`JobNotAllowed` and the reason in its
error, before anything it names is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from rq.job import Job
from rq.utils import import_attribute

ENV = "COURSE_ALLOWED_JOBS"

#: The course's job functions and job callbacks, by the module that defines them.
COURSE_JOBS: frozenset[str] = frozenset(
    {
        "helpers.notifications.process_notification",
        "helpers.notifications.process_notification_with_blacklist",
        "helpers.notifications.process_notification_at_gate",
        "helpers.seats.process_seat_job",
        "helpers.job_events.on_success",
        "helpers.job_events.on_failure",
        "helpers.reliability.jobs.flaky_send",
        "helpers.reliability.jobs.send_unless_blocked",
        "helpers.reliability.jobs.send_notification_once",
        "helpers.reliability.jobs.hold_until",
        "helpers.drill.work_and_notify_once",
        "helpers.fastpath.send_notification_batch",
        "helpers.bench.harness.noop",
        "helpers.compare.rq_queue.record_done",
        "helpers.compare.rq_queue.drill_job",
        "helpers.topology.jobs.record",
        "helpers.patterns.rate_limits.send_within_rate",
        "helpers.patterns.rate_limits.send_slowly",
        "helpers.patterns.priorities.record_run",
        "helpers.patterns.priorities.record_and_feed",
        "helpers.patterns.workflows.send_notification",
        "helpers.patterns.workflows.summarize",
        "helpers.patterns.schedules.record_tick",
        "helpers.patterns.dead_letters.send_or_fail",
    }
)
#: Packages whose modules may be imported to look a name up: the course's own
#: and the learner's. A name outside them is refused without an import (an
#: import alone runs a module's code).
IMPORTABLE = ("helpers.", "workspace.")
WORKSPACE = "workspace."


class JobNotAllowed(Exception):
    """A job names a function this worker does not run."""


def extra_entries() -> list[str]:
    """The entries added by ``$COURSE_ALLOWED_JOBS``."""
    return [entry.strip() for entry in os.environ.get(ENV, "").split(",") if entry.strip()]


def _matches(name: str, entries: Sequence[str]) -> bool:
    return any(
        name == entry or (entry.endswith(".*") and name.startswith(entry[:-1])) for entry in entries
    )


def resolve_allowed(name: str | None, extra: Sequence[str] | None = None) -> Callable[..., Any]:
    """The function ``name`` if the allow-list lets it run; else
    :class:`JobNotAllowed` saying why."""
    if not name:
        raise JobNotAllowed("the job names no function")
    entries = extra_entries() if extra is None else list(extra)
    if _matches(name, entries):
        return import_attribute(name)
    if not name.startswith(IMPORTABLE):
        raise JobNotAllowed(_refusal(name))
    function = import_attribute(name)
    defined_as = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    if defined_as in COURSE_JOBS or defined_as.startswith(WORKSPACE):
        return function
    raise JobNotAllowed(_refusal(name))


def _refusal(name: str) -> str:
    return (
        f"{name} is not on this worker's allow-list (the course's job functions and the "
        f"learner's workspace); if you trust it, add it with --allow {name} or ${ENV}"
    )


class AllowListJob(Job):
    """An RQ job that runs only allow-listed functions and callbacks."""

    @property
    def func(self) -> Callable[..., Any] | None:
        """The job's function, looked up through the allow-list."""
        if self.instance is not None:  # a method call on a stored object
            raise JobNotAllowed(f"{self.func_name} is a method call on a stored object")
        return resolve_allowed(self.func_name)

    @property
    def success_callback(self) -> Callable[..., Any] | None:
        """The success callback, if allow-listed."""
        self._check_callback(self._success_callback_name)
        return super().success_callback

    @property
    def failure_callback(self) -> Callable[..., Any] | None:
        """The failure callback, if allow-listed."""
        self._check_callback(self._failure_callback_name)
        return super().failure_callback

    @property
    def stopped_callback(self) -> Callable[..., Any] | None:
        """The stopped callback, if allow-listed."""
        self._check_callback(self._stopped_callback_name)
        return super().stopped_callback

    @staticmethod
    def _check_callback(name: str | None) -> None:
        if name:
            resolve_allowed(name)
