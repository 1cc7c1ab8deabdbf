"""The job control panel: its model, and its widgets driven by button.click()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from waiting import wait_for

from helpers.job_events import JobEvents
from helpers.widgets import JobPanel, JobPanelModel

QUEUE = "test_job_panel"
OK_NUMBER, BLACKLISTED = "4153518743", "4153518780"
MESSAGE = "This is the code 4321 to verify your account"


@pytest.fixture
def model(r) -> Iterator[JobPanelModel]:
    panel_model = JobPanelModel(QUEUE, worker_class="simple")
    try:
        yield panel_model
    finally:
        panel_model.close()


@pytest.fixture
def panel(model) -> Iterator[JobPanel]:
    view = JobPanel(model, refresh_interval=None)
    try:
        yield view
    finally:
        view.close()


def test_enqueue_creates_queued_jobs(model) -> None:
    jobs = model.enqueue(OK_NUMBER, MESSAGE, count=3)
    assert [j.id for j in jobs] == [f"{QUEUE}-1", f"{QUEUE}-2", f"{QUEUE}-3"]
    state = model.refresh()
    assert state.counts == {"queued": 3, "started": 0, "finished": 0, "failed": 0}
    assert [(row.job_id, row.status, row.progress) for row in state.jobs] == [
        (job.id, "queued", 0) for job in jobs
    ]
    assert state.workers == 0
    assert state.messages == [f"Notification job created: {n}" for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("phone", "message", "count"),
    [("41535x", MESSAGE, 1), (OK_NUMBER, "", 1), (OK_NUMBER, MESSAGE, 0)],
)
def test_invalid_input_enqueues_nothing(model, phone, message, count) -> None:
    with pytest.raises(ValueError):
        model.enqueue(phone, message, count)
    assert model.refresh().counts["queued"] == 0


def test_workers_run_jobs_and_failures_can_be_requeued(model) -> None:
    ok = model.enqueue(OK_NUMBER, MESSAGE, count=2)
    (bad,) = model.enqueue(BLACKLISTED, MESSAGE)
    events = JobEvents(QUEUE, from_start=True)
    model.start_workers(2)
    assert model.refresh().workers == 2
    events.wait_for([*ok, bad], timeout=120)
    wait_for(
        lambda: model.refresh().counts == {"queued": 0, "started": 0, "finished": 2, "failed": 1}
    )
    state = model.refresh()
    rows = {row.job_id: row for row in state.jobs}
    assert [rows[j.id].progress for j in ok] == [100, 100]
    assert [(r.job_id, r.error) for r in state.failed] == [
        (bad.id, f"Phone number {BLACKLISTED} is blacklisted")
    ]
    assert rows[bad.id].progress == 0  # it failed right after reporting 0%

    model.stop_workers()
    assert model.refresh().workers == 0
    assert model.requeue_failed() == [bad.id]
    state = model.refresh()
    assert state.counts["failed"] == 0 and state.counts["queued"] == 1
    assert {row.job_id: (row.status, row.error) for row in state.jobs}[bad.id] == ("queued", None)

    model.start_workers(1)  # a blacklisted number fails again: requeue suits transient errors
    wait_for(lambda: model.refresh().counts["failed"] == 1)
    failures = [e for e in JobEvents(QUEUE, from_start=True).read() if e.kind == "failed"]
    assert [e.job_id for e in failures] == [bad.id, bad.id]


def test_buttons_have_stable_descriptions(panel) -> None:
    assert [
        b.description
        for b in (
            panel.enqueue_button,
            panel.start_button,
            panel.stop_button,
            panel.requeue_button,
            panel.refresh_button,
        )
    ] == ["Enqueue", "Start workers", "Stop workers", "Requeue failed", "Refresh"]
    assert [
        w.description for w in (panel.phone, panel.message, panel.count, panel.concurrency)
    ] == [
        "Phone",
        "Message",
        "Count",
        "Concurrency",
    ]


def test_clicking_enqueues_runs_shows_progress_and_requeues(panel, model, capsys) -> None:
    panel.phone.value = OK_NUMBER
    panel.message.value = MESSAGE
    panel.count.value = 2
    panel.enqueue_button.click()
    panel.phone.value = BLACKLISTED
    panel.count.value = 1
    panel.enqueue_button.click()
    assert model.refresh().counts["queued"] == 3
    assert len(panel.jobs_box.children) == 3
    assert panel.status.value == "Enqueued 1 job(s): 3"
    assert "queued <b>3</b>" in panel.counts.value

    panel.concurrency.value = 2
    panel.start_button.click()
    assert model.workers_running == 2
    wait_for(
        lambda: model.refresh().counts["finished"] == 2 and model.refresh().counts["failed"] == 1
    )
    panel.refresh_button.click()
    bars = [row.children[0] for row in panel.jobs_box.children]
    assert [bar.value for bar in bars] == [100, 100, 0]
    assert [bar.bar_style for bar in bars] == ["success", "success", "danger"]
    assert "finished <b>2</b>" in panel.counts.value and "failed <b>1</b>" in panel.counts.value
    assert f"Phone number {BLACKLISTED} is blacklisted" in panel.failed_html.value

    panel.stop_button.click()
    assert model.workers_running == 0
    panel.requeue_button.click()
    assert panel.status.value == "Requeued 1 failed job(s)"
    assert "failed <b>0</b>" in panel.counts.value and "queued <b>1</b>" in panel.counts.value
    assert panel.failed_html.value == ""
    assert capsys.readouterr().out == ""  # the panel never prints into a cell


def test_errors_go_to_the_status_line(panel, model, capsys) -> None:
    panel.phone.value = "not a number"
    panel.enqueue_button.click()
    assert panel.status.value.startswith("Enqueue: ValueError:")
    assert "only digits" in panel.status.value
    assert model.refresh().counts["queued"] == 0
    assert capsys.readouterr().out == ""


def test_auto_refresh_updates_the_view_and_stops_on_close(model) -> None:
    view = JobPanel(model, refresh_interval=0.1)
    try:
        assert view.auto_refreshing
        model.enqueue(OK_NUMBER, MESSAGE, count=2)  # not through the view
        wait_for(lambda: "queued <b>2</b>" in view.counts.value, timeout=30)
        model.start_workers(1)
        wait_for(lambda: "finished <b>2</b>" in view.counts.value, timeout=60)
    finally:
        view.close()
    assert not view.auto_refreshing
    assert model.workers_running == 0
