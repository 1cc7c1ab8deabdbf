"""Keep workers running and lose no job when one dies (:class:`Supervisor`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import redis

from helpers.reliability.recovery import Recovery, recover_abandoned_jobs
from helpers.workers import WorkerProcess, start_worker
from helpers.workers import queue as course_queue


class Supervisor:
    """Keeps ``count`` workers running on ``queue_name`` and loses no job when
    one dies: what a process manager (systemd, Kubernetes, supervisord) does
    for real workers, plus the recovery step RQ leaves to its slow
    maintenance.

    :meth:`check` is one supervision pass (call it every second or so):
    replace each worker process that exited, then
    :func:`recover_abandoned_jobs`. RQ 3.0 workers survive a Redis outage
    while they wait for work (they reconnect with backoff), but one that is
    in the middle of a job when Redis goes away exits: the supervisor
    replaces it once Redis answers again, and its job is recovered.
    """

    def __init__(self, queue_name: str, count: int = 1, **worker_options: object) -> None:
        self.queue = course_queue(queue_name)
        self.count = count
        self.worker_options = worker_options
        self.workers: list[WorkerProcess] = []
        self.replaced = 0  # workers that exited and were replaced
        self.recovered: list[str] = []  # job ids recovered by check()

    def start(self) -> Supervisor:
        """Start the workers; returns once they are all registered."""
        self.workers = [self._start(wait=False) for _ in range(self.count)]
        for worker in self.workers:
            worker.wait_ready()
        return self

    def _start(self, wait: bool = True) -> WorkerProcess:
        return start_worker(self.queue.name, wait=wait, **self.worker_options)  # type: ignore[arg-type]

    def replace(self, worker: WorkerProcess) -> WorkerProcess:
        """Start a new worker in place of ``worker`` (which must have exited)."""
        fresh = self._start()
        self.workers[self.workers.index(worker)] = fresh
        self.replaced += 1
        return fresh

    def check(self) -> Recovery:
        """One supervision pass; does nothing while Redis does not answer."""
        try:
            self.queue.connection.ping()
        except redis.ConnectionError:
            return Recovery()
        for worker in list(self.workers):
            if not worker.running:
                try:
                    self.replace(worker)
                except (RuntimeError, TimeoutError):
                    pass  # Redis went away again: the next pass retries
        try:
            recovery = recover_abandoned_jobs(self.queue)
        except redis.ConnectionError:
            return Recovery()
        self.recovered += recovery.jobs
        return recovery

    def run_until(
        self, done: Callable[[], bool], *, timeout: float = 60.0, interval: float = 0.5
    ) -> bool:
        """Supervise until ``done()`` is true (True) or ``timeout`` (False).
        ``done`` may raise ``redis.ConnectionError``: it counts as not done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if done():
                    return True
            self.check()
            time.sleep(interval)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop of every worker (SIGTERM: current jobs finish)."""
        for worker in self.workers:
            worker.stop(timeout)

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
