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
import redis
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
    assert "Job OK" in worker.output() or "Successfully completed" in worker.output()


def test_concurrency_runs_jobs_side_by_side(r, tmp_path) -> None:
    q = queue("test_workers_concurrency")
    gate = tmp_path / "gate"  # each job runs until the gate exists
    jobs = [q.enqueue("helpers.reliability.hold_until", str(gate)) for _ in range(2)]
    with start_worker("test_workers_concurrency", concurrency=2) as workers:
        assert len(workers.names) == 2
        # Neither can finish before the gate opens: both started means both run at once.
        wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.STARTED for j in jobs))
        gate.touch()
        wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in jobs))
    ran_by = {
        Job.fetch(j.id, connection=q.connection, serializer=q.serializer).worker_name for j in jobs
    }
    assert ran_by == set(workers.names)


def test_sigterm_finishes_the_current_job_then_exits(r) -> None:
    q = queue("test_workers_sigterm")
    job = q.enqueue("time.sleep", 1.5)
    worker = start_worker("test_workers_sigterm")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    assert worker.stop(timeout=30) == 0
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_sigkill_abandons_the_current_job(r) -> None:
    q = queue("test_workers_sigkill")
    job = q.enqueue("time.sleep", 600)  # cannot end before the kill, however slow the machine
    worker = start_worker("test_workers_sigkill")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    killed = worker.kill()
    assert len(killed) == 2  # the worker and its work-horse (in a process group of its own)
    wait_for(lambda: not any(pid_running(pid) for pid in killed))
    # Nobody is left to finish it: it stays "started" until recovered (lesson 12).
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
    assert worker.log_files[0].parent == logs_dir()
    assert "Sending notification to 1, with message: m" in worker.output()
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


# Redis blips (issue 11, item 7). Each test has a redis-server of its own, which
# it stops and starts again on the same port, so the worker's REDIS_URL stays valid.


class BlipRedis:
    """A private redis-server the test can take down and bring back."""

    def __init__(self, base) -> None:
        from helpers.server import free_port

        self.base = base
        self.port = free_port()
        self.url = self.up()

    def up(self) -> str:
        from helpers.server import start_server

        return start_server(self.base, port=self.port).url

    def down(self) -> None:
        from helpers.server import stop_server

        assert stop_server(self.base)

    def client(self):
        return redis_connection(self.url)


@pytest.fixture
def blip_redis(tmp_path):
    server = BlipRedis(tmp_path / "blip")
    yield server
    from helpers.server import stop_server

    stop_server(server.base)


@pytest.fixture
def blip_worker(tmp_path, blip_redis):
    """Start ``python -m helpers.workers QUEUE --name NAME`` on the private
    server; returns (process, log path). Killed with its horses at the end."""
    started: list[subprocess.Popen] = []

    def start(queue_name: str, name: str, *extra: str) -> tuple[subprocess.Popen, object]:
        data = tmp_path / "data"
        env = dict(os.environ, REDIS_URL=blip_redis.url, COURSE_DATA_DIR=str(data))
        env["PYTHONUNBUFFERED"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", "helpers.workers", queue_name, "--name", name, *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append(process)
        client = blip_redis.client()
        wait_for(lambda: client.exists(f"rq:worker:{name}") or process.poll() is not None)
        assert process.poll() is None, f"worker exited with {process.returncode}"
        return process, data / "logs" / f"worker-{name}.log"

    yield start
    for process in started:
        for pid in [process.pid, *descendants(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def _log_has(log, text: str) -> bool:
    return log.exists() and text in log.read_text()


def _runs_a_job(blip_redis, queue_name: str, name: str, process, registered: bool = True) -> None:
    """A job enqueued now finishes, run by the same worker process (which
    is, if ``registered``, listed in Redis as RQ's ``rq info`` shows it)."""
    q = queue(queue_name, blip_redis.client())
    job = q.enqueue("operator.add", 20, 22)
    wait_for(
        lambda: job.get_status(refresh=True) == JobStatus.FINISHED or process.poll() is not None
    )
    assert process.poll() is None, f"worker exited with {process.returncode}"
    assert job.return_value() == 42
    job.refresh()
    assert job.worker_name == name
    if registered:
        assert [w.name for w in Worker.all(connection=q.connection)] == [name]
        assert int(q.connection.hget(f"rq:worker:{name}", "pid")) == process.pid


def test_worker_rides_out_a_redis_blip_while_idle(blip_redis, blip_worker) -> None:
    """RQ's dequeue wait retries by itself: the worker carries on, no restart.
    (A restarted Redis without persistence lost the worker's record, which RQ
    does not write again while idle: ``rq info`` misses the worker until it
    restarts; not asserted here.)"""
    process, log = blip_worker("test_blip_idle", "blip-idle")
    client = blip_redis.client()
    # Idle: blocked in RQ's dequeue (BLMOVE); the only client of this server that blocks.
    wait_for(lambda: any("b" in c["flags"] for c in client.client_list()))
    blip_redis.down()
    wait_for(lambda: _log_has(log, "could not connect to Redis"))
    blip_redis.up()
    _runs_a_job(blip_redis, "test_blip_idle", "blip-idle", process, registered=False)
    assert "restarting the worker loop" not in log.read_text()


@pytest.mark.parametrize("worker_class", ["fork", "simple"])
def test_worker_restarts_when_redis_dies_during_a_job(
    tmp_path, blip_redis, blip_worker, worker_class: str
) -> None:
    """Redis gone while a job runs: its bookkeeping fails and RQ's work loop
    quits; the process waits for Redis, restarts the loop under the same
    name and takes the next job."""
    name = f"blip-job-{worker_class}"
    process, log = blip_worker("test_blip_job", name, "--worker-class", worker_class)
    gate = tmp_path / "gate"
    q = queue("test_blip_job", blip_redis.client())
    job = q.enqueue("helpers.reliability.hold_until", str(gate))
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    blip_redis.down()
    gate.touch()  # the job ends now, with Redis gone
    wait_for(lambda: _log_has(log, "waiting up to") or process.poll() is not None)
    assert process.poll() is None, f"worker exited with {process.returncode}"
    blip_redis.up()
    wait_for(lambda: _log_has(log, "restarting the worker loop") or process.poll() is not None)
    _runs_a_job(blip_redis, "test_blip_job", name, process)
    assert log.read_text().count("restarting the worker loop") == 1


def test_sigterm_while_waiting_for_redis_exits_cleanly(tmp_path, blip_redis, blip_worker) -> None:
    """A graceful stop while Redis is away ends the process with 0, no restart."""
    process, log = blip_worker("test_blip_stop", "blip-stop", "--worker-class", "simple")
    gate = tmp_path / "gate"
    q = queue("test_blip_stop", blip_redis.client())
    job = q.enqueue("helpers.reliability.hold_until", str(gate))
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    blip_redis.down()
    gate.touch()
    wait_for(lambda: _log_has(log, "waiting up to") or process.poll() is not None)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert "restarting the worker loop" not in log.read_text()


def _blip_during_a_job(blip_redis, gate, q, log, process, losses: int) -> None:
    """Take Redis down while a job (held by ``gate``) runs; wait until the
    worker has noticed for the ``losses``-th time; bring Redis back."""
    gate.unlink(missing_ok=True)
    job = q.enqueue("helpers.reliability.hold_until", str(gate))
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    blip_redis.down()
    gate.touch()
    wait_for(lambda: log.read_text().count("lost Redis") >= losses or process.poll() is not None)
    blip_redis.up()


def test_burst_worker_survives_a_blip_then_ends_on_an_empty_queue(
    tmp_path, blip_redis, blip_worker
) -> None:
    q = queue("test_blip_burst", blip_redis.client())
    gate = tmp_path / "gate"
    job = q.enqueue("helpers.reliability.hold_until", str(gate))  # holds it
    process, log = blip_worker("test_blip_burst", "blip-burst", "--burst")
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED)
    blip_redis.down()
    gate.touch()
    wait_for(lambda: _log_has(log, "waiting up to") or process.poll() is not None)
    blip_redis.up()
    assert process.wait(60) == 0  # the restarted Redis is empty: done
    assert log.read_text().count("restarting the worker loop") == 1


def test_worker_gives_up_after_too_many_quick_restarts(tmp_path, blip_redis, blip_worker) -> None:
    """Five restarts within a minute are allowed; the sixth loss ends the
    process with 1 and a line saying why."""
    process, log = blip_worker("test_blip_limit", "blip-limit", "--worker-class", "simple")
    gate = tmp_path / "gate"
    for losses in range(1, 7):
        assert process.poll() is None, f"worker exited with {process.returncode}"
        _blip_during_a_job(
            blip_redis, gate, queue("test_blip_limit", blip_redis.client()), log, process, losses
        )
        if losses <= 5:
            wait_for(
                lambda n=losses: (
                    log.read_text().count("restarting the worker loop") == n
                    or process.poll() is not None
                )
            )
    assert process.wait(60) == 1
    assert "5 restarts in 60 s already, giving up" in log.read_text()


def test_a_write_refused_for_now_counts_as_redis_lost_and_other_errors_do_not(private) -> None:
    """A primary without its replicas (NOREPLICAS) or demoted by a failover
    (READONLY) refuses writes for a while, also inside RQ's pipelines: the
    worker waits and restarts its loop; any other error reply is a bug to show.
    The errors are the ones redis-py raises from a real server's replies: it
    strips the READONLY code and raises ReadOnlyError."""
    from helpers.workers import _redis_gone

    client = redis.Redis.from_url(private.url)

    def refusals() -> list[redis.ResponseError]:
        """What a plain write and one inside a pipeline raise now."""
        errors = []
        for write in (
            lambda: client.set("k", "v"),
            lambda: client.pipeline().sadd("rq:workers", "w").execute(),
        ):
            with pytest.raises(redis.ResponseError) as refused:
                write()
            errors.append(refused.value)
        return errors

    try:
        client.config_set("min-replicas-to-write", 1)  # no replica: NOREPLICAS
        client.replicaof("127.0.0.1", 1)  # a replica (of nothing): READONLY first
        read_only = refusals()
        client.replicaof("NO", "ONE")
        no_replicas = refusals()
        client.config_set("min-replicas-to-write", 0)
        client.set("k", "v")
        with pytest.raises(redis.ResponseError) as wrong_type:
            client.lpush("k", "w")
    finally:
        client.replicaof("NO", "ONE")
        client.config_set("min-replicas-to-write", 0)
    assert all(isinstance(error, redis.exceptions.ReadOnlyError) for error in read_only), read_only
    assert all("NOREPLICAS" in str(error) for error in no_replicas), no_replicas
    assert all(_redis_gone(error) for error in read_only + no_replicas)
    assert not _redis_gone(wrong_type.value)


def test_a_worker_unsubscribes_without_waiting_out_its_pubsub_thread(r) -> None:
    """RQ's teardown (unsubscribe, then stop the pub/sub thread) must not wait
    for the thread's 60 s poll: with redis-py 8.2 it did, whenever the thread
    saw the unsubscription before the stop (pyproject.toml says so)."""
    worker = Worker(["test_workers_unsubscribe"], connection=redis_connection())
    for _ in range(10):
        worker.subscribe()
        wait_for(lambda: worker.pubsub.subscribed, 10)
        start = time.monotonic()
        worker.unsubscribe()
        assert time.monotonic() - start < 5
