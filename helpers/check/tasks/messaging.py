"""Tasks 5: the subscriber and the publisher on ``holberton school channel``.

The subscriber is started in the background; once ``PUBSUB NUMSUB`` counts
it, the checker publishes the messages itself, ``KILL_SERVER`` last, then #3
once it has quit. The publisher runs to its end while the checker listens
twice: with a plain subscription that keeps every message (order, timing)
and with the course's own subscriber, which quits on ``KILL_SERVER`` and so
must never receive #3.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator

import redis

from helpers.check.driver import after_import, call_driver, import_is_quiet
from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Sandbox, crash_text
from helpers.check.task import Task
from helpers.processes import BackgroundProcess
from helpers.programs.t0_redis_client import CONNECTED
from helpers.programs.t5_publisher import ABOUT_TO_SEND, MESSAGES
from helpers.programs.t5_subscriber import CHANNEL, KILL_SERVER, run_subscriber
from helpers.pubsub import MessageListener, Notification, subscriber_count

FIRST, SECOND, _, THIRD = (message for message, _ in MESSAGES)
OWN_MESSAGE = "Any message: the checker's own"  # not the original's: each message is printed
SUBSCRIBE_S = 5.0  # to start and subscribe (an interpreter, redis, a connection)
QUIT_S = 2.0  # to quit once KILL_SERVER is out
MIN_SPREAD_S = 0.15  # #1 (100 ms) to #3 (400 ms) is 300 ms when each call waits


def labels(lines: Iterable[str]) -> list[str]:
    """``lines`` as a report shows them: the original's messages as ``#1``,
    ``#2``, ``#3`` (``About to send #1``...), the connected line as
    ``<connected line>``; anything else as it is."""
    short = {CONNECTED: "<connected line>"}
    for message in (FIRST, SECOND, THIRD):
        number = message.split()[2]  # "Holberton Student #1 starts course" -> "#1"
        short[message] = number
        short[ABOUT_TO_SEND.format(message=message)] = ABOUT_TO_SEND.format(message=number)
    return [short.get(line, line) for line in lines]


# --- 5-subscriber ----------------------------------------------------------------------


def unsubscribe_calls(client: redis.Redis) -> int:
    """How many ``UNSUBSCRIBE`` commands the server has run (``INFO commandstats``)."""
    return int(client.info("commandstats").get("cmdstat_unsubscribe", {}).get("calls", 0))


def wait_subscribed(
    sandbox: Sandbox, process: BackgroundProcess, timeout_s: float = SUBSCRIBE_S
) -> str:
    """Wait until something subscribes: ``""`` once the server counts a
    subscriber on :data:`CHANNEL` (``PUBSUB CHANNELS``); else why not (a crash, another channel, a
    pattern, nothing within ``timeout_s``), as soon as that is known."""
    client = sandbox.client
    deadline = time.monotonic() + timeout_s
    while True:
        channels = client.pubsub_channels()  # every channel someone is subscribed to
        if CHANNEL in channels:
            return ""
        if channels:
            return f"subscribed to {sorted(channels)} instead"
        if client.pubsub_numpat():
            return "subscribed to a pattern (PSUBSCRIBE) instead of the channel"
        if not process.running:
            output = sandbox.unstaged(process.output())
            if process.returncode == 0:
                return f"it exited without subscribing: {' | '.join(output.splitlines()[-3:])}"
            return crash_text(process.returncode, output)
        if time.monotonic() > deadline:
            return f"not subscribed after {timeout_s:g} s"
        time.sleep(0.02)


def wait_unsubscribed(client: redis.Redis, timeout_s: float = 1.0) -> None:
    """Give the server a moment to drop a subscriber whose process has exited."""
    deadline = time.monotonic() + timeout_s
    while subscriber_count(client) and time.monotonic() < deadline:
        time.sleep(0.02)


SUBSCRIBER_NAMES = [
    f"subscribes to `{CHANNEL}`",
    "prints the connected line, then each message as it arrives, `KILL_SERVER` included",
    "`KILL_SERVER`: unsubscribes (sends `UNSUBSCRIBE`)",
    "`KILL_SERVER`: quits by itself (exit status 0); a subscriber that keeps listening fails",
    "never receives #3: published after `KILL_SERVER`, it reaches nobody",
]
SENT = [FIRST, SECOND, OWN_MESSAGE, KILL_SERVER]


def grade_subscriber(sandbox: Sandbox) -> Iterator[Requirement]:
    process = sandbox.start(name="subscriber")
    problem = wait_subscribed(sandbox, process)
    yield Requirement(SUBSCRIBER_NAMES[0], not problem, f"1 subscriber on {CHANNEL!r}", problem)
    if problem:
        for name in SUBSCRIBER_NAMES[1:]:
            yield Requirement(name, False, "a subscriber", "nothing to check: it did not subscribe")
        return
    before = unsubscribe_calls(sandbox.client)
    for message in SENT:
        sandbox.client.publish(CHANNEL, message)
    try:
        process.wait(timeout=QUIT_S)
    except subprocess.TimeoutExpired:
        pass
    else:
        wait_unsubscribed(sandbox.client)
    third = sandbox.client.publish(CHANNEL, THIRD)
    if third and process.running:  # let it print #3 if it still listens
        with contextlib.suppress(TimeoutError):
            process.wait_for_output(lambda lines: THIRD in lines, timeout=0.5)
    output = sandbox.unstaged(process.output())
    lines = output.splitlines()
    yield requirement(
        SUBSCRIBER_NAMES[1], labels([CONNECTED, *SENT]), labels(x for x in lines if x != THIRD)
    )
    calls = unsubscribe_calls(sandbox.client) - before
    yield Requirement(
        SUBSCRIBER_NAMES[2],
        calls > 0,
        "an UNSUBSCRIBE after KILL_SERVER",
        f"{calls} UNSUBSCRIBE",
    )
    code = process.returncode
    quit_text = (
        f"still running {QUIT_S:g} s after KILL_SERVER"
        if code is None
        else "exit status 0"
        if code == 0
        else crash_text(code, output)
    )
    yield Requirement(SUBSCRIBER_NAMES[3], code == 0, "exit status 0", quit_text)
    printed = THIRD in lines
    yield Requirement(
        SUBSCRIBER_NAMES[4],
        third == 0 and not printed,
        "PUBLISH answers 0, and #3 is not printed",
        f"PUBLISH answered {third}" + (", and it printed #3" if printed else ""),
    )


# --- 5-publisher -------------------------------------------------------------------------

PUBLISHER_LINES = [CONNECTED, *(ABOUT_TO_SEND.format(message=m) for m, _ in MESSAGES)]
SENT_BY_PUBLISHER = [message for message, _ in MESSAGES]
CHECK_MESSAGE = "The checker's message"
CHECK_MS = 300
DRIVER = f"""
import time
listening = client.pubsub(ignore_subscribe_messages=True)
listening.subscribe({CHANNEL!r})
while not dict(client.pubsub_numsub({CHANNEL!r})).get({CHANNEL!r}):
    listening.get_message(timeout=0.01)  # reads the confirmation
start = time.monotonic()
task.publish_message(client, {CHECK_MESSAGE!r}, {CHECK_MS})
message, deadline = None, start + {CHECK_MS / 1000 + 1}
while message is None and time.monotonic() < deadline:
    message = listening.get_message(timeout=0.1)
waited = time.monotonic() - start
print("received:", message and message["data"], flush=True)
print("waited {CHECK_MS} ms before publishing:", waited >= {(CHECK_MS - 20) / 1000}, flush=True)
"""


class CourseSubscriber:
    """The course's subscriber (the reference's ``run_subscriber``) in a
    thread of the checker: quits on ``KILL_SERVER``, keeps what it printed."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.printed: list[str] = []
        self.thread = threading.Thread(target=self._run, name="course-subscriber", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(redis.RedisError):  # the sandbox's Redis stopped under it
            run_subscriber(self.client, CHANNEL, self.printed.append)

    def close(self) -> None:
        """End it if the publisher did not: send ``KILL_SERVER`` ourselves."""
        if self.thread.is_alive():
            with contextlib.suppress(redis.RedisError):
                self.client.publish(CHANNEL, KILL_SERVER)
            self.thread.join(1)


def wait_for_count(client: redis.Redis, count: int, timeout_s: float = SUBSCRIBE_S) -> None:
    """Block until ``PUBSUB NUMSUB`` counts ``count`` subscribers on :data:`CHANNEL`."""
    deadline = time.monotonic() + timeout_s
    while subscriber_count(client) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the checker's subscribers were not counted after {timeout_s:g} s")
        time.sleep(0.01)


def grade_publisher(sandbox: Sandbox) -> Iterator[Requirement]:
    arrivals: list[float] = []

    def arrived(_: Notification) -> None:
        arrivals.append(time.monotonic())

    listener = MessageListener(sandbox.client, channels=[CHANNEL], on_message=arrived).start()
    course = CourseSubscriber(sandbox.client)
    try:
        wait_for_count(sandbox.client, 2)
        run = sandbox.run(timeout_s=5)
        if KILL_SERVER in (n.data for n in listener.messages):
            course.thread.join(QUIT_S)  # it quits on KILL_SERVER
        listener.wait_for(len(MESSAGES), timeout=0.5 if run.problem() is None else 0)
    finally:
        listener.stop()
        course_printed = list(course.printed)  # before close() ends it with a KILL_SERVER of ours
        course.close()
    problem = run.problem()
    yield requirement(
        "prints the connected line, then `About to send <message>` for each call, in order",
        labels(PUBLISHER_LINES),
        problem or labels(run.lines),
    )
    yield requirement(
        f"publishes the four messages on `{CHANNEL}`, in the calls' order",
        labels(SENT_BY_PUBLISHER),
        labels(n.data for n in listener.messages),
    )
    spread = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    yield Requirement(
        "each call waits its time (100, 200, 300, 400 ms) before publishing",
        len(arrivals) == len(MESSAGES) and spread >= MIN_SPREAD_S,
        f"4 messages, #1 to #3 at least {MIN_SPREAD_S:g} s apart",
        f"{len(arrivals)} message(s), {spread:.3f} s from the first to the last",
    )
    yield requirement(
        "the subscriber never receives #3: the course's prints #1, #2, `KILL_SERVER`, and quits",
        labels([FIRST, SECOND, KILL_SERVER]),
        labels(course_printed),
    )
    driver = call_driver(sandbox, DRIVER, timeout_s=5)
    yield import_is_quiet(driver)
    _, calls = after_import(driver)
    yield requirement(
        "publish_message(client, message, time_ms) waits time_ms ms, prints "
        "`About to send <message>`, then publishes it",
        [
            ABOUT_TO_SEND.format(message=CHECK_MESSAGE),
            f"received: {CHECK_MESSAGE}",
            f"waited {CHECK_MS} ms before publishing: True",
        ],
        driver.problem() or calls,
    )


TIMES = "\n".join(
    f"    publish_message(client, {message!r}, {time_ms})" for message, time_ms in MESSAGES
)

TASKS = [
    Task(
        "5-subscriber",
        "05",
        "program",
        f"print each message on `{CHANNEL}`; on KILL_SERVER unsubscribe and quit",
        f"""
Write a program. Run as `python 5-subscriber.py`, it connects to the Redis
at REDIS_URL (the checker sets it; helpers.client.connect() reads it and
prints the connected line), subscribes to the channel
`{CHANNEL}` and prints each message's text on a line of its
own as it arrives:
    {CONNECTED}
    <message>
    ...
When the message is `{KILL_SERVER}` it prints it, unsubscribes (UNSUBSCRIBE)
and quits by itself, exit status 0. The checker starts it in the background,
waits until PUBSUB NUMSUB counts it, publishes messages itself, then #3 once
it has quit: #3 must reach nobody.
""",
        grade_subscriber,
    ),
    Task(
        "5-publisher",
        "05",
        "program",
        f"four messages on `{CHANNEL}` at 100, 200, 300, 400 ms, each announced",
        f"""
Define publish_message(client, message, time_ms): wait time_ms milliseconds,
print `About to send <message>`, then PUBLISH the message on the channel
`{CHANNEL}` (`client` is a redis.Redis with
decode_responses=True). Run as a program (under `if __name__ == "__main__":`),
connect to REDIS_URL printing the connected line (helpers.client.connect()
does), then make the original's four calls, in this order:
{TIMES}
Output, exactly: the connected line, then `About to send <message>` for each.
The checker listens on the channel, and so does the course's subscriber,
which quits on KILL_SERVER and must never receive #3.
""",
        grade_publisher,
    ),
]
