"""The HTTP service (:mod:`helpers.api`) under load from :mod:`helpers.loadgen`,
measured the way the original was (see :mod:`helpers.bench.original`).

Like for like with the original's one Node process under ``wrk -t1``: one
service process, one load-generator process, the same routes, the same stock,
16 and 64 connections, no warm-up. ``GET /reserve_product/2`` starts from the
product's stock of 10, so a load confirms 10 reservations and refuses the
rest, as the original's did; every answer is counted by body. Then the race
the original lost (200 requests at once on 10 units), and one labelled row
with several service processes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import psutil
import redis

from helpers.bench.harness import Run, _thin, redis_cpu_s

RESERVE_ITEM = 2  # the original's measured route: /reserve_product/2 (Suitcase 450, stock 10)
LIST_ITEM = 1  # and /list_products/1
RACE_REQUESTS = 200  # the original's race: 200 reservations at once of an item holding 10


def _saved(client: redis.Redis, keys: Sequence[str]) -> dict[str, bytes | None]:
    return {key: client.dump(key) for key in keys}


def _restore(client: redis.Redis, saved: dict[str, bytes | None]) -> None:
    for key, value in saved.items():
        if value is None:
            client.delete(key)
        else:
            client.restore(key, 0, value, replace=True)


def _body(value: Any) -> bytes:
    """JSON as Express's ``res.json()`` writes it (compact): the original's bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def _add(run: Run, check: str, count: int) -> None:
    run.checks[check] = run.checks.get(check, 0) + count


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds used by process ``pid`` and every process below it."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


@contextlib.contextmanager
def _service(run: Run, processes: int) -> Iterator[Any]:
    from helpers import api  # noqa: PLC0415 - only this group needs it

    service = api.start_service(workers=processes, env={"REDIS_URL": run.url})
    try:
        yield service
    finally:
        service.stop()


def _reserve_load(
    run: Run,
    client: redis.Redis,
    url: str,
    connections: int,
    key: str,
    *,
    pid: int | None = None,
    keep_samples: bool = True,
) -> dict[str, Any]:
    """One load of ``GET /reserve_product/2`` from a stock of 10; records ``key``
    and checks every answer. With ``pid`` (the service), also the CPU time per
    request of the service, of Redis and of this process (the load generator)."""
    from helpers import stock  # noqa: PLC0415
    from helpers.loadgen import run_load  # noqa: PLC0415

    units = stock.PRODUCTS[RESERVE_ITEM - 1]["initialAvailableQuantity"]
    item_key = stock.item_key(RESERVE_ITEM)
    confirmed_body = _body({"status": "Reservation confirmed", "itemId": RESERVE_ITEM})
    refused_body = _body({"status": "Not enough stock available", "itemId": RESERVE_ITEM})
    client.set(item_key, units)  # as the service sets it when it starts
    if pid is not None:
        own, service, server = psutil.Process().cpu_times(), _tree_cpu_s(pid), redis_cpu_s(client)
    result = run_load(
        f"{url}/reserve_product/{RESERVE_ITEM}",
        connections=connections,
        duration_s=run.settings.http_s,
    )
    if pid is not None:  # CPU seconds of each side over the load
        after = psutil.Process().cpu_times()
        cpu = {
            "service": _tree_cpu_s(pid) - service,
            "redis": redis_cpu_s(client) - server,
            "loadgen": after.user + after.system - own.user - own.system,
        }
    confirmed = result.bodies.get(confirmed_body, 0)
    refused = result.bodies.get(refused_body, 0)
    left = int(client.get(item_key))
    run.record(key, result.requests_per_s)
    if pid is not None:
        for side, seconds in cpu.items():
            run.record(f"http_{side}_cpu_us_per_request", 1e6 * seconds / max(result.requests, 1))
    _add(run, "http_errors", result.errors)
    _add(run, "http_not_200", sum(n for status, n in result.statuses.items() if status != 200))
    _add(run, "http_other_answers", result.requests - confirmed - refused)
    _add(run, "http_oversell", max(0, confirmed - units))
    _add(run, "http_stock_below_zero", int(left < 0))
    # Every unit taken from the stock was answered "confirmed", and no other.
    _add(run, "http_confirmed_not_taken", int(units - left != confirmed))
    if keep_samples:  # latencies, for plots
        run.samples[f"http_latency_ms_{connections}"] = _thin(
            [x * 1000 for x in result.latencies_s]
        )
    return {
        "connections": connections,
        "seconds": round(result.duration_s, 2),
        "requests": result.requests,
        "confirmed": confirmed,
        "refused": refused,
        "p99_ms": round(1000 * result.latency_percentile(99), 2),
    }


def _list_load(run: Run, client: redis.Redis, url: str, connections: int) -> dict[str, Any]:
    from helpers import stock  # noqa: PLC0415
    from helpers.loadgen import run_load  # noqa: PLC0415

    expected = _body(
        {
            **stock.PRODUCTS[LIST_ITEM - 1],
            "currentQuantity": stock.current_quantity(client, LIST_ITEM),
        }
    )
    result = run_load(
        f"{url}/list_products/{LIST_ITEM}", connections=connections, duration_s=run.settings.http_s
    )
    run.record(f"http_list_per_s_{connections}", result.requests_per_s)
    _add(run, "http_errors", result.errors)
    _add(run, "http_not_200", sum(n for status, n in result.statuses.items() if status != 200))
    _add(run, "http_other_answers", result.requests - result.bodies.get(expected, 0))
    return {"connections": connections, "requests": result.requests}


def _race(run: Run, client: redis.Redis, url: str) -> dict[str, Any]:
    """The original's race: 200 reservations at once of an item holding 10."""
    from helpers import stock  # noqa: PLC0415
    from helpers.loadgen import run_load  # noqa: PLC0415

    units = stock.PRODUCTS[RESERVE_ITEM - 1]["initialAvailableQuantity"]
    client.set(stock.item_key(RESERVE_ITEM), units)
    race = run_load(
        f"{url}/reserve_product/{RESERVE_ITEM}",
        connections=RACE_REQUESTS,
        duration_s=run.settings.max_s * 5,
        max_requests=RACE_REQUESTS,
    )
    confirmed = race.bodies.get(
        _body({"status": "Reservation confirmed", "itemId": RESERVE_ITEM}), 0
    )
    _add(run, "http_errors", race.errors)
    _add(run, "http_oversell", max(0, confirmed - units))
    _add(run, "http_race_unsold", max(0, units - confirmed))
    _add(run, "http_stock_below_zero", int(int(client.get(stock.item_key(RESERVE_ITEM))) < 0))
    return {"requests": race.requests, "stock": units, "confirmed": confirmed}


def measure_http(run: Run) -> None:
    """The service with one process: ``/reserve_product/2`` and
    ``/list_products/1`` at 16 and 64 connections, CPU time per request, the
    race; then ``/reserve_product/2`` at 64 with ``http_workers`` processes
    (a labelled row of its own; none when ``http_workers`` is 1)."""
    from helpers import seats, stock  # noqa: PLC0415

    s = run.settings
    details: dict[str, Any] = {
        "service_processes": 1,
        "loadgen_processes": 1,
        "multi_processes": None,
        "seconds": s.http_s,
        "cpus": os.cpu_count(),
        "loads": {},
    }
    run.details["http"] = details
    with run.client() as client:
        saved = _saved(client, [*stock.stock_keys(), seats.SEATS_KEY, seats.ENABLED_KEY])
        try:
            with _service(run, 1) as service:
                for connections in (16, 64):
                    key = f"http_reserve_per_s_{connections}"
                    pid = service.pid if connections == 64 else None
                    details["loads"][key] = _reserve_load(
                        run, client, service.url, connections, key, pid=pid
                    )
                run.record("http_reserve_p99_ms_64", details["loads"][key]["p99_ms"])
                for connections in (16, 64):
                    details["loads"][f"http_list_per_s_{connections}"] = _list_load(
                        run, client, service.url, connections
                    )
                details["race"] = _race(run, client, service.url)
            if s.http_workers > 1:
                key = f"http_reserve_x{s.http_workers}_per_s_64"
                with _service(run, s.http_workers) as service:
                    details["loads"][key] = _reserve_load(
                        run, client, service.url, 64, key, keep_samples=False
                    )
                details["multi_processes"] = s.http_workers
        finally:
            _restore(client, saved)
