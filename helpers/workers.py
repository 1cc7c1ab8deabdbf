"""RQ queues and worker processes, the course's one way to run them.

Every queue uses RQ's JSON serializer: RQ's default, pickle, runs arbitrary
code when it loads a job, so anyone who can write to Redis could run code in
your workers. JSON only carries data.

Workers are separate processes that log to files under
:func:`helpers.server.logs_dir`. From Python::

    w = start_worker(["push_notification_code"], concurrency=2)
    ...
    w.stop()          # SIGTERM: each worker finishes its current job, then exits

Workers still running when the Python process that started them exits (a
kernel shut down without ``w.stop()``) are stopped the same way; if that
process dies without a chance to clean up (SIGKILL, a crashed kernel), the
workers notice within a second and stop gracefully by themselves
(``--stop-with-pid``), so no forgotten worker keeps taking a lesson's jobs.

From a shell::

    python -m helpers.workers push_notification_code [--concurrency N] [--burst]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from helpers.client import require_redis
from helpers.processes import descendants, stop_when_gone
from helpers.server import logs_dir, redis_url

WORKER_CLASSES: dict[str, type[Worker] | type[SimpleWorker]] = {
    "fork": Worker,  # RQ's default: a fresh child process (work-horse) per job
    "simple": SimpleWorker,  # runs jobs in the worker process itself: faster, less isolated
}


def redis_connection(url: str | None = None) -> redis.Redis:
    """A client for RQ (bytes replies, as RQ expects) to the course server."""
    return redis.Redis.from_url(url or redis_url())


def queue(name: str, connection: redis.Redis | None = None, **kwargs: object) -> Queue:
    """The RQ queue ``name`` with the JSON serializer."""
    return Queue(
        name, connection=connection or redis_connection(), serializer=JSONSerializer, **kwargs
    )


def queue_keys(name: str) -> list[str]:
    """Glob patterns of the keys of queue ``name``, for a lesson's
    :func:`helpers.client.clear_keys`: RQ's list and registries, the jobs with
    course ids ``<name>-<n>`` (hashes, results), and the queue's event stream
    and id counter (:mod:`helpers.job_events`). Jobs with other ids are cleared
    by the lesson, which knows them."""
    return [
        f"rq:queue:{name}",
        f"rq:*:{name}",
        f"rq:*:{name}:*",
        f"rq:*:{name}-*",
        f"jobs:*:{name}",
    ]


@dataclass
class WorkerProcess:
    """A group of RQ worker processes started by :func:`start_worker`."""

    queues: list[str]
    names: list[str]
    log_files: list[Path]
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        """True until the worker process has exited."""
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until every worker has registered itself in Redis."""
        connection = redis_connection()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(connection.exists(f"rq:worker:{name}") for name in self.names):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log}")
            time.sleep(0.05)
        raise TimeoutError(f"workers {self.names} not ready after {timeout}s; see {self.log}")

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGTERM): current jobs finish, then the workers exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def kill(self) -> list[int]:
        """Hard stop, as when a machine dies: SIGKILL to the worker processes
        and their work-horses; jobs in progress are abandoned. RQ puts each
        work-horse in a process group of its own, so killing the workers'
        group is not enough: the horses are found in the process tree first.
        Returns the pids killed."""
        horses = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):  # the workers first: none may react
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        return [self.process.pid, *horses]

    @property
    def log(self) -> Path:
        return self.log_files[0]

    def read_log(self) -> str:
        """Everything the workers wrote so far, worker by worker."""
        return "".join(p.read_text() for p in self.log_files if p.exists())

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_worker(
    queues: str | Sequence[str],
    *,
    concurrency: int = 1,
    burst: bool = False,
    worker_class: str = "fork",
    with_scheduler: bool = False,
    name: str | None = None,
    wait: bool = True,
) -> WorkerProcess:
    """Start ``concurrency`` RQ workers on ``queues`` in a new process group.

    Each worker logs to its own file in :func:`helpers.server.logs_dir`; the
    workers find Redis as the rest of the course does. Returns once they are
    registered (unless ``wait`` is false).
    """
    queue_names = [queues] if isinstance(queues, str) else list(queues)
    base = name or f"{queue_names[0]}.{uuid.uuid4().hex[:6]}"
    names = [base] if concurrency == 1 else [f"{base}-{i + 1}" for i in range(concurrency)]
    log_files = [logs_dir() / f"worker-{n}.log" for n in names]
    args = [
        sys.executable, "-m", "helpers.workers", *queue_names,
        "--concurrency", str(concurrency), "--worker-class", worker_class, "--name", base,
        "--stop-with-pid", str(os.getpid()),
    ]  # fmt: skip
    if burst:
        args.append("--burst")
    if with_scheduler:
        args.append("--with-scheduler")
    env = dict(os.environ, PYTHONUNBUFFERED="1", REDIS_URL=redis_url())
    with open(logs_dir() / f"workers-{base}.log", "ab") as supervisor_log:
        process = subprocess.Popen(
            args, env=env, stdout=supervisor_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = WorkerProcess(queue_names, names, log_files, process)
    # Workers run in their own session, so they would outlive a kernel that
    # forgot them: stop them (gracefully) when this interpreter exits.
    atexit.register(_stop_at_exit, worker)
    if wait and not burst:
        worker.wait_ready()
    return worker


def _stop_at_exit(worker: WorkerProcess) -> None:
    if worker.running:
        worker.stop(timeout=10.0)


def _run_one(
    queue_names: list[str],
    name: str,
    worker_class: str,
    burst: bool,
    with_scheduler: bool,
    stop_with_pid: int | None = None,
) -> int:
    """Run one worker in this process, logging to its file; with
    ``stop_with_pid``, stop gracefully once that process is gone."""
    log_file = logs_dir() / f"worker-{name}.log"
    print(f"Worker {name} on {', '.join(queue_names)}: log in {log_file}", flush=True)
    with open(log_file, "a", buffering=1) as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
        connection = redis_connection()
        worker = WORKER_CLASSES[worker_class](
            [queue(q, connection) for q in queue_names],
            name=name,
            connection=connection,
            serializer=JSONSerializer,
        )
        if stop_with_pid:
            stop_when_gone(stop_with_pid)
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Run ``args.concurrency`` single workers as child processes and pass
    SIGTERM on to them, so a graceful stop reaches every worker."""
    children = []
    for i in range(args.concurrency):
        child_args = [
            sys.executable, "-m", "helpers.workers", *args.queues,
            "--worker-class", args.worker_class, "--name", f"{args.name}-{i + 1}",
            "--stop-with-pid", str(os.getpid()),
        ]  # fmt: skip
        if args.burst:
            child_args.append("--burst")
        if args.with_scheduler and i == 0:
            child_args.append("--with-scheduler")
        children.append(subprocess.Popen(child_args))

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    # Ctrl+C in a terminal already reaches every child (same process group);
    # forwarding it too would count as a second Ctrl+C: RQ's cold shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.stop_with_pid:
        stop_when_gone(args.stop_with_pid)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.workers", description="Run RQ workers (JSON serializer)."
    )
    parser.add_argument("queues", nargs="+", help="queue names, in priority order")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="fork")
    parser.add_argument("--with-scheduler", action="store_true", help="run RQ's scheduler too")
    parser.add_argument("--name", default=None, help="worker name (suffixed -1, -2... if several)")
    parser.add_argument(
        "--stop-with-pid",
        type=int,
        default=None,
        metavar="PID",
        help="stop gracefully once process PID has exited (start_worker passes its own pid)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    require_redis()
    args.name = args.name or f"{args.queues[0]}.{uuid.uuid4().hex[:6]}"
    if args.concurrency > 1:
        return _supervise(args)
    return _run_one(
        args.queues,
        args.name,
        args.worker_class,
        args.burst,
        args.with_scheduler,
        args.stop_with_pid,
    )


if __name__ == "__main__":
    sys.exit(main())
