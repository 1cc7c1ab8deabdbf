"""A :class:`Task`: one of the original's programs, what a file for it must
do (its contract, shown by ``--help`` and in the lesson) and the function
that grades a file for it in a :class:`~helpers.check.sandbox.Sandbox`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from helpers.check.report import Requirement
from helpers.check.sandbox import Sandbox

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
REPOSITORY = Path(__file__).resolve().parent.parent.parent
WORKSPACE_ENV = "COURSE_WORKSPACE"

Grader = Callable[[Sandbox], Iterable[Requirement]]


def workspace_dir() -> Path:
    """The folder where lessons have the learner write task files (created if
    missing): ``$COURSE_WORKSPACE``, else ``notebooks/workspace`` (ignored by
    git). Tests and the regenerate script point it at a folder of their own,
    so they never overwrite a learner's files."""
    folder = Path(os.environ.get(WORKSPACE_ENV) or REPOSITORY / "notebooks" / "workspace")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class Task:
    """One task, named as the original names its file (``7-job_processor``)."""

    name: str
    lesson: str  # the lesson that has the learner write it, e.g. "07"
    kind: str  # how it runs: "program", "worker", "function", "HTTP app"
    summary: str  # one line for --list
    contract: str  # what the file must define or do, and how it finds Redis
    grader: Grader

    @property
    def module(self) -> str:
        """The reference program's module name: ``7-job_processor`` -> ``t7_job_processor``."""
        return "t" + self.name.replace("-", "_", 1)

    @property
    def solution(self) -> Path:
        """The course's reference solution (``helpers/programs/t7_job_processor.py``)."""
        return PROGRAMS / f"{self.module}.py"

    @property
    def workspace_file(self) -> Path:
        """The file the lesson has the learner write (``notebooks/workspace/7-job_processor.py``)."""
        return workspace_dir() / f"{self.name}.py"

    def help(self) -> str:
        """The task's ``--help`` text: what it is, how it runs, its contract."""
        return (
            f"{self.name} (lesson {self.lesson}, {self.kind}): {self.summary}\n\n"
            f"{self.contract.strip()}\n\n"
            f"Default file: {self.workspace_file}\n"
            f"Reference solution: {self.solution}\n"
        )
