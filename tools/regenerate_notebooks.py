"""Regenerate the stored outputs of the course's notebooks, in place.

    python tools/regenerate_notebooks.py                 # every notebook
    python tools/regenerate_notebooks.py notebooks/05-*.ipynb

Runs each notebook top to bottom in a fresh kernel against a private,
throwaway Redis (the same code path as the tests), so the stored outputs are
what nbval will see. Updates the navigation cells first. Widget state and
timing metadata are not stored. The git diff this leaves is the review.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.server import start_server, stop_server  # noqa: E402
from tools.navigation import update_navigation  # noqa: E402

CELL_TIMEOUT_S = 900


def clean(nb: nbformat.NotebookNode) -> None:
    """Drop what only adds noise to the diff: widget state, timings, ids of runs."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def regenerate(path: Path) -> None:
    """Execute one notebook in place with its folder as working directory."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
        allow_errors=False,
    )
    client.execute()
    clean(nb)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    update_navigation(check=False)
    with tempfile.TemporaryDirectory(prefix="course-regen-") as tmp:
        info = start_server(Path(tmp))
        os.environ["REDIS_URL"] = info.url
        os.environ["COURSE_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["COURSE_WORKSPACE"] = str(Path(tmp) / "workspace")  # not the learner's files
        try:
            for path in paths:
                print(f"running {path.name} ...", flush=True)
                regenerate(path.resolve())
        finally:
            stop_server(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
