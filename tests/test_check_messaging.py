"""The checker's tasks 5-subscriber and 5-publisher: the reference solutions
pass, the lesson's skeletons fail, and plausible wrong versions fail with the
requirement they break named."""

from __future__ import annotations

from pathlib import Path

from check_files import skeleton, write

from helpers.check import find_task, grade
from helpers.check.tasks.messaging import SUBSCRIBER_NAMES

SUBSCRIBES, PRINTS, UNSUBSCRIBES, QUITS, NO_THIRD = SUBSCRIBER_NAMES
LINES = "prints the connected line, then `About to send <message>` for each call, in order"
ORDER = "publishes the four messages on `holberton school channel`, in the calls' order"
WAITS = "each call waits its time (100, 200, 300, 400 ms) before publishing"
COURSE_SUBSCRIBER = (
    "the subscriber never receives #3: the course's prints #1, #2, `KILL_SERVER`, and quits"
)
FUNCTION = (
    "publish_message(client, message, time_ms) waits time_ms ms, prints "
    "`About to send <message>`, then publishes it"
)
QUIET = 'importing the file runs nothing (the program runs under `if __name__ == "__main__":`)'

SUBSCRIBER_HEAD = """
from helpers.client import connect

client = connect()
pubsub = client.pubsub(ignore_subscribe_messages=True)
pubsub.subscribe({channel!r})
"""

PUBLISHER = """
import time

from helpers.client import connect

CHANNEL = "holberton school channel"


def publish_message(client, message, time_ms):
{body}


def main():
    client = connect()
{calls}


if __name__ == "__main__":
    main()
"""
CALLS = [
    ("Holberton Student #1 starts course", 100),
    ("Holberton Student #2 starts course", 200),
    ("KILL_SERVER", 300),
    ("Holberton Student #3 starts course", 400),
]
SLEEP_PRINT_PUBLISH = """
    time.sleep(time_ms / 1000)
    print(f"About to send {message}", flush=True)
    client.publish(CHANNEL, message)
"""


def subscriber(loop: str, channel: str = "holberton school channel") -> str:
    return SUBSCRIBER_HEAD.format(channel=channel) + loop


def publisher(body: str = SLEEP_PRINT_PUBLISH, calls: list[tuple[str, int]] = CALLS) -> str:
    lines = "\n".join(f"    publish_message(client, {m!r}, {t})" for m, t in calls)
    return PUBLISHER.format(body=body.strip("\n"), calls=lines)


def test_the_lessons_subscriber_skeleton_fails_every_requirement(tmp_path: Path) -> None:
    report = grade("5-subscriber", skeleton("5-subscriber", tmp_path))
    assert report.failed() == SUBSCRIBER_NAMES  # it crashes before subscribing
    assert "NotImplementedError" in report.requirements[0].got


def test_the_lessons_publisher_skeleton_fails(tmp_path: Path) -> None:
    report = grade("5-publisher", skeleton("5-publisher", tmp_path))
    assert report.failed() == [LINES, ORDER, WAITS, COURSE_SUBSCRIBER, FUNCTION]


def test_a_subscriber_that_keeps_listening_fails(tmp_path: Path) -> None:
    source = subscriber("for message in pubsub.listen():\n    print(message['data'], flush=True)\n")
    report = grade("5-subscriber", write(tmp_path, "5-subscriber", source))
    assert report.failed() == [UNSUBSCRIBES, QUITS, NO_THIRD]
    assert "still running" in report.requirements[3].got


def test_a_subscriber_that_unsubscribes_but_stays_fails_to_quit(tmp_path: Path) -> None:
    source = "import time\n" + subscriber(
        "for message in pubsub.listen():\n"
        "    print(message['data'], flush=True)\n"
        "    if message['data'] == 'KILL_SERVER':\n"
        "        pubsub.unsubscribe()\n"
        "time.sleep(60)\n"
    )
    report = grade("5-subscriber", write(tmp_path, "5-subscriber", source))
    assert report.failed() == [QUITS]


def test_a_subscriber_that_breaks_without_unsubscribing_fails(tmp_path: Path) -> None:
    source = subscriber(
        "for message in pubsub.listen():\n"
        "    print(message['data'], flush=True)\n"
        "    if message['data'] == 'KILL_SERVER':\n"
        "        break\n"
    )
    report = grade("5-subscriber", write(tmp_path, "5-subscriber", source))
    assert UNSUBSCRIBES in report.failed()
    assert SUBSCRIBES not in report.failed() and PRINTS not in report.failed()
    assert QUITS not in report.failed()


def test_a_subscriber_on_another_channel_fails_at_once(tmp_path: Path) -> None:
    source = subscriber(
        "for message in pubsub.listen():\n    print(message['data'], flush=True)\n",
        channel="holberton_school_channel",
    )
    report = grade("5-subscriber", write(tmp_path, "5-subscriber", source))
    assert report.failed() == SUBSCRIBER_NAMES
    assert "holberton_school_channel" in report.requirements[0].got


def test_a_subscriber_printing_whole_messages_fails_the_lines(tmp_path: Path) -> None:
    source = subscriber(
        "for message in pubsub.listen():\n"
        "    print(message, flush=True)\n"
        "    if message['data'] == 'KILL_SERVER':\n"
        "        pubsub.unsubscribe()\n"
    )
    report = grade("5-subscriber", write(tmp_path, "5-subscriber", source))
    assert report.failed() == [PRINTS]


def test_a_publisher_that_does_not_wait_fails(tmp_path: Path) -> None:
    body = '    print(f"About to send {message}", flush=True)\n    client.publish(CHANNEL, message)'
    report = grade("5-publisher", write(tmp_path, "5-publisher", publisher(body)))
    assert WAITS in report.failed() and FUNCTION in report.failed()
    assert LINES not in report.failed() and ORDER not in report.failed()


def test_a_publisher_sending_kill_server_last_fails(tmp_path: Path) -> None:
    calls = [CALLS[0], CALLS[1], (CALLS[3][0], 300), (CALLS[2][0], 400)]
    report = grade("5-publisher", write(tmp_path, "5-publisher", publisher(calls=calls)))
    assert report.failed() == [LINES, ORDER, COURSE_SUBSCRIBER]


def test_a_publisher_on_another_channel_fails(tmp_path: Path) -> None:
    body = SLEEP_PRINT_PUBLISH.replace("CHANNEL, message", "'holberton_school_channel', message")
    report = grade("5-publisher", write(tmp_path, "5-publisher", publisher(body)))
    assert report.failed() == [ORDER, WAITS, COURSE_SUBSCRIBER, FUNCTION]


def test_a_publisher_with_timers_like_set_timeout_passes(tmp_path: Path) -> None:
    # threading.Timer is the literal setTimeout: the original's 100/200/300/400 ms.
    body = (
        "    import threading\n\n"
        "    def send():\n"
        '        print(f"About to send {message}", flush=True)\n'
        "        client.publish(CHANNEL, message)\n\n"
        "    threading.Timer(time_ms / 1000, send).start()"
    )
    report = grade("5-publisher", write(tmp_path, "5-publisher", publisher(body)))
    assert report.passed, report.lines()


def test_a_publisher_that_runs_when_imported_fails_the_import(tmp_path: Path) -> None:
    source = publisher().replace('if __name__ == "__main__":\n    main()', "main()")
    report = grade("5-publisher", write(tmp_path, "5-publisher", source))
    assert QUIET in report.failed()


def test_the_contracts_name_the_channel_and_the_redis_url() -> None:
    for name in ("5-subscriber", "5-publisher"):
        contract = find_task(name).contract
        assert "holberton school channel" in contract and "REDIS_URL" in contract
    assert "publish_message(client, message, time_ms)" in find_task("5-publisher").contract
