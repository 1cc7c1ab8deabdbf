"""What the measurement needs of each library: :class:`QueueLibrary`.

Each library's module (:mod:`~helpers.compare.rq_queue`, ``celery_queue``,
``dramatiq_queue``, ``arq_queue``) defines its jobs the library's own way
and a subclass of :class:`QueueLibrary` that starts its workers (as real
processes, :class:`helpers.processes.BackgroundProcess`) and enqueues its
jobs. Everything else (timing, the crash drill, MONITOR) is common, in
:mod:`~helpers.compare.measure`.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib.metadata import version

import redis

from helpers.client import clear_keys
from helpers.compare import work
from helpers.processes import BackgroundProcess
from helpers.server import logs_dir


class QueueLibrary(ABC):
    """One library, on its own database of the course server."""

    name: str = ""  # "rq", "celery", ...
    distribution: str = ""  # its package name, for its version
    #: Glob patterns of the library's keys in its database (the comparison's are added).
    library_keys: tuple[str, ...] = ()
    #: The settings, in words, for the lesson's table.
    describe_settings: dict[str, str] = {}
    #: What a worker's log says once it takes jobs, and how many times (per process, or once).
    ready_line: str = ""
    ready_once: bool = False

    def __init__(self) -> None:
        self.url = work.library_url(self.name)
        self.client = redis.Redis.from_url(self.url, decode_responses=True)

    @property
    def version(self) -> str:
        """The installed version of the library."""
        return version(self.distribution)

    def clear(self) -> int:
        """Delete this library's keys and the comparison's, in its database only."""
        return clear_keys(self.client, f"{work.PREFIX}*", *self.library_keys)

    def worker_env(self, settings: str) -> dict[str, str]:
        """The environment of this library's worker processes."""
        return dict(os.environ, REDIS_URL=self.url, **{work.SETTINGS_ENV: settings})

    def start(
        self, module_args: Sequence[str], settings: str, processes: int, timeout: float = 60.0
    ) -> BackgroundProcess:
        """Start ``python -m <module_args>`` as this library's workers (``processes``
        of them), logging to a file of their own; return once the log says they
        are ready. They die with the process that started them."""
        log = logs_dir() / f"compare-{self.name}-{uuid.uuid4().hex[:6]}.log"
        workers = BackgroundProcess.start(module_args, log_file=log, env=self.worker_env(settings))
        wanted = 1 if self.ready_once else processes
        workers.wait_for_output(
            lambda lines: sum(self.ready_line in line for line in lines) >= wanted, timeout
        )
        return workers

    @abstractmethod
    def start_workers(self, processes: int, settings: str = work.DEFAULT) -> BackgroundProcess:
        """``processes`` worker processes, each running one job at a time."""

    @abstractmethod
    def enqueue_records(self, ids: Sequence[str]) -> None:
        """Enqueue one trivial job (:func:`work.record_done`) per id, one by one."""

    @abstractmethod
    def enqueue_notifications(self, ids: Sequence[str], jobs: Sequence[dict[str, str]]) -> None:
        """Enqueue the notification jobs, one per id and data, in order."""

    @abstractmethod
    def enqueue_drill(self, jobs: Sequence[tuple[str, str]], settings: str) -> None:
        """Enqueue the drill's jobs: (id, hold) pairs, with ``settings``."""

    def kill(self, workers: BackgroundProcess) -> list[int]:
        """Kill the worker processes like a power cut (SIGKILL, all of them)."""
        return workers.kill()

    def recover(self, settings: str) -> list[str]:
        """What the course does, once a second, besides starting a worker
        again after a crash (nothing, unless a library needs it); the ids
        of the jobs it handed back."""
        return []

    def pending(self, ids: Sequence[str]) -> list[str]:
        """Of ``ids`` (drill jobs not done), those the broker still holds and
        will run again by itself later (after a timeout of the library's)."""
        return []

    def notifications(self, timeout: float = 60.0) -> tuple[list[str], dict[str, int]]:
        """Enqueue the original's eleven jobs and wait for their outcomes; the
        original's lines and the counts of completed and failed jobs. A
        worker must be running."""
        ids = work.job_ids("", len(work.NOTIFICATION_JOBS))
        self.enqueue_notifications(ids, work.NOTIFICATION_JOBS)
        events = work.wait_for_events(self.client, ids, timeout)
        return work.notification_lines(ids, events), work.outcome(events)

    def close(self) -> None:
        """Close this side's connections."""
        self.client.close()
