"""Reliable jobs with RQ (lesson 12): retries, crashed workers, idempotency.

What RQ gives, and what the course adds on top:

- **Retries** (``Retry(max=3, interval=[1, 2, 4])``): RQ re-runs a job that
  raised. With intervals the retry waits in the ``ScheduledJobRegistry`` and
  needs a worker started with the scheduler. :func:`flaky_send` fails its
  first attempts to show it; :func:`deliver` fails until its cause is fixed.
- **Crashed workers.** A worker killed with SIGKILL (or a machine that dies)
  leaves its job in the ``StartedJobRegistry`` with status ``started``. RQ
  itself notices only when the registry entry expires (60 s after the
  worker's last heartbeat, at best) *and* a worker's maintenance pass runs
  (every 10 minutes by default). :func:`recover_abandoned_jobs` finds them
  at once: an entry whose worker process is gone. It then hands them to RQ's
  own clean-up, which retries a job that has retries left and moves the
  others to the ``FailedJobRegistry`` (``AbandonedJobError``).
- :func:`crash` kills a worker like a power cut: the worker *and* its
  work-horse (RQ puts the work-horse in its own process group, so killing
  the worker's group alone leaves the work-horse running the job).
- **Idempotency.** A job may run twice (at-least-once). :func:`notify_once`
  records the notification and an idempotency key in one atomic step (a Lua
  script), so a second run cannot notify again.
- **Monitoring and security:** :func:`registry_counts`, :func:`rq_info`,
  :func:`start_dashboard` (rq-dashboard on loopback), and a harmless
  demonstration of why pickle is dangerous (:class:`HarmlessPayload`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job, JobStatus, get_current_job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
)

from helpers.processes import pid_running
from helpers.server import ServerInfo, free_port, logs_dir, redis_url, start_server, stop_server
from helpers.workers import WorkerProcess, start_worker
from helpers.workers import queue as course_queue

QUEUE = "reliability"  # lesson 12's queue
PREFIX = "reliability"  # lesson 12's own keys: reliability:*
OUTBOX = f"{PREFIX}:outbox"  # notifications "sent" by lesson 12's jobs
EXECUTIONS = f"{PREFIX}:executions"  # hash: job id -> times the job function ran
IDEMPOTENCY_TTL_S = 7 * 24 * 3600  # keep a "sent" mark longer than any retry could take

TERMINAL = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


# --------------------------------------------------------------------------
# Job functions (they run in workers; the course passes them by name)
# --------------------------------------------------------------------------


class GatewayUnavailable(Exception):
    """The (pretend) SMS gateway did not answer: worth retrying."""


class GatewayRejected(Exception):
    """The (pretend) SMS gateway refused the message: retrying will not help
    until someone fixes the cause."""


def attempts_key(name: str) -> str:
    """Where :func:`flaky_send` counts the attempts of ``name``."""
    return f"{PREFIX}:attempts:{name}"


def blocked_key() -> str:
    """The set of phone numbers the pretend gateway rejects (:func:`deliver`)."""
    return f"{PREFIX}:blocked"


def _job_connection() -> redis.Redis:
    job = get_current_job()
    if job is None:
        raise RuntimeError("this function runs inside an RQ job (in a worker)")
    return job.connection


def flaky_send(name: str, failures: int) -> str:
    """Job: fail the first ``failures`` attempts (gateway down), then succeed.
    Each attempt's time is appended to ``reliability:attempts:<name>``."""
    connection = _job_connection()
    attempt = connection.rpush(attempts_key(name), f"{time.time():.3f}")
    if attempt <= failures:
        raise GatewayUnavailable(f"gateway unavailable (attempt {attempt})")
    return f"sent on attempt {attempt}"


def attempt_gaps(connection: redis.Redis, name: str) -> list[float]:
    """Seconds between consecutive attempts of :func:`flaky_send` ``name``."""
    times = [float(t) for t in connection.lrange(attempts_key(name), 0, -1)]
    return [round(b - a, 1) for a, b in zip(times, times[1:], strict=False)]


def deliver(phone: str, message: str) -> str:
    """Job: send ``message`` to ``phone`` unless the gateway blocks the number
    (a member of :func:`blocked_key`): then raise :class:`GatewayRejected`."""
    connection = _job_connection()
    if connection.sismember(blocked_key(), phone):
        raise GatewayRejected(f"Phone number {phone} is blacklisted")
    connection.rpush(OUTBOX, f"{phone}: {message}")
    return "sent"


def send_notification_once(notification_id: str, phone: str, message: str, seconds: float) -> str:
    """Job: notify (at most once per ``notification_id``), then go on working
    for ``seconds`` (writing an audit trail, say): a crash in that window
    makes RQ run the job again, and the idempotency key stops a second
    notification. Counts its runs in the hash ``reliability:executions``."""
    connection = _job_connection()
    job = get_current_job()
    assert job is not None
    connection.hincrby(EXECUTIONS, job.id, 1)
    sent = notify_once(connection, notification_id, f"{phone}: {message}")
    time.sleep(seconds)
    return "sent" if sent else "already sent: skipped"


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
    for line in worker.read_log().splitlines():
        if any(phrase in line for phrase in phrases):
            text = line.split(" ", 1)[1] if line[:2].isdigit() else line
            found.append(re.sub(r" \[PID \d+\]", "", text))
    return found


# --------------------------------------------------------------------------
# Idempotency
# --------------------------------------------------------------------------

# SET NX and RPUSH in one script: the mark and the notification happen
# together or not at all, even if the worker dies between two commands.
_NOTIFY_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


def idempotency_key(notification_id: str, prefix: str = PREFIX) -> str:
    """The key that says notification ``notification_id`` was sent."""
    return f"{prefix}:sent:{notification_id}"


def notify_once(
    connection: redis.Redis,
    notification_id: str,
    text: str,
    *,
    outbox: str = OUTBOX,
    prefix: str = PREFIX,
    ttl_s: int = IDEMPOTENCY_TTL_S,
) -> bool:
    """Append ``text`` to the ``outbox`` list unless notification
    ``notification_id`` was already sent; True if it was sent now.

    The idempotency key (``<prefix>:sent:<id>``, SET NX) and the RPUSH run as
    one Lua script (EVALSHA), so no crash can leave one without the other."""
    script = connection.register_script(_NOTIFY_ONCE)
    key = idempotency_key(notification_id, prefix)
    return bool(script(keys=[key, outbox], args=[str(time.time()), ttl_s, text]))


def notify_naively(connection: redis.Redis, text: str, *, outbox: str = OUTBOX) -> bool:
    """Append ``text`` to the outbox every time: what a job does without an
    idempotency key. Run twice, it notifies twice."""
    connection.rpush(outbox, text)
    return True


# --------------------------------------------------------------------------
# Crashed workers: kill like a power cut, then recover what they held
# --------------------------------------------------------------------------


def crash(worker: WorkerProcess) -> list[int]:
    """Kill ``worker`` as a power cut would (:meth:`WorkerProcess.kill`: the
    worker processes *and* their work-horses) and return the pids killed."""
    return worker.kill()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def worker_alive(connection: redis.Redis, worker_name: str, *, stale_after_s: float = 120) -> bool:
    """Is RQ worker ``worker_name`` still running?

    Its registration (``rq:worker:<name>``) says where it runs. On this
    machine the process itself is asked (a dead pid is certain); on another
    one, only the heartbeat can tell: silent for ``stale_after_s``, it is
    taken for dead."""
    pid, hostname, heartbeat, death = (
        _text(v)
        for v in connection.hmget(
            f"rq:worker:{worker_name}", "pid", "hostname", "last_heartbeat", "death"
        )
    )
    if pid is None or death:
        return False
    if hostname == socket.gethostname():
        return pid_running(int(pid))
    if heartbeat is None:
        return False
    beat = datetime.fromisoformat(heartbeat.replace("Z", "+00:00"))
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - beat).total_seconds() < stale_after_s


@dataclass
class Recovery:
    """What :func:`recover_abandoned_jobs` did."""

    requeued: list[str] = field(default_factory=list)  # abandoned, retried (retries left)
    failed: list[str] = field(default_factory=list)  # abandoned, no retries left
    orphans: list[str] = field(default_factory=list)  # popped but never started: requeued
    dead_workers: list[str] = field(default_factory=list)  # registrations removed

    @property
    def jobs(self) -> list[str]:
        """Every job put back on the queue or failed."""
        return [*self.requeued, *self.failed, *self.orphans]


def _forget_worker(connection: redis.Redis, worker_name: str, queue_names: Sequence[str]) -> None:
    """Remove a dead worker's registration, so ``rq info`` stops listing it."""
    key = f"rq:worker:{worker_name}"
    with connection.pipeline() as pipe:
        pipe.srem("rq:workers", key)
        for name in queue_names:
            pipe.srem(f"rq:workers:{name}", key)
        pipe.delete(key, f"{key}:executions")
        pipe.execute()


def orphans_key(queue_name: str) -> str:
    """Hash of jobs seen in the intermediate list of ``queue_name`` with no
    worker running them (job id -> first sighting), for
    :func:`recover_abandoned_jobs`. Cleared with the queue's keys."""
    return f"jobs:orphans:{queue_name}"


def recover_abandoned_jobs(queue: Queue, *, orphan_grace_s: float = 5.0) -> Recovery:
    """Recover the jobs of ``queue`` held by workers that died, now, instead
    of after RQ's own expiry (60-90 s) and maintenance interval (10 min).

    1. Each entry of the ``StartedJobRegistry`` names an execution, whose
       worker is checked with :func:`worker_alive`. The entries of dead
       workers are marked expired and RQ's own ``cleanup()`` handles them as
       it would later: retried if the job has retries left (status
       ``queued``, or ``scheduled`` with a retry interval), else moved to the
       ``FailedJobRegistry`` as abandoned (``AbandonedJobError``). A job the
       dead worker had taken but not yet started is put back on the queue.
    2. A worker that dies between taking a job (``BLMOVE`` into the queue's
       intermediate list) and registering it leaves it only in that list.
       Such a job, seen there for ``orphan_grace_s`` with no execution, is
       put back on the queue. Leftovers of jobs already handled are dropped
       (else RQ's own intermediate clean-up could fail a finished job).
    3. Registrations of dead workers listening on ``queue`` are removed, so
       ``rq info`` and dashboards stop listing them.

    Safe to call at any time, from any process, as often as you like.
    """
    connection = queue.connection
    registry = queue.started_job_registry
    intermediate = queue.intermediate_queue_key
    recovery = Recovery()
    liveness: dict[str, bool] = {}

    def alive(worker_name: str | None) -> bool:
        if not worker_name:
            return False
        if worker_name not in liveness:
            liveness[worker_name] = worker_alive(connection, worker_name)
        return liveness[worker_name]

    def status_of(job_id: str) -> str | None:
        return _text(connection.hget(f"rq:job:{job_id}", "status"))

    def put_back(job_id: str) -> None:
        connection.lrem(intermediate, 0, job_id)
        connection.hdel(orphans_key(queue.name), job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=connection, serializer=queue.serializer))
        recovery.orphans.append(job_id)

    # 1. Started jobs whose worker is gone.
    abandoned: dict[str, str] = {}  # registry entry -> job id
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        worker_name = _text(connection.hget(f"rq:execution:{job_id}:{execution_id}", "worker_name"))
        if not alive(worker_name):
            abandoned[f"{job_id}:{execution_id}"] = job_id
    if abandoned:
        before = {job_id: status_of(job_id) for job_id in set(abandoned.values())}
        # Score 1 means "expired in 1970": RQ's cleanup takes them for abandoned.
        connection.zadd(registry.key, dict.fromkeys(abandoned, 1), xx=True)
        registry.cleanup()
        waiting = {_text(j) for j in connection.lrange(queue.key, 0, -1)}
        for job_id, status in sorted(before.items()):
            if status == JobStatus.STARTED.value:
                failed = status_of(job_id) == JobStatus.FAILED.value
                (recovery.failed if failed else recovery.requeued).append(job_id)
            elif status == JobStatus.QUEUED.value and job_id not in waiting:
                put_back(job_id)  # taken, never started: RQ's cleanup skips it

    # 2. The intermediate list: jobs taken by a worker that died before registering them.
    in_flight = {job_id for job_id, _ in registry.get_job_and_execution_ids(cleanup=False)}
    waiting = {_text(j) for j in connection.lrange(queue.key, 0, -1)}
    sightings = orphans_key(queue.name)
    for job_id in sorted({_text(j) or "" for j in connection.lrange(intermediate, 0, -1)}):
        if job_id in in_flight:
            continue  # a live worker is running it
        status = status_of(job_id)
        if status not in (JobStatus.QUEUED.value, JobStatus.STARTED.value):
            connection.lrem(intermediate, 0, job_id)  # a leftover of a job already handled
            connection.hdel(sightings, job_id)
        elif job_id in waiting:
            connection.lrem(intermediate, 1, job_id)  # a leftover: the job is queued again
            connection.hdel(sightings, job_id)
        elif connection.hsetnx(sightings, job_id, time.time()):
            continue  # first sighting: a live worker may be about to register it
        elif time.time() - float(connection.hget(sightings, job_id) or 0) >= orphan_grace_s:
            put_back(job_id)

    # 3. Registrations of dead workers.
    for key in sorted(_text(k) or "" for k in connection.smembers(f"rq:workers:{queue.name}")):
        name = key.removeprefix("rq:worker:")
        if not alive(name):
            queues = (_text(connection.hget(key, "queues")) or queue.name).split(",")
            _forget_worker(connection, name, sorted({queue.name, *queues}))
            recovery.dead_workers.append(name)
    return recovery


def abandoned_after_s(queue: Queue, job_id: str) -> float | None:
    """Seconds from now until RQ itself would take ``job_id`` for abandoned
    (its ``StartedJobRegistry`` entry expires); None if it is not there."""
    for entry_id, score in queue.connection.zrange(
        queue.started_job_registry.key, 0, -1, withscores=True
    ):
        if (_text(entry_id) or "").split(":", 1)[0] == job_id:
            return score - time.time()
    return None


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


# --------------------------------------------------------------------------
# Monitoring
# --------------------------------------------------------------------------


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


@dataclass
class Dashboard:
    """rq-dashboard running in the background, on loopback."""

    url: str
    process: subprocess.Popen[bytes] = field(repr=False)
    log_file: Path

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the dashboard (SIGTERM, then SIGKILL if it hangs)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_dashboard(port: int | None = None, *, timeout: float = 30.0) -> Dashboard:
    """Start rq-dashboard on 127.0.0.1 (a free port unless ``port``), reading
    the course server with the JSON serializer; returns once it answers."""
    import httpx  # noqa: PLC0415 - only the dashboard needs it; job code stays light to import

    port = port or free_port()
    log_file = logs_dir() / f"rq-dashboard-{port}.log"
    args = [
        sys.executable, "-m", "rq_dashboard", "--bind", "127.0.0.1", "--port", str(port),
        "--redis-url", redis_url(), "--json",
    ]  # fmt: skip
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    dashboard = Dashboard(f"http://127.0.0.1:{port}/", process, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rq-dashboard exited with {process.returncode}; see {log_file}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(dashboard.url, timeout=1.0).status_code == 200:
                return dashboard
        time.sleep(0.1)
    dashboard.stop()
    raise TimeoutError(f"rq-dashboard did not answer within {timeout}s; see {log_file}")


# --------------------------------------------------------------------------
# Security
# --------------------------------------------------------------------------

#: What :class:`HarmlessPayload` did when something unpickled it.
UNPICKLING_EFFECTS: list[str] = []


def record_unpickling(note: str) -> str:
    """The function a :class:`HarmlessPayload` makes ``pickle.loads`` call:
    it only appends ``note`` to :data:`UNPICKLING_EFFECTS`."""
    UNPICKLING_EFFECTS.append(note)
    return note


class HarmlessPayload:
    """An object whose pickle says "to rebuild me, call
    ``helpers.reliability.record_unpickling(...)``". Unpickling it runs that
    call: an attacker's payload would name ``os.system`` instead."""

    def __init__(self, note: str = "code ran while unpickling") -> None:
        self.note = note

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (record_unpickling, (self.note,))


def _is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux"  # no /proc to ask: trust the pid


@contextlib.contextmanager
def throwaway_server(*, persistence: bool = False) -> Iterator[ServerInfo]:
    """A private redis-server in a temporary folder, stopped and deleted on
    exit: for demonstrations that change server settings (passwords, ACLs)."""
    folder = Path(tempfile.mkdtemp(prefix="course-throwaway-"))
    info = start_server(folder, persistence=persistence)
    try:
        yield info
    finally:
        stop_server(folder)
        # A demonstration may have set a password: stop_server cannot talk to
        # the server then, so make sure by its pid.
        if pid_running(info.pid) and _is_redis_server(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid_running(info.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(folder, ignore_errors=True)
