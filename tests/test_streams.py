"""Streams and consumer groups: commands, XAUTOCLAIM on 6.2 and 7, consumer
processes killed mid-batch, and the pub/sub vs stream loss experiment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from waiting import wait_for

from helpers.client import NOT_CONNECTED
from helpers.pubsub import KILL_SERVER, MESSAGES
from helpers.server import free_port, start_server, stop_server
from helpers.streams import (
    AutoClaim,
    Consumer,
    Entry,
    acknowledge,
    add_message,
    claim_abandoned,
    create_group,
    measure_consumer_down,
    measure_consumer_killed,
    parse_autoclaim,
    pending_by_consumer,
    pending_count,
    read_group,
    start_consumer,
)

S, G = "test:stream", "test:group"
CONNECTED = "Redis client connected to the server"


def all_handled(r) -> bool:
    group = {g["name"]: g for g in r.xinfo_groups(S)}[G]
    last = r.xrevrange(S, count=1)
    return bool(last) and group["last-delivered-id"] == last[0][0] and group["pending"] == 0


def test_group_read_ack_pending(r) -> None:
    assert create_group(r, S, G) is True
    assert create_group(r, S, G) is False  # BUSYGROUP: already there, not an error
    ids = [add_message(r, f"m{i}", S) for i in range(3)]
    got = read_group(r, "alice", stream=S, group=G, count=2)
    assert got == [Entry(ids[0], "m0"), Entry(ids[1], "m1")]
    assert pending_by_consumer(r, stream=S, group=G) == {"alice": 2}
    assert acknowledge(r, [ids[0]], stream=S, group=G) == 1
    assert acknowledge(r, [ids[0]], stream=S, group=G) == 0  # acknowledged once only
    assert read_group(r, "alice", stream=S, group=G, count=10, own_pending=True) == [
        Entry(ids[1], "m1")
    ]
    assert read_group(r, "bob", stream=S, group=G, count=10) == [Entry(ids[2], "m2")]
    assert read_group(r, "bob", stream=S, group=G, count=10, block_ms=50) == []
    assert pending_count(r, stream=S, group=G) == 2


def test_parse_autoclaim_handles_both_reply_shapes() -> None:
    # Redis 6.2: two elements; a deleted entry is nil among the entries.
    on_62 = ["0-0", [("1-0", {"message": "a"}), (None, None)]]
    assert parse_autoclaim(on_62) == AutoClaim("0-0", [Entry("1-0", "a")], [], 1)
    # Redis 7: three elements; deleted ids listed apart.
    on_7 = ["5-0", [("1-0", {"message": "a"})], ["2-0", "3-0"]]
    assert parse_autoclaim(on_7) == AutoClaim("5-0", [Entry("1-0", "a")], ["2-0", "3-0"], 0)
    raw_bytes = [b"0-0", [(b"1-0", {b"message": b"a"})], []]
    assert parse_autoclaim(raw_bytes) == AutoClaim("0-0", [Entry("1-0", "a")], [], 0)


def test_claim_takes_only_idle_entries_and_clears_deleted_ones(r) -> None:
    create_group(r, S, G)
    ids = [add_message(r, f"m{i}", S) for i in range(4)]
    read_group(r, "crashed", stream=S, group=G, count=4)
    assert claim_abandoned(r, "rescuer", 60_000, stream=S, group=G).entries == []
    r.xdel(S, ids[1])  # deleted while pending: nothing left to handle
    time.sleep(0.05)
    claim = claim_abandoned(r, "rescuer", 20, stream=S, group=G)
    assert claim.entries == [Entry(ids[0], "m0"), Entry(ids[2], "m2"), Entry(ids[3], "m3")]
    assert claim.deleted_ids == [ids[1]]  # whichever the server version
    assert pending_by_consumer(r, stream=S, group=G) == {"rescuer": 3}


def test_consumer_finishes_its_own_pending_entries_after_a_restart(r) -> None:
    create_group(r, S, G)
    for i in range(3):
        add_message(r, f"m{i}", S)
    add_message(r, KILL_SERVER, S)
    read_group(r, "alice", stream=S, group=G, count=2)  # delivered, then "alice" crashed
    seen: list[str] = []
    consumer = Consumer(r, "alice", S, G, out=seen.append, block_ms=50)
    assert consumer.run() == 4
    assert seen == ["m0", "m1", "m2", KILL_SERVER]
    assert pending_count(r, stream=S, group=G) == 0


def test_an_entry_without_a_message_is_moved_aside_not_dropped(r) -> None:
    """Another writer's entry (no ``message`` field) is neither printed nor lost:
    it goes to the dead-letter stream with where it came from, and the PEL empties."""
    create_group(r, S, G)
    add_message(r, "m0", S)
    foreign = r.xadd(S, {"text": "written by someone else"})
    add_message(r, KILL_SERVER, S)
    seen: list[str] = []
    assert Consumer(r, "alice", S, G, out=seen.append, block_ms=50).run() == 2
    assert seen == [
        "m0",
        f"entry {foreign} has no 'message' field: moved to '{S}:dead'",
        KILL_SERVER,
    ]
    assert pending_count(r, stream=S, group=G) == 0
    [(_, fields)] = r.xrange(f"{S}:dead")
    assert fields["original_id"] == foreign and fields["text"] == "written by someone else"
    assert fields["group"] == G and fields["deliveries"] == "1"


def run_cli(args: list[str], url: str | None = None, timeout: float = 30):
    env = dict(os.environ, **({"REDIS_URL": url} if url else {}))
    return subprocess.run(
        [sys.executable, "-m", "helpers.streams", *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_stream_keeps_the_notifications_for_a_consumer_started_later(r) -> None:
    publisher = run_cli(["publisher", "--stream", S])  # nobody is consuming yet
    assert publisher.returncode == 0, publisher.stderr
    assert publisher.stdout.splitlines() == [CONNECTED] + [
        f"About to send {m}" for m, _ in MESSAGES
    ]
    first = run_cli(["consumer", "--stream", S, "--group", G, "--name", "first"])
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        CONNECTED,
        "Holberton Student #1 starts course",
        "Holberton Student #2 starts course",
        KILL_SERVER,
    ]
    assert pending_count(r, stream=S, group=G) == 0  # read one at a time: #3 never taken
    later = start_consumer("later", stream=S, group=G)
    try:
        later.wait_for_output(lambda lines: "Holberton Student #3 starts course" in lines)
    finally:
        assert later.stop() == 0  # SIGTERM: graceful, exit 0
    assert later.lines() == [CONNECTED, "Holberton Student #3 starts course"]
    assert all_handled(r)


def test_killed_consumer_mid_batch_every_message_acknowledged_exactly_once(r) -> None:
    create_group(r, S, G)
    ids = [add_message(r, f"message {i}", S) for i in range(1, 31)]
    by_id = dict(zip(ids, (f"message {i}" for i in range(1, 31)), strict=True))
    # Two consumers take batches of 8 and "work" 30 ms per message; one is killed
    # at an arbitrary point, possibly between handling a message and XACK, or
    # between XACK and printing that it acknowledged.
    doomed = start_consumer("doomed", stream=S, group=G, count=8, handle_ms=30, verbose=True)
    survivor = None
    try:
        # The survivor starts once the doomed one holds a batch (it printed a
        # message of it): however slowly the doomed one started, it has work.
        doomed.wait_for_output(lambda lines: any(line in by_id.values() for line in lines))
        survivor = start_consumer(
            "survivor", stream=S, group=G, count=8, handle_ms=30, claim_idle_ms=300, verbose=True
        )
        doomed.wait_for_output(lambda lines: sum(x.startswith("acked") for x in lines) >= 3)
        doomed.kill()
        held = pending_by_consumer(r, stream=S, group=G).get("doomed", 0)
        wait_for(lambda: all_handled(r))
    finally:
        doomed.kill()
        if survivor is not None:
            survivor.stop()
    acks = Counter(
        line.split()[1]
        for p in (doomed, survivor)
        for line in p.lines()
        if line.startswith("acked")
    )
    # None lost. A kill between XACK and its "acked" line loses the line, not the
    # acknowledgement: then the one id without a line is that of the last message
    # the doomed consumer printed, and Redis holds it acknowledged (nothing pending).
    last_of_doomed = [line for line in doomed.lines() if line in by_id.values()][-1]
    unlined = set(ids) - set(acks)
    assert unlined <= {i for i, message in by_id.items() if message == last_of_doomed}, unlined
    assert max(acks.values()) == 1  # each acknowledged exactly once, by someone
    handled = Counter(
        line for p in (doomed, survivor) for line in p.lines() if line in by_id.values()
    )
    assert set(handled) == set(by_id.values())  # every message handled at least once
    assert pending_count(r, stream=S, group=G) == 0
    if held:  # the doomed consumer died holding messages: the survivor claimed them
        assert "claimed" in survivor.output()


def test_killed_while_holding_a_batch_the_rest_is_claimed(r) -> None:
    create_group(r, S, G)
    ids = [add_message(r, f"message {i}", S) for i in range(1, 11)]
    first = start_consumer("first", stream=S, group=G, count=10, hang_after=3, verbose=True)
    try:
        first.wait_for_output(lambda lines: sum(x.startswith("acked") for x in lines) == 3)
        wait_for(lambda: pending_count(r, stream=S, group=G) == 7)
        first.kill()
    finally:
        first.kill()
    assert pending_by_consumer(r, stream=S, group=G) == {"first": 7}
    second = start_consumer("second", stream=S, group=G, claim_idle_ms=200, verbose=True)
    try:
        wait_for(lambda: all_handled(r))
    finally:
        assert second.stop() == 0
    assert "claimed 7 abandoned message(s)" in second.lines()
    acked = [
        line.split()[1] for p in (first, second) for line in p.lines() if line.startswith("acked")
    ]
    assert sorted(acked) == sorted(ids) and len(acked) == len(set(acked))


def test_measured_loss_pubsub_vs_stream(r) -> None:
    said: list[str] = []
    down = measure_consumer_down(
        r, batch=5, channel="test:channel", stream="test:down", group=G, say=said.append
    )
    assert (down.sent, down.pubsub_received, down.stream_received) == (15, 10, 15)
    assert down.publish_replies == [1] * 5 + [0] * 5 + [1] * 5
    killed = measure_consumer_killed(
        r, batch=6, hang_after=2, channel="test:channel", stream="test:killed", group=G,
        claim_idle_ms=200, say=said.append,
    )  # fmt: skip
    assert (killed.sent, killed.pubsub_received, killed.stream_received) == (6, 2, 6)
    assert killed.publish_replies == [1] * 6  # delivered to the subscriber, then lost with it
    assert (down.pubsub_lost, down.stream_lost, killed.pubsub_lost, killed.stream_lost) == (
        5, 0, 4, 0,
    )  # fmt: skip
    assert "consumer-1 handled 2, got stuck, was killed; pending: {'consumer-1': 4}" in said


def test_consumer_says_so_when_redis_goes_away(tmp_path, monkeypatch) -> None:
    info = start_server(tmp_path)  # a server of its own, which we stop under it
    monkeypatch.setenv("REDIS_URL", info.url)
    consumer = start_consumer("alone")
    try:
        consumer.wait_for_output(lambda lines: CONNECTED in lines)
        stop_server(tmp_path)
        assert consumer.wait(timeout=60) == 1
    finally:
        consumer.kill()
        stop_server(tmp_path)
    lines = consumer.lines()
    assert lines[1].startswith(NOT_CONNECTED.format(error=""))
    assert lines[-1].startswith(f"REDIS_URL is set to {info.url}")
    assert "Traceback" not in consumer.output()


@pytest.mark.parametrize("role", ["publisher", "consumer"])
def test_redis_down_prints_the_original_line_and_a_fix_then_fails(role: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_cli([role], url)
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(NOT_CONNECTED.format(error=""))
    assert lines[-1].startswith(f"REDIS_URL is set to {url}")
    assert "Traceback" not in result.stderr
