"""helpers.processes: the one wrapper for background processes, and the
promise that nothing a kernel started outlives it, even when the kernel dies
by SIGKILL and cleans nothing up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from waiting import wait_for

from helpers.processes import BackgroundProcess, descendants, kill_tree, pid_running
from helpers.server import logs_dir

# Each starter plays a notebook kernel: it starts one kind of background
# process, prints its pid, and waits to be killed.
STARTERS = {
    "workers": """
        from helpers.workers import start_worker
        started = start_worker("test_orphans", concurrency=2)
    """,
    "http service": """
        from helpers.api import start_service
        started = start_service()
    """,
    "hung subscriber": """
        from helpers.client import connect
        from helpers.pubsub import start_subscriber
        started = start_subscriber("test-orphans", hang_after=1)
        connect(quiet=True).publish("test-orphans", "stuck after this one")
        started.wait_for_output(lambda lines: "stuck after this one" in lines)
    """,
    "hung stream consumer": """
        from helpers.client import connect
        from helpers.streams import add_message, create_group, start_consumer
        client = connect(quiet=True)
        client.delete("test-orphans")
        create_group(client, stream="test-orphans", group="test-orphans")
        add_message(client, "stuck after this one", stream="test-orphans")
        started = start_consumer(
            "orphan", stream="test-orphans", group="test-orphans", hang_after=1
        )
        started.wait_for_output(lambda lines: "stuck after this one" in lines)
    """,
    "rq-dashboard": """
        from helpers.reliability import start_dashboard
        started = start_dashboard()
    """,
    "bench listener": """
        import os
        from helpers.processes import BackgroundProcess
        from helpers.server import logs_dir
        started = BackgroundProcess.start(
            ["helpers.bench.listener", os.environ["REDIS_URL"], "test-orphans", "10", "600"],
            log_file=logs_dir() / "test-orphans-listener.log",
        )
    """,
}


def _start_kernel_like(body: str) -> tuple[subprocess.Popen[str], int]:
    code = textwrap.dedent(body) + "print(started.pid, flush=True)\nimport time\ntime.sleep(600)\n"
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    line = starter.stdout.readline()
    if not line.strip():
        starter.kill()
        raise AssertionError(f"the starter printed no pid (exit {starter.wait()})")
    return starter, int(line)


@pytest.mark.parametrize("kind", sorted(STARTERS))
def test_a_background_process_stops_when_its_starter_is_killed(kind: str, r) -> None:
    starter, pid = _start_kernel_like(STARTERS[kind])
    below = descendants(pid)
    try:
        assert pid_running(pid)
        starter.kill()  # SIGKILL: no atexit, no stop()
        starter.wait()
        wait_for(lambda: not pid_running(pid), timeout=15)
        assert not [p for p in below if pid_running(p)], "something below it outlived it"
    finally:  # never leak them, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            starter.kill()
        kill_tree(pid)
        for each in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    (tmp_path / "stubborn.py").write_text(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('got SIGTERM', flush=True))\n"
        "print('ignoring SIGTERM', flush=True)\ntime.sleep(600)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    code = (
        "import os, sys, time\nfrom pathlib import Path\n"
        "from helpers.processes import BackgroundProcess\n"
        f"p = BackgroundProcess.start(['stubborn'], log_file=Path({str(tmp_path / 'log')!r}))\n"
        "p.wait_for_output(lambda lines: 'ignoring SIGTERM' in lines)\n"
        "print(p.pid, flush=True)\ntime.sleep(600)\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert starter.stdout is not None
    pid = int(starter.stdout.readline())
    try:
        starter.kill()
        starter.wait()
        # The watcher saw the starter gone and sent SIGTERM, which was ignored.
        wait_for(lambda: "got SIGTERM" in (tmp_path / "log").read_text(), timeout=15)
        assert pid_running(pid), "SIGTERM should have been ignored"
        wait_for(lambda: not pid_running(pid), timeout=15)  # SIGKILL after the grace period
    finally:
        kill_tree(pid)


def test_the_launcher_passes_the_exit_code_and_arguments_on(tmp_path: Path) -> None:
    (tmp_path / "echoer.py").write_text(
        "import sys\nprint(__name__, *sys.argv[1:], flush=True)\nsys.exit(3)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    process = BackgroundProcess.start(
        ["echoer", "--name", "x", "-v"], log_file=tmp_path / "echo.log", env=env
    )
    assert process.wait() == 3
    assert process.lines() == ["__main__ --name x -v"]
    assert process.describe() == "echoer --name x -v"


def test_stop_is_graceful_and_kill_takes_what_runs_below(r) -> None:
    from helpers.workers import start_worker

    worker = start_worker("test_processes_kill", concurrency=2)
    below = descendants(worker.pid)
    assert len(below) >= 2  # the two workers under their supervisor
    killed = worker.kill()
    assert set(below) <= set(killed)
    wait_for(lambda: not any(pid_running(p) for p in killed))
    assert worker.returncode == -signal.SIGKILL
    assert worker.log_file.parent == logs_dir()
