"""Every exercise is loadable, starts unsolved, and its solution passes its own check.

An exercise cell (tag ``exercise``) starts with ``# %load solutions/NN-name.py``
and raises ``NotImplementedError``; the next code cell calling ``check(`` (or
``acheck(``) judges it. Running the checks is nbval's part of the test command:
``tools/nbval_exercises.py`` (loaded by the root ``conftest.py``) runs each
check as stored (``◻ not attempted``, compared by nbval) and then again with
the solution loaded (``✓ correct``, or it fails), in the lesson's own run. This
file checks the conventions and the stored verdicts, and that the plugin is
on and fails a wrong solution. New notebooks are picked up by their tags.
"""

from __future__ import annotations

import ast
import functools
import io
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

from helpers.exercises import _verdict
from tools import pytest_quick_imports as quick_imports
from tools.nbval_exercises import Exercise, exercises_of, is_check_cell, read_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"


@functools.cache
def notebooks_with_exercises() -> list[Path]:
    return [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if exercises_of(p)]


ALL_EXERCISES = [ex for path in notebooks_with_exercises() for ex in exercises_of(path)]


def _defined_names(source: str) -> set[str]:
    tree = ast.parse(source)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def _stdout_lines(cell: nbformat.NotebookNode) -> list[str]:
    text = "".join(
        out.get("text", "")
        for out in cell.get("outputs", [])
        if out.output_type == "stream" and out.get("name") == "stdout"
    )
    return [line for line in text.splitlines() if line.strip()]


def _unsolved_verdict(name: str) -> str:
    """What a check prints for an exercise left as given."""
    out = io.StringIO()
    with redirect_stdout(out):
        _verdict(name, NotImplementedError())
    return out.getvalue().rstrip("\n")


# ---------------------------------------------------------------- static checks


def test_exercises_are_found() -> None:
    assert ALL_EXERCISES, "no cell tagged `exercise` in notebooks/: the discovery is broken"


@pytest.mark.parametrize("exercise", ALL_EXERCISES, ids=str)
def test_exercise_cell_follows_the_convention(exercise: Exercise) -> None:
    nb = read_notebook(exercise.notebook)
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


@pytest.mark.parametrize("exercise", ALL_EXERCISES, ids=str)
def test_stored_verdict_is_not_attempted(exercise: Exercise) -> None:
    """nbval compares a fresh run with this stored output: unsolved, a check says ◻."""
    assert exercise.check_cell is not None and exercise.name
    cell = read_notebook(exercise.notebook).cells[exercise.check_cell]
    assert _stdout_lines(cell) == [_unsolved_verdict(exercise.name)], (
        f"{exercise}: the stored check output is {_stdout_lines(cell)}, not the unsolved verdict"
    )
    assert all(out.output_type == "stream" for out in cell.outputs), f"{exercise}: {cell.outputs}"


@pytest.mark.parametrize("path", notebooks_with_exercises(), ids=lambda p: p.name)
def test_no_other_check_cells(path: Path) -> None:
    """Every check cell judges the exercise just above it (the plugin solves only those)."""
    nb = read_notebook(path)
    checks = {ex.check_cell for ex in exercises_of(path)}
    others = [i for i, cell in enumerate(nb.cells) if is_check_cell(cell) and i not in checks]
    assert not others, f"{path.name}: check cells without an exercise above them: {others}"


def test_every_solution_is_loaded_by_an_exercise() -> None:
    referenced = {ex.name for ex in ALL_EXERCISES}
    files = {path.stem for path in SOLUTIONS.glob("*.py")}
    assert not files - referenced, f"solutions no exercise loads: {sorted(files - referenced)}"
    names = [ex.name for ex in ALL_EXERCISES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"exercises loading the same solution: {duplicates}"


# ------------------------------------------------------------- the nbval plugin


def _pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *quick_imports.ARGS, "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_test_command_checks_every_solution() -> None:
    """The root conftest loads the plugin: each exercise gets its solved items."""
    lesson = notebooks_with_exercises()[0]
    done = _pytest("--nbval", "--collect-only", "-q", str(lesson), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for exercise in exercises_of(lesson):
        assert f"solution: {exercise.name}" in done.stdout, done.stdout
        assert f"solved: {exercise.name}" in done.stdout, done.stdout


def _tiny_lesson(folder: Path, solutions: dict[str, str]) -> Path:
    """A lesson with one exercise per entry of ``solutions`` (name -> solution file)."""
    cells = [nbformat.v4.new_code_cell("from helpers.exercises import check", execution_count=1)]
    for name, solution in solutions.items():
        (folder / "solutions").mkdir(exist_ok=True)
        (folder / "solutions" / f"{name}.py").write_text(solution, encoding="utf-8")
        exercise = nbformat.v4.new_code_cell(
            f"# %load solutions/{name}.py\ndef double(x):\n    raise NotImplementedError",
            metadata={"tags": ["exercise"]},
            execution_count=1,
        )
        check = nbformat.v4.new_code_cell(
            f'def test():\n    assert double(2) == 4, "double(2) should be 4"\n\ncheck("{name}", test)',
            execution_count=1,
        )
        check.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=_unsolved_verdict(name) + "\n")
        ]
        cells += [exercise, check]
    path = folder / "99-tiny.ipynb"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_a_wrong_solution_fails_and_a_right_one_passes(tmp_path: Path) -> None:
    lesson = _tiny_lesson(
        tmp_path,
        {
            "99-right": "def double(x):\n    return 2 * x\n",
            "99-wrong": "def double(x):\n    return x + 1\n",
            "99-raises": "def double(x):\n    raise ValueError('no')\n",
        },
    )
    done = _pytest(
        "-p", "tools.nbval_exercises", "--nbval", "--nbval-current-env", "-rA", lesson.name,
        cwd=tmp_path,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "PASSED 99-tiny.ipynb::Cell 2 solved: 99-right" in out, out
    assert "FAILED 99-tiny.ipynb::Cell 4 solved: 99-wrong" in out, out
    assert "FAILED 99-tiny.ipynb::Cell 6 solved: 99-raises" in out, out
    assert "3 failed" not in out and "2 failed" in out, out  # the unsolved checks pass
