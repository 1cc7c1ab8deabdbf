"""``python -m helpers.check``: see :mod:`helpers.check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.check import TASKS, find_task, grade


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.check",
        description="Grade a file for one of the original's tasks, in a private Redis.",
        epilog="`python -m helpers.check TASK --help` says what the file for TASK must do.",
    )
    parser.add_argument("task", nargs="?", help="the task, e.g. 7-job_processor (see --list)")
    parser.add_argument(
        "file", nargs="?", type=Path, help="the file to grade (default: the lesson's)"
    )
    parser.add_argument("--list", action="store_true", help="list the tasks")
    parser.add_argument(
        "--solution", action="store_true", help="grade the course's reference solution"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per graded file")
    parser.add_argument(
        "--all", type=Path, metavar="DIR", help="grade every task file found in DIR"
    )
    return parser


def _list() -> int:
    width = max(len(task.name) for task in TASKS)
    for task in TASKS:
        print(f"{task.name:<{width}}  lesson {task.lesson}  {task.kind:<8}  {task.summary}")
    return 0


def _all(folder: Path, as_json: bool) -> int:
    found = [
        (task, folder / f"{task.name}.py")
        for task in TASKS
        if (folder / f"{task.name}.py").is_file()
    ]
    if not found:
        print(f"no task files in {folder} (expected names like 7-job_processor.py; see --list)")
        return 1
    reports = [grade(task.name, path) for task, path in found]
    if as_json:
        for report in reports:
            print(report.to_json())
    else:
        width = max(len(task.name) for task, _ in found)
        print(f"{'task':<{width}}  score  result")
        for report in reports:
            verdict = "all passed" if report.passed else "failed: " + "; ".join(report.failed())
            print(
                f"{report.task:<{width}}  {report.met:>2}/{len(report.requirements):<2}  {verdict}"
            )
        print(f"{sum(r.passed for r in reports)}/{len(reports)} tasks passed")
    return 0 if all(r.passed for r in reports) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    named = [a for a in argv if not a.startswith("-")]
    if named and {"-h", "--help"} & set(argv):  # TASK --help: that task's contract
        try:
            print(find_task(named[0]).help())
        except KeyError as error:
            print(error.args[0], file=sys.stderr)
            return 2
        return 0
    args = build_parser().parse_args(argv)
    if args.list:
        return _list()
    if args.all:
        return _all(args.all, args.json)
    if not args.task:
        build_parser().print_usage()
        return 2
    try:
        report = grade(args.task, args.file, solution=args.solution)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    if args.json:
        print(report.to_json())
    else:
        report.print()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
