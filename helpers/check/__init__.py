"""The course's checker: grades a learner's file for one of the original's
tasks the way the original's checker did, in a real Redis, a real worker and
a real HTTP server.

    python -m helpers.check --list
    python -m helpers.check TASK [FILE] [--json]     # default FILE: the lesson's workspace file
    python -m helpers.check TASK --solution          # the course's reference solution
    python -m helpers.check TASK --help              # what the file must do
    python -m helpers.check --all DIR [--json]       # every task file found in DIR

From Python: ``grade("1-redis_op").print()``. Each task lives in
:mod:`helpers.check.tasks`; its reference solution in :mod:`helpers.programs`.
"""

from __future__ import annotations

from pathlib import Path

from helpers.check.report import Report, Requirement
from helpers.check.sandbox import Sandbox
from helpers.check.task import REPOSITORY, Task, workspace_dir
from helpers.check.tasks import TASKS

__all__ = [
    "TASKS",
    "Report",
    "Requirement",
    "Task",
    "find_task",
    "grade",
    "shown_path",
    "workspace_dir",
]


def find_task(name: str) -> Task:
    """The task called ``name`` (``7-job_processor``); ``KeyError`` naming the known ones."""
    for task in TASKS:
        if task.name == name:
            return task
    raise KeyError(f"unknown task {name!r}; known: {', '.join(t.name for t in TASKS)}")


def shown_path(file: Path) -> str:
    """How a report names ``file``: ``workspace/<name>.py`` in the workspace,
    else its path in the repository (``helpers/programs/...``), else as given."""
    resolved = Path(file).resolve()
    if resolved.parent == workspace_dir().resolve():
        return f"workspace/{resolved.name}"
    try:
        return str(resolved.relative_to(REPOSITORY))
    except ValueError:
        return str(file)


def grade(name: str, file: Path | str | None = None, *, solution: bool = False) -> Report:
    """Grade ``file`` (default: the task's workspace file; ``solution``: the
    course's reference) for task ``name``, in a sandbox of its own."""
    task = find_task(name)
    path = task.solution if solution else Path(file) if file else task.workspace_file
    report = Report(task.name, shown_path(path))
    if not path.is_file():
        report.requirements.append(
            Requirement("the file exists", False, f"a file at {path}", "no such file")
        )
        return report
    with Sandbox(path, task.module, report.file) as sandbox:
        try:
            for found in task.grader(sandbox):
                report.requirements.append(found)
        except Exception as error:  # the checker's own failure must not look like a pass
            report.requirements.append(
                Requirement(
                    "the checker could finish",
                    False,
                    "no error",
                    f"{type(error).__name__}: {error}",
                )
            )
    return report
