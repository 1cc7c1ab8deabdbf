"""The measurements, the same for every library, and one run of them all.

Each figure is measured with each library's real worker processes, on the
same Redis server, in *rounds*: a round measures one thing for every library
in turn, the order rotating from round to round, so no library always gets
the quieter (or the busier) moment. The crash drill measures no time: its
runs of the four libraries go on at once, each in its own database.

- ``enqueue_per_s``: trivial jobs enqueued one by one, no worker running.
- ``jobs_per_s``: ``{"1": ..., "2": ...}``, trivial jobs done per second by
  1 and by 2 worker processes (each one job at a time), from the first
  enqueue to the last job's ``RPUSH``, after a warm-up.
- ``latency_p50_ms``, ``latency_p99_ms``: one job at a time, from the call
  that enqueues it to the creator's ``BLPOP`` seeing the job's ``RPUSH``.
- ``round_trips_per_job``, ``commands_per_job``, ``lua_commands_per_job``:
  everything every client but the measurer's sent to the library's
  database while one worker ran a few trivial jobs, counted with
  ``MONITOR`` (a ``MULTI`` ... ``EXEC`` block is one round trip, commands
  inside Lua scripts are counted apart); the workers' idle polling in that
  time is included.
- ``drill``: for ``default`` and ``at_least_once`` settings, N jobs, one
  worker process, K times a worker killed (SIGKILL, every process of it)
  while it holds a job, before or after the job's side effect (alternately),
  then started again; ``lost``: jobs whose side effect never happened and
  that the library no longer holds; ``late``: not done within the drill's
  wait, but still held by the broker, to run after its timeout;
  ``duplicated``: side effects done more than once.
- ``notifications``: the original's eleven jobs, ``completed`` and ``failed``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import version
from typing import Any

import redis

from helpers.bench.harness import percentile
from helpers.bench.tracing import Trace
from helpers.compare import work
from helpers.compare.library import QueueLibrary
from helpers.polling import wait_until
from helpers.processes import BackgroundProcess
from helpers.server import redis_url

#: Where each library's implementation lives.
IMPLEMENTATIONS: dict[str, str] = {
    "rq": "helpers.compare.rq_queue:RQLibrary",
    "celery": "helpers.compare.celery_queue:CeleryLibrary",
    "dramatiq": "helpers.compare.dramatiq_queue:DramatiqLibrary",
    "arq": "helpers.compare.arq_queue:ArqLibrary",
}
#: After the last kill, how long each library may take to run a dead worker's
#: job again with its at-least-once settings (the drill waits this, plus slack).
RECOVERY_S: dict[str, float] = {"rq": 1.0, "celery": 5.0, "dramatiq": 3.0, "arq": 11.0}
DRILL_SLACK_S = 2.0
SETTLE_S = 0.5
MEASURER = "compare-measurer"  # the name of the measurer's own connections
SIZE_ENV = "COURSE_COMPARE_SIZE"  # "smoke": quick runs use SMOKE (the tests)


@dataclass(frozen=True)
class Size:
    """How much each measurement does; every loop also stops at ``max_s``."""

    name: str
    enqueue_jobs: int
    process_jobs: int
    latency_jobs: int
    trace_jobs: int
    drill_jobs: int
    drill_kills: int
    max_s: float


FULL = Size("full", 2_000, 2_000, 300, 50, 40, 4, 5.0)
QUICK = Size("quick", 500, 500, 100, 20, 20, 2, 2.0)
LESSON = Size("lesson", 300, 300, 40, 10, 10, 2, 1.0)  # lesson 15's own run, under a minute
SMOKE = Size("smoke", 50, 40, 15, 5, 6, 2, 0.5)


def quick_size() -> Size:
    """:data:`QUICK`, or :data:`SMOKE` with ``COURSE_COMPARE_SIZE=smoke``."""
    size = os.environ.get(SIZE_ENV, "").strip().lower()
    sizes = {"": QUICK, "quick": QUICK, "smoke": SMOKE}
    if size not in sizes:
        raise ValueError(f"{SIZE_ENV}={size!r}: expected 'smoke', 'quick' or unset")
    return sizes[size]


def library(name: str) -> QueueLibrary:
    """A new :class:`QueueLibrary` of ``name`` (its module imported on first use)."""
    module, cls = IMPLEMENTATIONS[name].split(":")
    return getattr(import_module(module), cls)()


@contextlib.contextmanager
def running(
    lib: QueueLibrary, processes: int, settings: str = work.DEFAULT
) -> Iterator[BackgroundProcess]:
    """``processes`` workers of ``lib``, warmed up (each took jobs), stopped on exit."""
    lib.clear()
    workers = lib.start_workers(processes, settings)
    try:
        warm = work.job_ids("warm", 4 * processes)
        lib.enqueue_records(warm)
        wait_until(
            lambda: lib.client.llen(work.DONE) >= len(warm),
            60,
            f"{lib.name} warm-up",
            interval_s=0.005,
        )
        time.sleep(0.3)  # stragglers of the second process
        lib.client.delete(work.DONE)
        yield workers
    finally:
        workers.stop()
        lib.clear()


def measure_enqueue(lib: QueueLibrary, size: Size) -> float:
    """Trivial jobs enqueued per second, one by one, no worker running."""
    lib.clear()
    lib.enqueue_records(work.job_ids("warm", 10))  # connections opened, code warmed up
    done, elapsed, batch = 0, 0.0, 50
    while done < size.enqueue_jobs and elapsed < size.max_s:
        ids = [f"{work.QUEUE}-enqueue-{done + i}" for i in range(batch)]
        start = time.perf_counter()
        lib.enqueue_records(ids)
        elapsed += time.perf_counter() - start
        done += batch
    lib.clear()
    return done / elapsed


def measure_jobs(lib: QueueLibrary, processes: int, size: Size) -> float:
    """Trivial jobs done per second by ``processes`` new workers, enqueue included."""
    with running(lib, processes):
        return measure_jobs_running(lib, size)


def measure_latency(lib: QueueLibrary, size: Size) -> list[float]:
    """Enqueue-to-done times (ms) of jobs enqueued one at a time (a worker runs)."""
    latencies = []
    deadline = time.perf_counter() + size.max_s * 2
    for job_id in work.job_ids("latency", size.latency_jobs):
        start = time.perf_counter()
        lib.enqueue_records([job_id])
        if lib.client.blpop([work.DONE], timeout=10) is None:
            raise TimeoutError(f"{lib.name}: {job_id} not done after 10 s")
        latencies.append((time.perf_counter() - start) * 1000)
        if time.perf_counter() > deadline:
            break
    return latencies


def trace(lib: QueueLibrary, jobs: int) -> dict[str, Any]:
    """Commands and round trips per trivial job in ``lib``'s database, with
    ``MONITOR`` (a worker runs). Counts, never times: MONITOR slows Redis."""
    db = work.DATABASES[lib.name]
    poller = redis.Redis.from_url(lib.url, client_name=MEASURER, decode_responses=True)
    marker = f"compare-trace-end-{os.getpid()}-{time.monotonic_ns()}"
    commands: dict[str, list[str]] = {}
    lua: list[str] = []
    with redis.Redis.from_url(lib.url).monitor() as monitor:
        lib.enqueue_records(work.job_ids("trace", jobs))
        wait_until(
            lambda: poller.llen(work.DONE) >= jobs, 30, f"{lib.name} traced jobs", interval_s=0.005
        )
        time.sleep(0.05)  # the worker's last bookkeeping after the job's RPUSH
        poller.echo(marker)
        ours = {c["addr"] for c in poller.client_list() if c.get("name") == MEASURER}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            entry = monitor.next_command()
            if marker in entry["command"]:
                break
            if int(entry.get("db", -1)) != db:
                continue
            name = entry["command"].split(" ")[0].upper()
            if entry.get("client_type") == "lua":
                lua.append(name)
                continue
            address = f"{entry['client_address']}:{entry['client_port']}"
            if address not in ours:
                commands.setdefault(address, []).append(name)
    poller.delete(work.DONE)
    poller.close()
    recorded = Trace(commands)
    addresses = list(commands)
    return {
        "jobs": jobs,
        "round_trips_per_job": sum(recorded.round_trips(a) for a in addresses) / jobs,
        "commands_per_job": recorded.commands_of(addresses) / jobs,
        "lua_commands_per_job": len(lua) / jobs,
        "by_command": {k: round(v / jobs, 2) for k, v in recorded.count(addresses).most_common()},
    }


def drill(
    lib: QueueLibrary,
    settings: str,
    jobs: int,
    kills: int,
    echo: Callable[[str], object] = lambda _line: None,
) -> dict[str, Any]:
    """The crash drill (see the module doc) with ``settings``; its summary."""
    lib.clear()
    ids = work.job_ids("drill", jobs)
    victims = {ids[(k + 1) * jobs // (kills + 1) - 1]: k for k in range(kills)}
    holds = {v: (work.HOLD_BEFORE if k % 2 == 0 else work.HOLD_AFTER) for v, k in victims.items()}
    lib.enqueue_drill([(job_id, holds.get(job_id, "")) for job_id in ids], settings)
    # With at-least-once settings, the drill waits as long as the library may take to
    # run a dead worker's job again; with its defaults that takes a minute or more
    # (see each library's settings): the broker's state then says what is late.
    window = DRILL_SLACK_S + (RECOVERY_S[lib.name] if settings == work.AT_LEAST_ONCE else 0.0)
    started = time.monotonic()
    hard_deadline = started + 60 + window * (kills + 2)
    kill_log: list[dict[str, Any]] = []
    recovered: list[str] = []
    workers = lib.start_workers(1, settings)
    last_change = last_recovery = time.monotonic()
    last_done, settled = -1, 0.0
    try:
        while time.monotonic() < hard_deadline:
            held = lib.client.hgetall(work.HELD)
            if held:  # the worker is holding a job: certainly mid-job
                pids = lib.kill(workers)
                lib.client.delete(work.HELD)
                job_id = next(iter(held))
                at = time.monotonic()
                kill_log.append(
                    {"job": job_id, "hold": holds.get(job_id, ""), "pids": len(pids),
                     "at_s": round(at - started, 2)}
                )  # fmt: skip
                echo(f"  {lib.name} ({settings}): killed {len(pids)} processes holding {job_id} "
                     f"({holds.get(job_id)} its side effect)")  # fmt: skip
                workers = lib.start_workers(1, settings)  # returns once it is ready
                last_change = time.monotonic()
            now = time.monotonic()
            if now - last_recovery > 1.0:  # the course's supervisor, where a library needs one
                recovered += lib.recover(settings)
                last_recovery = now
            done = len(set(lib.client.lrange(work.EFFECTS, 0, -1)))
            if done != last_done:
                last_done, last_change = done, now
            if done == jobs and len(kill_log) >= kills and not lib.pending(ids):
                # Every job done, nothing left to run again: twice, half a second
                # apart (a job can be on its way from the queue to a worker).
                settled = settled or now
                if now - settled >= SETTLE_S:
                    break
            else:
                settled = 0.0
            if now - last_change > window:
                break  # no progress for as long as the library's recovery may take
            time.sleep(0.02)
    finally:
        workers.kill()  # as it is: a graceful stop would finish (or requeue) what it holds
    effects = Counter(lib.client.lrange(work.EFFECTS, 0, -1))
    executions = {k: int(v) for k, v in lib.client.hgetall(work.EXECUTIONS).items()}
    not_done = [job_id for job_id in ids if effects[job_id] == 0]
    late = lib.pending(not_done)
    summary = {
        "jobs": jobs,
        "kills": len(kill_log),
        "done": jobs - len(not_done),
        "lost": len(not_done) - len(late),
        "late": len(late),
        "duplicated": sum(n - 1 for n in effects.values() if n > 1),
        "executions": sum(executions.values()),
        "wait_s": round(window, 1),
        "seconds": round(time.monotonic() - started, 1),
        "lost_jobs": sorted(set(not_done) - set(late), key=work.number),
        "duplicated_jobs": sorted((j for j, n in effects.items() if n > 1), key=work.number),
        "kill_log": kill_log,
        "recovered_by_course": sorted(set(recovered), key=work.number),
    }
    lib.clear()
    return summary


def _rotated(names: Sequence[str], round_number: int) -> list[str]:
    shift = round_number % len(names)
    return [*names[shift:], *names[:shift]]


def machine(client: redis.Redis, size: Size) -> dict[str, Any]:
    """Where and with what this run measured."""
    info = client.info("server")
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "redis_version": info.get("redis_version"),
        "redis_py": version("redis"),
        "size": size.name,
    }


def run_once(
    names: Sequence[str], size: Size, echo: Callable[[str], object]
) -> tuple[dict[str, dict[str, Any]], list[list[str]], list[float]]:
    """One run of every measurement for ``names``; results and each round's order."""
    libs = {name: library(name) for name in names}
    results: dict[str, dict[str, Any]] = {
        name: {"version": lib.version, "jobs_per_s": {}, "settings": lib.describe_settings}
        for name, lib in libs.items()
    }
    orders: list[list[str]] = []
    seconds: list[float] = []
    try:
        rounds = ["enqueue", "one process", "two processes"]
        for number, round_name in enumerate(rounds):
            round_start = time.perf_counter()
            order = _rotated(list(names), number)
            orders.append(order)
            echo(f"round {number + 1}, {round_name}: {', '.join(order)}")
            for name in order:
                lib, result = libs[name], results[name]
                if round_name == "enqueue":
                    result["enqueue_per_s"] = round(measure_enqueue(lib, size), 1)
                elif round_name == "one process":
                    with running(lib, 1):
                        result["jobs_per_s"]["1"] = round(measure_jobs_running(lib, size), 1)
                        latencies = measure_latency(lib, size)
                        result["latency_p50_ms"] = round(percentile(latencies, 50), 2)
                        result["latency_p99_ms"] = round(percentile(latencies, 99), 2)
                        result["latency_samples"] = len(latencies)
                        result.update(trace(lib, size.trace_jobs))
                        lines, outcome = lib.notifications()
                        result["notifications"] = {**outcome, "lines": lines}
                else:
                    result["jobs_per_s"]["2"] = round(measure_jobs(lib, 2, size), 1)
                echo(f"  {name}: {_brief(result, round_name)}")
            seconds.append(round(time.perf_counter() - round_start, 1))
        round_start = time.perf_counter()
        echo(f"round {len(rounds) + 1}, the crash drill: all at once")
        drills: dict[str, dict[str, Any]] = {name: {} for name in names}

        def drill_all(name: str) -> None:
            for settings in work.SETTINGS:
                drills[name][settings] = drill(
                    libs[name], settings, size.drill_jobs, size.drill_kills
                )

        threads = [threading.Thread(target=drill_all, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name in names:
            if set(drills[name]) != set(work.SETTINGS):
                raise RuntimeError(f"the crash drill of {name} did not finish (see its log)")
            results[name]["drill"] = drills[name]
            for settings, summary in drills[name].items():
                echo(f"  {name} ({settings}): lost {summary['lost']}, late {summary['late']}, "
                     f"duplicated {summary['duplicated']} of {summary['jobs']} jobs, "
                     f"{summary['kills']} kills")  # fmt: skip
        seconds.append(round(time.perf_counter() - round_start, 1))
    finally:
        for lib in libs.values():
            lib.close()
    return results, orders, seconds


def measure_jobs_running(lib: QueueLibrary, size: Size) -> float:
    """Trivial jobs done per second by the running workers, enqueue included:
    a short run first estimates the rate, so that the measured run lasts
    about ``size.max_s`` (a slow library would otherwise leave a backlog)."""
    estimate = _jobs_run(lib, work.job_ids("estimate", 10))
    count = max(10, min(size.process_jobs, int(estimate * size.max_s)))
    return _jobs_run(lib, work.job_ids("job", count))


def _jobs_run(lib: QueueLibrary, ids: Sequence[str]) -> float:
    start = time.perf_counter()
    lib.enqueue_records(ids)
    wait_until(
        lambda: lib.client.llen(work.DONE) >= len(ids), 60, f"{lib.name} jobs", interval_s=0.005
    )
    rate = len(ids) / (time.perf_counter() - start)
    lib.client.delete(work.DONE)
    return rate


def _brief(result: dict[str, Any], round_name: str) -> str:
    if round_name == "enqueue":
        return f"{result['enqueue_per_s']:,.0f} enqueued/s"
    if round_name == "one process":
        return (
            f"{result['jobs_per_s']['1']:,.0f} jobs/s, latency p50 {result['latency_p50_ms']:.1f} ms "
            f"p99 {result['latency_p99_ms']:.1f} ms, {result['round_trips_per_job']:.1f} round trips/job, "
            f"eleven jobs: {result['notifications']['completed']} completed, "
            f"{result['notifications']['failed']} failed"
        )
    return f"{result['jobs_per_s']['2']:,.0f} jobs/s with 2 processes"


FIGURES = ("enqueue_per_s", "latency_p50_ms", "latency_p99_ms", "round_trips_per_job")


def median_of(runs: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The first run, its figures replaced by the median over ``runs``; the
    drills' counts summed over the runs (kills too)."""
    first = {name: dict(result) for name, result in runs[0].items()}
    for name, result in first.items():
        for key in (*FIGURES, "commands_per_job", "lua_commands_per_job"):
            result[key] = round(statistics.median(r[name][key] for r in runs), 2)
        result["jobs_per_s"] = {
            p: round(statistics.median(r[name]["jobs_per_s"][p] for r in runs), 1)
            for p in result["jobs_per_s"]
        }
        if len(runs) > 1:
            result["drill"] = {
                s: {
                    **{k: sum(r[name]["drill"][s][k] for r in runs)
                       for k in ("jobs", "kills", "done", "lost", "late", "duplicated", "executions")},
                    "wait_s": result["drill"][s]["wait_s"],
                    "runs": len(runs),
                }
                for s in work.SETTINGS
            }  # fmt: skip
        result["runs"] = [{k: r[name][k] for k in (*FIGURES, "jobs_per_s")} for r in runs]
    return first


def run_compare(
    *,
    quick: bool = False,
    size: Size | None = None,
    runs: int = 1,
    libraries: Sequence[str] | None = None,
    echo: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Measure every library (``runs`` times: figures are medians) and return
    ``{"libraries": {name: {...}}, "machine": {...}}``. ``size``: how much
    (default :data:`FULL`; ``quick``: :func:`quick_size`)."""
    echo = echo or (lambda _line: None)
    size = size or (quick_size() if quick else FULL)
    names = list(libraries or IMPLEMENTATIONS)
    unknown = sorted(set(names) - set(IMPLEMENTATIONS))
    if unknown:
        raise ValueError(f"unknown libraries {unknown}; choose from {', '.join(IMPLEMENTATIONS)}")
    with redis.Redis.from_url(redis_url()) as client:
        meta = machine(client, size)
    started = time.perf_counter()
    all_runs, orders, timings = [], [], []
    for run in range(runs):
        if runs > 1:
            echo(f"run {run + 1} of {runs}")
        results, order, seconds = run_once(names, size, echo)
        all_runs.append(results)
        orders.append(order)
        timings.append(seconds)
    meta.update(
        runs=runs,
        rounds=orders,
        round_s=timings,
        load_average_after=[round(x, 2) for x in os.getloadavg()],
        elapsed_s=round(time.perf_counter() - started, 1),
        databases={name: work.DATABASES[name] for name in names},
    )
    return {"libraries": median_of(all_runs), "machine": meta}
