"""The command line: ``python -m helpers.compare`` (see :mod:`helpers.compare`)."""

from __future__ import annotations

import argparse
import json
import sys

import helpers.compare
from helpers.client import require_redis
from helpers.compare.measure import IMPLEMENTATIONS, run_compare
from helpers.compare.report import format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.compare", description=helpers.compare.__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short run, under 2 minutes (with COURSE_COMPARE_SIZE=smoke: tiny loads, for tests)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs; figures are medians (1)")
    parser.add_argument("--only", nargs="+", choices=list(IMPLEMENTATIONS), help="these libraries")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    require_redis()
    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    results = run_compare(quick=args.quick, runs=args.runs, libraries=args.only, echo=echo)
    if args.json:
        print(json.dumps(results))
    else:
        print()
        print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
