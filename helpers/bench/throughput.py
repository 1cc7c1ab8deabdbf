"""Throughput of Redis itself, of RQ, and of the fast notification path
(:mod:`helpers.fastpath`): items per second, each loop bounded in count and time."""

from __future__ import annotations

import os
import time

from rq import Queue

from helpers import fastpath
from helpers.bench.harness import (
    JOB_ID_PREFIX,
    JOBS_QUEUE,
    MODULE_JOB,
    NOTIFY_NS,
    NOTIFY_QUEUE,
    PIPELINE_SIZE,
    RAW_LIST,
    RAW_PROCESSING,
    TRIVIAL_JOB,
    Run,
    _clear_queue,
    _rate,
    bench_notifications,
    redis_cpu_s,
    timed_loop,
)
from helpers.workers import queue, start_worker


def measure_ping(run: Run) -> None:
    """PING one round trip at a time, then 100 per pipeline; and Redis's own
    CPU time per PING in each loop (the loop's CPU, divided by the PINGs)."""
    s = run.settings
    with run.client() as client:
        client.ping()
        cpu = redis_cpu_s(client)
        done, seconds = timed_loop(lambda: int(bool(client.ping())), s.ping_count, s.max_s)
        run.record("redis_ping_per_s", _rate(done, seconds))
        run.record("redis_cpu_us_per_ping", 1e6 * (redis_cpu_s(client) - cpu) / max(done, 1))

        def pipelined() -> int:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.ping()
                return sum(1 for reply in pipe.execute() if reply)

        cpu = redis_cpu_s(client)
        done, seconds = timed_loop(pipelined, s.ping_count * 10, s.max_s)
        run.record("redis_ping_pipelined_per_s", _rate(done, seconds))
        run.record(
            "redis_cpu_us_per_ping_pipelined", 1e6 * (redis_cpu_s(client) - cpu) / max(done, 1)
        )


def measure_raw_queue(run: Run) -> None:
    """A Redis list as a queue, without RQ: the ceiling every job queue sits under."""
    s = run.settings
    with run.client() as client:
        client.delete(RAW_LIST, RAW_PROCESSING)
        counter = iter(range(10**9))

        # Producer then consumer, one command (one round trip) per item each.
        pushed, push_s = timed_loop(
            lambda: int(client.lpush(RAW_LIST, next(counter)) > 0), s.raw_count, s.max_s / 2
        )
        start = time.perf_counter()
        popped = sum(1 for _ in range(pushed) if client.brpop([RAW_LIST], timeout=1))
        run.record("raw_queue_per_s", _rate(popped, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] = pushed - popped

        # Reliable: the item moves to a processing list, and is removed (ack) when done.
        pushed, push_s = timed_loop(
            lambda: int(client.lpush(RAW_LIST, next(counter)) > 0), s.raw_count, s.max_s / 2
        )
        start = time.perf_counter()
        acked = 0
        for _ in range(pushed):
            item = client.blmove(RAW_LIST, RAW_PROCESSING, 1, "RIGHT", "LEFT")
            if item is not None:
                acked += int(client.lrem(RAW_PROCESSING, 1, item))
        run.record("raw_queue_reliable_per_s", _rate(acked, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] += pushed - acked

        # The same commands, 100 per round trip.
        def push_many() -> int:
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.lpush(RAW_LIST, next(counter))
                return len(pipe.execute())

        pushed, push_s = timed_loop(push_many, s.raw_count * 5, s.max_s / 2)
        start = time.perf_counter()
        popped = 0
        for _ in range(0, pushed, PIPELINE_SIZE):
            with client.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE_SIZE):
                    pipe.rpop(RAW_LIST)
                popped += sum(1 for item in pipe.execute() if item is not None)
        run.record("raw_queue_pipelined_per_s", _rate(popped, push_s + time.perf_counter() - start))
        run.checks["raw_queue_lost"] += pushed - popped
        client.delete(RAW_LIST, RAW_PROCESSING)


def measure_rq_enqueue(run: Run) -> None:
    """RQ's enqueue cost: one job per call, then ``enqueue_many`` in pipelines."""
    s = run.settings
    with run.client() as client:
        q = queue(JOBS_QUEUE, client)
        counter = iter(range(10**9))

        def one() -> int:
            q.enqueue(TRIVIAL_JOB, job_id=f"{JOB_ID_PREFIX}e-{next(counter)}")
            return 1

        done, seconds = timed_loop(one, s.enqueue_count, s.max_s)
        run.record("rq_enqueue_per_s", _rate(done, seconds))
        run.checks["rq_enqueue_missing"] = done - q.count
        _clear_queue(client, JOBS_QUEUE)

        def many() -> int:
            datas = [
                Queue.prepare_data(TRIVIAL_JOB, job_id=f"{JOB_ID_PREFIX}m-{next(counter)}")
                for _ in range(PIPELINE_SIZE)
            ]
            with client.pipeline() as pipe:
                q.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
            return len(datas)

        done, seconds = timed_loop(many, s.enqueue_count * 5, s.max_s)
        run.record("rq_enqueue_many_per_s", _rate(done, seconds))
        run.checks["rq_enqueue_missing"] += done - q.count
        _clear_queue(client, JOBS_QUEUE)

        # What one job costs in Python before any Redis command: build + serialize.
        from rq.job import Job  # noqa: PLC0415

        def build() -> int:
            job = Job.create(TRIVIAL_JOB, connection=client, serializer=q.serializer)
            job.to_dict()
            return 1

        done, seconds = timed_loop(build, 2_000, s.max_s / 2)
        run.record("rq_job_serialize_us", 1e6 * seconds / max(done, 1))


def process_rate(
    run: Run, worker_class: str, processes: int, jobs: int, tag: str, func: str = TRIVIAL_JOB
) -> tuple[int, float, float]:
    """Start ``processes`` workers of ``worker_class``, then enqueue ``jobs``
    jobs of ``func`` (pipelined, 100 at a time) and wait until they are
    finished or the time cap passes. Returns (jobs finished, seconds, Redis
    CPU seconds), both from the first enqueue to the last job finished."""
    max_s = run.settings.max_s * 3
    with run.client() as client:
        q = queue(JOBS_QUEUE, client)
        finished_key = q.finished_job_registry.key
        failed_key = q.failed_job_registry.key
        workers = start_worker(
            JOBS_QUEUE, worker_class=worker_class, concurrency=processes, allow=[TRIVIAL_JOB]
        )
        try:
            cpu = redis_cpu_s(client)
            start = time.perf_counter()
            deadline = start + max_s
            for first in range(0, jobs, PIPELINE_SIZE):
                datas = [
                    Queue.prepare_data(func, job_id=f"{JOB_ID_PREFIX}{tag}-{i}")
                    for i in range(first, min(first + PIPELINE_SIZE, jobs))
                ]
                with client.pipeline() as pipe:
                    q.enqueue_many(datas, pipeline=pipe)
                    pipe.execute()
            done = 0
            while time.perf_counter() < deadline:
                done = int(client.zcard(finished_key))
                if done + int(client.zcard(failed_key)) >= jobs:
                    break
                time.sleep(0.005)
            seconds = time.perf_counter() - start
            cpu = redis_cpu_s(client) - cpu
            run.checks["rq_failed_jobs"] = run.checks.get("rq_failed_jobs", 0) + int(
                client.zcard(failed_key)
            )
        finally:
            workers.stop(timeout=15)
            _clear_queue(client, JOBS_QUEUE)
    return done, seconds, cpu


def measure_rq_process(run: Run) -> None:
    """Jobs done per second: forking Worker, SimpleWorker, several processes;
    and Redis's CPU time per job with one SimpleWorker."""
    s = run.settings
    done, seconds, _ = process_rate(run, "fork", 1, s.fork_jobs, "f1")
    run.record("rq_process_per_s", _rate(done, seconds))
    done, seconds, _ = process_rate(run, "fork", 1, s.fork_jobs // 4, "fi", MODULE_JOB)
    run.record("rq_process_fork_import_per_s", _rate(done, seconds))
    for n in s.processes:
        done, seconds, cpu = process_rate(run, "simple", n, s.simple_jobs * n, f"s{n}")
        key = "rq_process_simple_per_s" if n == 1 else f"rq_process_simple_x{n}_per_s"
        run.record(key, _rate(done, seconds))
        if n == 1:
            run.record("redis_cpu_us_per_job", 1e6 * cpu / max(done, 1))
    run.record("os_fork_ms", fork_cost_ms(20))


def fork_cost_ms(times: int) -> float:
    """Milliseconds to fork this process, let the child exit and reap it."""
    start = time.perf_counter()
    for _ in range(times):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    return 1000 * (time.perf_counter() - start) / times


def measure_notifications(run: Run, workers: int = 2) -> None:
    """The fast path end to end: enqueue batches (pipelined), ``workers``
    SimpleWorker processes send; counted in the outbox, checked exactly once."""
    s = run.settings
    count = s.notifications
    with run.client() as client:
        q = queue(NOTIFY_QUEUE, client)
        processes = start_worker(NOTIFY_QUEUE, worker_class="simple", concurrency=workers)
        try:
            notes = bench_notifications(count)
            cpu = redis_cpu_s(client)
            start = time.perf_counter()
            deadline = start + s.max_s * 5
            chunk = fastpath.BATCH_SIZE * 10  # so that workers start before the last batch is in
            for first in range(0, count, chunk):
                fastpath.enqueue_notification_batches(q, notes[first : first + chunk], ns=NOTIFY_NS)
            sent = 0
            while time.perf_counter() < deadline:
                sent = fastpath.sent_count(client, NOTIFY_NS)
                if sent >= count:
                    break
                time.sleep(0.005)
            seconds = time.perf_counter() - start
            cpu = redis_cpu_s(client) - cpu
        finally:
            processes.stop(timeout=15)
        run.record("notifications_per_s", _rate(sent, seconds))
        run.record("redis_cpu_us_per_notification", 1e6 * cpu / max(sent, 1))
        once = fastpath.sent_ids(client, NOTIFY_NS)
        run.checks["notifications_lost"] = count - len(once)
        run.checks["notifications_duplicated"] = sum(n - 1 for n in once.values())
        _clear_queue(client, NOTIFY_QUEUE)
