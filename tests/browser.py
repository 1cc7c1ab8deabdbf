"""Browser-test infrastructure: JupyterLab on loopback, driven by Chromium.

Fixtures (import them into a test module, as ``tests/test_browser.py`` does):

- ``jupyter_lab``: a JupyterLab server for the whole session, on 127.0.0.1,
  a free port, a random token, the repository as root folder, the test
  session's ``REDIS_URL`` in its (and its kernels') environment. Its settings
  live in a temporary folder: autosave off (running a lesson in the browser
  never rewrites the stored notebook), every cell rendered (no windowing, so
  widgets below the fold exist), no news or update pop-ups.
- ``chromium``: the system Chromium (``$CHROMIUM``, else ``chromium``,
  ``chromium-browser``, ``google-chrome`` on PATH) launched by Playwright
  through ``executable_path``; Playwright's own browser download cannot work
  offline. Without one (or without Playwright), the test is skipped and says
  why; under CI (``CI=true``) it fails with that reason instead, so a CI run
  never passes with its browser tests silently skipped.
- ``lab_page``: a fresh page; its kernels are shut down after the test.

Helpers: :func:`open_notebook`, :func:`run_all_cells`, :func:`run_cell`
(with :func:`cell_index`), :func:`button`, :func:`panel_with_button`, :func:`widget`,
:func:`progress_fraction`, :func:`screenshot`, :func:`stop_rq_workers`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import nbformat
import pytest

from helpers.processes import BackgroundProcess, terminate
from helpers.server import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAB_START_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 120

# JupyterLab user settings for the test server (plugin id -> settings).
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab server."""

    url: str
    token: str
    process: BackgroundProcess

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API; the decoded JSON answer (None if empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut every kernel down (a lesson's kernel holds Redis clients, maybe workers)."""
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except urllib.error.HTTPError as error:
                if error.code != 404:  # already gone
                    raise


def _write_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def jupyter_lab() -> Iterator[JupyterLab]:
    """JupyterLab on 127.0.0.1 for the session; stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="course-lab-"))
    _write_settings(folder / "settings")
    token = secrets.token_hex(16)
    port = free_port()
    log_file = folder / "jupyter-lab.log"
    command = [
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.user_settings_dir={folder / 'settings'}",
        f"--LabApp.workspaces_dir={folder / 'workspaces'}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers and CI run as root
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
    process = BackgroundProcess.start(command, log_file=log_file, env=env, cwd=ROOT)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, process)
    try:

        def answers() -> bool:
            try:
                lab.api("GET", "/api/status")
                return True
            except (urllib.error.URLError, ConnectionError):
                return False

        process.wait_until_ready(answers, LAB_START_TIMEOUT_S, "JupyterLab")
        yield lab
    finally:
        try:
            if process.running:
                lab.shutdown_kernels()
        finally:
            process.stop(timeout=15)  # SIGTERM: it shuts its kernels down
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            shutil.copy(log_file, artifacts / "jupyter-lab.log")
            shutil.rmtree(folder, ignore_errors=True)


def find_chromium() -> str | None:
    """The system Chromium: ``$CHROMIUM``, else the first known name on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def in_ci() -> bool:
    """True under CI (``CI`` set to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def cannot_run(reason: str) -> NoReturn:
    """A test that cannot run here: skipped with ``reason``; under CI, failed
    with it (CI must run every test: a skip there would hide a broken set-up)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must run in CI, not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless system Chromium driven by Playwright (skips, saying why, without
    one; fails with that reason under CI: see :func:`cannot_run`).

    Module scope, not session: Playwright's sync API keeps an asyncio event
    loop running in the main thread while it lives, which would break every
    later test that calls ``asyncio.run()``."""
    executable = find_chromium()
    if executable is None and os.environ.get("CHROMIUM"):
        cannot_run(f"CHROMIUM={os.environ['CHROMIUM']} is not a Chromium executable")
    if executable is None:
        cannot_run(
            "no Chromium found (looked for $CHROMIUM, then "
            f"{', '.join(CHROMIUM_NAMES)} on PATH): install one, e.g. `apt install chromium`"
        )
    try:
        from playwright import sync_api  # noqa: PLC0415
    except ImportError as error:
        cannot_run(f"playwright is not installed ({error}): `pip install -e '.[test]'`")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab_page(
    chromium: Any, jupyter_lab: JupyterLab, artifacts_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh browser page; after the test, a last screenshot
    (``test-artifacts/<test>-end.png``), then its lesson kernels are shut down."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            screenshot(page, artifacts_dir, f"{request.node.name}-end")
        finally:
            context.close()
            jupyter_lab.shutdown_kernels()


# ------------------------------------------------------------------ helpers


KERNEL_READY_TIMEOUT_S = 90


def open_notebook(page: Any, lab: JupyterLab, path: str) -> Any:
    """Open ``path`` (relative to the repository) and wait until its kernel is
    started, connected to this page and idle. Returns the notebook panel's locator.

    The toolbar's execution indicator says "idle" before any kernel exists, so
    readiness is asked of the server (the session's kernel is idle and has a
    connection) and of the status bar (it names the kernel and says Idle)."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset&token={lab.token}")  # reset: no tabs left over
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for()
    deadline = time.monotonic() + KERNEL_READY_TIMEOUT_S
    while True:
        sessions = [s for s in lab.api("GET", "/api/sessions") if s.get("path") == path]
        kernel = sessions[0].get("kernel") or {} if len(sessions) == 1 else {}
        if kernel.get("execution_state") == "idle" and kernel.get("connections", 0) > 0:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {path} is not ready: sessions {sessions}")
        time.sleep(0.2)
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('#jp-main-statusbar');
            const text = bar ? bar.innerText : '';
            return /\\bIdle\\b/.test(text) && !/No Kernel|Initializing|Connecting|Starting/.test(text);
        }""",
        timeout=KERNEL_READY_TIMEOUT_S * 1000,
    )
    _wait_idle(page)
    return panel


def _wait_idle(page: Any, timeout_s: float = 60) -> None:
    page.wait_for_function(
        """() => {
            const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
                .find(p => p.offsetParent !== null);
            const status = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
            return status && status.dataset.status === 'idle';
        }""",
        timeout=timeout_s * 1000,
    )


def run_menu(page: Any, menu: str, item: str) -> None:
    """Click ``item`` in the main menu ``menu`` (e.g. "Run", "Run All Cells")."""
    page.locator(".lm-MenuBar-itemLabel").get_by_text(menu, exact=True).click()
    entry = page.locator(".lm-Menu .lm-Menu-item:not(.lm-mod-disabled)").filter(
        has=page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True)
    )
    entry.click()
    entry.wait_for(state="hidden")  # the menu closed: the command ran


_VISIBLE_PANEL = """[...document.querySelectorAll('.jp-NotebookPanel')]
    .find(p => p.offsetParent !== null)"""


def cell_prompts(page: Any) -> list[str]:
    """The visible notebook's code cell prompts: ``[ ]:``, ``[*]:``, ``[3]:``."""
    return page.evaluate(
        f"""() => [...{_VISIBLE_PANEL}.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
            .map(e => e.textContent.trim())"""
    )


def run_all_cells(page: Any, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Clear every output, run all cells, and wait until every code cell has run
    (or the run stopped at an error) and the kernel is idle.

    Clearing first means nothing stored in the file can pass for a fresh output.
    """
    run_menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(
        f"() => !{_VISIBLE_PANEL}.querySelector('.jp-CodeCell .jp-OutputArea-output')"
    )
    run_menu(page, "Run", "Run All Cells")
    try:
        page.wait_for_function(
            f"""() => {{
                const panel = {_VISIBLE_PANEL};
                const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
                const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                    .map(e => e.textContent.trim());
                if (!status || status.dataset.status !== 'idle' || prompts.some(p => p.includes('*')))
                    return false;
                const errored = panel.querySelector(
                    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
                return prompts.every(p => /\\[\\d+\\]/.test(p)) || errored !== null;
            }}""",
            timeout=timeout_s * 1000,
        )
    except Exception as error:
        if type(error).__name__ != "TimeoutError":
            raise
        raise AssertionError(
            f"Run All Cells did not finish in {timeout_s}s; cell prompts: {cell_prompts(page)}"
        ) from None


def cell_index(notebook: Path, contains: str) -> int:
    """Index of the first code cell of ``notebook`` whose source contains ``contains``."""
    nb = nbformat.read(notebook, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and contains in cell.source:
            return index
    raise LookupError(f"no code cell of {notebook.name} contains {contains!r}")


def run_cell(page: Any, index: int, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Select the visible notebook's cell number ``index`` (0-based, markdown
    included), run it (Ctrl+Enter), and wait until it has run and the kernel is idle."""
    prompt = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)
    prompt = prompt.locator(".jp-InputPrompt").first
    before = prompt.inner_text().strip()
    prompt.click()
    page.keyboard.press("Control+Enter")
    prompt_handle = prompt.element_handle()
    page.wait_for_function(
        f"""([prompt, before]) => {{
            const text = prompt.textContent.trim();
            const status = {_VISIBLE_PANEL}.querySelector('.jp-Notebook-ExecutionIndicator');
            return text !== before && /\\[\\d+\\]/.test(text)
                && status && status.dataset.status === 'idle';
        }}""",
        arg=[prompt_handle, before],
        timeout=timeout_s * 1000,
    )


def outputs(page: Any) -> Any:
    """The visible notebook's output areas."""
    return page.locator(".jp-NotebookPanel:visible .jp-OutputArea")


def error_outputs(page: Any) -> Any:
    """Tracebacks shown in the visible notebook."""
    return outputs(page).locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )


def button(page: Any, description: str) -> Any:
    """The ipywidgets button whose description is ``description``."""
    return outputs(page).get_by_role("button", name=description, exact=True)


def panel_with_button(page: Any, description: str) -> Any:
    """The output (a widget panel) holding a button ``description``: scope the
    searches to it, so text a cell printed elsewhere cannot match."""
    inside = page.get_by_role("button", name=description, exact=True)
    return outputs(page).locator(".jp-OutputArea-output").filter(has=inside)


def widget(page: Any, description: str) -> Any:
    """The ipywidgets control whose description label is ``description``."""
    label = page.locator(".widget-label", has_text=description)
    return outputs(page).locator(".widget-inline-hbox").filter(has=label)


def progress_fraction(bar: Any, attempts: int = 10) -> float:
    """How full an ipywidgets progress bar is, 0.0 to 1.0, as drawn on screen
    (scrolled into view first: off-screen output may not be laid out). A
    panel's refresh can redraw the bar between two steps (detached, or not laid
    out yet): then try again, a bounded number of times."""
    from playwright.sync_api import Error as PlaywrightError  # noqa: PLC0415

    for attempt in range(attempts):
        try:
            return _progress_fraction_once(bar.locator(".progress-bar"))
        except PlaywrightError as error:
            redrawn = "not attached" in str(error) or "not laid out" in str(error)
            if not redrawn or attempt == attempts - 1:
                raise
            time.sleep(0.2)  # let the browser finish drawing the refreshed panel
    raise AssertionError("unreachable")


def _progress_fraction_once(inner: Any) -> float:
    inner.scroll_into_view_if_needed()
    return inner.evaluate(
        """e => {
            const outer = e.parentElement.getBoundingClientRect();
            const inner = e.getBoundingClientRect();
            const vertical = outer.height > outer.width;
            const size = vertical ? outer.height : outer.width;
            if (!size) throw new Error('the progress bar is not laid out');
            return (vertical ? inner.height : inner.width) / size;
        }"""
    )


def screenshot(page: Any, artifacts_dir: Path, name: str) -> Path:
    """Save a screenshot as ``test-artifacts/<name>.png``."""
    path = artifacts_dir / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def stop_rq_workers(client: Any, queue_name: str, timeout_s: float = 30) -> list[int]:
    """SIGTERM the RQ workers registered on ``queue_name`` (started by a lesson's
    kernel during the test, on this machine) and wait for them to exit; their pids.

    A safety net: a test stops workers through the UI, but if it fails half-way
    the workers would outlive the kernel that started them."""
    hostname = socket.gethostname()
    pids = []
    for key in client.smembers(f"rq:workers:{queue_name}"):
        worker = client.hgetall(key)
        if worker.get("hostname") == hostname and worker.get("pid"):
            pids.append(int(worker["pid"]))
    terminate(pids, timeout_s)
    return pids
