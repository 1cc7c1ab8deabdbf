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
from browser import (
    ROOT,
    JupyterLab,
    button,
    cell_index,
    error_outputs,
    open_notebook,
    outputs,
    panel_with_button,
    progress_fraction,
    run_all_cells,
    run_cell,
    screenshot,
    stop_rq_workers,
    widget,
)

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


JOB_LESSON = "notebooks/07-job-progress-and-failures.ipynb"
JOB_QUEUE = "push_notification_code_2"


def _job_ids(r: redis.Redis) -> set[str]:
    prefix = f"rq:job:{JOB_QUEUE}-"
    return {
        key.removeprefix("rq:job:")
        for key in r.scan_iter(f"{prefix}*")
        if ":" not in key[len(prefix) :]
    }


def _job_bar(page, panel, job_id: str):
    """The progress bar row of ``job_id`` in the job panel."""
    # Locators inside filter(has=...) are relative to the row: built from the page.
    label = page.locator(".widget-label").get_by_text(f"{job_id} ")
    return (
        panel.locator(".widget-hbox")
        .filter(has=label)
        .filter(has=page.locator(".widget-hprogress, .widget-vprogress"))
    )


@pytest.mark.skipif(not (ROOT / JOB_LESSON).exists(), reason=f"{JOB_LESSON} does not exist yet")
def test_job_panel_enqueues_and_shows_progress(
    lab_page, jupyter_lab: JupyterLab, r: redis.Redis, artifacts_dir: Path
) -> None:
    page = lab_page
    open_notebook(page, jupyter_lab, JOB_LESSON)
    try:
        run_all_cells(page)
        assert not error_outputs(page).count(), "lesson 07 raised in the browser"
        # The lesson closes its panel at the end (stopping its thread and
        # workers); a learner gets it back by running the panel's cell again.
        run_cell(page, cell_index(ROOT / JOB_LESSON, "JobPanel("))
        enqueue = button(page, "Enqueue")
        enqueue.wait_for()
        panel = panel_with_button(page, "Enqueue")
        count = widget(page, "Count").locator("input")
        count.fill("3")
        count.press("Enter")
        phone = widget(page, "Phone").locator("input")
        phone.fill("4153518743")
        phone.press("Enter")

        before = _job_ids(r)
        enqueue.click()
        status = panel.get_by_text("Enqueued 3 job(s): ")
        status.wait_for()
        new = sorted(_job_ids(r) - before, key=lambda i: int(i.rsplit("-", 1)[1]))
        assert len(new) == 3, f"Enqueue should create 3 jobs in Redis, got {new}"
        assert all(job_id in status.inner_text() for job_id in new)
        assert set(new) <= set(r.lrange(f"rq:queue:{JOB_QUEUE}", 0, -1)), "not on the queue"
        for job_id in new:
            _job_bar(page, panel, job_id).get_by_text(f"{job_id} 4153518743: queued 0%").wait_for()
            assert progress_fraction(_job_bar(page, panel, job_id)) == 0
        screenshot(page, artifacts_dir, "07-job-panel-queued")

        button(page, "Start workers").click()
        for job_id in new:
            _job_bar(page, panel, job_id).get_by_text(
                f"{job_id} 4153518743: finished 100%"
            ).wait_for()
            assert progress_fraction(_job_bar(page, panel, job_id)) == pytest.approx(1.0, abs=0.02)
            assert r.hget(f"rq:job:{job_id}", "status") == "finished"
        screenshot(page, artifacts_dir, "07-job-panel-finished")

        button(page, "Stop workers").click()
        panel.get_by_text("Workers stopped").wait_for()
        assert not r.smembers(f"rq:workers:{JOB_QUEUE}"), "workers still registered"
    finally:
        stop_rq_workers(r, JOB_QUEUE)  # only does something if the test failed half-way
