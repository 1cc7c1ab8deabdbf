"""Lessons in a real browser: JupyterLab on loopback, Chromium via Playwright.

Each test opens a lesson, runs all its cells in the browser's kernel (which
uses the test session's Redis through ``REDIS_URL``), looks at the screen and
checks Redis. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
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

from helpers.job_events import shown_id

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
    label = page.locator(".widget-label").get_by_text(f"Job {shown_id(job_id)} ")
    return (
        panel.locator(".widget-hbox")
        .filter(has=label)
        .filter(has=page.locator(".widget-hprogress, .widget-vprogress"))
    )


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
        assert status.inner_text().endswith(", ".join(shown_id(job_id) for job_id in new))
        assert set(new) <= set(r.lrange(f"rq:queue:{JOB_QUEUE}", 0, -1)), "not on the queue"
        for job_id in new:
            _job_bar(page, panel, job_id).get_by_text(
                f"Job {shown_id(job_id)} 4153518743: queued 0%"
            ).wait_for()
            assert progress_fraction(_job_bar(page, panel, job_id)) == 0
        screenshot(page, artifacts_dir, "07-job-panel-queued")

        button(page, "Start workers").click()
        for job_id in new:
            _job_bar(page, panel, job_id).get_by_text(
                f"Job {shown_id(job_id)} 4153518743: finished 100%"
            ).wait_for()
            assert progress_fraction(_job_bar(page, panel, job_id)) == pytest.approx(1.0, abs=0.02)
            assert r.hget(f"rq:job:{job_id}", "status") == "finished"
        screenshot(page, artifacts_dir, "07-job-panel-finished")

        button(page, "Stop workers").click()
        panel.get_by_text("Workers stopped").wait_for()
        assert not r.smembers(f"rq:workers:{JOB_QUEUE}"), "workers still registered"
    finally:
        stop_rq_workers(r, JOB_QUEUE)  # only does something if the test failed half-way


STOCK_LESSON = "notebooks/09-stock-reservations.ipynb"


def _shown_left(panel, item_id: int) -> int:
    """The remaining quantity the stock panel shows for ``item_id``."""
    text = panel.locator(f".stock-left-{item_id}").inner_text()  # "<left> / <initial> left"
    left, _, rest = text.partition(" / ")
    assert rest.endswith(" left"), text
    return int(left)


def _assert_shown_matches_redis(page, panel, r: redis.Redis, item_id: int) -> int:
    """Wait until the panel shows what Redis holds for ``item_id`` (it refreshes
    every second); that value, never below 0."""
    stored = int(r.get(f"item.{item_id}"))
    shown = re.compile(rf"^{stored} / \d+ left$")
    panel.locator(f".stock-left-{item_id}").get_by_text(shown).wait_for()
    assert _shown_left(panel, item_id) == stored >= 0
    return stored


def _reset_stock(page, panel, r: redis.Redis, item_id: int, initial: int) -> None:
    """Click "Reset stock" and wait until Redis holds ``initial`` for ``item_id``:
    the status line may still show an earlier reset's message (the lesson's own
    cells click the button too), so the message alone proves nothing."""
    button(page, "Reset stock").click()
    panel.get_by_text("Stock reset to the initial quantities").wait_for()
    deadline = time.monotonic() + 30
    while int(r.get(f"item.{item_id}")) != initial:
        assert time.monotonic() < deadline, f"item.{item_id} not reset to {initial} in 30 s"
        page.wait_for_timeout(100)


def test_stock_panel_reserves_and_rushes_never_below_zero(
    lab_page, jupyter_lab: JupyterLab, r: redis.Redis, artifacts_dir: Path
) -> None:
    page = lab_page
    open_notebook(page, jupyter_lab, STOCK_LESSON)
    run_all_cells(page)
    assert not error_outputs(page).count(), "lesson 09 raised in the browser"
    panel = panel_with_button(page, "Reset stock")

    _reset_stock(page, panel, r, 1, 4)
    assert _assert_shown_matches_redis(page, panel, r, 1) == 4  # Suitcase 250: 4 in stock

    # Five customers for four suitcases: four confirmed, then refused at 0.
    reserve = button(page, "Reserve Suitcase 250")
    for left in (3, 2, 1, 0):
        reserve.click()
        panel.get_by_text(f"Suitcase 250: Reservation confirmed ({left} left)").wait_for()
        assert _assert_shown_matches_redis(page, panel, r, 1) == left
    reserve.click()
    panel.get_by_text("Suitcase 250: Not enough stock available (0 left)").wait_for()
    assert _assert_shown_matches_redis(page, panel, r, 1) == 0
    assert progress_fraction(panel.locator(".stock-bar-1")) == 0
    screenshot(page, artifacts_dir, "09-stock-panel-reserved")

    # Rushes on Suitcase 650 (2 in stock): atomic, then the original's naive way.
    widget(page, "Product").locator("select").select_option(label="Suitcase 650")
    for mode, label in (("atomic", "Atomic (Lua script)"), ("naive", "Naive (read, then write)")):
        _reset_stock(page, panel, r, 3, 2)
        assert _assert_shown_matches_redis(page, panel, r, 3) == 2
        button(page, label).click()
        button(page, "Rush").click()
        summary = panel.get_by_text(f"300 concurrent reservations of Suitcase 650 ({mode}): ")
        while not summary.count():  # during the rush: what is shown never goes below 0
            assert _shown_left(panel, 3) >= 0
            page.wait_for_timeout(100)
        assert _assert_shown_matches_redis(page, panel, r, 3) == 0
        result = panel.locator(".stock-rush-result").inner_text()
        if mode == "atomic":
            assert "2 confirmed, 2 available, 0 oversold, 0 left" in summary.inner_text()
            assert result == "Rush: 2 confirmed vs 2 available (0 oversold)"
        else:  # how many the naive way oversells varies; what is left does not
            assert summary.inner_text().endswith(", 0 left"), summary.inner_text()
            assert result.startswith("Rush: ") and "vs 2 available" in result
        screenshot(page, artifacts_dir, f"09-stock-panel-rush-{mode}")
