"""One bench run: every measurement group in turn, under a lock, the bench's
keys cleared before and after; and the results as a table."""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
import rq

from helpers.bench.harness import (
    FULL,
    GROUPS,
    LOCK_KEY,
    Run,
    Settings,
    clear_bench_keys,
    describe,
    quick_settings,
    redis_url_set,
)
from helpers.bench.http import http_description, measure_http
from helpers.bench.pubsub_latency import measure_pubsub
from helpers.bench.throughput import (
    measure_notifications,
    measure_ping,
    measure_raw_queue,
    measure_rq_enqueue,
    measure_rq_process,
)
from helpers.bench.tracing import measure_trace
from helpers.server import redis_url

MEASURES: dict[str, Callable[[Run], None]] = {
    "ping": measure_ping,
    "raw": measure_raw_queue,
    "enqueue": measure_rq_enqueue,
    "process": measure_rq_process,
    "notifications": measure_notifications,
    "trace": measure_trace,
    "pubsub": measure_pubsub,
    "http": measure_http,
}


def _meta(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    info = client.info("server")
    return {
        "quick": settings.quick,
        "size": settings.name,
        "redis_version": info.get("redis_version"),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
    }


def run_bench(
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    http_workers: int | None = None,
    url: str | None = None,
    echo: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Measure everything (or the groups in ``only``, see :data:`GROUPS`) and
    return the results: numeric figures at the top level, plus ``meta``,
    ``checks`` and ``samples``. ``echo`` receives progress lines (default:
    none)."""
    settings = quick_settings() if quick else FULL
    if http_workers is not None:
        settings = Settings(**{**settings.__dict__, "http_workers": http_workers})
    groups = list(only) if only else list(GROUPS)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown groups {unknown}; choose from {', '.join(GROUPS)}")
    run = Run(url or redis_url(), settings, echo or (lambda _line: None))
    started = time.perf_counter()
    with run.client() as client, redis_url_set(run.url):  # workers started use run.url too
        if not client.set(LOCK_KEY, os.getpid(), nx=True, ex=600):
            raise RuntimeError(
                f"another bench is running on this Redis ({LOCK_KEY} is set); "
                "wait for it, or delete that key if it was interrupted"
            )
        try:
            meta = _meta(client, settings)
            clear_bench_keys(client)
            timings = meta["group_s"] = {}
            for group in GROUPS:
                if group in groups:
                    group_start = time.perf_counter()
                    run.group = group
                    MEASURES[group](run)
                    timings[group] = round(time.perf_counter() - group_start, 1)
        finally:
            clear_bench_keys(client)
            client.delete(LOCK_KEY)
        meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    meta["figure_groups"] = dict(run.groups)
    return {
        **run.results,
        "meta": meta,
        "checks": run.checks,
        "samples": run.samples,
        "details": run.details,
    }


def format_table(results: dict[str, Any], groups: Sequence[str] | None = None) -> str:
    """The results as a table for people (only the figures of ``groups``, if given)."""
    meta = results.get("meta", {})
    load = " ".join(f"{x:.2f}" for x in meta.get("load_average", []))
    of_group = meta.get("figure_groups", {})
    http = results.get("details", {}).get("http")
    processes = (
        f"; HTTP: {http['service_processes']} service process"
        + (
            f" (and {http['multi_processes']} for the _x rows)"
            if http.get("multi_processes")
            else ""
        )
        if http
        else ""
    )
    lines = [
        f"Redis {meta.get('redis_version')}, {meta.get('cpus')} CPUs, load average {load} "
        f"at the start, {meta.get('size') or ('quick' if meta.get('quick') else 'full')} run in "
        f"{meta.get('elapsed_s')} s{processes}",
        f"{'figure':<38} {'value':>12}   what",
    ]
    for key, value in results.items():
        if isinstance(value, (int, float)) and (groups is None or of_group.get(key) in groups):
            what = describe(key) or http_description(key)
            lines.append(f"{key:<38} {value:>12,.2f}   {what}")
    checks = results.get("checks", {})
    if checks and groups is None:
        lines.append("checks: " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    return "\n".join(lines)
