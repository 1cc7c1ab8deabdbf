"""Every exercise is loadable, and its solution passes its own check.

An exercise cell (tag ``exercise``) starts with ``# %load solutions/NN-name.py``
and raises ``NotImplementedError``; the next code cell calling ``check(`` (or
``acheck(``) judges it. For each notebook with exercises, one kernel runs the
notebook top to bottom the way a learner does: each check first runs against
the exercise as given (it must say ``◻`` not attempted), then the exercise cell
is replaced by its solution file's content, as ``%load`` would do, and the
check runs again (it must say ``✓``). So a check that always passes, or that
never does, fails here. New notebooks are picked up by their tags.

The kernel runs lesson 14's benchmark smoke-sized (``COURSE_BENCH_SIZE=smoke``,
see :mod:`helpers.bench`): every figure, fewer items. No exercise reads its
figures, and nbval runs the lesson at its own size and compares its outputs.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.bench import SIZE_ENV

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
CELL_TIMEOUT_S = 600

LOAD_LINE = re.compile(r"# %load (solutions/(?P<name>[0-9]{2}-[\w-]+)\.py)")
CHECK_CALL = re.compile(r"\ba?check\(")


@dataclass
class Exercise:
    """One exercise cell, its solution file and the cell that checks it."""

    notebook: Path
    cell: int
    name: str | None  # None: the first line is not a well-formed %load line
    check_cell: int | None

    @property
    def solution(self) -> Path:
        return SOLUTIONS / f"{self.name}.py"

    def __str__(self) -> str:
        return f"{self.notebook.name} cell {self.cell} ({self.name})"


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _is_check_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and bool(CHECK_CALL.search(cell.source))


@functools.cache
def _notebook(path: Path) -> nbformat.NotebookNode:
    """``path`` as read once by this process (not to be changed: see :func:`_learner_run`)."""
    return nbformat.read(path, as_version=4)


@functools.cache
def exercises_of(path: Path) -> list[Exercise]:
    """The exercise cells of one notebook, in order."""
    nb = _notebook(path)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "exercise" not in _tags(cell):
            continue
        first = cell.source.splitlines()[0] if cell.source else ""
        match = LOAD_LINE.fullmatch(first.strip())
        following = [i for i in range(index + 1, len(nb.cells)) if nb.cells[i].cell_type == "code"]
        check_cell = following[0] if following and _is_check_cell(nb.cells[following[0]]) else None
        found.append(Exercise(path, index, match["name"] if match else None, check_cell))
    return found


@functools.cache
def notebooks_with_exercises() -> list[Path]:
    return [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if exercises_of(p)]


ALL_EXERCISES = [ex for path in notebooks_with_exercises() for ex in exercises_of(path)]


def _defined_names(source: str) -> set[str]:
    tree = ast.parse(source)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


# ---------------------------------------------------------------- static checks


def test_exercises_are_found() -> None:
    assert ALL_EXERCISES, "no cell tagged `exercise` in notebooks/: the discovery is broken"


@pytest.mark.parametrize("exercise", ALL_EXERCISES, ids=str)
def test_exercise_cell_follows_the_convention(exercise: Exercise) -> None:
    nb = _notebook(exercise.notebook)
    source = nb.cells[exercise.cell].source
    assert exercise.name, f"{exercise}: the first line must be `# %load solutions/NN-name.py`"
    assert exercise.name.startswith(exercise.notebook.name[:3]), (
        f"{exercise}: a solution's name starts with its notebook's number"
    )
    assert exercise.solution.is_file(), f"{exercise}: {exercise.solution} does not exist"
    assert "raise NotImplementedError" in source, f"{exercise}: the exercise must start unsolved"
    solution = exercise.solution.read_text(encoding="utf-8")
    missing = _defined_names(source) - _defined_names(solution)
    assert not missing, f"{exercise}: the solution does not define {sorted(missing)}"
    assert exercise.check_cell is not None, f"{exercise}: the next code cell must call check("
    check_source = nb.cells[exercise.check_cell].source
    assert f'"{exercise.name}"' in check_source, (
        f'{exercise}: the check cell must call check("{exercise.name}", ...)'
    )


def test_every_solution_is_loaded_by_an_exercise() -> None:
    referenced = {ex.name for ex in ALL_EXERCISES}
    files = {path.stem for path in SOLUTIONS.glob("*.py")}
    assert not files - referenced, f"solutions no exercise loads: {sorted(files - referenced)}"
    names = [ex.name for ex in ALL_EXERCISES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"exercises loading the same solution: {duplicates}"


# ------------------------------------------------------------- execution checks


@dataclass
class Run:
    """What one learner-like run of a notebook printed."""

    unsolved: dict[str, nbformat.NotebookNode] = field(default_factory=dict)
    solved: dict[str, nbformat.NotebookNode] = field(default_factory=dict)
    other_checks: list[nbformat.NotebookNode] = field(default_factory=list)


def _learner_run(path: Path) -> Run:
    """Run ``path`` once: each check unsolved, then with its solution loaded."""
    nb = nbformat.read(path, as_version=4)
    by_check = {
        ex.check_cell: ex
        for ex in exercises_of(path)
        if ex.check_cell is not None and ex.name and ex.solution.is_file()
    }
    cells, roles = [], []
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        roles.append(("unsolved", by_check[index].name) if index in by_check else None)
        if index in by_check:
            exercise = by_check[index]
            solution = exercise.solution.read_text(encoding="utf-8")
            # What `%load` leaves in the cell: the magic commented out, then the file.
            loaded = nbformat.v4.new_code_cell(f"# %load solutions/{exercise.name}.py\n{solution}")
            cells.append(loaded)
            roles.append(None)
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata)))
            roles.append(("solved", exercise.name))
        elif _is_check_cell(cell):
            roles[-1] = ("other", "")
    nb.cells = cells
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
        store_widget_state=False,
        allow_errors=False,  # cells tagged raises-exception may raise, as under nbval
    )
    client.execute(env={**os.environ, SIZE_ENV: "smoke"})
    run = Run()
    for cell, role in zip(nb.cells, roles, strict=True):
        if role is None:
            continue
        kind, name = role
        if kind == "other":
            run.other_checks.append(cell)
        else:
            getattr(run, kind)[name] = cell
    return run


@pytest.fixture(scope="module", params=notebooks_with_exercises(), ids=lambda p: p.name)
def learner_run(request: pytest.FixtureRequest) -> tuple[Path, Run]:
    return request.param, _learner_run(request.param)


def _stdout_lines(cell: nbformat.NotebookNode) -> list[str]:
    text = "".join(
        out.get("text", "")
        for out in cell.outputs
        if out.output_type == "stream" and out.get("name") == "stdout"
    )
    return [line for line in text.splitlines() if line.strip()]


def _problems(cell: nbformat.NotebookNode) -> list[str]:
    """Everything in a solved check cell's output that is not a ✓ verdict."""
    problems = [f"printed {line!r}" for line in _stdout_lines(cell) if not line.startswith("✓")]
    for out in cell.outputs:
        if out.output_type == "error":
            problems.append(f"raised {out.ename}: {out.evalue}")
        elif out.output_type == "stream" and out.get("name") == "stderr":
            problems.append(f"wrote to stderr {out.text!r}")
        elif out.output_type == "execute_result":
            value = out.get("data", {}).get("text/plain", "")
            if value != "True":
                problems.append(f"returned {value}")
    if not _stdout_lines(cell):
        problems.append("printed no verdict")
    return problems


@pytest.mark.timeout(1200)
def test_solutions_pass_their_checks(learner_run: tuple[Path, Run]) -> None:
    path, run = learner_run
    failures = []
    for name, cell in run.solved.items():
        problems = _problems(cell)
        if f"✓ {name}: correct" not in _stdout_lines(cell):
            problems.append(f"no `✓ {name}: correct` line")
        failures += [f"{name}: {p}" for p in problems]
    for cell in run.other_checks:
        failures += [f"check cell {cell.source[:40]!r}: {p}" for p in _problems(cell)]
    assert run.solved, f"{path.name}: no exercise was checked"
    assert not failures, f"{path.name} with its solutions loaded:\n" + "\n".join(failures)


@pytest.mark.timeout(1200)
def test_unsolved_exercises_are_not_attempted(learner_run: tuple[Path, Run]) -> None:
    path, run = learner_run
    assert run.unsolved.keys() == run.solved.keys()
    for name, cell in run.unsolved.items():
        lines = _stdout_lines(cell)
        assert any(line.startswith(f"◻ {name}: not attempted") for line in lines), (
            f"{path.name}: the unsolved {name} printed {lines}, not `◻ {name}: not attempted`"
        )
        assert not any(line.startswith("✓") for line in lines), (
            f"{path.name}: {name} passes without a solution: {lines}"
        )
