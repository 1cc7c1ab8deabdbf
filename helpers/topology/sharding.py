"""Redis Cluster for lesson 17: hash slots, ``MOVED``, ``CROSSSLOT``, hash tags,
lesson 09's stock script across shards, and why an RQ queue lives on one shard.

A cluster splits the key space into 16384 *hash slots*: a key's slot is
``CRC16(key) mod 16384`` (:func:`key_slot`), or, when the key holds a
``{hash tag}``, the slot of the tag alone, so ``{cart:7}.items`` and
``{cart:7}.total`` share one. Each primary holds a range of slots; a node
asked for a key of another's slot answers ``MOVED <slot> <host:port>``
(:func:`moved_reply`), and a command on keys of several slots is refused with
``CROSSSLOT`` (:func:`crossslot_reply`).

The stock script of lesson 09 touches one key per call, so it runs on the
cluster unchanged and stays atomic: each product's key lives on one primary,
which runs the script as one command (:func:`sell_out` checks it never
oversells; :func:`measure_reservations` measures reservations/s with the
products on 1, 2 and 3 shards).

An RQ queue is one list (``rq:queue:<name>``): one key, one slot, one
shard, and RQ's commands and scripts also touch the job's hash, the
registries and ``rq:queues`` together (:func:`rq_on_cluster`). A queue per
shard, on independent servers, each with its own workers, with producers
choosing the shard, is what spreads the load (:func:`queue_per_shard`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections import Counter
from collections.abc import Sequence

import redis
from redis.crc import key_slot as _crc_slot
from rq import Queue

from helpers.job_events import counter_job_id
from helpers.processes import BackgroundProcess
from helpers.server import logs_dir
from helpers.topology.jobs import record
from helpers.topology.nodes import RedisNode
from helpers.topology.sets import ServerSet
from helpers.topology.stock_load import slot_map
from helpers.workers import queue

LOAD_START_S = 0.1  # loaders start together this long after the last is ready


def key_slot(key: str) -> int:
    """The key's hash slot: CRC16 of the key (or of its ``{tag}``) mod 16384."""
    return int(_crc_slot(key.encode()))


def owner(server_set: ServerSet, key: str) -> RedisNode:
    """The primary that holds ``key``'s slot."""
    return server_set.node_at(slot_map(server_set.primary.port)[key_slot(key)])


def moved_reply(server_set: ServerSet, key: str) -> str:
    """What a node that does not hold ``key`` answers to ``GET key``."""
    holder = owner(server_set, key)
    other = next(n for n in server_set.nodes if n.port != holder.port)
    client = other.client()
    try:
        client.get(key)
    except redis.ResponseError as error:
        return f"MOVED {error}" if not str(error).startswith("MOVED") else str(error)
    finally:
        client.close()
    return "(no error)"


def crossslot_reply(server_set: ServerSet, *keys: str) -> str:
    """What the holder of the first key answers to ``MSET`` on ``keys``."""
    client = owner(server_set, keys[0]).client()
    try:
        client.execute_command("MSET", *[part for key in keys for part in (key, 1)])
    except redis.ResponseError as error:  # redis-py drops the error's code word
        return str(error) if str(error).startswith("CROSSSLOT") else f"CROSSSLOT {error}"
    finally:
        client.close()
    return "OK"


def keys_on_shards(server_set: ServerSet, shards: int, per_shard: int) -> list[str]:
    """``per_shard`` stock keys (``item.<n>``, lesson 09's names) on each of
    the first ``shards`` primaries."""
    owners = slot_map(server_set.primary.port)
    wanted = [n.port for n in server_set.nodes[:shards]]
    found: dict[int, list[str]] = {port: [] for port in wanted}
    n = 0
    while any(len(keys) < per_shard for keys in found.values()):
        n += 1
        key = f"item.{n}"
        port = owners[key_slot(key)]
        if port in found and len(found[port]) < per_shard:
            found[port].append(key)
    return [key for port in wanted for key in found[port]]


def _loaders(
    server_set: ServerSet, phases: Sequence[Sequence[str]], count: int, **options: object
) -> list[list[dict[str, object]]]:
    """Run ``count`` stock_load processes over ``phases``; their RESULT lines."""
    go_file = server_set.folder / f"go-{time.monotonic_ns()}"
    args = ["helpers.topology.stock_load", "--port", str(server_set.primary.port)]
    args += ["--go-file", str(go_file)]
    for phase in phases:
        args += ["--phase", ",".join(phase)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    stamp = int(time.time() * 1000)
    processes = [
        BackgroundProcess.start(args, log_file=logs_dir() / f"stock-load-{stamp}-{i}.log")
        for i in range(count)
    ]
    try:
        for p in processes:
            p.wait_for_lines("READY", 1, timeout=60)
        go_file.with_suffix(".tmp").write_text(f"{time.time() + LOAD_START_S:.3f}")
        go_file.with_suffix(".tmp").rename(go_file)  # whole, or not there
        for p in processes:
            p.wait(120)
    finally:
        for p in processes:
            p.stop()
    results = []
    for p in processes:
        lines = [json.loads(line[len("RESULT ") :]) for line in p.lines("RESULT ")]
        if len(lines) != len(phases):
            raise RuntimeError(f"a loader failed:\n{p.output()[-2000:]}")
        results.append(lines)
        with contextlib.suppress(OSError):
            p.log_file.unlink()  # type: ignore[union-attr]
    return results


def measure_reservations(
    server_set: ServerSet, *, loaders: int = 3, seconds: float = 1.0, per_shard: int = 4
) -> dict[str, object]:
    """Reservations/s with the products on 1, 2, then 3 shards (as many as
    the cluster has): the same ``loaders`` processes, the same work (one
    EVALSHA on one key per reservation, 50 per round trip), one phase each."""
    shard_counts = list(range(1, len(server_set.nodes) + 1))
    phases = [keys_on_shards(server_set, k, per_shard) for k in shard_counts]
    cluster_client = server_set.cluster_client()
    for key in {key for phase in phases for key in phase}:
        cluster_client.delete(key)  # a missing key holds the initial stock: 10**9, never sold out
    cluster_client.close()
    results = _loaders(server_set, phases, loaders, seconds=seconds)
    rows = []
    for number, shards in enumerate(shard_counts):
        lines = [result[number] for result in results]
        rows.append(
            {
                "shards": shards,
                "products": len(phases[number]),
                "reservations": sum(int(line["confirmed"]) for line in lines),  # type: ignore[call-overload]
                "refused": sum(
                    int(line["reservations"]) - int(line["confirmed"])  # type: ignore[call-overload]
                    for line in lines
                ),
                "reservations_per_s": sum(
                    float(line["confirmed"]) / float(line["seconds"])  # type: ignore[arg-type]
                    for line in lines
                ),
            }
        )
    return {"loaders": loaders, "seconds": seconds, "rows": rows}


def sell_out(
    server_set: ServerSet, *, products: int = 12, stock: int = 20, loaders: int = 3
) -> dict[str, object]:
    """``loaders`` processes reserve ``products`` products (spread over every
    shard, ``stock`` units each) until all are sold out; did any oversell?"""
    per_shard = -(-products // len(server_set.nodes))
    keys = keys_on_shards(server_set, len(server_set.nodes), per_shard)[:products]
    cluster_client = server_set.cluster_client()
    for key in keys:
        cluster_client.set(key, stock)
    results = _loaders(server_set, [keys], loaders, until_sold_out=True, batch=5)
    confirmed: Counter[str] = Counter()
    for result in results:
        confirmed.update(result[0]["confirmed_by_key"])  # type: ignore[arg-type]
    left = {key: int(cluster_client.get(key)) for key in keys}
    cluster_client.close()
    shards = {owner(server_set, key).port for key in keys}
    return {
        "products": len(keys),
        "shards": len(shards),
        "stock_each": stock,
        "loaders": loaders,
        "confirmed": sum(confirmed.values()),
        "oversold": sum(max(0, confirmed[key] - stock) for key in keys),
        "left": sum(left.values()),
        "negative": sum(1 for value in left.values() if value < 0),
        "each_sold_exactly_its_stock": all(confirmed[key] == stock for key in keys),
    }


def rq_key_slots(queue_name: str, job_id: str, prefix: str = "rq") -> dict[str, int]:
    """The slots of the keys one RQ enqueue and one dequeue touch, with RQ's
    key prefix ``prefix`` (``RQ_KEY_PREFIX``; ``{rq}`` is a hash tag)."""
    keys = [
        f"{prefix}:queue:{queue_name}",
        f"{prefix}:queue:{queue_name}:intermediate",
        f"{prefix}:job:{job_id}",
        f"{prefix}:queues",
        f"{prefix}:wip:{queue_name}",
        f"{prefix}:finished:{queue_name}",
    ]
    return {key: key_slot(key) for key in keys}


def rq_on_cluster(server_set: ServerSet, queue_name: str = "lesson17-cluster") -> dict[str, object]:
    """Try RQ on the cluster: enqueue one job, then dequeue it as a worker would."""
    client = server_set.cluster_client()
    q = queue(queue_name, client)
    outcome: dict[str, object] = {}
    try:
        job = q.enqueue(record, 1, job_id="lesson17-cluster-1")
        outcome["enqueue"] = f"returned job {job.id} (redis-py's cluster pipeline is no MULTI)"
    except (redis.RedisError, redis.exceptions.RedisClusterException) as error:
        outcome["enqueue"] = f"{type(error).__name__}: {error}"
    try:
        Queue.dequeue_any([q], timeout=None, connection=client, job_class=q.job_class)
        outcome["dequeue"] = "returned"
    except Exception as error:  # noqa: BLE001 - shown as it is
        outcome["dequeue"] = f"{type(error).__name__}: {str(error)[:160]}"
    client.close()
    return outcome


def shard_for(customer: str, shards: int) -> int:
    """The shard a producer sends ``customer``'s jobs to (stable: CRC32 mod n)."""
    return zlib.crc32(customer.encode()) % shards


def queue_per_shard(
    shard_set: ServerSet, *, jobs: int = 60, queue_name: str = "lesson17-shard"
) -> dict[str, object]:
    """A queue per shard: each job goes to its customer's shard; one burst
    worker (:mod:`helpers.workers`) per shard runs that shard's jobs."""
    nodes = shard_set.nodes
    enqueued = [0] * len(nodes)
    for n in range(jobs):
        shard = shard_for(f"customer-{n}", len(nodes))
        q = queue(queue_name, nodes[shard].client())
        q.enqueue(record, n, job_id=counter_job_id(queue_name, n), result_ttl=600)
        q.connection.close()
        enqueued[shard] += 1
    workers = [
        BackgroundProcess.start(
            ["helpers.workers", queue_name, "--burst", "--worker-class", "simple"],
            log_file=logs_dir() / f"{queue_name}-{node.name}.log",
            env=dict(os.environ, REDIS_URL=node.url),
        )
        for node in nodes
    ]
    for worker in workers:
        worker.wait(60)
    finished = []
    for node in nodes:
        client = node.client()
        finished.append(len(queue(queue_name, client).finished_job_registry.get_job_ids()))
        client.close()
    return {"shards": len(nodes), "enqueued": enqueued, "finished": finished}


def run_drill(*, loaders: int = 3, seconds: float = 1.0, repeats: int = 1) -> dict[str, object]:
    """The cluster part of lesson 17 on a fresh 3-primary cluster and 3
    shards: slots, ``MOVED``, ``CROSSSLOT``, hash tags, RQ on the cluster, the
    sell-out check, reservations/s on 1 to 3 shards (``repeats`` runs; the
    median per shard count), and a queue per shard."""
    from helpers.topology.sets import cluster, shards  # noqa: PLC0415 - avoid a cycle at import

    started = time.monotonic()
    with cluster(3) as server_set:
        result: dict[str, object] = {
            "slots": {
                key: key_slot(key)
                for key in ("item.1", "item.2", "{cart:7}.items", "{cart:7}.total")
            },
            "moved": moved_reply(server_set, "item.1"),
            "crossslot": crossslot_reply(server_set, "item.1", "item.2"),
            "hash_tag_mset": crossslot_reply(server_set, "{cart:7}.items", "{cart:7}.total"),
            "rq_on_cluster": rq_on_cluster(server_set),
            "rq_slots": len(set(rq_key_slots("q", "j").values())),
            "rq_slots_with_tag_prefix": len(set(rq_key_slots("q", "j", "{rq}").values())),
            "sell_out": sell_out(server_set, loaders=loaders),
        }
        runs = [
            measure_reservations(server_set, loaders=loaders, seconds=seconds)
            for _ in range(repeats)
        ]
    rows = []
    for i, row in enumerate(runs[0]["rows"]):  # type: ignore[index]
        rates = sorted(run["rows"][i]["reservations_per_s"] for run in runs)  # type: ignore[index]
        rows.append({**row, "reservations_per_s": rates[len(rates) // 2], "runs": rates})
    result["reservations"] = {**runs[0], "rows": rows, "repeats": repeats}
    with shards(3) as shard_set:
        result["queue_per_shard"] = queue_per_shard(shard_set)
    result["seconds"] = time.monotonic() - started
    return result


def format_reservations(result: dict[str, object]) -> str:
    """The reservations/s rows as a table."""
    table = result["reservations"]
    assert isinstance(table, dict)
    lines = [f"{'shards':>6}{'products':>10}{'reservations/s':>16}"]
    for row in table["rows"]:
        lines.append(f"{row['shards']:>6}{row['products']:>10}{row['reservations_per_s']:>16,.0f}")
    lines.append(
        f"({table['loaders']} load processes, {table['seconds']:g} s per shard count, "
        f"median of {table['repeats']}; 50 EVALSHA per round trip)"
    )
    return "\n".join(lines)
