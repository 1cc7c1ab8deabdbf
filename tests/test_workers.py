"""Worker processes: start, JSON jobs, concurrency, graceful and hard stops."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib

import pytest
from rq import Worker
from rq.job import Job, JobStatus
from waiting import wait_for

from helpers.client import clear_keys
from helpers.job_events import JobEvents
from helpers.notifications import NOTIFICATION_JOBS, create_push_notifications_jobs
from helpers.processes import descendants, pid_running
from helpers.server import logs_dir
from helpers.workers import queue, queue_keys, redis_connection, start_worker


def test_queue_uses_json_not_pickle(r) -> None:
    q = queue("test_workers_json")
    job = q.enqueue("operator.add", 2, 3)
    raw = zlib.decompress(redis_connection().hget(f"rq:job:{job.id}", "data"))  # RQ compresses
    # JSON: the job's function and arguments are plain data, not pickle bytes.
    assert json.loads(raw) == ["operator.add", None, [2, 3], {}]


def test_a_job_runs_in_a_worker_process(r) -> None:
    q = queue("test_workers_run")
    job = q.enqueue("operator.add", 2, 3)
    with start_worker("test_workers_run", worker_class="simple"):
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED)
    assert job.return_value() == 5


def test_burst_worker_drains_the_queue_and_exits(r) -> None:
    q = queue("test_workers_burst")
    jobs = [q.enqueue("operator.mul", i, 2) for i in range(5)]
    worker = start_worker("test_workers_burst", burst=True)
    assert worker.process.wait(60) == 0
    assert [j.return_value() for j in jobs] == [0, 2, 4, 6, 8]
    assert "Job OK" in worker.read_log() or "Successfully completed" in worker.read_log()


def test_concurrency_runs_jobs_side_by_side(r) -> None:
    q = queue("test_workers_concurrency")
    jobs = [q.enqueue("time.sleep", 1.0) for _ in range(2)]
    with start_worker("test_workers_concurrency", concurrency=2) as workers:
        assert len(workers.names) == 2
        wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in jobs))
    starts = sorted(
        Job.fetch(j.id, connection=q.connection, serializer=q.serializer).started_at for j in jobs
    )
    # Both started before either could have finished: they ran at the same time.
    assert (starts[1] - starts[0]).total_seconds() < 1.0


def test_sigterm_finishes_the_current_job_then_exits(r) -> None:
    q = queue("test_workers_sigterm")
    job = q.enqueue("time.sleep", 1.5)
    worker = start_worker("test_workers_sigterm")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    assert worker.stop(timeout=30) == 0
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_sigkill_abandons_the_current_job(r) -> None:
    q = queue("test_workers_sigkill")
    job = q.enqueue("time.sleep", 0.5)
    worker = start_worker("test_workers_sigkill")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    killed = worker.kill()
    assert len(killed) == 2  # the worker and its work-horse (in a process group of its own)
    time.sleep(1.0)
    # Nobody finished it: it stays "started" until recovered (lesson 12).
    assert job.get_status(refresh=True) == JobStatus.STARTED


def test_command_line_rejects_bad_concurrency() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers.workers", "q", "--concurrency", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "--concurrency must be at least 1" in result.stderr


@pytest.mark.parametrize("concurrency", [1, 2])
def test_command_line_burst(r, concurrency: int) -> None:
    q = queue("test_workers_cli")
    jobs = [q.enqueue("operator.add", i, 1) for i in range(4)]
    result = subprocess.run(
        [sys.executable, "-m", "helpers.workers", "test_workers_cli", "--burst",
         "--concurrency", str(concurrency)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("log in") == concurrency
    assert sorted(j.return_value() for j in jobs) == [1, 2, 3, 4]


def test_sigterm_with_concurrency_finishes_every_current_job(r) -> None:
    q = queue("test_workers_sigterm_two")
    jobs = [q.enqueue("time.sleep", 1.5) for _ in range(2)]
    workers = start_worker("test_workers_sigterm_two", concurrency=2)
    assert workers.running
    wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.STARTED for j in jobs), 60)
    assert workers.stop(timeout=60) == 0
    assert not workers.running
    assert [j.get_status(refresh=True) for j in jobs] == [JobStatus.FINISHED] * 2


def test_job_output_goes_to_the_workers_log_file(r, capsys) -> None:
    q = queue("test_workers_log")
    job = q.enqueue(
        "helpers.notifications.process_notification", {"phoneNumber": "1", "message": "m"}
    )
    with start_worker("test_workers_log") as worker:
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED)
    assert worker.log.parent == logs_dir()
    assert "Sending notification to 1, with message: m" in worker.read_log()
    assert capsys.readouterr().out == ""  # nothing reaches the caller's output


def test_queue_keys_clear_everything_a_queue_left(r) -> None:
    q = queue("test_workers_keys")
    events = JobEvents(q)
    jobs = create_push_notifications_jobs(NOTIFICATION_JOBS[:3], q, echo=lambda _line: None)
    with start_worker("test_workers_keys", worker_class="simple"):
        events.wait_for(jobs, timeout=60)
    assert r.keys("*test_workers_keys*")
    clear_keys(r, *queue_keys("test_workers_keys"))
    # Left: the stopped workers' own records (named after the queue), expiring by themselves.
    leftover = [k for k in r.keys("*test_workers_keys*") if not k.startswith("rq:worker:")]
    assert leftover == []


def test_workers_stop_when_their_starter_exits(r) -> None:
    starter = (
        "from helpers.workers import start_worker\n"
        "w = start_worker('test_workers_atexit')\n"
        "print(w.pid, flush=True)\n"
    )  # exits without stopping the worker
    result = subprocess.run(
        [sys.executable, "-c", starter], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[-1])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # stopped (and reaped) by the starter's exit hook
    os.killpg(pid, signal.SIGKILL)  # do not leak it
    raise AssertionError("the worker outlived the process that started it")


def test_workers_stop_gracefully_when_their_starter_is_killed(r) -> None:
    """A kernel killed with SIGKILL runs no exit hook: its workers notice it is
    gone, finish the job they hold, deregister and exit, instead of taking
    the next lesson run's jobs forever."""
    q = queue("test_workers_orphan")
    job = q.enqueue("time.sleep", 1.5)
    starter = (
        "import time\n"
        "from helpers.workers import start_worker\n"
        "w = start_worker('test_workers_orphan', concurrency=2)\n"
        "print(w.pid, *w.names, flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    pid, *names = process.stdout.readline().split()
    group = int(pid)
    try:
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
        process.kill()  # SIGKILL: no atexit, no w.stop()
        process.wait()
        wait_for(lambda: not pid_running(group))
        assert job.get_status(refresh=True) == JobStatus.FINISHED  # finished, not abandoned
        # Each worker registered its death (RQ keeps the record a minute).
        assert all(r.hget(f"rq:worker:{name}", "death") for name in names)
        assert Worker.all(queue=q) == []
        assert descendants(group) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # do not leak them if the test failed
