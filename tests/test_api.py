"""helpers.api: every route and body of the original's tasks 9 and 10, bad
ids, concurrent reservations, the seat job lines, Redis down; all against the
real service process on a free loopback port (and helpers.loadgen with it)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from rq import Worker
from waiting import wait_for

from helpers import api, seats, stock
from helpers.job_events import job_ids_key
from helpers.loadgen import check_loopback, run_load
from helpers.processes import pid_running
from helpers.server import free_port
from helpers.workers import queue

PRODUCTS_JSON = (
    '[{"itemId":1,"itemName":"Suitcase 250","price":50,"initialAvailableQuantity":4},'
    '{"itemId":2,"itemName":"Suitcase 450","price":100,"initialAvailableQuantity":10},'
    '{"itemId":3,"itemName":"Suitcase 650","price":350,"initialAvailableQuantity":2},'
    '{"itemId":4,"itemName":"Suitcase 1050","price":550,"initialAvailableQuantity":5}]'
)
NOT_FOUND = '{"status":"Product not found"}'


def get(service: api.ServiceProcess, path: str) -> tuple[int, str, str]:
    """GET ``path`` exactly as written (no normalisation); status, content type, body."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.getheader("content-type", ""), reply.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def service(redis_server) -> Iterator[api.ServiceProcess]:
    with api.start_service() as running:
        yield running


@pytest.fixture(scope="module")
def service_2_workers(redis_server) -> Iterator[api.ServiceProcess]:
    with api.start_service(workers=2) as running:
        yield running


def test_list_products_verbatim(service: api.ServiceProcess) -> None:
    status, content_type, body = get(service, "/list_products")
    assert status == 200
    assert content_type.startswith("application/json")
    assert body == PRODUCTS_JSON


def test_product_detail_and_current_quantity(service, r: redis.Redis) -> None:
    stock.reset_stock(r)
    assert get(service, "/list_products/1")[2] == (
        '{"itemId":1,"itemName":"Suitcase 250","price":50,'
        '"initialAvailableQuantity":4,"currentQuantity":4}'
    )
    get(service, "/reserve_product/1")
    detail = json.loads(get(service, "/list_products/1")[2])
    assert detail["currentQuantity"] == 3
    assert get(service, "/list_products/9")[2] == NOT_FOUND


def test_reserve_product_until_sold_out(service, r: redis.Redis) -> None:
    stock.reset_stock(r)
    bodies = [get(service, "/reserve_product/3")[2] for _ in range(4)]
    assert bodies == [
        '{"status":"Reservation confirmed","itemId":3}',
        '{"status":"Reservation confirmed","itemId":3}',
        '{"status":"Not enough stock available","itemId":3}',
        '{"status":"Not enough stock available","itemId":3}',
    ]
    assert r.get("item.3") == "0"
    assert get(service, "/reserve_product/0")[2] == NOT_FOUND


BAD_IDS = [
    "0", "5", "-1", "+1", "1.5", "1e3", "abc", "1abc", "99999999999999999999",
    "9" * 5000, "%E2%82%AC", "%D9%A1", "%EF%BC%91", "%FF", "%00", "%", "%zz", "%20",
    "1%20", "..%2F..%2Fetc%2Fpasswd", "../1", "1/..", "1/2", "%2e%2e", "", "null",
    "undefined", "1;DROP", "%7B%7D",
]  # fmt: skip


@pytest.mark.parametrize("route", ["list_products", "reserve_product", "reserve_product_naive"])
def test_malformed_ids_are_not_found_never_an_error(service, route: str) -> None:
    for bad in BAD_IDS:
        status, content_type, body = get(service, f"/{route}/{bad}")
        assert (status, body) == (200, NOT_FOUND), f"/{route}/{bad}: {status} {body}"
        assert content_type.startswith("application/json")


def test_unknown_routes_and_methods_answer_json_4xx(service) -> None:
    status, _, body = get(service, "/nope")
    assert status == 404 and json.loads(body) == {"status": "Not Found"}
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    conn.request("POST", "/reserve_product/1")
    reply = conn.getresponse()
    assert reply.status == 405 and json.loads(reply.read()) == {"status": "Method Not Allowed"}
    conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_reservations_confirm_exactly_the_stock(
    service, service_2_workers, r: redis.Redis, workers: int
) -> None:
    running = service if workers == 1 else service_2_workers
    stock.reset_stock(r)
    for product in stock.PRODUCTS:
        item_id, initial = product["itemId"], product["initialAvailableQuantity"]
        result = run_load(
            f"{running.url}/reserve_product/{item_id}",
            connections=64,
            duration_s=60,
            max_requests=300,
        )
        assert result.requests == 300 and result.errors == 0
        assert result.bodies[api.CONFIRMED_BODY[item_id]] == initial
        assert result.bodies[api.NOT_ENOUGH_BODY[item_id]] == 300 - initial
        assert r.get(f"item.{item_id}") == "0"


def test_the_naive_route_oversells(service, r: redis.Redis) -> None:
    """The original's two steps lose the race through HTTP too, every time."""
    stock.reset_stock(r)
    result = run_load(
        f"{service.url}/reserve_product_naive/1",
        connections=64,
        duration_s=60,
        max_requests=300,
    )
    confirmed = result.bodies[api.CONFIRMED_BODY[1]]
    print(f"naive route, 300 requests on 64 connections: confirmed {confirmed} of 4")
    assert confirmed > 4


def test_starting_the_service_resets_stock_and_seats(r: redis.Redis) -> None:
    r.mset({"item.1": 0, "item.2": 1, "item.3": 0, "item.4": 0})
    r.mset({"available_seats": 3, "reservationEnabled": "false"})
    with api.start_service():
        assert r.mget("item.1", "item.2", "item.3", "item.4") == ["4", "10", "2", "5"]
        assert r.mget("available_seats", "reservationEnabled") == ["50", "true"]


def test_seat_reservations_end_to_end(r: redis.Redis) -> None:
    """53 concurrent reservations for 50 seats; /process; the original's lines
    in the service's output; then blocked; jobs queued later are processed too."""
    with api.start_service(workers=2) as running:
        assert get(running, "/available_seats")[2] == '{"numberOfAvailableSeats":"50"}'
        result = run_load(
            f"{running.url}/reserve_seat", connections=16, duration_s=60, max_requests=53
        )
        assert result.bodies == {b'{"status":"Reservation in process"}': 53}
        assert get(running, "/process")[2] == '{"status":"Queue processing"}'
        lines = running.wait_for_lines("Seat reservation job", 53)
        completed = [line for line in lines if line.endswith(" completed")]
        failed = [line for line in lines if line.endswith(" failed: Not enough seats available")]
        assert len(completed) == 50 and len(failed) == 3, lines
        assert len(set(lines)) == 53  # each job's line once, printed by its creator
        # Jobs named by their number, as kue's ids were (RQ's ids are reserve_seat-<n>).
        assert sorted(int(line.split()[3]) for line in lines) == list(range(1, 54))
        with pytest.raises(TimeoutError):
            running.wait_for_lines("Seat reservation job", 54, timeout=0.5)
        assert get(running, "/available_seats")[2] == '{"numberOfAvailableSeats":"0"}'
        assert get(running, "/reserve_seat")[2] == '{"status":"Reservation are blocked"}'
        assert get(running, "/process")[2] == '{"status":"Queue processing"}'
        # Reopen with two seats: jobs queued now are processed by the same worker.
        r.mset({"available_seats": 2, "reservationEnabled": "true"})
        assert get(running, "/reserve_seat")[2] == '{"status":"Reservation in process"}'
        assert running.wait_for_lines("Seat reservation job", 54)[-1] == (
            "Seat reservation job 54 completed"
        )
        assert r.get("available_seats") == "1"
    assert "Traceback" not in running.output()


def test_a_queueing_error_answers_reservation_failed(r: redis.Redis, service) -> None:
    """The original's third answer: queueing the job failed (here the queue's
    id counter holds a string, which INCR refuses): no job, and later ones work."""
    seats.reset_seats(r)
    counter = job_ids_key(seats.QUEUE_NAME)
    r.set(counter, "not a number")
    try:
        assert get(service, "/reserve_seat")[2] == '{"status":"Reservation failed"}'
        assert seats.seat_queue().count == 0
    finally:
        r.delete(counter)
    assert get(service, "/reserve_seat")[2] == '{"status":"Reservation in process"}'
    assert seats.seat_queue().job_ids == [f"{seats.QUEUE_NAME}-1"]


def test_redis_down_answers_json_503() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with api.start_service(env={"REDIS_URL": dead}) as running:
        for path in [
            "/list_products/1",
            "/reserve_product/1",
            "/reserve_product_naive/1",
            "/available_seats",
            "/reserve_seat",
            "/process",
        ]:
            status, content_type, body = get(running, path)
            assert status == 503, (path, status, body)
            assert content_type.startswith("application/json")
            answer = json.loads(body)
            assert answer["status"] == "Service unavailable"
            assert dead in answer["error"]
        # What needs no Redis still answers.
        assert get(running, "/list_products")[2] == PRODUCTS_JSON
        assert get(running, "/reserve_product/abc")[2] == NOT_FOUND
    log = running.output()
    assert "Stock and seats not reset" in log and "Traceback" not in log


def test_command_line_defaults() -> None:
    args = api.build_parser().parse_args([])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 1245, 1)
    with pytest.raises(SystemExit):
        api.main(["--workers", "0"])


def test_loadgen_counts_and_bounds(service, r: redis.Redis) -> None:
    stock.reset_stock(r)
    result = run_load(f"{service.url}/list_products", connections=4, max_requests=40)
    assert result.requests == 40 and result.errors == 0
    assert result.statuses == {200: 40}
    assert result.bodies == {PRODUCTS_JSON.encode(): 40}
    assert result.requests_per_s > 0 and result.latency_percentile(50) > 0
    assert "40 requests" in result.summary()


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "8.8.8.8"])
def test_loadgen_refuses_anything_but_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(host)
    with pytest.raises(ValueError, match="loopback"):
        run_load(f"http://{host}:80/", connections=1, max_requests=1)
    check_loopback("127.0.0.1")
    check_loopback("::1")


def test_a_service_stops_when_the_process_that_started_it_exits(redis_server) -> None:
    """A notebook kernel that dies must not leave its service behind."""
    starter = (
        "from helpers.api import start_service\n"
        "service = start_service()\n"
        "print(service.port, flush=True)\n"
    )  # exits without stopping it
    done = subprocess.run(
        [sys.executable, "-c", starter], capture_output=True, text=True, timeout=60, check=True
    )
    port = int(done.stdout.strip())

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while answers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not answers(), "the service outlived the process that started it"


def test_the_seat_worker_stops_when_the_service_is_killed(r: redis.Redis) -> None:
    """SIGKILL leaves the service no time to stop the worker that /process
    started; the worker sees its parent gone and stops by itself."""
    running = api.start_service()
    worker_pid = 0
    try:
        assert get(running, "/process")[2] == '{"status":"Queue processing"}'
        reserve_seat = queue("reserve_seat")
        wait_for(lambda: len(Worker.all(queue=reserve_seat)) == 1)
        worker_pid = Worker.all(queue=reserve_seat)[0].pid
        os.killpg(running.pid, signal.SIGKILL)
        running.process.wait()
        wait_for(lambda: not pid_running(worker_pid))
        assert Worker.all(queue=reserve_seat) == []  # it deregistered: a graceful stop
    finally:  # do not leak either if the test failed
        for group in (running.pid, worker_pid):
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(group, signal.SIGKILL)
