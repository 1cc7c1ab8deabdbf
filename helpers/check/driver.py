"""Drivers: a new interpreter that imports the learner's file and then runs
the grader's code against it, so a grader can call the functions a task
must define, see what the import itself printed, and record what it found."""

from __future__ import annotations

from helpers.check.report import Requirement
from helpers.check.sandbox import Run, Sandbox

IMPORTED = "--- imported ---"  # what a driver prints once the file is imported
RECORD = "@@ "  # a driver's own findings (JSON after it), not the file's output


def call_driver(sandbox: Sandbox, body: str, timeout_s: float = 10.0) -> Run:
    """Import the file as ``task`` in a new interpreter, then run ``body``
    (which may use ``task``, ``client`` and ``REDIS_URL``)."""
    code = (
        "import importlib, os, redis\n"
        "REDIS_URL = os.environ['REDIS_URL']\n"
        "client = redis.Redis.from_url(REDIS_URL, decode_responses=True)\n"
        f"task = importlib.import_module({sandbox.module!r})\n"
        f"print({IMPORTED!r}, flush=True)\n" + body
    )
    return sandbox.run_python(code, timeout_s)


def after_import(run: Run) -> tuple[list[str], list[str]]:
    """What a driver printed while importing the file, and after it."""
    if IMPORTED not in run.lines:
        return run.lines, []
    at = run.lines.index(IMPORTED)
    return run.lines[:at], run.lines[at + 1 :]


def import_is_quiet(run: Run) -> Requirement:
    """Importing the file may define things, not run them (so its functions can be tested)."""
    during, _ = after_import(run)
    imported = IMPORTED in run.lines
    return Requirement(
        'importing the file runs nothing (the program runs under `if __name__ == "__main__":`)',
        imported and not during,
        "no output while importing",
        "\n".join(during) if imported else f"the import failed: {run.problem() or run.output}",
    )
