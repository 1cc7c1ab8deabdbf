"""The test session's set-up (the root conftest.py): everything the tests and
their kernels write goes to a temporary folder of the session, never to the
learner's course data, task files or IPython profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_kernels_get_an_ipython_profile_of_the_session() -> None:
    # What a kernel started now (nbval's, JupyterLab's) would use as its profile.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from IPython.paths import get_ipython_dir; print(get_ipython_dir())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    session = Path(os.environ["COURSE_DATA_DIR"]).parent
    assert Path(found).parent == session, (found, session)
    assert not Path(found).is_relative_to(Path.home() / ".ipython")


def test_the_session_writes_only_below_its_temporary_folder() -> None:
    session = Path(os.environ["COURSE_DATA_DIR"]).parent
    for name in ("COURSE_WORKSPACE", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        assert Path(os.environ[name]).parent == session, name
    root = Path(__file__).resolve().parent.parent
    assert not session.is_relative_to(root)  # not the course's own .course-data
