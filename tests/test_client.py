"""The client's messages: connected, and Redis down (one clear sentence)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from helpers import client as course_client
from helpers.server import ServerInfo, free_port


def test_connect_prints_the_original_line(redis_server: ServerInfo, capsys) -> None:
    c = course_client.connect()
    assert c.ping()
    assert capsys.readouterr().out == "Redis client connected to the server\n"


def test_redis_down_prints_each_attempt_then_one_sentence(monkeypatch, capsys) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(course_client.RedisUnavailable) as caught:
        course_client.connect(attempts=2, delay_s=0.01)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Redis client not connected to the server: ")
        assert "Connection refused" in line
    message = str(caught.value)
    assert url in message and "REDIS_URL" in message
    assert caught.value._render_traceback_() == [f"RedisUnavailable: {message}"]


def test_redis_down_in_a_script_is_one_line_not_a_traceback_storm() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code = (
        "from helpers.client import connect, RedisUnavailable\n"
        "try:\n    connect(attempts=3, delay_s=0.01)\n"
        "except RedisUnavailable as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, env=dict(os.environ, REDIS_URL=url),
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and "Traceback" not in result.stderr
    assert lines[-1].startswith("REDIS_URL is set to")


def test_hint_without_redis_url_names_the_start_command(monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL")
    assert "python -m helpers.server start" in course_client.fix_hint("redis://127.0.0.1:9/0")


def test_async_connect_has_the_same_messages(redis_server: ServerInfo, capsys, monkeypatch) -> None:
    async def both() -> None:
        c = await course_client.connect_async()
        assert await c.ping()
        await c.aclose()
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(course_client.RedisUnavailable):
            await course_client.connect_async(attempts=1)

    asyncio.run(both())
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Redis client connected to the server"
    assert out[1].startswith("Redis client not connected to the server: ")


def test_clear_keys_deletes_only_matching_keys(r) -> None:
    r.set("lesson:a", 1)
    r.set("lesson:b", 1)
    r.set("Holberton", "School")
    r.set("someone-elses", "data")
    assert course_client.clear_keys(r, "lesson:*", "Holberton", "missing") == 3
    assert r.get("someone-elses") == "data"


def test_explicit_url_hint_does_not_blame_redis_url(capsys) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(course_client.RedisUnavailable) as caught:
        course_client.connect(url, attempts=1)
    assert str(caught.value).startswith(f"No Redis answers at {url}: start a server there")
    assert capsys.readouterr().out.startswith("Redis client not connected to the server: ")


@pytest.mark.parametrize(
    "command",
    [
        ["helpers.workers", "cli_down"],
        ["helpers.workers", "cli_down", "--concurrency", "2"],
        ["helpers.drill", "--jobs", "5", "--kills", "1"],
        ["helpers.bench", "--quick", "--json"],
    ],
    ids=["workers", "workers-x2", "drill", "bench"],
)
def test_command_lines_with_redis_down_say_how_to_fix_it(command: list[str]) -> None:
    """The same lines as the client, on stderr (stdout stays clean for
    ``--json``), exit status 1, no traceback."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-m", *command],
        env=dict(os.environ, REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Redis client not connected to the server: ")
    assert lines[-1] == course_client.fix_hint(url)  # the REDIS_URL sentence: it is set
    assert "Traceback" not in done.stderr
