"""Placeholder: filled in by the tasks of its lessons."""

from __future__ import annotations

from helpers.check.task import Task

TASKS: list[Task] = []
