"""RQ queues and worker processes, the course's one way to run them.

Every queue uses RQ's JSON serializer: RQ's default, pickle, runs code of
the sender's choosing when a job is *loaded*; JSON loads only data. But a job
still names the function to call, by dotted path, and RQ imports and calls
it: JSON alone does not stop a job naming ``os.system``. So the course's
workers run only allow-listed functions (:mod:`helpers.allowlist`) and fail
any other job with the reason; who may write to Redis at all is Redis's
side (ACL users, ``requirepass``, TLS: lesson 13).

Workers are separate processes that log to files under
:func:`helpers.server.logs_dir`. From Python::

    w = start_worker(["push_notification_code"], concurrency=2)
    ...
    w.stop()          # SIGTERM: each worker finishes its current job, then exits

Workers still running when the Python process that started them exits (a
kernel shut down without ``w.stop()``) are stopped the same way; if that
process dies without a chance to clean up (SIGKILL, a crashed kernel), the
workers notice within a second and stop gracefully by themselves
(:mod:`helpers.processes`), so no forgotten worker keeps taking a lesson's jobs.

From a shell::

    python -m helpers.workers push_notification_code [--concurrency N] [--burst] [--allow F]
    python -m helpers.workers QUEUE --sentinel 127.0.0.1:PORT ... [--master NAME]  # lesson 17
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.exceptions import ReadOnlyError
from redis.sentinel import Sentinel, SentinelManagedConnection
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from helpers.allowlist import ENV as ALLOWED_JOBS_ENV
from helpers.allowlist import AllowListJob, extra_entries
from helpers.client import require_redis
from helpers.processes import BackgroundProcess
from helpers.server import logs_dir, redis_url

WORKER_CLASSES: dict[str, type[Worker] | type[SimpleWorker]] = {
    "fork": Worker,  # RQ's default: a fresh child process (work-horse) per job
    "simple": SimpleWorker,  # runs jobs in the worker process itself: faster, less isolated
}


def redis_connection(url: str | None = None) -> redis.Redis:
    """A client for RQ (bytes replies, as RQ expects) to the course server."""
    return redis.Redis.from_url(url or redis_url())


SENTINEL_MASTER = "course"  # the name the course's Sentinels know the primary by (lesson 17)


class _SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, but closed when a read is interrupted,
    as a plain connection is: RQ's warm shutdown raises out of a blocking
    ``BLMOVE``, and redis-py 8's Sentinel connection (``disconnect_on_error``
    False) would go back to the pool with that reply still to come, so the
    next command (RQ's ``register_death``) would wait for it."""

    def read_response(self, *args: object, **kwargs: object) -> object:  # noqa: D102
        kwargs.setdefault("disconnect_on_error", True)
        return super().read_response(*args, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RedisTarget:
    """Where a worker finds Redis: a URL, or Sentinels and the name of the
    primary they watch (RQ's own Sentinel support builds the same client:
    every new connection asks the Sentinels where the primary is now)."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = SENTINEL_MASTER

    def connect(self, timeout_s: float | None = None) -> redis.Redis:
        """A client for RQ (bytes replies); ``timeout_s``: short timeouts, no retries."""
        quick = {} if timeout_s is None else {"socket_timeout": timeout_s, "retry": None}
        if not self.sentinels:
            return redis.Redis.from_url(
                self.url or redis_url(), socket_connect_timeout=timeout_s, **quick
            )
        watchers = Sentinel(
            list(self.sentinels),
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            socket_timeout=timeout_s or 2,
            socket_connect_timeout=0.5,
        )
        return watchers.master_for(self.master, connection_class=_SentinelConnection)

    def takes_writes(self, name: str) -> bool:
        """Does Redis answer (through Sentinel: does the primary they name take
        writes; one without its replicas refuses them, ``NOREPLICAS``)?"""
        client = self.connect(timeout_s=1)
        try:
            if not self.sentinels:
                return bool(client.ping())
            return bool(client.set(f"rq:probe:{name}", 1, ex=10))
        except redis.RedisError:
            return False
        finally:
            client.close()

    def __str__(self) -> str:
        if not self.sentinels:
            return f"Redis at {self.url}"
        return f"the primary {self.master!r} of Sentinels " + ", ".join(
            f"{host}:{port}" for host, port in self.sentinels
        )


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


@dataclass(kw_only=True)
class WorkerProcess(BackgroundProcess):
    """A group of RQ worker processes started by :func:`start_worker`; its
    own ``log_file`` is the supervisor's, each worker logs to its file in
    ``log_files``."""

    queues: list[str]
    names: list[str]
    log_files: list[Path]

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until every worker has registered itself in Redis."""
        connection = redis_connection()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(connection.exists(f"rq:worker:{name}") for name in self.names):
                return
            if not self.running:
                raise RuntimeError(f"worker exited with {self.returncode}; see {self.log_files[0]}")
            time.sleep(0.05)
        raise TimeoutError(
            f"workers {self.names} not ready after {timeout}s; see {self.log_files[0]}"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGTERM): current jobs finish, then the workers exit;
        killed (with their work-horses) after ``timeout`` seconds."""
        return super().stop(timeout)

    def output(self) -> str:
        """Everything the workers wrote so far, worker by worker."""
        return "".join(p.read_text() for p in self.log_files if p.exists())


def start_worker(
    queues: str | Sequence[str],
    *,
    concurrency: int = 1,
    burst: bool = False,
    worker_class: str = "fork",
    with_scheduler: bool = False,
    name: str | None = None,
    allow: Sequence[str] = (),
    wait: bool = True,
) -> WorkerProcess:
    """Start ``concurrency`` RQ workers on ``queues`` in a new process group.

    Each worker logs to its own file in :func:`helpers.server.logs_dir`; the
    workers find Redis as the rest of the course does. Returns once they are
    registered (unless ``wait`` is false). They run only allow-listed job
    functions (:mod:`helpers.allowlist`); ``allow`` adds entries. They stop gracefully when this
    interpreter exits, and by themselves if it dies first
    (:class:`helpers.processes.BackgroundProcess`).
    """
    queue_names = [queues] if isinstance(queues, str) else list(queues)
    base = name or f"{queue_names[0]}.{uuid.uuid4().hex[:6]}"
    names = [base] if concurrency == 1 else [f"{base}-{i + 1}" for i in range(concurrency)]
    args = [
        "helpers.workers", *queue_names,
        "--concurrency", str(concurrency), "--worker-class", worker_class, "--name", base,
    ]  # fmt: skip
    if burst:
        args.append("--burst")
    if with_scheduler:
        args.append("--with-scheduler")
    for entry in allow:
        args += ["--allow", entry]
    worker = WorkerProcess.start(
        args,
        log_file=logs_dir() / f"workers-{base}.log",
        env=dict(os.environ, REDIS_URL=redis_url()),
        queues=queue_names,
        names=names,
        log_files=[logs_dir() / f"worker-{n}.log" for n in names],
    )
    if wait and not burst:
        worker.wait_ready()
    return worker


RESTARTED = "restarting the worker loop in the same process"  # in the log, once a restart
# Redis answers, but takes no writes for now: a primary without its replicas
# (NOREPLICAS, which redis-py raises as a plain ResponseError with the code in the
# message) or a demoted one (READONLY, which it raises as ReadOnlyError, code stripped).
REFUSED_WRITES = (ReadOnlyError,)
REFUSED_WRITE_CODES = ("NOREPLICAS",)


def _redis_gone(error: BaseException | None) -> bool:
    """Is ``error``, or one it was raised from or while handling, Redis not
    answering? redis-py's ConnectionError (BusyLoadingError and the like are
    subclasses) or TimeoutError, or a write refused for now
    (:data:`REFUSED_WRITES`, :data:`REFUSED_WRITE_CODES`, also inside a
    pipeline). RQ does not wrap them: its work loop logs the first one and
    quits, then its teardown (``register_death``) raises the next."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError, *REFUSED_WRITES)):
            return True
        if isinstance(error, redis.ResponseError) and any(
            code in str(error) for code in REFUSED_WRITE_CODES
        ):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _run_one(
    queue_names: list[str],
    name: str,
    worker_class: str,
    burst: bool,
    with_scheduler: bool,
    target: RedisTarget | None = None,
    max_restarts: int = 5,
) -> int:
    """Run one worker in this process, logging to its file.

    RQ retries by itself only while it waits for a job: when Redis goes away
    at start-up, during maintenance or a job's bookkeeping, ``work()`` raises.
    Then wait (up to ``wait_s``) for Redis to answer again, register the old
    worker's death and start again under the same name, at most
    ``max_restarts`` times in ``window_s`` seconds; else exit with 1. A
    graceful stop (SIGTERM, also while waiting) exits with 0, no restart.
    RQ's loop quitting by itself (not in burst mode, no stop asked: it logs
    "found an unhandled exception") counts as Redis lost too."""
    wait_s, window_s = 60.0, 60.0
    target = target or RedisTarget(redis_url())
    log_file = logs_dir() / f"worker-{name}.log"
    print(f"Worker {name} on {', '.join(queue_names)}: log in {log_file}", flush=True)

    def say(message: str) -> None:  # RQ's log format: time, then the message
        print(f"{time.strftime('%H:%M:%S')} Worker {name}: {message}", file=sys.stderr, flush=True)

    with open(log_file, "a", buffering=1) as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
        restarts: list[float] = []
        stops: list[int] = []  # signals received while waiting for Redis
        while True:
            connection = target.connect()
            worker: Worker | SimpleWorker | None = None
            try:
                worker = WORKER_CLASSES[worker_class](
                    [queue(q, connection, job_class=AllowListJob) for q in queue_names],
                    name=name,
                    connection=connection,
                    serializer=JSONSerializer,
                    job_class=AllowListJob,  # only allow-listed functions run
                )
                worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
                if burst or worker._shutdown_requested_date is not None:
                    return 0
                lost = "RQ's work loop quit"
            except Exception as error:
                if not _redis_gone(error):
                    raise
                lost = f"lost Redis ({type(error).__name__}: {error})"
            # RQ's signal handlers belong to the dead loop: a stop now just exits.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda received, _frame: stops.append(received))
            # RQ notes a SIGTERM (warm shutdown) there, even when Redis could not hear of it.
            if worker is not None and worker._shutdown_requested_date is not None:
                say(f"{lost} during a graceful stop: exiting")
                return 0
            recent = [t for t in restarts if time.monotonic() - t < window_s]
            if len(recent) >= max_restarts:
                say(f"{lost} again: {len(recent)} restarts in {window_s:.0f} s already, giving up")
                return 1
            say(f"{lost}; waiting up to {wait_s:.0f} s for it to answer again")
            deadline = time.monotonic() + wait_s
            while not stops and not target.takes_writes(name):
                if time.monotonic() > deadline:
                    say(f"{target} did not answer within {wait_s:.0f} s: giving up")
                    return 1
                time.sleep(0.25)
            if stops:
                say(f"got signal {signal.Signals(stops[0]).name} while waiting for Redis: exiting")
                return 0
            if worker is not None:  # finish the teardown RQ could not: no ghost in `rq info`
                with contextlib.suppress(redis.RedisError):
                    worker.register_death()
                with contextlib.suppress(redis.RedisError):
                    worker.unsubscribe()
            connection.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as at the first start
            signal.signal(signal.SIGINT, signal.default_int_handler)
            restarts = [*recent, time.monotonic()]
            say(
                f"Redis is back: {RESTARTED} "
                f"(restart {len(restarts)} of at most {max_restarts} in {window_s:.0f} s)"
            )


def _supervise(args: argparse.Namespace) -> int:
    """Run ``args.concurrency`` single workers as child processes and pass
    SIGTERM on to them, so a graceful stop reaches every worker."""
    children = []
    for i in range(args.concurrency):
        name = f"{args.name}-{i + 1}"
        child_args = ["helpers.workers", *args.queues, "--worker-class", args.worker_class]
        child_args += ["--name", name]
        if args.burst:
            child_args.append("--burst")
        if args.with_scheduler and i == 0:
            child_args.append("--with-scheduler")
        for host, port in args.sentinel:
            child_args += ["--sentinel", f"{host}:{port}"]
        child_args += ["--master", args.master, "--max-restarts", str(args.max_restarts)]
        # Same process group and output as this supervisor: a Ctrl+C reaches them all.
        children.append(
            BackgroundProcess.start(
                child_args, log_file=None, new_session=False, stop_at_exit=False
            )
        )

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    # Ctrl+C in a terminal already reaches every child (same process group);
    # forwarding it too would count as a second Ctrl+C: RQ's cold shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    codes = [child.process.wait() for child in children]
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
        "--allow",
        action="append",
        default=[],
        metavar="ENTRY",
        help="also run this job function (a.b.f, or a.b.* for a module); see helpers.allowlist",
    )
    parser.add_argument(
        "--sentinel",
        action="append",
        default=[],
        type=_address,
        metavar="HOST:PORT",
        help="find Redis through these Sentinels (repeat for each) instead of the course server",
    )
    parser.add_argument("--master", default=SENTINEL_MASTER, help="the primary's Sentinel name")
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="restarts of the work loop after Redis was lost, at most, in 60 s",
    )
    args = parser.parse_args(argv)
    if args.allow:  # the children of a supervisor inherit it
        os.environ[ALLOWED_JOBS_ENV] = ",".join([*extra_entries(), *args.allow])
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.sentinel:
        require_redis()
    args.name = args.name or f"{args.queues[0]}.{uuid.uuid4().hex[:6]}"
    if args.concurrency > 1:
        return _supervise(args)
    target = RedisTarget(redis_url()) if not args.sentinel else None
    return _run_one(
        args.queues,
        args.name,
        args.worker_class,
        args.burst,
        args.with_scheduler,
        target or RedisTarget(sentinels=tuple(args.sentinel), master=args.master),
        args.max_restarts,
    )


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, loopback) as a pair."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


if __name__ == "__main__":
    sys.exit(main())
