"""helpers.api bounded and recovering (issue 14), and its seat-queue bound
(issue 17): one Redis connection per process, however many requests; after
a real Redis restart the service answers at once (no burst of 503s from
stale connections or the lost script cache); against a stalled Redis (every
client paused) requests end with the JSON 503 within their timeouts; with
``seat_queue_limit`` a full seat queue answers 429. Each test runs its own
private Redis (started and stopped here), and the real service process."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from helpers import api, seats
from helpers.loadgen import run_load
from helpers.programs.t9_stock import REDIS_TIMEOUT_S
from helpers.server import ServerInfo, start_server, stop_server

UNAVAILABLE = "Service unavailable"


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``GET url`` (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, _lower(reply.headers.items()), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(headers: object) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}  # type: ignore[attr-defined]


def service_clients(client: redis.Redis) -> int:
    """Connections to Redis other than ``client``'s own."""
    return len(client.client_list()) - 1


def test_redis_connections_per_process_are_bounded(private: ServerInfo) -> None:
    client = redis.Redis.from_url(private.url)
    with api.start_service(env={"REDIS_URL": private.url}) as service:
        # 200 requests at once: their commands all share the app's one
        # pipelined connection (helpers.autopipeline), none waits for another.
        result = run_load(
            f"{service.url}/reserve_product/2", connections=200, duration_s=30, max_requests=1000
        )
        assert result.requests == 1000 and result.errors == 0
        assert result.statuses == {200: 1000}
        assert result.bodies[api.CONFIRMED_BODY[2]] == 10
        used = service_clients(client)
        print(f"{used} connection(s) to Redis after 200 concurrent requests")
        assert used == 1  # no seat route ran: RQ's client never connected
    client.close()


def test_the_service_answers_at_once_after_a_redis_restart(
    private: ServerInfo, tmp_path: Path
) -> None:
    with api.start_service(env={"REDIS_URL": private.url}) as service:
        warm = run_load(f"{service.url}/reserve_product/2", connections=64, max_requests=300)
        assert warm.statuses == {200: 300}  # the shared connection is open
        stop_server(tmp_path)
        start_server(tmp_path, port=private.port)  # same port, empty: no script cached
        # The shared connection is gone: the next command opens a new one.
        first = [get(f"{service.url}/reserve_product/2") for _ in range(3)]
        assert [status for status, _, _ in first] == [200, 200, 200], first
        assert first[0][2] == api.CONFIRMED_BODY[2]  # the script loaded again (NOSCRIPT)
        after = run_load(f"{service.url}/list_products/1", connections=64, max_requests=500)
        assert after.errors == 0 and after.statuses == {200: 500}, after.statuses
    assert "Traceback" not in service.output()


def test_a_stalled_redis_answers_json_503_within_the_timeouts(private: ServerInfo) -> None:
    stall_s = 2 * REDIS_TIMEOUT_S + 1.5  # longer than any request may wait
    bound_s = REDIS_TIMEOUT_S + 1  # a reply, or the 503
    with api.start_service(env={"REDIS_URL": private.url}) as service:
        pauser = redis.Redis.from_url(private.url)
        pause = threading.Timer(0.5, pauser.client_pause, args=[int(stall_s * 1000)])
        pause.start()  # every other client's commands wait, as behind DEBUG SLEEP
        try:
            result = run_load(
                f"{service.url}/list_products/1", connections=64, duration_s=stall_s - 1
            )
        finally:
            pause.join()
            pauser.client_unpause()
            pauser.close()
        unavailable = {
            body: n
            for body, n in result.bodies.items()
            if json.loads(body).get("status") == UNAVAILABLE
        }
        print(
            f"{result.requests} requests, statuses {dict(result.statuses)}, "
            f"slowest {max(result.latencies_s):.2f} s (bound {bound_s:g} s)"
        )
        assert result.errors == 0  # every request had an answer: none hung
        assert result.statuses.get(503, 0) >= 64  # each connection met the stall
        assert sum(unavailable.values()) == result.statuses[503]  # each 503 the JSON one
        assert set(result.statuses) <= {200, 503}
        assert max(result.latencies_s) < bound_s
        # And once Redis answers again, so does the service.
        assert get(f"{service.url}/list_products/1")[0] == 200
    assert "Traceback" not in service.output()


def test_a_full_seat_queue_answers_429(private: ServerInfo) -> None:
    client = redis.Redis.from_url(private.url, decode_responses=True)
    with api.start_service(env={"REDIS_URL": private.url}, seat_queue_limit=3) as service:
        answers = [get(f"{service.url}/reserve_seat") for _ in range(5)]
        assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429]
        status, headers, body = answers[-1]
        assert body == b'{"status":"Too many reservations waiting"}'
        assert headers["retry-after"] == "1"
        assert headers["content-type"].startswith("application/json")
        assert client.llen(seats.QUEUE_KEY) == 3  # the refused ones queued nothing
        # The worker drains the queue: reservations are taken again.
        assert get(f"{service.url}/process")[0] == 200
        deadline = time.monotonic() + 30
        while client.llen(seats.QUEUE_KEY) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get(f"{service.url}/reserve_seat")[0] == 200
    client.close()


def test_without_a_limit_the_seat_queue_is_unbounded(private: ServerInfo) -> None:
    with api.start_service(env={"REDIS_URL": private.url}) as service:
        answers = [get(f"{service.url}/reserve_seat")[0] for _ in range(5)]
    assert answers == [200] * 5  # None: the original's behaviour


def test_the_seat_queue_limit_on_the_command_line() -> None:
    assert api.build_parser().parse_args([]).seat_queue_limit is None
    assert api.build_parser().parse_args(["--seat-queue-limit", "7"]).seat_queue_limit == 7
    with pytest.raises(SystemExit):
        api.main(["--seat-queue-limit", "-1"])
