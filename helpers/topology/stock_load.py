"""A load process for the stock script on a Redis Cluster (lesson 17).

Started by :func:`helpers.topology.sharding.measure_reservations` as a
:class:`helpers.processes.BackgroundProcess`. It prints ``READY``, waits for
``--go-file`` (written once every loader is ready; it holds the
``time.time()`` at which all start together), then for each phase
reserves units of its products, round robin, with lesson 09's script
(:data:`helpers.programs.t9_stock.RESERVE_SCRIPT`): ``--batch`` reservations
per round trip to each node (one pipeline per node that holds keys, the way
a cluster client groups commands), each reservation one ``EVALSHA`` on one
key, so still atomic. It prints one line per phase::

    RESULT {"phase": 0, "reservations": 12345, "confirmed": 12345, "seconds": 1.0}

``--until-sold-out``: one phase that ends when every product is refused,
and the line counts confirmed reservations by key.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import redis
from redis.crc import key_slot

from helpers.programs.t9_stock import RESERVE_SCRIPT, RESERVE_SHA


def slot_map(port: int) -> dict[int, int]:
    """Slot -> port of the primary that holds it, from ``CLUSTER SLOTS``."""
    client = redis.Redis(port=port, socket_timeout=5)
    owners: dict[int, int] = {}
    for first, last, primary, *_ in client.execute_command("CLUSTER SLOTS", parse=False):
        for slot in range(int(first), int(last) + 1):
            owners[slot] = int(primary[1])
    client.close()
    return owners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.topology.stock_load")
    parser.add_argument("--port", type=int, required=True, help="any node of the cluster")
    parser.add_argument("--phase", action="append", default=[], help="comma-separated keys")
    parser.add_argument("--initial", type=int, default=10**9, help="stock of a missing key")
    parser.add_argument("--go-file", type=Path, required=True, help="holds the start time")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between phases")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--until-sold-out", action="store_true")
    args = parser.parse_args(argv)
    owners = slot_map(args.port)
    clients: dict[int, redis.Redis] = {}
    for port in set(owners.values()):
        clients[port] = redis.Redis(port=port, socket_timeout=10)
        clients[port].script_load(RESERVE_SCRIPT)
    print("READY", flush=True)
    deadline = time.monotonic() + 60
    while not args.go_file.exists():  # written once every loader is ready
        if time.monotonic() > deadline:
            print("no go file within 60 s", flush=True)
            return 1
        time.sleep(0.01)
    first_start = float(args.go_file.read_text())
    for number, phase in enumerate(args.phase):
        keys = phase.split(",")
        by_node: dict[int, list[str]] = {}
        for key in keys:
            by_node.setdefault(owners[key_slot(key.encode())], []).append(key)
        start_at = first_start + number * (args.seconds + args.gap)
        time.sleep(max(0.0, start_at - time.time()))
        confirmed: Counter[str] = Counter()
        reservations, sold_out = 0, set()
        start = time.perf_counter()
        deadline = start + (60.0 if args.until_sold_out else args.seconds)
        i = 0
        while time.perf_counter() < deadline:
            pipes = {port: clients[port].pipeline(transaction=False) for port in by_node}
            sent: dict[int, list[str]] = {port: [] for port in by_node}
            for port, node_keys in by_node.items():
                for _ in range(args.batch):
                    key = node_keys[i % len(node_keys)]
                    i += 1
                    pipes[port].evalsha(RESERVE_SHA, 1, key, args.initial)
                    sent[port].append(key)
            for port, pipe in pipes.items():
                for key, left in zip(sent[port], pipe.execute(), strict=True):
                    reservations += 1
                    if int(left) >= 0:
                        confirmed[key] += 1
                    else:
                        sold_out.add(key)
            if args.until_sold_out and len(sold_out) == len(keys):
                break
        seconds = time.perf_counter() - start
        line = {
            "phase": number,
            "keys": len(keys),
            "nodes": len(by_node),
            "reservations": reservations,
            "confirmed": sum(confirmed.values()),
            "seconds": seconds,
        }
        if args.until_sold_out:
            line["confirmed_by_key"] = dict(confirmed)
        print("RESULT " + json.dumps(line), flush=True)
    for client in clients.values():
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
