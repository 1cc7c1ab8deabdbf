"""helpers.bench: every figure measured, positive, and the bench cleans up.

No timing assertions: speed is what the bench prints, not what tests check.
So the runs here are smoke-sized (``COURSE_BENCH_SIZE=smoke``: every figure
of a quick run, from far fewer items); lesson 14 runs a real quick one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import bench, fastpath
from helpers.bench.http import ROUTES, http_description

#: The keys the issue names: they must exist at the top level.
REQUIRED = [
    "redis_ping_per_s",
    "raw_queue_per_s",
    "rq_enqueue_per_s",
    "rq_process_per_s",
    "notifications_per_s",
    "pubsub_p50_ms",
    "pubsub_p99_ms",
    "http_reserve_per_s_16",
    "http_reserve_per_s_64",
    "http_list_per_s_16",
    "http_list_per_s_64",
    # every route of the service, the original's six and the naive one (issue 14)
    *(f"http_{route.name}_per_s_{c}" for route in ROUTES for c in (16, 64)),
    "redis_cpu_us_per_ping",
    "redis_cpu_us_per_job",
    "redis_cpu_us_per_notification",
    "http_service_cpu_us_per_request",
    "http_redis_cpu_us_per_request",
]


@pytest.fixture
def smoke_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick runs, in this process and in the ones it starts, are smoke-sized."""
    monkeypatch.setenv(bench.SIZE_ENV, "smoke")


def test_smoke_size_measures_what_a_quick_run_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same rows as a quick run (SimpleWorker processes, HTTP service processes).
    assert bench.SMOKE.quick and bench.SMOKE.processes == bench.QUICK.processes
    assert bench.SMOKE.http_workers == bench.QUICK.http_workers
    monkeypatch.delenv(bench.SIZE_ENV, raising=False)
    assert bench.quick_settings() is bench.QUICK
    monkeypatch.setenv(bench.SIZE_ENV, "smoke")
    assert bench.quick_settings() is bench.SMOKE
    monkeypatch.setenv(bench.SIZE_ENV, "tiny")
    with pytest.raises(ValueError, match="COURSE_BENCH_SIZE"):
        bench.quick_settings()


def test_cli_json_quick_measures_everything_and_cleans_up(r, smoke_size) -> None:
    # State a learner may have: the service's keys, and keys of their own.
    r.set("item.1", 3)
    r.set("available_seats", 7)
    r.delete("item.2")
    r.set("mine", "untouched")
    completed = subprocess.run(
        [sys.executable, "-m", "helpers.bench", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout)
    for key in REQUIRED:
        assert key in results, key
    figures = {k: v for k, v in results.items() if isinstance(v, (int, float))}
    assert set(REQUIRED) <= set(figures)
    assert {k for k, v in figures.items() if not v > 0} == set()
    for key in ("rq_enqueue_many_per_s", "raw_queue_pipelined_per_s", "rq_process_simple_per_s"):
        assert key in figures
    assert all(v == 0 for v in results["checks"].values()), results["checks"]
    for check in (
        "http_oversell",
        "http_race_unsold",
        "http_confirmed_not_taken",
        "notifications_lost",
        "notifications_duplicated",
    ):
        assert check in results["checks"]
    # Like for like with the original: one service process; the multi-process row apart.
    http = results["details"]["http"]
    assert http["service_processes"] == 1 and http["loadgen_processes"] == 1
    assert http["multi_processes"] == 2 and "http_reserve_x2_per_s_64" in figures
    assert "http_list_x2_per_s_64" in figures
    assert http["routes"] == [
        "/list_products",
        "/list_products/1",
        "/reserve_product/2",
        "/reserve_product_naive/2",
        "/available_seats",
        "/reserve_seat",
        "/process",
    ]
    assert "http_other_answers" in results["checks"]
    assert http["race"] == {"requests": 200, "stock": 10, "confirmed": 10}
    for connections in (16, 64):
        load = http["loads"][f"http_reserve_per_s_{connections}"]
        assert load["confirmed"] == 10 and load["refused"] == load["requests"] - 10
    rows = bench.comparison_rows(results)
    assert all(row["this_run"] is not None for row in rows)
    assert {r["what"] for r in rows if not r["like_for_like"]} >= {
        bench.COURSE_ONLY["notifications_per_s"][0]
    }
    assert results["meta"]["quick"] is True and results["meta"]["cpus"] >= 1
    assert results["meta"]["size"] == "smoke"
    assert results["samples"]["pubsub_latency_ms"]
    # Cleaned up; the service's keys restored; nothing else touched.
    assert [k for p in bench.bench_key_patterns() for k in r.scan_iter(match=p)] == []
    assert r.get(bench.LOCK_KEY) is None
    assert r.get("item.1") == "3" and r.get("available_seats") == "7"
    assert r.exists("item.2") == 0
    assert r.get("mine") == "untouched"
    assert not [m for m in r.smembers("rq:queues") if "bench:" in m]


def test_only_some_groups(r, smoke_size) -> None:
    lines: list[str] = []
    results = bench.run_bench(quick=True, only=["ping", "raw"], echo=lines.append)
    figures = {k for k, v in results.items() if isinstance(v, (int, float))}
    assert figures == {
        "redis_ping_per_s",
        "redis_ping_pipelined_per_s",
        "redis_cpu_us_per_ping",
        "redis_cpu_us_per_ping_pipelined",
        "raw_queue_per_s",
        "raw_queue_reliable_per_s",
        "raw_queue_pipelined_per_s",
    }
    assert all(results[k] > 0 for k in figures)
    assert results["checks"] == {"raw_queue_lost": 0}
    assert len(lines) == len(figures) and lines[0].split()[0] == "redis_ping_per_s"
    table = bench.format_table(results)
    assert "raw_queue_pipelined_per_s" in table and "checks: raw_queue_lost 0" in table
    ping_only = bench.format_table(results, groups=["ping"])
    assert "redis_cpu_us_per_ping" in ping_only and "raw_queue_per_s" not in ping_only
    assert results["meta"]["figure_groups"]["raw_queue_per_s"] == "raw"


def test_unknown_group_is_refused(r) -> None:
    with pytest.raises(ValueError, match="unknown groups"):
        bench.run_bench(quick=True, only=["nope"])


def test_a_second_bench_on_the_same_redis_is_refused(r) -> None:
    r.set(bench.LOCK_KEY, 1)
    with pytest.raises(RuntimeError, match="another bench is running"):
        bench.run_bench(quick=True, only=["ping"])
    assert r.get(bench.LOCK_KEY) == "1"  # not ours to delete


def test_clear_bench_keys_touches_only_the_bench(r) -> None:
    r.set("bench:x", 1)
    r.set("rq:job:bench-1", 1)
    r.set("rq:job:other-1", 1)
    r.set("benchmark", 1)
    r.sadd("rq:queues", "rq:queue:bench:jobs", "rq:queue:mine")
    r.set(bench.LOCK_KEY, 1)
    assert bench.clear_bench_keys(r) == 2
    assert sorted(r.keys("*")) == sorted(
        ["rq:job:other-1", "benchmark", "rq:queues", bench.LOCK_KEY]
    )
    assert r.smembers("rq:queues") == {"rq:queue:mine"}


def test_round_trips_count_a_transaction_once() -> None:
    trace = bench.Trace(
        {"a": ["BLMOVE", "MULTI", "HSET", "ZADD", "EXEC", "GET", "MULTI", "SET", "EXEC"]}
    )
    assert trace.round_trips("a") == 4  # BLMOVE, a pipeline, GET, a pipeline
    assert trace.commands_of(["a"]) == 5
    assert trace.count(["a", "missing"])["MULTI"] == 2


def test_percentile_and_thinning() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 51.0
    assert bench.percentile(values, 99) == 100.0
    assert bench.percentile([], 50) == 0.0
    thinned = bench._thin(values, keep=10)
    assert len(thinned) == 10 and thinned[0] == 1.0


def test_trace_counts_rq_commands_per_job(r, redis_server) -> None:
    traced = bench.trace_rq_jobs(redis_server.url, 5)
    # Each enqueue pushes the job id once; the worker dequeues each job with BLMOVE.
    assert traced["enqueue_by_command"]["RPUSH"] == 5
    assert traced["worker_by_command"]["BLMOVE"] >= 5
    assert traced["worker_commands_per_job"] > traced["enqueue_commands_per_job"] > 0
    assert traced["worker_round_trips_per_job"] < traced["worker_commands_per_job"]
    assert [k for p in bench.bench_key_patterns() for k in r.scan_iter(match=p)] == []


def test_trace_counts_the_fast_path_per_notification(r, redis_server) -> None:
    traced = bench.trace_fastpath(redis_server.url, 2 * fastpath.BATCH_SIZE)
    assert traced["by_command"]["EVALSHA"] == 2 * fastpath.BATCH_SIZE // fastpath.CHUNK_SIZE
    # Inside the script: one SET NX and one RPUSH per notification.
    assert traced["lua_commands_per_notification"] == 2.0
    assert 0 < traced["round_trips_per_notification"] < 1


def test_original_figures_name_a_figure_doing_the_same_work() -> None:
    for name, figure in bench.ORIGINAL_FIGURES.items():
        assert figure.processes.startswith("1 Node process"), name
        assert figure.how and figure.unit and figure.course_processes, name
        if figure.course_key is not None:  # a rate the bench measures, described
            what = bench.describe(figure.course_key) or http_description(figure.course_key)
            assert what, (name, figure.course_key)
    # Batches are never set against single jobs: the fast path has a row of its own.
    keys = {f.course_key for f in bench.ORIGINAL_FIGURES.values()}
    assert "notifications_per_s" not in keys and "notifications_per_s" in bench.COURSE_ONLY
    # The like-for-like HTTP rows are the one-process figures.
    assert {"http_reserve_per_s_16", "http_reserve_per_s_64"} <= keys
    assert not any(key and "_x" in key and key.startswith("http") for key in keys)
    text = bench.format_original()
    for provenance in ("2-core CI machine", "wrk -t1", "5 s", "2026-11-28", "2026-12-01"):
        assert provenance in text
    for version in ("Node 20", "Express 4", "kue 0.11", "redis client 2.8", "Redis 6.2"):
        assert version in text
    assert "7,600–10,400" in text and "~1,200" in text and " 200  of 200" in text


def test_comparison_without_a_run_says_not_measured() -> None:
    rows = bench.comparison_rows({"rq_enqueue_per_s": 500.0})
    by_what = {row["what"]: row for row in rows}
    assert by_what["jobs enqueued"]["this_run"] == 500.0
    assert by_what["jobs enqueued"]["original"] == "~5,900"
    assert all(row["this_run"] is None for row in rows if row["what"] != "jobs enqueued")
    assert "this run only" not in bench.format_comparison({"rq_enqueue_per_s": 500.0})


def test_counting_client_counts_a_pipeline_once_with_or_without_a_transaction(
    redis_server,
) -> None:
    client, writes = bench.counting_client(redis_server.url, decode_responses=True)
    try:
        client.ping()  # the connection's handshake is not counted, the PING is
        assert writes.count == 1
        for transaction in (True, False):
            before = writes.count
            with client.pipeline(transaction=transaction) as pipe:
                for i in range(10):
                    pipe.rpush("counted", i)
                pipe.execute()
            assert writes.count - before == 1, transaction
        before = writes.count
        for i in range(5):
            client.rpush("counted", i)
        assert writes.count - before == 5
        assert client.llen("counted") == 25
    finally:
        client.delete("counted")
        client.close()
        client.connection_pool.disconnect()
