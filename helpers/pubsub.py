"""Publish/subscribe: the original's ``5-publisher`` and ``5-subscriber``.

The subscriber listens on :data:`CHANNEL` and prints every message; on
``KILL_SERVER`` it prints it, unsubscribes and exits 0. The publisher sends
four messages, each :func:`publish_message` waiting until its time (100, 200,
300, 400 ms) counted from the start, as the original's ``setTimeout`` timers
did. Each runs as its own process::

    python -m helpers.pubsub subscriber
    python -m helpers.pubsub publisher

The subscriber never prints ``Holberton Student #3 starts course``: it has
quit when #3 is published, and pub/sub delivers a message only to whoever is
subscribed at that instant. Nothing is stored. Publish #1 before the
subscriber has subscribed and #1 is lost for the same reason. Two guards:
:meth:`SubscriberProcess.wait_subscribed` waits until ``PUBSUB NUMSUB`` counts
the new subscriber, and the publisher's command line first waits (up to
5 s, ``--wait-for-subscriber``) for a subscriber, so the two commands started
at the same moment still print the original's lines. ``--wait-for-subscriber
0`` is the original's behaviour, race included.

The two programs are the reference solutions of tasks ``5-subscriber`` and
``5-publisher`` (:mod:`helpers.programs.t5_subscriber`,
:mod:`helpers.programs.t5_publisher`): this module imports their functions
and adds what the course needs around them (``--hang-after``, the wait for a
subscriber, the Redis-down message). From Python, :func:`start_subscriber`
runs the subscriber as a background process logging to a file, and
:class:`MessageListener` keeps a subscription in a background thread of the
current process (the model behind the live message log of
:mod:`helpers.widgets.messages`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import redis

from helpers.client import NOT_CONNECTED, RedisUnavailable, connect, fix_hint
from helpers.processes import BackgroundProcess, P
from helpers.programs import t5_subscriber as subscriber
from helpers.programs.t5_publisher import ABOUT_TO_SEND, MESSAGES, publish_message, run_publisher
from helpers.programs.t5_subscriber import CHANNEL, KILL_SERVER, show_message
from helpers.server import logs_dir, redis_url

__all__ = [
    "ABOUT_TO_SEND",
    "CHANNEL",
    "KILL_SERVER",
    "MESSAGES",
    "MessageListener",
    "Notification",
    "SubscriberProcess",
    "main",
    "print_unavailable",
    "publish_message",
    "run_command_line",
    "run_course_process",
    "run_publisher",
    "run_publisher_process",
    "run_subscriber",
    "start_logged",
    "start_subscriber",
    "subscriber_count",
    "wait_for_subscribers",
]

# --- the original's two programs: the reference solutions ---------------------------


def run_subscriber(
    client: redis.Redis,
    channel: str = CHANNEL,
    *,
    hang_after: int | None = None,
    out: Callable[[str], None] | None = None,
) -> list[str]:
    """The original subscriber (:func:`helpers.programs.t5_subscriber.run_subscriber`):
    print (or ``out``) each message on ``channel`` until ``KILL_SERVER``, then
    unsubscribe; returns what it received. ``hang_after=N``: stuck for ever
    after N messages (lesson 11's crashes)."""
    show = out or show_message
    if hang_after is None:
        return subscriber.run_subscriber(client, channel, show)
    count = 0

    def show_then_hang(text: str) -> None:
        nonlocal count
        show(text)
        count += 1
        if count >= hang_after and text != KILL_SERVER:
            threading.Event().wait()  # stuck: messages pile up unread, then die with us

    return subscriber.run_subscriber(client, channel, show_then_hang)


def _await_unsubscribed(pubsub: redis.client.PubSub, timeout: float = 5.0) -> None:
    """Read until the server has confirmed every unsubscription, so that once
    we return (or exit) ``PUBSUB NUMSUB`` no longer counts us."""
    deadline = time.monotonic() + timeout
    while pubsub.subscribed and time.monotonic() < deadline:
        pubsub.get_message(timeout=0.1)


# --- waiting for subscribers: the race between the two processes ----------------


def subscriber_count(client: redis.Redis, channel: str = CHANNEL) -> int:
    """How many clients are subscribed to ``channel`` right now (``PUBSUB NUMSUB``)."""
    return int(dict(client.pubsub_numsub(channel)).get(channel, 0))


def wait_for_subscribers(
    client: redis.Redis, channel: str = CHANNEL, count: int = 1, timeout: float = 10.0
) -> int:
    """Block until at least ``count`` clients are subscribed to ``channel``;
    returns the count. Raises ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        current = subscriber_count(client, channel)
        if current >= count:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"{current} subscriber(s) on {channel!r} after {timeout}s")
        time.sleep(0.02)


# --- background processes that log to a file --------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "x"


def start_logged(
    module_args: Sequence[str], name: str, cls: type[P] = BackgroundProcess, **fields: object
) -> P:
    """Run ``python -m <module_args>`` in the background (its own session, so
    a kill reaches only it) with the course's Redis, output to
    ``logs_dir()/<name>-<id>.log``; ``cls`` and ``fields`` for a subclass."""
    return cls.start(
        module_args,
        log_file=logs_dir() / f"{_slug(name)}-{uuid.uuid4().hex[:8]}.log",
        env=dict(os.environ, REDIS_URL=redis_url()),
        **fields,
    )


@dataclass(kw_only=True)
class SubscriberProcess(BackgroundProcess):
    """``python -m helpers.pubsub subscriber`` running in the background."""

    channel: str = CHANNEL
    baseline: int = 0  # subscribers already on the channel before it started

    def wait_subscribed(self, client: redis.Redis | None = None, timeout: float = 10.0) -> int:
        """Block until the server counts this subscriber on its channel
        (``PUBSUB NUMSUB`` above what it was before); returns that count."""
        client = client or connect(quiet=True)
        deadline = time.monotonic() + timeout
        while True:
            current = subscriber_count(client, self.channel)
            if current > self.baseline:
                return current
            if not self.running:
                raise RuntimeError(
                    f"the subscriber exited with {self.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"not subscribed after {timeout}s:\n{self.output()}")
            time.sleep(0.02)

    def messages(self) -> list[str]:
        """The messages it printed (its output without the connected line)."""
        return [line for line in self.lines() if line != "Redis client connected to the server"]


def start_subscriber(
    channel: str = CHANNEL,
    *,
    hang_after: int | None = None,
    wait: bool = True,
    client: redis.Redis | None = None,
) -> SubscriberProcess:
    """Start the subscriber as a separate process, its output in a log file.

    With ``wait`` (the default) it returns only once the subscriber is
    subscribed, so nothing published afterwards can be missed.
    """
    client = client or connect(quiet=True)
    baseline = subscriber_count(client, channel)
    args = ["helpers.pubsub", "subscriber"]
    if channel != CHANNEL:
        args += ["--channel", channel]
    if hang_after is not None:
        args += ["--hang-after", str(hang_after)]
    subscriber = start_logged(
        args, f"subscriber-{channel}", SubscriberProcess, channel=channel, baseline=baseline
    )
    if wait:
        try:
            subscriber.wait_subscribed(client)
        except BaseException:
            subscriber.kill()
            raise
    return subscriber


def run_course_process(
    module_args: Sequence[str], timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module_args>`` to the end with the course's Redis;
    output captured (for a notebook to print)."""
    return subprocess.run(
        [sys.executable, "-m", *module_args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONUNBUFFERED="1", REDIS_URL=redis_url()),
        stdin=subprocess.DEVNULL,
    )


def run_publisher_process(timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m helpers.pubsub publisher`` to the end; its output captured."""
    return run_course_process(["helpers.pubsub", "publisher"], timeout)


# --- a subscription in a background thread of this process ------------------------


@dataclass(frozen=True)
class Notification:
    """One message received by a :class:`MessageListener`."""

    channel: str
    data: str
    pattern: str | None = None  # the pattern that matched, for PSUBSCRIBE


class MessageListener:
    """Subscribe to channels and/or patterns in a background thread and keep
    every message received, in order.

    :meth:`start` returns once the server has confirmed every subscription,
    so whatever is published after it is received. :meth:`stop` ends the
    thread and closes the subscription. ``on_message`` is called (in the
    background thread) for each :class:`Notification`.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        channels: Iterable[str] = (),
        patterns: Iterable[str] = (),
        on_message: Callable[[Notification], None] | None = None,
        poll_s: float = 0.05,
    ) -> None:
        self.client = client
        self.channels = list(channels)
        self.patterns = list(patterns)
        if not self.channels and not self.patterns:
            raise ValueError("give at least one channel or pattern")
        self.on_message = on_message
        self.poll_s = poll_s
        self.messages: list[Notification] = []
        self.error: Exception | None = None
        self._received = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: redis.client.PubSub | None = None

    @property
    def running(self) -> bool:
        """True while the background thread listens."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 5.0) -> MessageListener:
        """Subscribe, wait for the server's confirmations, then listen in a thread."""
        if self.running:
            return self
        pubsub = self.client.pubsub()
        if self.channels:
            pubsub.subscribe(*self.channels)
        if self.patterns:
            pubsub.psubscribe(*self.patterns)
        expected = len(set(self.channels)) + len(set(self.patterns))
        confirmed = 0
        deadline = time.monotonic() + timeout
        while confirmed < expected:
            if time.monotonic() > deadline:
                pubsub.close()
                raise TimeoutError(f"subscriptions not confirmed after {timeout}s")
            message = pubsub.get_message(timeout=0.1)
            if message and message["type"] in ("subscribe", "psubscribe"):
                confirmed += 1
            elif message:
                self._keep(message)
        self._pubsub = pubsub
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="message-listener", daemon=True)
        self._thread.start()
        return self

    def _keep(self, message: dict) -> None:
        if message["type"] not in ("message", "pmessage"):
            return
        notification = Notification(message["channel"], message["data"], message.get("pattern"))
        with self._received:
            self.messages.append(notification)
            self._received.notify_all()
        if self.on_message is not None:
            self.on_message(notification)

    def _listen(self) -> None:
        assert self._pubsub is not None
        try:
            while not self._stop.is_set():
                message = self._pubsub.get_message(timeout=self.poll_s)
                if message:
                    self._keep(message)
        except redis.RedisError as error:  # Redis went away: keep the reason, end quietly
            self.error = error
        finally:
            with self._received:
                self._received.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` messages have arrived in total; False on timeout."""
        with self._received:
            return (
                self._received.wait_for(
                    lambda: len(self.messages) >= count or not self.running, timeout
                )
                and len(self.messages) >= count
            )

    def stop(self, timeout: float = 5.0) -> None:
        """End the background thread, unsubscribe (confirmed by the server:
        once this returns, ``PUBSUB`` counts us no more) and close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                if self._pubsub.subscribed:  # unsubscribe, and wait for the server to confirm
                    if self.channels:
                        self._pubsub.unsubscribe()
                    if self.patterns:
                        self._pubsub.punsubscribe()
                    _await_unsubscribed(self._pubsub)
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None

    def __enter__(self) -> MessageListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- command line -------------------------------------------------------------------


def print_unavailable(error: Exception) -> int:
    """For a command line: print the original's error line and the fix-it
    sentence (no traceback); returns the exit code, 1. Starts no server."""
    from helpers.server import configured_url  # could join the top-level imports

    if isinstance(error, RedisUnavailable):
        print(error, flush=True)  # connect() already printed the original's lines
    else:
        print(NOT_CONNECTED.format(error=str(error) or type(error).__name__), flush=True)
        url = configured_url()
        if url is None:
            print(
                "No course server is running: start it with `python -m helpers.server start` "
                "(or set REDIS_URL to a Redis you run).",
                flush=True,
            )
        else:
            print(fix_hint(url), flush=True)
    return 1


def run_command_line(body: Callable[[], object]) -> int:
    """Run a command line's ``body``; its exit code: 0, 1 with the original's
    line and the fix-it sentence when Redis is down (no traceback), 130 on Ctrl+C."""
    try:
        body()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        return print_unavailable(error)
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.pubsub", description="The original's publisher and subscriber."
    )
    parser.add_argument("role", choices=["subscriber", "publisher"])
    parser.add_argument("--channel", default=CHANNEL, help=f"default: {CHANNEL!r}")
    parser.add_argument(
        "--hang-after",
        type=int,
        default=None,
        metavar="N",
        help="subscriber: stop reading after N messages, as if stuck (crash experiments)",
    )
    parser.add_argument(
        "--wait-for-subscriber",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="publisher: first wait up to this long until PUBSUB NUMSUB counts a subscriber "
        "(default 5; 0 starts the timers at once, like the original, and races the subscriber)",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # one line at a time, even when piped

    def run() -> None:
        client = connect()
        if args.role == "subscriber":
            run_subscriber(client, args.channel, hang_after=args.hang_after)
        else:
            if args.wait_for_subscriber > 0:
                # Not in the original: a subscriber started at the same moment needs a
                # few hundred ms to subscribe, and #1 (at 100 ms) would reach nobody.
                with contextlib.suppress(TimeoutError):
                    wait_for_subscribers(client, args.channel, 1, args.wait_for_subscriber)
            run_publisher(client, channel=args.channel)
        client.close()

    return run_command_line(run)


if __name__ == "__main__":
    sys.exit(main())
