"""The HTTP service (:mod:`helpers.api`) under load from :mod:`helpers.loadgen`,
measured the way the original was (see :mod:`helpers.bench.original`).

Like for like with the original's one Node process under ``wrk -t1``: one
service process, one load-generator process, every route (:data:`ROUTES`:
the original's six and the naive demonstration route), 16 and 64
connections, no warm-up. ``GET /reserve_product/2`` starts from the
product's stock of 10, so a load confirms 10 reservations and refuses the
rest, as the original's did; every answer is counted by body. Then the race
the original lost (200 requests at once on 10 units), and, as figures of
their own, the same loads with several service processes.

The service runs against a private Redis (:func:`helpers.server.throwaway_server`):
the seat routes queue thousands of jobs, which must not land in the course's
``reserve_seat`` queue.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import redis

from helpers.bench.harness import Run, _thin, redis_cpu_s

RESERVE_ITEM = 2  # the original's measured route: /reserve_product/2 (Suitcase 450, stock 10)
LIST_ITEM = 1  # and /list_products/1
RACE_REQUESTS = 200  # the original's race: 200 reservations at once of an item holding 10


@dataclass(frozen=True)
class HttpRoute:
    """A route the bench loads: its figures are ``http_<name>_per_s_<connections>``."""

    name: str
    path: str
    what: str


ROUTES: tuple[HttpRoute, ...] = (
    HttpRoute("products", "/list_products", "GET /list_products"),
    HttpRoute("list", f"/list_products/{LIST_ITEM}", f"GET /list_products/{LIST_ITEM}"),
    HttpRoute(
        "reserve",
        f"/reserve_product/{RESERVE_ITEM}",
        f"GET /reserve_product/{RESERVE_ITEM}, stock 10",
    ),
    HttpRoute(
        "naive",
        f"/reserve_product_naive/{RESERVE_ITEM}",
        f"GET /reserve_product_naive/{RESERVE_ITEM}, stock 10 (20 ms gap)",
    ),
    HttpRoute("seats", "/available_seats", "GET /available_seats"),
    HttpRoute("reserve_seat", "/reserve_seat", "GET /reserve_seat (a job queued each)"),
    HttpRoute("process", "/process", "GET /process"),
)
"""Every route, in the order loaded (``/process`` last: its worker then takes
the jobs ``/reserve_seat`` queued)."""

CONNECTIONS = (16, 64)


def http_description(key: str) -> str:
    """What an HTTP figure of this module measures (``""`` if not one)."""
    for route in ROUTES:
        for connections in CONNECTIONS:
            if key == f"http_{route.name}_per_s_{connections}":
                return f"{route.what}, {connections} conns, 1 service process"
        prefix = f"http_{route.name}_x"
        if key.startswith(prefix) and key.endswith("_per_s_64"):
            n = key.removeprefix(prefix).removesuffix("_per_s_64")
            if n.isdigit():
                return f"{route.what}, 64 conns, {n} service processes"
    return ""


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
def _service(url: str, processes: int) -> Iterator[Any]:
    from helpers import api  # noqa: PLC0415 - only this group needs it

    service = api.start_service(workers=processes, env={"REDIS_URL": url})
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


def _expected_bodies(client: redis.Redis, route: HttpRoute) -> set[bytes] | None:
    """The answers a load of ``route`` may get (None: counted, not checked here)."""
    from helpers import seats, stock  # noqa: PLC0415

    if route.name == "products":
        return {_body(list(stock.PRODUCTS))}
    if route.name == "list":
        quantity = stock.current_quantity(client, LIST_ITEM)
        return {_body({**stock.PRODUCTS[LIST_ITEM - 1], "currentQuantity": quantity})}
    if route.name == "seats":
        return {_body({"numberOfAvailableSeats": seats.get_current_available_seats(client)})}
    if route.name == "reserve_seat":  # queued, or blocked once a worker sold every seat
        return {
            _body({"status": "Reservation in process"}),
            _body({"status": "Reservation are blocked"}),
        }
    if route.name == "process":
        return {_body({"status": "Queue processing"})}
    return None


def _route_load(
    run: Run, client: redis.Redis, url: str, route: HttpRoute, connections: int, key: str
) -> dict[str, Any]:
    """One load of ``route``; records ``key`` and checks every answer."""
    from helpers import stock  # noqa: PLC0415
    from helpers.loadgen import run_load  # noqa: PLC0415

    if route.name == "naive":
        client.set(stock.item_key(RESERVE_ITEM), 10)
    expected = _expected_bodies(client, route)
    result = run_load(f"{url}{route.path}", connections=connections, duration_s=run.settings.http_s)
    run.record(key, result.requests_per_s)
    _add(run, "http_errors", result.errors)
    _add(run, "http_not_200", sum(n for status, n in result.statuses.items() if status != 200))
    load: dict[str, Any] = {"connections": connections, "requests": result.requests}
    if expected is not None:
        _add(
            run,
            "http_other_answers",
            result.requests - sum(result.bodies.get(b, 0) for b in expected),
        )
    else:  # the naive route: it oversells on purpose (lesson 09), counted here, not a check
        confirmed = _body({"status": "Reservation confirmed", "itemId": RESERVE_ITEM})
        load["confirmed_of_10"] = result.bodies.get(confirmed, 0)
    return load


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
    """The service with one process, on a private Redis: every route of
    :data:`ROUTES` at 16 and 64 connections (``/reserve_product/2`` with the
    service's, Redis's and the load generator's CPU per request at 64), the
    race; then ``/list_products/1`` and ``/reserve_product/2`` at 64 with
    ``http_workers`` processes (figures of their own; none when
    ``http_workers`` is 1)."""
    from helpers.server import throwaway_server  # noqa: PLC0415

    s = run.settings
    details: dict[str, Any] = {
        "service_processes": 1,
        "loadgen_processes": 1,
        "multi_processes": None,
        "seconds": s.http_s,
        "cpus": os.cpu_count(),
        "routes": [route.path for route in ROUTES],
        "loads": {},
    }
    run.details["http"] = details
    with (
        throwaway_server() as server,
        redis.Redis.from_url(server.url, decode_responses=True) as client,
    ):
        with _service(server.url, 1) as service:
            for route in ROUTES:
                for connections in CONNECTIONS:
                    key = f"http_{route.name}_per_s_{connections}"
                    if route.name == "reserve":
                        pid = service.pid if connections == 64 else None
                        details["loads"][key] = _reserve_load(
                            run, client, service.url, connections, key, pid=pid
                        )
                    else:
                        details["loads"][key] = _route_load(
                            run, client, service.url, route, connections, key
                        )
                if route.name == "reserve":
                    run.record("http_reserve_p99_ms_64", details["loads"][key]["p99_ms"])
                    details["race"] = _race(run, client, service.url)
        if s.http_workers > 1:
            n = s.http_workers
            with _service(server.url, n) as service:
                key = f"http_reserve_x{n}_per_s_64"
                details["loads"][key] = _reserve_load(
                    run, client, service.url, 64, key, keep_samples=False
                )
                list_route = next(route for route in ROUTES if route.name == "list")
                key = f"http_list_x{n}_per_s_64"
                details["loads"][key] = _route_load(run, client, service.url, list_route, 64, key)
            details["multi_processes"] = n
