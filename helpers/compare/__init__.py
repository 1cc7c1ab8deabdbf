"""RQ, Celery, Dramatiq and arq on the same work, measured side by side (lesson 15).

Command line::

    python -m helpers.compare [--json] [--quick] [--runs N] [--only LIBRARY ...]

Runs the original's notification work (task 7) on each library, with Redis
as the broker, against the course server (or ``REDIS_URL``), each library
in a database of its own (:data:`~helpers.compare.work.DATABASES`), and
prints a table, or with ``--json`` one object::

    {"libraries": {"rq": {...}, "celery": {...}, "dramatiq": {...}, "arq": {...}},
     "machine": {...}}

Each library's figures: ``enqueue_per_s``, ``jobs_per_s`` (``{"1": ..., "2": ...}``
worker processes), ``latency_p50_ms``, ``latency_p99_ms``,
``round_trips_per_job`` (and ``commands_per_job``, ``lua_commands_per_job``),
``notifications`` (the eleven jobs: ``completed``, ``failed``) and ``drill``
(``default`` and ``at_least_once``: ``lost``, ``late``, ``duplicated`` ...);
how each is measured: :mod:`~helpers.compare.measure`. ``--quick`` runs
:data:`~helpers.compare.measure.QUICK` (under 2 minutes), or, with
``COURSE_COMPARE_SIZE=smoke``, tiny loads (:data:`~helpers.compare.measure.SMOKE`,
for the tests: structure, not speed). ``--runs 3``: every figure the median of 3 runs.

The package, by part:

- :mod:`~helpers.compare.work`: the jobs' work, their keys, the databases;
- :mod:`~helpers.compare.library`: :class:`QueueLibrary`, what each library provides;
- :mod:`~helpers.compare.rq_queue`, :mod:`~helpers.compare.celery_queue`,
  :mod:`~helpers.compare.dramatiq_queue`, :mod:`~helpers.compare.arq_queue`:
  the work on each library, its own way;
- :mod:`~helpers.compare.measure`: the measurements, :func:`run_compare`;
- :mod:`~helpers.compare.report`: the tables;
- ``__main__``: the command line.
"""

from __future__ import annotations

from helpers.compare.library import QueueLibrary
from helpers.compare.measure import (
    FULL,
    IMPLEMENTATIONS,
    LESSON,
    QUICK,
    SIZE_ENV,
    SMOKE,
    drill,
    library,
    measure_enqueue,
    measure_jobs,
    measure_latency,
    quick_size,
    run_compare,
    running,
    trace,
)
from helpers.compare.report import format_drill, format_table
from helpers.compare.work import DATABASES, QUEUE, SETTINGS

__all__ = [
    "DATABASES",
    "FULL",
    "IMPLEMENTATIONS",
    "LESSON",
    "QUEUE",
    "QUICK",
    "SETTINGS",
    "SIZE_ENV",
    "SMOKE",
    "QueueLibrary",
    "drill",
    "format_drill",
    "format_table",
    "library",
    "measure_enqueue",
    "measure_jobs",
    "measure_latency",
    "quick_size",
    "run_compare",
    "running",
    "trace",
]
