"""Lessons in a real browser: JupyterLab on loopback, Chromium via Playwright.

Each test opens a lesson, runs all its cells in the browser's kernel (which
uses the test session's Redis through ``REDIS_URL``), looks at the screen and
checks Redis. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import browser
import pytest
import redis
from browser import JupyterLab, open_notebook, outputs, run_all_cells, screenshot

# The fixtures, from the infrastructure module (pytest finds them by name here).
jupyter_lab = browser.jupyter_lab
chromium = browser.chromium
lab_page = browser.lab_page

pytestmark = pytest.mark.browser


def test_course_map_connects_to_redis(
    lab_page, jupyter_lab: JupyterLab, r: redis.Redis, artifacts_dir: Path
) -> None:
    open_notebook(lab_page, jupyter_lab, "notebooks/00-course-map.ipynb")
    run_all_cells(lab_page)
    version = r.info("server")["redis_version"]
    line = outputs(lab_page).get_by_text(f"Redis server version: {version}")
    line.wait_for()
    screenshot(lab_page, artifacts_dir, "00-course-map")
    assert line.is_visible()
