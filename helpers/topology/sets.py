"""The server sets of lesson 17: start them, use them, stop them.

Each function returns a started :class:`ServerSet` (a context manager that
stops every process on exit) in a fresh folder under the course data folder
(``<data>/topology/<kind>-<id>``, deleted when the set stops):

- :func:`persistent`: one primary, with no persistence, RDB snapshots, or an
  append-only file fsynced every second or at every write;
- :func:`replicated`: a primary and its replicas (asynchronous replication);
- :func:`sentinel_set`: a primary, a replica and three Sentinels that fail
  over within about two seconds (short ``down-after-milliseconds`` and
  ``failover-timeout``, for a lesson; production uses seconds to tens);
- :func:`cluster`: a Redis Cluster of three primaries (optionally a replica
  each), its 16384 hash slots split evenly, built with plain commands
  (``CLUSTER ADDSLOTS``, ``MEET``, ``REPLICATE``: no ``redis-cli``);
- :func:`shards`: independent primaries, for a queue per shard.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from helpers.polling import wait_until
from helpers.server import data_dir
from helpers.topology.nodes import HOST, RedisNode, data_server_config, free_port
from helpers.workers import SENTINEL_MASTER

MASTER_NAME = SENTINEL_MASTER  # the name Sentinels know the primary by
SLOTS = 16384
DOWN_AFTER_MS = 500  # a Sentinel thinks the primary down after this long without a reply
FAILOVER_TIMEOUT_MS = 1000
READY_TIMEOUT_S = 20.0

#: Persistence modes of :func:`persistent`, as redis-server settings.
PERSISTENCE: dict[str, list[str]] = {
    "none": ["--save", "", "--appendonly", "no"],
    # A snapshot (BGSAVE) once more than a second has passed since the last (in
    # whole seconds: one to two) and there were writes; Redis's default waits
    # minutes (``save 3600 1 300 100 60 10000``).
    "rdb": ["--save", "1", "1", "--appendonly", "no"],
    "aof-everysec": ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
    "aof-always": ["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
}


def _wait(condition: Any, what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait for a set to be ready (a server still starting answers with errors)."""
    wait_until(condition, timeout_s, f"{what} ready", interval_s=0.05, ignore=(redis.RedisError,))


@dataclass
class ServerSet:
    """Started servers (and Sentinels) in one folder; stops them all on exit."""

    kind: str
    folder: Path
    nodes: list[RedisNode]
    sentinels: list[RedisNode] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def primary(self) -> RedisNode:
        """The first data node (the primary at start)."""
        return self.nodes[0]

    def node_at(self, port: int) -> RedisNode:
        """The data node listening on ``port``."""
        return next(node for node in self.nodes if node.port == port)

    def sentinel(self, **kwargs: Any) -> Sentinel:
        """A redis-py :class:`~redis.sentinel.Sentinel` over this set's Sentinels."""
        kwargs.setdefault("socket_timeout", 1)
        kwargs.setdefault("socket_connect_timeout", 0.5)
        return Sentinel(
            [s.address for s in self.sentinels],
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            **kwargs,
        )

    def cluster_client(self, **kwargs: Any) -> RedisCluster:
        """A redis-py :class:`~redis.cluster.RedisCluster` (a cluster set only)."""
        kwargs.setdefault("socket_timeout", 5)
        return RedisCluster(startup_nodes=[ClusterNode(*n.address) for n in self.nodes], **kwargs)

    def describe(self) -> dict[str, object]:
        """Kind, folder, and each process's name, port and pid (for the CLI)."""
        return {
            "kind": self.kind,
            "folder": str(self.folder),
            "nodes": [
                {"name": n.name, "port": n.port, "pid": n.server_pid(), "running": n.running}
                for n in [*self.nodes, *self.sentinels]
            ],
            "settings": self.settings,
        }

    def stop(self) -> None:
        """Stop every process (Sentinels first, so none fails over on the way)
        and delete the folder."""
        for node in [*self.sentinels, *self.nodes]:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ServerSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _folder(kind: str, base: Path | None) -> Path:
    folder = (base or data_dir() / "topology") / f"{kind}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    return folder


def _started(server_set: ServerSet, nodes: Sequence[RedisNode]) -> None:
    """Start ``nodes``; on any failure stop what started, then re-raise."""
    try:
        for node in nodes:
            node.start()
    except BaseException:
        server_set.stop()
        raise


def _data_node(
    name: str, folder: Path, extra: Sequence[str] = (), cluster: bool = False
) -> RedisNode:
    port = free_port(cluster=cluster)
    node_folder = folder / name
    node_folder.mkdir(parents=True, exist_ok=True)
    persistence = [] if "--save" in extra else PERSISTENCE["none"]
    args = [*data_server_config(port, node_folder), *persistence, *extra]
    return RedisNode(name, port, node_folder, args)


def persistent(mode: str = "none", *, base: Path | None = None) -> ServerSet:
    """One primary with persistence ``mode``: ``none``, ``rdb``,
    ``aof-everysec`` or ``aof-always`` (:data:`PERSISTENCE`)."""
    if mode not in PERSISTENCE:
        raise ValueError(f"mode must be one of {sorted(PERSISTENCE)}, not {mode!r}")
    folder = _folder(f"persistent-{mode}", base)
    node = _data_node("primary", folder, PERSISTENCE[mode])
    server_set = ServerSet("persistent", folder, [node], settings={"persistence": mode})
    _started(server_set, [node])
    return server_set


def _replicas_up(primary: RedisNode, count: int) -> bool:
    client = primary.client(decode_responses=True)
    try:
        info = client.info("replication")
        states = [info.get(f"slave{i}", {}) for i in range(info.get("connected_slaves", 0))]
        if sum(1 for s in states if isinstance(s, dict) and s.get("state") == "online") < count:
            return False
        # "online" is not yet streaming (7.0 waits for the replica's first ACK):
        # a write that every replica confirms is.
        client.set("topology:ready", 1, ex=10)
        confirmed = client.wait(count, 200) >= count
        client.delete("topology:ready")
        return confirmed
    finally:
        client.close()


def replicated(
    replicas: int = 2, *, base: Path | None = None, extra: Sequence[str] = ()
) -> ServerSet:
    """A primary and ``replicas`` replicas, returned once every replica is in sync."""
    folder = _folder("replicated", base)
    primary = _data_node("primary", folder, extra)
    nodes = [primary]
    for i in range(replicas):
        nodes.append(
            _data_node(f"replica{i + 1}", folder, [*extra, "--replicaof", HOST, str(primary.port)])
        )
    server_set = ServerSet("replicated", folder, nodes, settings={"replicas": replicas})
    _started(server_set, nodes)
    _wait(lambda: _replicas_up(primary, replicas), "replication")
    return server_set


def _sentinel_node(name: str, folder: Path, primary: RedisNode, quorum: int) -> RedisNode:
    port = free_port()
    node_folder = folder / name
    node_folder.mkdir(parents=True)
    config = node_folder / "sentinel.conf"  # a Sentinel rewrites its config file: its own
    config.write_text(
        "\n".join(
            [
                f"port {port}",
                f"bind {HOST}",
                "daemonize no",
                f"dir {node_folder}",
                f"pidfile {node_folder / 'redis.pid'}",
                f"logfile {node_folder / 'redis.log'}",
                f"sentinel monitor {MASTER_NAME} {HOST} {primary.port} {quorum}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
                "",
            ]
        )
    )
    return RedisNode(name, port, node_folder, [str(config), "--sentinel"])


def _sentinels_ready(sentinels: Sequence[RedisNode], replicas: int) -> bool:
    for node in sentinels:
        client = node.client(decode_responses=True)
        try:
            master = client.sentinel_master(MASTER_NAME)
            if int(master.get("num-other-sentinels", 0)) < len(sentinels) - 1:
                return False
            if int(master.get("num-slaves", 0)) < replicas:
                return False
        finally:
            client.close()
    return True


def sentinel_set(
    *, replicas: int = 1, sentinels: int = 3, base: Path | None = None, extra: Sequence[str] = ()
) -> ServerSet:
    """A primary, ``replicas`` replica(s) and ``sentinels`` Sentinels (quorum:
    a majority), returned once every Sentinel knows the others and the replicas.
    ``extra``: settings for the data servers (``--min-replicas-to-write 1``...)."""
    folder = _folder("sentinel", base)
    primary = _data_node("primary", folder, extra)
    nodes = [primary] + [
        _data_node(f"replica{i + 1}", folder, [*extra, "--replicaof", HOST, str(primary.port)])
        for i in range(replicas)
    ]
    quorum = sentinels // 2 + 1
    watchers = [
        _sentinel_node(f"sentinel{i + 1}", folder, primary, quorum) for i in range(sentinels)
    ]
    server_set = ServerSet(
        "sentinel",
        folder,
        nodes,
        watchers,
        settings={
            "master_name": MASTER_NAME,
            "quorum": quorum,
            "down_after_ms": DOWN_AFTER_MS,
            "failover_timeout_ms": FAILOVER_TIMEOUT_MS,
            "extra": list(extra),
        },
    )
    _started(server_set, nodes)
    try:
        _wait(lambda: _replicas_up(primary, replicas), "replication")
        _started(server_set, watchers)
        _wait(lambda: _sentinels_ready(watchers, replicas), "Sentinels", timeout_s=30)
    except BaseException:
        server_set.stop()
        raise
    return server_set


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The 16384 slots split into ``primaries`` contiguous ranges, first to last."""
    bounds = [round(i * SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def _cluster_ok(nodes: Sequence[RedisNode]) -> bool:
    for node in nodes:
        client = node.client(decode_responses=True)
        try:
            info = client.execute_command("CLUSTER", "INFO")
            if isinstance(info, str):
                info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) < len(
                nodes
            ):
                return False
        finally:
            client.close()
    return True


def cluster(
    primaries: int = 3, *, replicas_per_primary: int = 0, base: Path | None = None
) -> ServerSet:
    """A Redis Cluster of ``primaries`` primaries (each with
    ``replicas_per_primary`` replicas), returned once every node says
    ``cluster_state:ok``. Built as ``redis-cli --cluster create`` would, with
    plain commands: ``CLUSTER ADDSLOTS`` (Redis 6.2 has no ``ADDSLOTSRANGE``),
    ``CLUSTER MEET``, then ``CLUSTER REPLICATE`` for each replica."""
    folder = _folder(f"cluster{primaries}", base)
    settings = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000"]  # fmt: skip
    heads = [
        _data_node(f"primary{i + 1}", folder, settings, cluster=True) for i in range(primaries)
    ]
    tails = [
        _data_node(f"replica{i + 1}-{j + 1}", folder, settings, cluster=True)
        for i in range(primaries)
        for j in range(replicas_per_primary)
    ]
    nodes = [*heads, *tails]
    server_set = ServerSet(
        "cluster",
        folder,
        nodes,
        settings={"primaries": primaries, "replicas_per_primary": replicas_per_primary},
    )
    _started(server_set, nodes)
    try:
        for node, (first, last) in zip(heads, slot_ranges(primaries), strict=True):
            client = node.client()
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
            client.close()
        first_client = heads[0].client()
        for node in nodes[1:]:
            first_client.execute_command("CLUSTER", "MEET", HOST, node.port)
        first_client.close()
        _wait(lambda: all(_knows(n, len(nodes)) for n in nodes), "cluster gossip")
        for i, head in enumerate(heads):
            head_id = _node_id(head)
            for tail in tails[i * replicas_per_primary : (i + 1) * replicas_per_primary]:
                _wait(lambda t=tail, h=head_id: _replicate(t, h), "CLUSTER REPLICATE")
        _wait(lambda: _cluster_ok(nodes), "cluster", timeout_s=30)
    except BaseException:
        server_set.stop()
        raise
    return server_set


def _node_id(node: RedisNode) -> str:
    client = node.client(decode_responses=True)
    try:
        return str(client.execute_command("CLUSTER", "MYID"))
    finally:
        client.close()


def _knows(node: RedisNode, count: int) -> bool:
    client = node.client(decode_responses=True)
    try:
        lines = str(client.execute_command("CLUSTER", "NODES")).splitlines()
        return len([line for line in lines if "handshake" not in line]) >= count
    finally:
        client.close()


def _replicate(node: RedisNode, primary_id: str) -> bool:
    client = node.client()
    try:
        return bool(client.execute_command("CLUSTER", "REPLICATE", primary_id))
    finally:
        client.close()


def shards(count: int = 3, *, base: Path | None = None) -> ServerSet:
    """``count`` independent primaries (no cluster): a queue per shard."""
    folder = _folder(f"shards{count}", base)
    nodes = [_data_node(f"shard{i + 1}", folder) for i in range(count)]
    server_set = ServerSet("shards", folder, nodes, settings={"shards": count})
    _started(server_set, nodes)
    return server_set


#: The server sets by the name the command line uses.
KINDS = {
    "persistent": persistent,
    "replicated": replicated,
    "sentinel": sentinel_set,
    "cluster": cluster,
    "shards": shards,
}
