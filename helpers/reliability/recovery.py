"""Crashed workers: kill one like a power cut, then recover what it held.

A worker killed with SIGKILL (or a machine that dies) leaves its job in the
``StartedJobRegistry`` with status ``started``. RQ itself notices only when
the registry entry expires (about 90 s after the worker's last heartbeat:
its job monitoring interval, 30 s, plus 60) *and* a worker's maintenance
pass runs (every 10 minutes by default, ``--maintenance-interval``; an idle
worker runs it only between two waits for work of up to ``--worker-ttl``
minus 15 s). :func:`recover_abandoned_jobs` finds them at once.

It reads and edits RQ's *private* keys, which RQ may change in any release:
the started registry's ``<job id>:<execution id>`` entries and their
scores, ``rq:execution:<job id>:<execution id>`` (its ``worker_name``), the
queue's intermediate list, ``rq:worker:<name>`` and ``rq:workers:<queue>``.
It is tested with the RQ versions in :data:`TESTED_RQ_VERSIONS` (pyproject
allows ``rq>=3.0,<4``); ``tests/test_reliability.py`` fails on any other
until someone has checked it again.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psutil
import redis
from rq import Queue
from rq.job import Job, JobStatus

from helpers.processes import pid_running
from helpers.workers import WorkerProcess

#: The RQ versions (major.minor) whose private keys and timings this module
#: is tested with. Add one only after re-reading the RQ code it relies on
#: (see ``test_recovery_is_tested_with_the_installed_rq``).
TESTED_RQ_VERSIONS: tuple[str, ...] = ("3.0",)

#: How much later than a worker's recorded birth its process may seem to have
#: started: psutil derives start times from the boot time, which Linux keeps
#: in whole seconds, so two clocks are compared here.
START_TIME_SLACK_S = 2.0


def crash(worker: WorkerProcess) -> list[int]:
    """Kill ``worker`` as a power cut would (:meth:`WorkerProcess.kill`: the
    worker processes *and* their work-horses) and return the pids killed."""
    return worker.kill()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def worker_alive(connection: redis.Redis, worker_name: str) -> bool:
    """Is RQ worker ``worker_name`` still running?

    RQ's own rule first: a worker lives while its registration
    ``rq:worker:<name>`` exists without a ``death`` field. RQ makes the key
    expire ``worker_ttl + 60`` s after each heartbeat (480 s by default; 90 s
    during a job), and an idle worker beats only between two waits for work of
    up to ``worker_ttl - 15`` s (405 s): an idle, live worker's
    ``last_heartbeat`` can be minutes old, so its age proves nothing. On this
    machine the process is asked too: a worker whose pid is gone, or belongs
    now to a process started after the worker's birth (a reused pid), is dead."""
    pid, hostname, birth, death = (
        _text(v)
        for v in connection.hmget(f"rq:worker:{worker_name}", "pid", "hostname", "birth", "death")
    )
    if pid is None or death:
        return False  # expired (no heartbeat in time), or it registered its death
    if hostname != socket.gethostname():
        return True  # another machine: the key's expiry is all there is to go by
    return _is_worker_process(int(pid), birth)


def _is_worker_process(pid: int, birth: str | None) -> bool:
    """Is ``pid`` running, and the process that registered at ``birth`` (RQ's
    UTC time stamp), not a later one that reuses its pid?"""
    if not pid_running(pid):
        return False
    if not birth:
        return True  # nothing to tell the pids apart by
    born = datetime.fromisoformat(birth.replace("Z", "+00:00"))
    if born.tzinfo is None:
        born = born.replace(tzinfo=timezone.utc)
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # running, but not ours to inspect
    return started <= born.timestamp() + START_TIME_SLACK_S


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
    of after RQ's own expiry (about 90 s) and maintenance pass (10 min or more).

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
