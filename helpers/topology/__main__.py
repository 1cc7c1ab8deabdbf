"""``python -m helpers.topology``: start a server set, or run a drill.

::

    python -m helpers.topology start sentinel          # prints its ports; Ctrl+C stops it
    python -m helpers.topology start persistent --mode aof-always
    python -m helpers.topology durability [--repeats 3] [--json]
    python -m helpers.topology failover [--modes async min-replicas wait] [--json]
    python -m helpers.topology cluster [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from helpers.topology import durability, failover, sharding
from helpers.topology.sets import KINDS, PERSISTENCE


def _print(result: dict[str, object], as_json: bool, table: str) -> None:
    print(json.dumps(result, indent=2, default=str) if as_json else table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.topology",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a server set and keep it until Ctrl+C")
    start.add_argument("kind", choices=sorted(KINDS))
    start.add_argument(
        "--mode", choices=sorted(PERSISTENCE), default="none", help="persistent only"
    )
    drill = commands.add_parser("durability", help="SIGKILL while enqueuing, per persistence mode")
    drill.add_argument(
        "--modes", nargs="+", choices=durability.MODES, default=list(durability.MODES)
    )
    drill.add_argument("--load-s", type=float, default=2.2)
    over = commands.add_parser("failover", help="SIGKILL the primary behind Sentinel")
    over.add_argument("--modes", nargs="+", choices=failover.MODES, default=list(failover.MODES))
    shard = commands.add_parser("cluster", help="slots, MOVED, CROSSSLOT, stock, queue per shard")
    for sub in (drill, over, shard):
        sub.add_argument("--repeats", type=int, default=1)
        sub.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "start":
        options = {"mode": args.mode} if args.kind == "persistent" else {}
        with KINDS[args.kind](**options) as server_set:  # type: ignore[operator]
            print(json.dumps(server_set.describe()), flush=True)  # one line
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            try:
                done.wait()
            except KeyboardInterrupt:
                pass
        return 0
    if args.command == "durability":
        result = durability.run_drill(args.modes, repeats=args.repeats, load_s=args.load_s)
        _print(result, args.json, durability.format_table(result))
    elif args.command == "failover":
        result = failover.run_drill(args.modes, repeats=args.repeats)
        _print(result, args.json, failover.format_table(result))
    else:
        result = sharding.run_drill(repeats=args.repeats)
        _print(result, args.json, sharding.format_reservations(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
