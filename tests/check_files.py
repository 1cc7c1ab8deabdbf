"""Files for the checker's tests: a lesson's skeleton for a task (its workspace
cell, the one source of it) and plausible wrong versions written by a test."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers.check import Report, grade

ROOT = Path(__file__).resolve().parent.parent
WRITEFILE = re.compile(r"%%writefile \{WORKSPACE\}/(?P<task>[\w-]+)\.py")


def workspace_cells() -> dict[str, str]:
    """Every lesson's workspace cells: task name -> the skeleton the cell writes
    (the cell without its ``%%writefile`` line)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            first, _, rest = source.partition("\n")
            match = WRITEFILE.fullmatch(first.strip())
            if cell["cell_type"] == "code" and match:
                found[match["task"]] = rest
    return found


def skeleton(task: str, folder: Path) -> Path:
    """The lesson's skeleton for ``task``, written to ``folder/<task>.py``."""
    return write(folder, task, workspace_cells()[task])


def write(folder: Path, task: str, source: str) -> Path:
    """``source`` as ``folder/<task>.py`` (a wrong version, say)."""
    path = folder / f"{task}.py"
    path.write_text(source)
    return path


def graded(tmp_path: Path, task: str, source: str) -> Report:
    """``source`` graded as a file for ``task``."""
    return grade(task, write(tmp_path, task, source))


def fails_only(report: Report, *names: str) -> None:
    """``report`` fails exactly ``names`` (every other requirement passes)."""
    assert sorted(report.failed()) == sorted(names), "\n".join(report.lines())
