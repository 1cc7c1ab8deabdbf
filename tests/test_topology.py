"""helpers.topology (lesson 17): every server set starts and stops cleanly,
stops with the process that started it, and the drills hold in small sizes:
SIGKILL loses every acknowledged enqueue without persistence and none with
AOF ``always``; behind Sentinel, the WAIT-protected path loses no
acknowledged job; the stock script on a cluster never oversells."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_for

from helpers.processes import pid_running
from helpers.topology import durability, failover, sets, sharding


def _server_pids(server_set: sets.ServerSet) -> list[int]:
    pids = [n.server_pid() for n in [*server_set.nodes, *server_set.sentinels]]
    assert all(pids), pids
    return [pid for pid in pids if pid]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("persistent", {"mode": "rdb"}),
        ("replicated", {"replicas": 1}),
        ("sentinel", {}),
        ("shards", {"count": 2}),
    ],
)
def test_each_server_set_starts_and_stops_cleanly(kind: str, options: dict[str, object]) -> None:
    server_set = sets.KINDS[kind](**options)  # type: ignore[operator]
    try:
        pids = _server_pids(server_set)
        assert all(n.client().ping() for n in [*server_set.nodes, *server_set.sentinels])
        for node in server_set.nodes:  # memory bounded, loopback only
            config = node.client(decode_responses=True).config_get("maxmemory")
            assert int(config["maxmemory"]) == 64 * 1024 * 1024
        if kind == "persistent":  # the snapshot rule took (6.2 and 7.0 parse --save apart)
            config = server_set.primary.client(decode_responses=True).config_get("save")
            assert config["save"] == "1 1"
        if server_set.sentinels:
            primary = server_set.sentinel().discover_master(sets.MASTER_NAME)
            assert primary == server_set.primary.address
        if kind == "replicated":
            server_set.primary.client().set("lesson17:replicated", "yes")
            replica = server_set.nodes[1].client()
            wait_for(lambda: replica.get("lesson17:replicated") == b"yes", timeout=5)
    finally:
        server_set.stop()
    assert not [pid for pid in pids if pid_running(pid)]
    assert not server_set.folder.exists()


@pytest.fixture(scope="module")
def cluster() -> Iterator[sets.ServerSet]:
    with sets.cluster(3) as server_set:
        yield server_set


def test_the_cluster_splits_the_slots_and_redirects(cluster: sets.ServerSet) -> None:
    slots = cluster.primary.client(decode_responses=True).execute_command("CLUSTER", "SLOTS")
    assert sorted((int(first), int(last)) for first, last, *_ in slots) == sets.slot_ranges(3)
    assert sharding.moved_reply(cluster, "item.1").startswith(
        f"MOVED {sharding.key_slot('item.1')} "
    )
    assert sharding.crossslot_reply(cluster, "item.1", "item.2").startswith("CROSSSLOT")
    assert sharding.crossslot_reply(cluster, "{cart:7}.items", "{cart:7}.total") == "OK"
    assert sharding.key_slot("{cart:7}.items") == sharding.key_slot("cart:7")
    outcome = sharding.rq_on_cluster(cluster)
    assert "same key slot" in str(outcome["dequeue"]) or "CROSSSLOT" in str(outcome["dequeue"])
    assert len(set(sharding.rq_key_slots("q", "j", "{rq}").values())) == 1


def test_the_cluster_stock_never_oversells(cluster: sets.ServerSet) -> None:
    result = sharding.sell_out(cluster, products=6, stock=15, loaders=3)
    assert result["shards"] == 3
    assert result["oversold"] == 0 and result["negative"] == 0 and result["left"] == 0
    assert result["confirmed"] == 6 * 15
    assert result["each_sold_exactly_its_stock"]


def test_a_queue_per_shard_runs_every_job_on_its_shard() -> None:
    with sets.shards(2) as shard_set:
        result = sharding.queue_per_shard(shard_set, jobs=20)
    assert sum(result["enqueued"]) == 20  # type: ignore[arg-type]
    assert result["finished"] == result["enqueued"]
    assert all(count > 0 for count in result["enqueued"])  # type: ignore[union-attr]


def test_sigkill_loses_every_enqueue_without_persistence_and_none_with_aof_always() -> None:
    none = durability.run_once("none", load_s=0.3, after_s=0.1)
    always = durability.run_once("aof-always", load_s=0.3, after_s=0.1)
    assert none.acknowledged > 0 and none.lost == none.acknowledged
    assert always.acknowledged > 0 and always.lost == 0
    assert none.after_restart > 0 and always.after_restart > 0  # the producer carried on


def test_behind_sentinel_wait_loses_no_acknowledged_job() -> None:
    result = failover.run_drill(("async", "wait"), load_s=0.5, after_s=0.5)
    summary = result["summary"]
    assert isinstance(summary, dict)
    wait, plain = summary["wait"], summary["async"]
    assert wait["acknowledged"] > 0 and wait["lost"] == 0, result["runs"]
    # The stalled replica missed what the primary acknowledged meanwhile.
    assert plain["lost"] > 0, result["runs"]
    for row in (wait, plain):
        assert 0 < row["failover_s"] < 10, result["runs"]
        assert row["acknowledged_after"] > 0, result["runs"]  # the producer carried on
        # And so did the workers: each job acknowledged after the failover finished,
        # but one a work loop gave up in the middle of (RQ's loop quit, and started again).
        abandoned = row["acknowledged_after"] - row["finished_after"]
        assert 0 <= abandoned <= row["worker_restarts"], result["runs"]
    assert result["workers_alive_at_end"], result["dead_workers"]


def test_a_server_set_stops_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    env = dict(os.environ, COURSE_DATA_DIR=str(tmp_path))
    starter = subprocess.Popen(
        [sys.executable, "-m", "helpers.topology", "start", "replicated"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert starter.stdout is not None
        text = ""
        while not text.endswith("\n"):
            line = starter.stdout.readline()
            assert line, f"the starter exited with {starter.wait()}"
            text += line
        pids = [int(node["pid"]) for node in json.loads(text)["nodes"]]
        assert len(pids) == 3 and all(pid_running(pid) for pid in pids)
        starter.kill()  # SIGKILL: no clean-up runs in the starter
        starter.wait()
        wait_for(lambda: not any(pid_running(pid) for pid in pids), timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            starter.kill()
        starter.wait()
        for pid in locals().get("pids", []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
