"""The thirteen tasks, in the original's order, one module per group of lessons:
:mod:`~helpers.check.tasks.basics` (0, 1, 2, 4), :mod:`~helpers.check.tasks.messaging` (5),
:mod:`~helpers.check.tasks.jobs` (6, 7), :mod:`~helpers.check.tasks.job_function` (8),
:mod:`~helpers.check.tasks.services` (9, 100)."""

from __future__ import annotations

from helpers.check.task import Task
from helpers.check.tasks import basics, job_function, jobs, messaging, services

TASKS: list[Task] = [
    *basics.TASKS,
    *messaging.TASKS,
    *jobs.TASKS,
    *job_function.TASKS,
    *services.TASKS,
]
