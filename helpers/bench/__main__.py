"""The command line: ``python -m helpers.bench`` (see :mod:`helpers.bench`)."""

from __future__ import annotations

import argparse
import json
import sys

import helpers.bench
from helpers.bench.harness import GROUPS
from helpers.bench.original import format_comparison, format_original
from helpers.bench.runner import format_table, run_bench
from helpers.client import require_redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.bench", description=helpers.bench.__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short run (under a minute; with COURSE_BENCH_SIZE=smoke, a few seconds of tiny loads)",
    )
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="measure only these groups")
    parser.add_argument(
        "--http-workers",
        type=int,
        default=None,
        help="service processes of the one multi-process HTTP row (default 2; 1: no such row);"
        " every other HTTP row runs 1 process, as the original ran 1 Node process",
    )
    parser.add_argument(
        "--original", action="store_true", help="print the original's figures and exit"
    )
    args = parser.parse_args(argv)
    if args.original:
        print(format_original())
        return 0
    require_redis()
    echo = None if args.json else print
    if echo:
        echo("Measuring (every figure is a rate per second unless named _ms or _us)...")
    results = run_bench(quick=args.quick, only=args.only, http_workers=args.http_workers, echo=echo)
    if args.json:
        print(json.dumps(results))
    else:
        print()
        print(format_table(results))
        print()
        print(format_comparison(results))
    bad = {k: v for k, v in results["checks"].items() if v}
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
