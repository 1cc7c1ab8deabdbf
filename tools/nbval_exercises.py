"""A pytest plugin (loaded by the root ``conftest.py``): under nbval, every
exercise of a lesson is also checked with its solution loaded, in the same
kernel and the same run that checks the lesson's stored outputs.

An exercise cell (tag ``exercise``) starts with ``# %load solutions/NN-name.py``
and raises ``NotImplementedError``; the next code cell calls ``check("NN-name",
...)`` (or ``acheck``) from :mod:`helpers.exercises` and stores its verdict for
the exercise as given: ``◻ NN-name: not attempted`` (``tests/test_exercises.py``
checks that every stored verdict says so, and nbval that a fresh run prints it
again). Right after that check cell this plugin adds two items to the
notebook's nbval items:

- ``Cell N solution: NN-name``: what ``%load`` leaves in the exercise cell
  (the magic commented out, then the solution file), run in the lesson's
  kernel; it must not raise;
- ``Cell N solved: NN-name``: the check cell again, whose output must be
  exactly ``✓ NN-name: correct`` (compared as nbval compares any stored output:
  a ``✗``, a traceback, anything on stderr or a returned value fails it).

So a check that always passes, or never does, fails the test command, and a
lesson runs once for its outputs and its exercises, not twice. The lesson's
later cells then run with the solution defined, as they would for a learner who
solved it (every exercise is at the end of its lesson, before the questions).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

LOAD_LINE = re.compile(r"# %load (solutions/(?P<name>[0-9]{2}-[\w-]+)\.py)")
CHECK_CALL = re.compile(r"\ba?check\(")
EXERCISE_TAG = "exercise"


@dataclass(frozen=True)
class Exercise:
    """One exercise cell, its solution file and the cell that checks it."""

    notebook: Path
    cell: int
    name: str | None  # None: the first line is not a well-formed %load line
    check_cell: int | None

    @property
    def solution(self) -> Path:
        return self.notebook.parent / "solutions" / f"{self.name}.py"

    def __str__(self) -> str:
        return f"{self.notebook.name} cell {self.cell} ({self.name})"


def tags(cell: nbformat.NotebookNode) -> list[str]:
    """A cell's tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def is_check_cell(cell: nbformat.NotebookNode) -> bool:
    """A code cell that calls ``check(`` or ``acheck(``."""
    return cell.cell_type == "code" and bool(CHECK_CALL.search(cell.source))


def find_exercises(path: Path, nb: nbformat.NotebookNode) -> list[Exercise]:
    """The exercise cells of notebook ``nb`` (read from ``path``), in order."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or EXERCISE_TAG not in tags(cell):
            continue
        first = cell.source.splitlines()[0] if cell.source else ""
        match = LOAD_LINE.fullmatch(first.strip())
        following = [i for i in range(index + 1, len(nb.cells)) if nb.cells[i].cell_type == "code"]
        check_cell = following[0] if following and is_check_cell(nb.cells[following[0]]) else None
        found.append(Exercise(path, index, match["name"] if match else None, check_cell))
    return found


@cache
def read_notebook(path: Path) -> nbformat.NotebookNode:
    """``path`` as read once by this process (not to be changed)."""
    return nbformat.read(path, as_version=4)


def exercises_of(path: Path) -> list[Exercise]:
    """The exercise cells of the notebook at ``path``, in order."""
    return find_exercises(path, read_notebook(path))


def verdict(name: str) -> str:
    """The line a check prints for a correct answer to exercise ``name``."""
    return f"✓ {name}: correct\n"


def loaded_source(exercise: Exercise) -> str:
    """What ``%load`` leaves in the exercise cell: the magic commented out, then the file."""
    return f"# %load solutions/{exercise.name}.py\n" + exercise.solution.read_text(encoding="utf-8")


class ExerciseNotebook(IPyNbFile):
    """nbval's notebook collector, with each exercise's solved check after its check cell."""

    def collect(self) -> Iterator[pytest.Item]:
        items = super().collect()  # reads self.nb as its first step
        by_check: dict[int, Exercise] | None = None
        for item in items:
            yield item
            if by_check is None:
                exercises = find_exercises(self.path, self.nb)
                by_check = {
                    ex.check_cell: ex
                    for ex in exercises
                    if ex.check_cell is not None and ex.name and ex.solution.is_file()
                }
            index = next(i for i, cell in enumerate(self.nb.cells) if cell is item.cell)
            exercise = by_check.get(index)
            if exercise is not None:
                yield from self._solved(item, exercise)

    def _solved(self, check: IPyNbCell, exercise: Exercise) -> Iterator[IPyNbCell]:
        load = nbformat.v4.new_code_cell(loaded_source(exercise), execution_count=1)
        yield IPyNbCell.from_parent(
            self,
            name=f"Cell {check.cell_num} solution: {exercise.name}",
            cell_num=check.cell_num,
            cell=load,
            options=defaultdict(bool, check=False),  # any output; an exception fails it
        )
        again = nbformat.v4.new_code_cell(check.cell.source, execution_count=1)
        again.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=verdict(exercise.name))
        ]
        yield IPyNbCell.from_parent(
            self,
            name=f"Cell {check.cell_num} solved: {exercise.name}",
            cell_num=check.cell_num,
            cell=again,
            options=defaultdict(bool, check=True),  # compared with the stored verdict
        )


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Iterator[None]:
    """Replace nbval's collector of each notebook with :class:`ExerciseNotebook`."""
    collectors = yield
    return [
        ExerciseNotebook.from_parent(parent, path=file_path)
        if type(collector) is IPyNbFile
        else collector
        for collector in collectors
    ]
