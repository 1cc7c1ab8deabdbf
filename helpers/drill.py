"""Fault drill: crash workers mid-job and prove that no job is lost or doubled.

    python -m helpers.drill --jobs 300 --kills 3 [--workers 3] [--seed 1] [--timeout 180]

1. Clears its own keys (``drill:*``, queue ``drill`` and its jobs), enqueues
   ``--jobs`` notification jobs (``drill-1`` ... ``drill-N``, ``Retry(max=3)``,
   results kept :data:`RESULT_TTL_S` for the audit). Every ``--fail-every``-th
   job targets a blacklisted number: it fails on each attempt, so it must end
   in the failed registry with its reason.
2. Runs ``--workers`` forking RQ workers, and ``--kills`` times, at random
   moments (``--seed``), picks a worker whose work-horse is running a job
   and kills it like a power cut (worker and work-horse, SIGKILL,
   :func:`helpers.reliability.crash`), starts a replacement, and recovers the
   job the dead worker held at once (:func:`helpers.reliability.recover_abandoned_jobs`)
   instead of waiting for RQ's own detection (60-90 s, then a maintenance
   pass every 10 minutes).
3. Waits until every job is finished or failed, then audits: RQ's registries
   must agree (finished + failed = enqueued, nothing queued or started), each
   failed job has its reason, each finished job notified exactly once.

Each job counts its executions (at-least-once: a killed job runs again) and
notifies through :func:`helpers.reliability.notify_once`, so a second run does
not notify twice. The last line printed is a JSON summary; the exit status is
0 only if every guarantee held.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus, get_current_job
from rq.results import Result

from helpers.client import clear_keys, require_redis
from helpers.job_events import FINAL_STATUSES
from helpers.notifications import BlacklistedNumber
from helpers.processes import descendants
from helpers.reliability import (
    Supervisor,
    crash,
    notify_once,
    recover_abandoned_jobs,
    registry_counts,
)
from helpers.workers import WorkerProcess, queue, queue_keys, redis_connection

QUEUE = "drill"
NAMESPACE = "drill"  # the drill's own keys: drill:*
EXECUTIONS = f"{NAMESPACE}:executions"  # hash: job id -> runs of the job function
NOTIFICATIONS = f"{NAMESPACE}:notifications"  # list: one entry per notification sent
SUPPRESSED = f"{NAMESPACE}:suppressed"  # counter: second runs stopped by the idempotency key
RESULT_TTL_S = 600  # keep results 10 minutes: long enough to audit the run
RETRIES = 3
BLACKLISTED = "4153518780"  # as in lesson 07: the gateway refuses it
SUMMARY_KEYS = ("enqueued", "kills", "finished", "failed", "lost", "duplicates")


def work_and_notify_once(phone: str, work_s: float) -> str:
    """The drill's job: count the run, work ``work_s / 2``, notify once
    (idempotent), work ``work_s / 2`` more. A kill in the second half makes
    the job run again after the notification was sent: the idempotency key
    stops the second one."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("work_and_notify_once() runs inside an RQ job")
    connection = job.connection
    connection.hincrby(EXECUTIONS, job.id, 1)
    time.sleep(work_s / 2)
    if phone == BLACKLISTED:
        raise BlacklistedNumber(f"Phone number {phone} is blacklisted")
    sent = notify_once(connection, job.id, job.id, outbox=NOTIFICATIONS, prefix=NAMESPACE)
    if not sent:
        connection.incr(SUPPRESSED)
    time.sleep(work_s / 2)
    return "sent" if sent else "already sent"


@dataclass
class Kill:
    """One crash the drill caused, and what recovering from it took."""

    worker: str
    pids: list[int]
    held: list[str]  # job ids the worker was executing
    recovered: list[str]
    recovery_ms: float  # from the kill to the jobs back on the queue
    at_s: float  # seconds since the drill started
    finished_after_s: dict[str, float] = field(default_factory=dict)  # kill -> job done
    done_before_kill: list[str] = field(default_factory=list)  # ended as the kill came


def clear(connection: redis.Redis) -> int:
    """Delete every key of the drill (its own, its queue's and its jobs')."""
    recover_abandoned_jobs(queue(QUEUE, connection))  # forget dead workers of a past run
    return clear_keys(connection, f"{NAMESPACE}:*", *queue_keys(QUEUE))


def enqueue_jobs(q: Queue, count: int, rng: random.Random, fail_every: int) -> list[str]:
    """Enqueue ``count`` drill jobs with retries; returns their ids."""
    specs = []
    for n in range(1, count + 1):
        phone = BLACKLISTED if fail_every and n % fail_every == 0 else f"415{n:07d}"
        specs.append(
            Queue.prepare_data(
                "helpers.drill.work_and_notify_once",
                args=(phone, round(rng.uniform(0.1, 0.5), 3)),
                job_id=f"{QUEUE}-{n}",
                retry=Retry(max=RETRIES, enqueue_at_front=True),  # a recovered job goes first
                result_ttl=RESULT_TTL_S,
                failure_ttl=RESULT_TTL_S,
            )
        )
    jobs: list[Job] = []
    for start in range(0, len(specs), 100):  # one transaction per hundred jobs
        jobs += q.enqueue_many(specs[start : start + 100])
    return [job.id for job in jobs]


def _statuses(connection: redis.Redis, job_ids: list[str]) -> dict[str, str | None]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        values = pipe.execute()
    return {
        job_id: (v.decode() if isinstance(v, bytes) else v)
        for job_id, v in zip(job_ids, values, strict=True)
    }


def _held(connection: redis.Redis, worker: WorkerProcess) -> list[str]:
    """The ids of the jobs ``worker`` is executing (its executions in Redis)."""
    if not worker.running:
        return []
    members = connection.smembers(f"rq:worker:{worker.names[0]}:executions")
    return sorted((m.decode() if isinstance(m, bytes) else m).split(":", 1)[0] for m in members)


def _busy(connection: redis.Redis, workers: list[WorkerProcess]) -> list[WorkerProcess]:
    """The workers executing a job right now."""
    return [w for w in workers if _held(connection, w)]


def _failure_reason(job: Job) -> str:
    """The last line of the traceback of ``job``'s latest (failed) result."""
    result = job.latest_result()
    if result is None or result.type != Result.Type.FAILED or not result.exc_string:
        return ""
    return result.exc_string.strip().splitlines()[-1]


def run_drill(
    jobs: int = 300,
    kills: int = 3,
    *,
    workers: int = 3,
    seed: int = 1,
    timeout: float = 180.0,
    fail_every: int = 25,
    echo: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Run the drill (see the module doc); returns the summary."""
    rng = random.Random(seed)
    connection = redis_connection()
    q = queue(QUEUE, connection)
    clear(connection)
    started_at = time.monotonic()
    job_ids = enqueue_jobs(q, jobs, rng, fail_every)
    echo(f"drill: {jobs} jobs enqueued on queue {QUEUE!r}; {workers} workers; {kills} kills")
    # Kill when this many jobs are done (between 10% and 90% of the run).
    thresholds = sorted(int(rng.uniform(0.1, 0.9) * jobs) for _ in range(kills))
    supervisor = Supervisor(QUEUE, workers)
    done_kills: list[Kill] = []
    timed_out = False
    try:
        supervisor.start()
        last_check = time.monotonic()
        while True:
            statuses = _statuses(connection, job_ids)
            done = sum(1 for s in statuses.values() if s in FINAL_STATUSES)
            for kill in done_kills:
                for job_id in kill.held:
                    if job_id not in kill.finished_after_s and statuses[job_id] in FINAL_STATUSES:
                        kill.finished_after_s[job_id] = round(
                            time.monotonic() - started_at - kill.at_s, 2
                        )
            if done == jobs:
                break
            if time.monotonic() - started_at > timeout:
                timed_out = True
                echo(f"drill: timeout after {timeout:.0f} s with {jobs - done} jobs not done")
                break
            if len(done_kills) < kills and done >= thresholds[len(done_kills)]:
                busy = _busy(connection, supervisor.workers)
                if busy:
                    victim = rng.choice(sorted(busy, key=lambda w: w.names[0]))
                    time.sleep(rng.uniform(0.0, 0.3))  # a random moment of its work
                    kill = _kill_if_running(connection, supervisor, victim, started_at, echo)
                    if kill is not None:
                        done_kills.append(kill)
                    continue
            # A safety net, as in production: replace any worker that died on
            # its own, and recover what such a death left behind.
            if time.monotonic() - last_check > 1.0:
                for job_id in supervisor.check().jobs:
                    echo(f"drill: supervisor recovered {job_id}")
                last_check = time.monotonic()
            time.sleep(0.05)
    finally:
        supervisor.stop()
    elapsed = time.monotonic() - started_at
    summary = audit(connection, q, job_ids, done_kills)
    summary.update(
        seconds=round(elapsed, 1),
        seed=seed,
        workers=workers,
        timed_out=timed_out,
        recovered_by_supervisor=sorted(set(supervisor.recovered)),
        workers_replaced=supervisor.replaced,
        kill_log=[
            {
                "at_s": k.at_s,
                "worker": k.worker,
                "pids": k.pids,
                "held": k.held,
                "recovered": k.recovered,
                "done_before_kill": k.done_before_kill,
                "recovery_ms": k.recovery_ms,
                "finished_after_s": k.finished_after_s,
            }
            for k in done_kills
        ],
    )
    problems = guarantees(summary, kills)
    summary["ok"] = not problems
    summary["problems"] = problems
    return summary


def _kill_if_running(
    connection: redis.Redis,
    supervisor: Supervisor,
    victim: WorkerProcess,
    started_at: float,
    echo: Callable[[str], object],
) -> Kill | None:
    """:func:`_kill` ``victim`` if its work-horse is running a job, else
    nothing. RQ records a job as started (``prepare_execution``) just before
    it forks the work-horse: a kill in that gap would catch a job that never
    ran. The worker is frozen (SIGSTOP) while we look, so it can neither fork
    nor reap a work-horse before the kill; it resumes if it is not killed."""
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        held = _held(connection, victim)
        if held and descendants(victim.pid):
            return _kill(connection, supervisor, victim, held, started_at, echo)
        return None
    finally:
        if victim.running:
            os.kill(victim.pid, signal.SIGCONT)


def _kill(
    connection: redis.Redis,
    supervisor: Supervisor,
    victim: WorkerProcess,
    held: list[str],
    started_at: float,
    echo: Callable[[str], object],
) -> Kill:
    """Crash ``victim``, recover what it held at once, start a replacement."""
    name = victim.names[0]
    at = time.monotonic()
    pids = crash(victim)
    recovery = recover_abandoned_jobs(supervisor.queue)
    recovery_ms = round((time.monotonic() - at) * 1000, 1)
    # A job can end in the instant between reading what the worker held and the kill.
    statuses = _statuses(connection, [j for j in held if j not in recovery.jobs])
    just_done = sorted(j for j, s in statuses.items() if s in FINAL_STATUSES)
    kill = Kill(name, pids, held, recovery.jobs, recovery_ms, round(at - started_at, 2))
    kill.done_before_kill = just_done
    echo(
        f"drill: kill {name} (pids {', '.join(map(str, pids))}) while running "
        f"{', '.join(held) or 'nothing'}; recovered {', '.join(recovery.jobs) or 'nothing'} "
        f"in {recovery_ms} ms" + (f" ({', '.join(just_done)} had just ended)" if just_done else "")
    )
    supervisor.replace(victim)
    return kill


def audit(
    connection: redis.Redis, q: Queue, job_ids: list[str], kills: list[Kill]
) -> dict[str, Any]:
    """Count what happened to every job, and what RQ's registries say."""
    statuses = _statuses(connection, job_ids)
    by_status = Counter(s or "missing" for s in statuses.values())
    finished = [j for j, s in statuses.items() if s == JobStatus.FINISHED.value]
    failed = [j for j, s in statuses.items() if s == JobStatus.FAILED.value]
    reasons = Counter()
    unexplained = []
    for job_id in failed:
        reason = _failure_reason(Job.fetch(job_id, connection=connection, serializer=q.serializer))
        reasons[reason or "(no reason recorded)"] += 1
        if not reason:
            unexplained.append(job_id)
    sent = Counter(
        (v.decode() if isinstance(v, bytes) else v) for v in connection.lrange(NOTIFICATIONS, 0, -1)
    )
    executions = {
        (k.decode() if isinstance(k, bytes) else k): int(v)
        for k, v in connection.hgetall(EXECUTIONS).items()
    }
    registries = registry_counts(q)
    finished_set = set(finished)
    registries_agree = (
        registries["finished"] == len(finished)
        and registries["failed"] == len(failed)
        and registries["finished"] + registries["failed"] == len(job_ids)
        and registries["queued"] == registries["started"] == 0
        and registries["scheduled"] == registries["deferred"] == registries["intermediate"] == 0
    )
    return {
        "enqueued": len(job_ids),
        "kills": len(kills),
        "finished": len(finished),
        "failed": len(failed),
        "lost": len(job_ids) - len(finished) - len(failed),
        "duplicates": sum(n - 1 for n in sent.values() if n > 1),
        "executions": sum(executions.values()),
        "ran_more_than_once": sorted(j for j, n in executions.items() if n > 1),
        "notifications": sum(sent.values()),
        "suppressed_by_idempotency_key": int(connection.get(SUPPRESSED) or 0),
        "finished_not_notified": sorted(finished_set - set(sent)),
        "statuses": dict(sorted(by_status.items())),
        "failure_reasons": dict(reasons),
        "failed_without_reason": unexplained,
        "registries": registries,
        "registries_agree": registries_agree,
        "recovery_ms": [k.recovery_ms for k in kills],
    }


def guarantees(summary: dict[str, Any], kills: int) -> list[str]:
    """What went wrong, in words (empty: every guarantee held)."""
    problems = []
    if summary["timed_out"]:
        problems.append("the queue was not drained in time")
    if summary["lost"]:
        problems.append(f"{summary['lost']} jobs lost (neither finished nor failed)")
    if summary["duplicates"]:
        problems.append(f"{summary['duplicates']} duplicate notifications")
    if summary["finished_not_notified"]:
        problems.append(f"finished without notification: {summary['finished_not_notified']}")
    if summary["failed_without_reason"]:
        problems.append(f"failed without a reason: {summary['failed_without_reason']}")
    if not summary["registries_agree"]:
        problems.append(f"RQ's registries disagree: {summary['registries']}")
    if summary["kills"] < kills:
        problems.append(f"only {summary['kills']} of {kills} kills happened")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.drill",
        description="Crash RQ workers mid-job and check that no job is lost or notified twice.",
    )
    parser.add_argument("--jobs", type=int, default=300, help="jobs to enqueue (default 300)")
    parser.add_argument("--kills", type=int, default=3, help="workers to SIGKILL (default 3)")
    parser.add_argument("--workers", type=int, default=3, help="workers running (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="give up after this many seconds (180)"
    )
    parser.add_argument(
        "--fail-every",
        type=int,
        default=25,
        help="every Nth job targets a blacklisted number and must fail (0: none; default 25)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.kills < 0 or args.workers < 1 or args.fail_every < 0:
        parser.error("--jobs and --workers must be at least 1; --kills and --fail-every >= 0")
    require_redis()
    summary = run_drill(
        args.jobs,
        args.kills,
        workers=args.workers,
        seed=args.seed,
        timeout=args.timeout,
        fail_every=args.fail_every,
    )
    for problem in summary["problems"]:
        print(f"drill: FAILED: {problem}")
    if summary["ok"]:
        print(
            f"drill: ok: {summary['finished']} finished, {summary['failed']} failed (with reasons), "
            f"0 lost, 0 duplicate notifications, {summary['executions']} executions "
            f"for {summary['enqueued']} jobs, in {summary['seconds']} s"
        )
    ordered = {key: summary[key] for key in SUMMARY_KEYS}
    ordered.update({k: v for k, v in summary.items() if k not in ordered})
    print(json.dumps(ordered), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
