"""The reliability helpers of lessons 12 and 13, proved with real workers,
real kills and a real Redis restart: retries, failed registry, timeouts,
graceful shutdown, crashes and recovery (and the worker-alive rule it rests
on), idempotency, monitoring, security."""

from __future__ import annotations

import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import redis
from packaging.specifiers import SpecifierSet
from rq import Retry, Worker
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcformat
from waiting import wait_for

from helpers import reliability
from helpers.client import NOT_CONNECTED, RedisUnavailable, connect
from helpers.processes import descendants, pid_running
from helpers.reliability import (
    EXECUTIONS,
    OUTBOX,
    TESTED_RQ_VERSIONS,
    HarmlessPayload,
    Supervisor,
    abandoned_after_s,
    attempts_key,
    blocked_key,
    crash,
    idempotency_key,
    notify_naively,
    notify_once,
    orphans_key,
    recover_abandoned_jobs,
    registry_counts,
    release,
    rq_info,
    start_dashboard,
    throwaway_server,
    worker_alive,
)
from helpers.server import start_server, stop_server
from helpers.workers import queue, redis_connection, start_worker


def status(job: Job) -> JobStatus:
    return job.get_status(refresh=True)


def failure_text(job: Job) -> str:
    result = job.latest_result()
    assert result is not None, f"{job.id} has no result"
    return result.exc_string or ""


# --- retries, failed registry, requeue, timeouts ----------------------------------------


def test_a_flaky_job_is_retried_until_it_succeeds(r) -> None:
    q = queue("rel_flaky")
    job = q.enqueue("helpers.reliability.flaky_send", "t1", 2, retry=Retry(max=3))
    with start_worker("rel_flaky", worker_class="simple"):
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    assert job.return_value() == "sent on attempt 3"
    assert r.llen(attempts_key("t1")) == 3


def test_a_job_that_keeps_raising_is_retried_then_failed_with_its_traceback(r) -> None:
    q = queue("rel_failing")
    job = q.enqueue("helpers.reliability.flaky_send", "t2", 99, retry=Retry(max=2))
    with start_worker("rel_failing", worker_class="simple"):
        wait_for(lambda: status(job) == JobStatus.FAILED)
    assert r.llen(attempts_key("t2")) == 3  # the first run and two retries
    assert job.id in FailedJobRegistry(queue=q)
    text = failure_text(job)
    assert text.startswith("Traceback (most recent call last):")
    assert "helpers.reliability.jobs.GatewayUnavailable: gateway unavailable (attempt 3)" in text


def test_retry_intervals_wait_in_the_scheduled_registry(r) -> None:
    q = queue("rel_backoff")
    job = q.enqueue("helpers.reliability.flaky_send", "t3", 1, retry=Retry(max=1, interval=2))
    with start_worker("rel_backoff", worker_class="simple", with_scheduler=True):
        wait_for(lambda: r.llen(attempts_key("t3")) == 1)
        # RQ 3 writes the SCHEDULED status one round trip before it adds the job to the
        # registry (Job.retry), so wait for both to hold together: they do for ~2 s.
        scheduled = ScheduledJobRegistry(queue=q)
        due = {"at": None}  # the job's score there: when the retry may run

        def waiting_in_the_registry() -> bool:
            due["at"] = r.zscore(scheduled.key, job.id)  # read once: it leaves when due
            return due["at"] is not None and status(job) == JobStatus.SCHEDULED

        wait_for(waiting_in_the_registry)
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    first, second = (float(t) for t in r.lrange(attempts_key("t3"), 0, -1))
    # RQ schedules in whole seconds: due = the failure's time + 2 s, truncated,
    # so more than 1 s after the first attempt (its time is rounded to the ms);
    # the retry runs no earlier. The gap itself can be anything from 1 to 3 s.
    assert due["at"] > first + 0.999
    assert second >= due["at"]


def test_requeue_after_fixing_the_cause(r) -> None:
    q = queue("rel_requeue")
    r.sadd(blocked_key(), "4153518780")
    job = q.enqueue("helpers.reliability.send_unless_blocked", "4153518780", "hello")
    with start_worker("rel_requeue", worker_class="simple"):
        wait_for(lambda: status(job) == JobStatus.FAILED)
        assert "GatewayRejected: Phone number 4153518780 is blacklisted" in failure_text(job)
        r.srem(blocked_key(), "4153518780")  # the fix
        FailedJobRegistry(queue=q).requeue(job.id)
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    assert r.lrange(OUTBOX, 0, -1) == ["4153518780: hello"]
    assert job.id not in FailedJobRegistry(queue=q)


def test_a_job_over_its_timeout_is_stopped_and_failed(r, tmp_path) -> None:
    q = queue("rel_timeout")
    job = q.enqueue("helpers.reliability.hold_until", str(tmp_path / "never"), 30, job_timeout=1)
    with start_worker("rel_timeout"):
        wait_for(lambda: status(job) == JobStatus.FAILED)
    assert "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)" in failure_text(
        job
    )


# --- graceful shutdown and crashes -----------------------------------------------------


def _notification(q, seconds: float, **options) -> Job:
    return q.enqueue(
        "helpers.reliability.send_notification_once",
        "n-1",
        "4153518743",
        "This is the code 4321 to verify your account",
        seconds,
        **options,
    )


def test_sigterm_lets_the_running_job_finish(r) -> None:
    q = queue("rel_sigterm")
    job = _notification(q, 60)
    worker = start_worker("rel_sigterm")
    wait_for(lambda: r.exists(idempotency_key("n-1")))  # the job is mid-way: it holds
    worker.process.terminate()  # SIGTERM
    worker.wait_for_output(lambda lines: any("warm shut down requested" in x for x in lines))
    assert worker.running and status(job) == JobStatus.STARTED  # it waits for the job
    release(r, "n-1")
    assert worker.wait(timeout=30) == 0
    assert status(job) == JobStatus.FINISHED
    assert r.hget(EXECUTIONS, job.id) == "1"
    assert r.llen(OUTBOX) == 1
    assert "warm shut down requested" in worker.output()


def test_crash_kills_the_work_horse_too_and_the_job_is_left_started(r) -> None:
    q = queue("rel_crash")
    job = _notification(q, 60)
    worker = start_worker("rel_crash")
    wait_for(lambda: r.exists(idempotency_key("n-1")))
    pids = crash(worker)
    assert len(pids) == 2  # the worker and its work-horse
    wait_for(lambda: not any(pid_running(pid) for pid in pids), timeout=10)
    # Nobody will finish it, and RQ would notice only when its entry expires.
    assert status(job) == JobStatus.STARTED
    assert job.id in q.started_job_registry.get_job_ids(cleanup=False)
    assert abandoned_after_s(q, job.id) > 50


def test_killing_the_process_group_alone_leaves_the_work_horse_running(r, tmp_path) -> None:
    """Why kill()/crash() look for work-horses: RQ gives each its own process group."""
    q = queue("rel_orphan_horse")
    gate = tmp_path / "gate"
    job = q.enqueue("helpers.reliability.hold_until", str(gate), 60)
    worker = start_worker("rel_orphan_horse")
    wait_for(lambda: status(job) == JobStatus.STARTED and descendants(worker.pid))  # forked
    os.killpg(worker.pid, signal.SIGKILL)
    worker.process.wait()
    gate.touch()
    wait_for(lambda: status(job) == JobStatus.FINISHED)  # the orphaned work-horse finished it


def test_recovered_job_runs_again_but_notifies_once(r) -> None:
    q = queue("rel_recover")
    job = _notification(q, 60, retry=Retry(max=2))  # notifies, then holds until released
    worker = start_worker("rel_recover")
    wait_for(lambda: r.exists(idempotency_key("n-1")))
    assert len(crash(worker)) == 2  # the worker, and the work-horse holding the job
    recovery = recover_abandoned_jobs(q)
    assert recovery.requeued == [job.id]
    assert recovery.dead_workers == worker.names
    assert status(job) == JobStatus.QUEUED
    assert q.get_job_ids() == [job.id]
    job.refresh()
    assert job.retries_left == 1
    release(r, "n-1")  # let the second run finish its work
    with start_worker("rel_recover"):
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    assert r.hget(EXECUTIONS, job.id) == "2"  # at-least-once: it ran twice
    assert r.llen(OUTBOX) == 1  # ... and notified once
    assert job.return_value() == "already sent: skipped"
    assert registry_counts(q) == {
        "queued": 0, "started": 0, "finished": 1, "failed": 0,
        "scheduled": 0, "deferred": 0, "intermediate": 0,
    }  # fmt: skip


def test_abandoned_job_without_retries_is_failed_as_abandoned(r) -> None:
    q = queue("rel_abandoned")
    job = _notification(q, 60)
    worker = start_worker("rel_abandoned")
    wait_for(lambda: r.exists(idempotency_key("n-1")))
    crash(worker)
    recovery = recover_abandoned_jobs(q)
    assert recovery.failed == [job.id] and recovery.requeued == []
    assert status(job) == JobStatus.FAILED
    assert job.id in FailedJobRegistry(queue=q)
    assert "AbandonedJobError" in failure_text(job)


def test_recovery_leaves_jobs_of_live_workers_alone(r) -> None:
    q = queue("rel_live")
    job = _notification(q, 60, retry=Retry(max=2))
    with start_worker("rel_live") as worker:
        wait_for(lambda: r.exists(idempotency_key("n-1")))  # running, and holding
        recovery = recover_abandoned_jobs(q, orphan_grace_s=0)
        assert recovery.jobs == [] and recovery.dead_workers == []
        assert worker_alive(redis_connection(), worker.names[0])
        assert status(job) == JobStatus.STARTED
        release(r, "n-1")
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    assert r.hget(EXECUTIONS, job.id) == "1"


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_requeued(r) -> None:
    q = queue("rel_intermediate")
    job = _notification(q, 0.1)
    # What BLMOVE does when a worker takes a job; the worker then "dies".
    r.lmove(q.key, q.intermediate_queue_key)
    assert q.get_job_ids() == []
    first = recover_abandoned_jobs(q, orphan_grace_s=0.2)
    assert first.orphans == []  # first sighting: maybe a live worker about to start it
    assert r.hexists(orphans_key(q.name), job.id)
    time.sleep(0.3)
    second = recover_abandoned_jobs(q, orphan_grace_s=0.2)
    assert second.orphans == [job.id]
    assert q.get_job_ids() == [job.id] and r.llen(q.intermediate_queue_key) == 0
    with start_worker("rel_intermediate", worker_class="simple"):
        wait_for(lambda: status(job) == JobStatus.FINISHED)


def test_leftovers_of_finished_jobs_are_dropped_from_the_intermediate_list(r) -> None:
    q = queue("rel_leftover")
    job = q.enqueue("operator.add", 1, 2)
    with start_worker("rel_leftover", worker_class="simple"):
        wait_for(lambda: status(job) == JobStatus.FINISHED)
    r.rpush(q.intermediate_queue_key, job.id)  # as a crash at the wrong moment leaves it
    recovery = recover_abandoned_jobs(q, orphan_grace_s=0)
    assert recovery.jobs == []
    assert r.llen(q.intermediate_queue_key) == 0
    assert status(job) == JobStatus.FINISHED


def _rq_time(seconds_ago: float) -> str:
    """A time stamp as RQ writes them (``utcformat``), ``seconds_ago`` in the past."""
    return utcformat(datetime.now(timezone.utc) - timedelta(seconds=seconds_ago))


def test_worker_alive_judges_by_pid_here_and_by_registration_elsewhere(r) -> None:
    conn = redis_connection()
    here = socket.gethostname()
    conn.hset("rq:worker:me", mapping={"pid": os.getpid(), "hostname": here, "birth": _rq_time(0)})
    assert worker_alive(conn, "me")
    dead = start_worker("rel_alive", worker_class="simple")
    name = dead.names[0]
    dead.kill()
    assert not worker_alive(conn, name)
    assert not worker_alive(conn, "never-existed")
    # Elsewhere, RQ's own rule: alive while the registration lives, however old its
    # heartbeat (an idle worker beats once per wait for work: up to 405 s by default).
    far = {
        "pid": 1,
        "hostname": "elsewhere",
        "birth": _rq_time(3600),
        "last_heartbeat": _rq_time(400),
    }
    conn.hset("rq:worker:far", mapping=far)
    conn.expire("rq:worker:far", 80)
    assert worker_alive(conn, "far")
    conn.hset("rq:worker:far", "death", _rq_time(0))  # RQ's register_death
    assert not worker_alive(conn, "far")
    conn.hdel("rq:worker:far", "death")
    conn.pexpire("rq:worker:far", 1)  # no heartbeat in time: the key expires
    wait_for(lambda: not conn.exists("rq:worker:far"))
    assert not worker_alive(conn, "far")


def test_an_idle_live_worker_is_never_judged_dead(r) -> None:
    q = queue("rel_idle")
    conn = redis_connection()
    with start_worker("rel_idle", worker_class="simple") as worker:
        key = f"rq:worker:{worker.names[0]}"
        wait_for(lambda: r.hget(key, "state") == "idle")
        # RQ 3: an idle worker waits up to worker_ttl - 15 s for a job, heartbeats
        # after the wait, and its key outlives the wait (worker_ttl + 60 s).
        assert r.ttl(key) > Worker([q], connection=conn).dequeue_timeout + 15
        # Late in such a wait its last heartbeat is minutes old: still alive, here...
        conn.hset(key, "last_heartbeat", _rq_time(400))
        assert worker_alive(conn, worker.names[0])
        # ... and seen from another machine (no pid to ask there).
        conn.hset(key, "hostname", "elsewhere")
        assert worker_alive(conn, worker.names[0])
        recovery = recover_abandoned_jobs(q, orphan_grace_s=0)
        assert recovery.dead_workers == [] and r.exists(key)
        job = q.enqueue("operator.add", 2, 2)
        wait_for(lambda: status(job) == JobStatus.FINISHED)  # it was alive all along


def test_a_reused_pid_does_not_keep_a_dead_workers_job_stuck(r) -> None:
    q = queue("rel_reused_pid")
    job = _notification(q, 60, retry=Retry(max=1))
    worker = start_worker("rel_reused_pid")
    name = worker.names[0]
    wait_for(lambda: r.exists(idempotency_key("n-1")))
    crash(worker)
    # The dead worker's pid now belongs to a process started after the worker's birth.
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        conn = redis_connection()
        conn.hset(f"rq:worker:{name}", mapping={"pid": impostor.pid, "birth": _rq_time(60)})
        assert pid_running(impostor.pid)
        assert not worker_alive(conn, name)
        recovery = recover_abandoned_jobs(q)
        assert recovery.requeued == [job.id] and recovery.dead_workers == [name]
        assert status(job) == JobStatus.QUEUED
    finally:
        impostor.kill()
        impostor.wait()


def test_recovery_is_tested_with_the_installed_rq() -> None:
    """recover_abandoned_jobs edits RQ's private keys: a new RQ must be checked first."""
    installed = version("rq")
    major_minor = ".".join(installed.split(".")[:2])
    assert major_minor in TESTED_RQ_VERSIONS, (
        f"RQ {installed} is installed, but helpers/reliability/recovery.py is tested with RQ "
        f"{', '.join(TESTED_RQ_VERSIONS)} only: it edits RQ's private keys and relies on its "
        "heartbeat timings. Re-read rq/registry.py (StartedJobRegistry.cleanup), "
        "rq/executions.py, rq/intermediate_queue.py and rq/worker/base.py (heartbeat, "
        "dequeue_timeout, register_death), run this file's recovery tests, then add "
        f"{major_minor!r} to TESTED_RQ_VERSIONS."
    )
    # ... and every tested version is one that pyproject.toml lets pip install.
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    pinned = SpecifierSet(re.search(r'"rq([<>=~!][^"]*)"', pyproject)[1])
    assert all(f"{v}.0" in pinned for v in TESTED_RQ_VERSIONS), (str(pinned), TESTED_RQ_VERSIONS)


# --- idempotency -------------------------------------------------------------------------


def test_notify_once_sends_once_and_naive_sends_twice(r) -> None:
    conn = redis_connection()
    assert notify_once(conn, "id-1", "hello") is True
    assert notify_once(conn, "id-1", "hello") is False
    assert r.lrange(OUTBOX, 0, -1) == ["hello"]
    assert r.ttl(idempotency_key("id-1")) > 0  # marks expire, after any retry could come
    notify_naively(conn, "again")
    notify_naively(conn, "again")
    assert r.lrange(OUTBOX, 0, -1) == ["hello", "again", "again"]


# --- Redis restarts ----------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Redis with persistence, just for this test; REDIS_URL points at it."""
    info = start_server(tmp_path, persistence=True)
    monkeypatch.setenv("REDIS_URL", info.url)
    yield info
    stop_server(tmp_path)


def _restart(info, tmp_path: Path, down_s: float = 1.0) -> None:
    """SHUTDOWN SAVE, wait ``down_s``, start again on the same port."""
    redis.Redis.from_url(info.url).shutdown(save=True)
    time.sleep(down_s)
    again = start_server(tmp_path, port=info.port, persistence=True)
    assert again.url == info.url


def test_idle_workers_reconnect_after_a_redis_restart(private_redis, tmp_path, capsys) -> None:
    worker = start_worker("rel_restart_idle", worker_class="simple")
    try:
        pid = worker.pid
        # Idle means waiting in its dequeue, the part of RQ's loop that survives a lost
        # connection. Its start-up registry cleaning, just before, does not: a Redis gone
        # at that moment makes RQ 3 quit ("found an unhandled exception"); lesson 12's
        # Supervisor restarts workers for that reason.
        direct = redis.Redis.from_url(private_redis.url)
        state = f"rq:worker:{worker.names[0]}"
        wait_for(lambda: direct.hget(state, "state") == b"idle")
        direct.shutdown(save=True)
        # While Redis is down, the client says so, in the original's words, then how to fix it.
        with pytest.raises(RedisUnavailable, match="REDIS_URL is set to"):
            connect(attempts=2, delay_s=0.01)
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2
        assert all(line.startswith(NOT_CONNECTED.format(error="")) for line in lines)
        assert "Connection refused" in lines[0]
        # Stay down until the worker reports the lost connection (its command channel
        # or its dequeue): redis-py's own quick retries hide a restart within ~2 s.
        wait_for(lambda: "could not connect to Redis instance" in worker.output(), timeout=60)
        assert worker.running
        start_server(tmp_path, port=private_redis.port, persistence=True)
        job = queue("rel_restart_idle").enqueue("operator.add", 2, 3)
        wait_for(lambda: status(job) == JobStatus.FINISHED, timeout=60)
        assert worker.running and worker.pid == pid  # the same worker carried on
        assert job.return_value() == 5
    finally:
        worker.stop()


def test_jobs_survive_a_redis_restart_mid_run_under_supervision(private_redis, tmp_path) -> None:
    q = queue("rel_restart_busy")
    jobs = [q.enqueue("time.sleep", 0.2, retry=Retry(max=2), result_ttl=600) for _ in range(24)]

    def finished() -> int:
        return sum(status(j) == JobStatus.FINISHED for j in jobs)

    with Supervisor("rel_restart_busy", 2) as supervisor:
        assert supervisor.run_until(lambda: finished() >= 6, timeout=60, interval=0.05)
        _restart(private_redis, tmp_path)
        assert supervisor.run_until(lambda: finished() == len(jobs), timeout=90)
    # Every job finished exactly once in RQ's books; nothing left behind.
    counts = registry_counts(queue("rel_restart_busy"))
    assert counts["finished"] == len(jobs)
    assert counts["queued"] == counts["started"] == counts["failed"] == counts["intermediate"] == 0
    print(f"workers replaced: {supervisor.replaced}, jobs recovered: {len(supervisor.recovered)}")


# --- monitoring --------------------------------------------------------------------------


def test_rq_info_shows_the_queue_and_its_workers(r) -> None:
    q = queue("rel_info")
    job = q.enqueue("operator.add", 1, 1)
    with start_worker("rel_info", worker_class="simple") as worker:
        wait_for(lambda: status(job) == JobStatus.FINISHED)
        out = rq_info("rel_info")
    assert "rel_info" in out and "1 finished" in out
    assert worker.names[0] in out and "1 workers" in out


def test_the_dashboard_serves_json_on_loopback_then_stops(r) -> None:
    queue("rel_dashboard").enqueue("operator.add", 1, 1)
    dashboard = start_dashboard()
    try:
        assert dashboard.url.startswith("http://127.0.0.1:")
        data = httpx.get(dashboard.url + "0/data/queues.json", timeout=10).json()
        queues = {q["name"]: q["count"] for q in data["queues"]}
        assert queues["rel_dashboard"] == 1
    finally:
        dashboard.stop()
    assert dashboard.process.poll() is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(dashboard.url, timeout=2)


# --- security ----------------------------------------------------------------------------


def test_unpickling_runs_code_and_json_refuses_the_same_bytes(r) -> None:
    reliability.UNPICKLING_EFFECTS.clear()
    blob = pickle.dumps(HarmlessPayload("ran"))
    assert reliability.UNPICKLING_EFFECTS == []
    pickle.loads(blob)
    assert reliability.UNPICKLING_EFFECTS == ["ran"]
    # A forged job whose data is that pickle: RQ's JSON serializer cannot run it.
    reliability.UNPICKLING_EFFECTS.clear()
    data = pickle.dumps(("operator.add", None, [HarmlessPayload("ran")], {}))
    conn = redis_connection()
    conn.hset("rq:job:forged", "data", zlib.compress(data))
    with pytest.raises(DeserializationError):
        _ = Job.fetch("forged", connection=conn, serializer=JSONSerializer).args
    assert reliability.UNPICKLING_EFFECTS == []
    _ = Job.fetch("forged", connection=conn, serializer=pickle).args  # pickle: runs it
    assert reliability.UNPICKLING_EFFECTS == ["ran"]


def test_throwaway_server_with_a_password_is_stopped(r) -> None:
    with throwaway_server() as info:
        admin = redis.Redis.from_url(info.url)
        admin.config_set("requirepass", "s3cret")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(info.url).ping()
        url = info.url.replace("redis://", "redis://:s3cret@")
        assert redis.Redis.from_url(url).ping()
        assert redis.Redis.from_url(url).config_get("bind")["bind"] == "127.0.0.1"
    assert not pid_running(info.pid)
