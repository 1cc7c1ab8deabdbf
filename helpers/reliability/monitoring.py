"""Watching jobs and workers: wait for a status, read a worker's log, count
the registries, ``rq info``, and rq-dashboard on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass

from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
)

from helpers.processes import BackgroundProcess
from helpers.server import free_port, logs_dir, redis_url
from helpers.workers import WorkerProcess


def wait_for_status(job: Job, *statuses: JobStatus, timeout: float = 60.0) -> JobStatus:
    """Wait until ``job`` reaches one of ``statuses`` (default: finished or
    failed) and return it; TimeoutError after ``timeout`` seconds."""
    wanted = statuses or (JobStatus.FINISHED, JobStatus.FAILED)
    deadline = time.monotonic() + timeout
    while True:
        current = job.get_status(refresh=True)
        if current in wanted:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.id} is {current.value} after {timeout}s")
        time.sleep(0.05)


def log_lines(worker: WorkerProcess, *phrases: str) -> list[str]:
    """The lines of ``worker``'s log containing any of ``phrases``, without
    their time stamp and pid (what varies from run to run)."""
    found = []
    for line in worker.output().splitlines():
        if any(phrase in line for phrase in phrases):
            text = line.split(" ", 1)[1] if line[:2].isdigit() else line
            found.append(re.sub(r" \[PID \d+\]", "", text))
    return found


def registry_counts(queue: Queue) -> dict[str, int]:
    """Where the jobs of ``queue`` are: its list and each registry (raw
    counts, without RQ's clean-up)."""
    connection = queue.connection
    name, serializer = queue.name, queue.serializer
    registries = {
        "queued": None,
        "started": queue.started_job_registry,
        "finished": FinishedJobRegistry(name, connection, serializer=serializer),
        "failed": FailedJobRegistry(name, connection, serializer=serializer),
        "scheduled": ScheduledJobRegistry(name, connection, serializer=serializer),
        "deferred": DeferredJobRegistry(name, connection, serializer=serializer),
    }
    counts = {"queued": int(connection.llen(queue.key))}
    for label, registry in registries.items():
        if registry is not None:
            counts[label] = int(connection.zcard(registry.key))
    counts["intermediate"] = int(connection.llen(queue.intermediate_queue_key))
    return counts


def rq_info(*queues: str, url: str | None = None) -> str:
    """The output of ``rq info`` (RQ's command-line monitor) for ``queues``
    on the course server, with the JSON serializer."""
    args = [sys.executable, "-m", "rq.cli", "info", "--url", url or redis_url(), "-S", "json"]
    result = subprocess.run([*args, *queues], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"rq info failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(kw_only=True)
class Dashboard(BackgroundProcess):
    """rq-dashboard running in the background, on loopback."""

    url: str


def start_dashboard(port: int | None = None, *, timeout: float = 30.0) -> Dashboard:
    """Start rq-dashboard on 127.0.0.1 (a free port unless ``port``), reading
    the course server with the JSON serializer; returns once it answers."""
    import httpx  # noqa: PLC0415 - only the dashboard needs it; job code stays light to import

    port = port or free_port()
    dashboard = Dashboard.start(
        ["rq_dashboard", "--bind", "127.0.0.1", "--port", str(port), "--redis-url", redis_url(),
         "--json"],
        log_file=logs_dir() / f"rq-dashboard-{port}.log",
        url=f"http://127.0.0.1:{port}/",
    )  # fmt: skip

    def answers() -> bool:
        try:
            return httpx.get(dashboard.url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    dashboard.wait_until_ready(answers, timeout, "rq-dashboard")
    return dashboard
