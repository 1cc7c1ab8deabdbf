"""Publish/subscribe: the original's two programs as real processes, the
Redis-down message, the background listener and the live message log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import pubsub
from helpers.client import NOT_CONNECTED
from helpers.pubsub import (
    CHANNEL,
    KILL_SERVER,
    MessageListener,
    run_publisher_process,
    start_subscriber,
    subscriber_count,
)
from helpers.server import free_port, start_server, stop_server
from helpers.widgets.messages import MessageLog

CONNECTED = "Redis client connected to the server"
PUBLISHER_LINES = [
    CONNECTED,
    "About to send Holberton Student #1 starts course",
    "About to send Holberton Student #2 starts course",
    "About to send KILL_SERVER",
    "About to send Holberton Student #3 starts course",
]
SUBSCRIBER_LINES = [
    CONNECTED,
    "Holberton Student #1 starts course",
    "Holberton Student #2 starts course",
    "KILL_SERVER",
]


def run_cli(role: str, url: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpers.pubsub", role],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env=dict(os.environ, REDIS_URL=url),
    )  # fmt: skip


def test_the_two_processes_print_exactly_the_original_lines(r) -> None:
    subscriber = start_subscriber()  # returns once PUBSUB NUMSUB counts it
    try:
        assert subscriber_count(r) == 1
        publisher = run_publisher_process()
        assert publisher.returncode == 0, publisher.stderr
        assert publisher.stdout.splitlines() == PUBLISHER_LINES
        assert publisher.stderr == ""
        assert subscriber.wait(timeout=20) == 0  # it quit by itself on KILL_SERVER
        assert subscriber.lines() == SUBSCRIBER_LINES
    finally:
        subscriber.kill()


def test_started_at_the_same_moment_the_publisher_waits_for_the_subscriber(r) -> None:
    # No harness wait: both processes start together, as in two terminals.
    subscriber = start_subscriber(wait=False)
    try:
        publisher = run_publisher_process()
        assert publisher.stdout.splitlines() == PUBLISHER_LINES
        assert subscriber.wait(timeout=20) == 0
        assert subscriber.lines() == SUBSCRIBER_LINES  # #1 was not lost to the race
    finally:
        subscriber.kill()


def test_kill_server_unsubscribes_so_the_next_message_reaches_nobody(r) -> None:
    subscriber = start_subscriber()
    try:
        assert r.publish(CHANNEL, "before") == 1
        assert r.publish(CHANNEL, KILL_SERVER) == 1
        assert subscriber.wait(timeout=20) == 0
    finally:
        subscriber.kill()
    # It waited for the server to confirm UNSUBSCRIBE before exiting: no longer counted.
    assert subscriber_count(r) == 0
    assert r.publish(CHANNEL, "Holberton Student #3 starts course") == 0  # nobody listens
    assert subscriber.messages() == ["before", KILL_SERVER]


def test_subscriber_output_arrives_line_by_line_when_piped(r) -> None:
    subscriber = start_subscriber()  # stdout is a file, not a terminal
    try:
        r.publish(CHANNEL, "first")
        # Seen while the process still runs: each line is flushed as printed.
        subscriber.wait_for_output(lambda lines: "first" in lines, timeout=20)
        assert subscriber.running
        r.publish(CHANNEL, KILL_SERVER)
        assert subscriber.wait(timeout=20) == 0
    finally:
        subscriber.kill()


def test_a_message_published_before_the_subscriber_subscribed_is_lost(r) -> None:
    # The race the lesson explains: publish first, subscribe after.
    assert r.publish(CHANNEL, "too early") == 0
    subscriber = start_subscriber()
    try:
        r.publish(CHANNEL, KILL_SERVER)
        assert subscriber.wait(timeout=20) == 0
    finally:
        subscriber.kill()
    assert subscriber.messages() == [KILL_SERVER]


def test_delays_count_from_one_start_like_the_original_timers(monkeypatch, capsys) -> None:
    clock = {"now": 1000.0}
    sent: list[tuple[float, str]] = []

    class FakeClient:
        def publish(self, channel: str, message: str) -> int:
            sent.append((round(clock["now"] - 1000.0, 6), message))
            return 0

    monkeypatch.setattr(pubsub.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(pubsub.time, "sleep", lambda s: clock.update(now=clock["now"] + s))
    pubsub.run_publisher(FakeClient())  # type: ignore[arg-type]
    # At 100, 200, 300, 400 ms from the start, not 100 ms after the previous one.
    assert sent == [(delay / 1000, message) for message, delay in pubsub.MESSAGES]
    assert [delay for _, delay in pubsub.MESSAGES] == [100, 200, 300, 400]
    assert capsys.readouterr().out.splitlines() == PUBLISHER_LINES[1:]


@pytest.mark.parametrize("role", ["subscriber", "publisher"])
def test_redis_down_prints_the_original_line_and_a_fix_then_fails(role: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_cli(role, url)
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert len(lines) >= 2
    assert all(line.startswith(NOT_CONNECTED.format(error="")) for line in lines[:-1])
    assert "Connection refused" in lines[0]
    assert lines[-1].startswith(f"REDIS_URL is set to {url}: start that server")
    assert "Traceback" not in result.stderr + result.stdout


def test_subscriber_says_so_when_redis_goes_away(tmp_path: Path, monkeypatch) -> None:
    info = start_server(tmp_path)  # a server of its own, which we stop under it
    try:
        monkeypatch.setenv("REDIS_URL", info.url)
        subscriber = start_subscriber()
    finally:
        stop_server(tmp_path)
    try:
        assert subscriber.wait(timeout=30) == 1
    finally:
        subscriber.kill()
    lines = subscriber.lines()
    assert lines[0] == CONNECTED
    assert lines[1].startswith(NOT_CONNECTED.format(error=""))
    assert lines[2].startswith(f"REDIS_URL is set to {info.url}")
    assert "Traceback" not in subscriber.output()


def test_a_stuck_subscriber_loses_what_was_delivered_to_it(r) -> None:
    subscriber = start_subscriber(hang_after=2)
    try:
        replies = [r.publish(CHANNEL, f"message {i}") for i in range(1, 6)]
        subscriber.wait_for_output(lambda lines: len(lines) > 2, timeout=20)
    finally:
        subscriber.kill()
    assert replies == [1] * 5  # PUBLISH says every message reached a subscriber...
    assert subscriber.messages() == ["message 1", "message 2"]  # ...only two were handled


def test_listener_receives_channels_and_patterns_in_order(r) -> None:
    with MessageListener(r, channels=["lesson05:test"], patterns=["holberton*"]) as listener:
        # start() returned after the server confirmed both subscriptions.
        assert r.publish("lesson05:test", "a") == 1
        assert r.publish(CHANNEL, "b") == 1
        assert r.publish("holberton news", "c") == 1
        assert r.publish("elsewhere", "d") == 0
        assert listener.wait_for(3, timeout=10)
    assert not listener.running
    got = [(n.channel, n.data, n.pattern) for n in listener.messages]
    assert got == [
        ("lesson05:test", "a", None),
        (CHANNEL, "b", "holberton*"),
        ("holberton news", "c", "holberton*"),
    ]
    assert subscriber_count(r, "lesson05:test") == 0  # stop() unsubscribed
    assert r.pubsub_numpat() == 0


def test_listener_ends_quietly_when_redis_goes_away(tmp_path: Path) -> None:
    import redis

    info = start_server(tmp_path)
    client = redis.Redis.from_url(info.url, decode_responses=True)
    listener = MessageListener(client, channels=["lesson05:gone"]).start()
    stop_server(tmp_path)
    assert not listener.wait_for(1, timeout=10)
    listener.stop()
    assert not listener.running
    assert isinstance(listener.error, redis.ConnectionError)


def test_message_log_widget_shows_messages_and_stops(r) -> None:
    log = MessageLog(r, patterns=["holberton*"])
    try:
        assert "listening" in log.status_line.value
        r.publish(CHANNEL, "Holberton Student #1 starts course")
        r.publish("holberton alerts", "<b>escaped</b>")
        assert log.listener.wait_for(2, timeout=10)
        log.stop_button.click()  # what a learner does
        assert not log.listener.running and log.stop_button.disabled
        assert log.text().splitlines() == [
            f"[{CHANNEL}] (via holberton*) Holberton Student #1 starts course",
            "[holberton alerts] (via holberton*) <b>escaped</b>",
        ]
        assert "&lt;b&gt;escaped" in log.lines_view.value
        assert "stopped" in log.status_line.value and "2 message(s)" in log.status_line.value
        assert r.publish(CHANNEL, "after stop") == 0
    finally:
        log.close()
