"""Streams and consumer groups: the notifications of lesson 05, delivered at least once.

Pub/sub (:mod:`helpers.pubsub`) forgets a message as soon as it is sent: a
subscriber that is down, or dies with messages it has not handled yet, loses
them. A Redis *stream* is an append-only log kept in Redis (``XADD``). A
*consumer group* hands each entry to one of its consumers (``XREADGROUP``)
and remembers it as *pending* for that consumer until the consumer
acknowledges it (``XACK``). A consumer that crashes leaves its pending entries
behind; another takes them over (``XAUTOCLAIM``) once they have been idle long
enough. Nothing is lost; a message may be handled twice (a crash between
handling and ``XACK``): delivery is *at least once*.

Command line, each its own process::

    python -m helpers.streams publisher      # XADD the original's four messages
    python -m helpers.streams consumer --name alice [--claim-idle-ms 1000]

The consumer prints each message as the subscriber does, acknowledges it, and
on ``KILL_SERVER`` acknowledges it and exits 0. Started after the publisher it
still gets every message: the stream kept them.

:func:`measure_consumer_down` and :func:`measure_consumer_killed` run the
side-by-side experiment of lesson 11 with real processes: how many messages
pub/sub lost and how many the stream delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import redis

from helpers.client import connect
from helpers.polling import wait_until
from helpers.processes import BackgroundProcess
from helpers.pubsub import (
    ABOUT_TO_SEND,
    KILL_SERVER,
    MESSAGES,
    run_command_line,
    start_logged,
    start_subscriber,
    subscriber_count,
)

STREAM = "holberton school stream"
GROUP = "holberton school subscribers"
FIELD = "message"  # each entry holds one field: the message text
DEFAULT_CLAIM_IDLE_MS = 1000  # idle this long: its consumer is presumed dead


class Entry(NamedTuple):
    """One stream entry: its id and its message (None if it was deleted, or
    if it has no :data:`FIELD`: written by someone else, malformed)."""

    id: str
    message: str | None
    deleted: bool = False  # pending, but no longer in the stream


class AutoClaim(NamedTuple):
    """``XAUTOCLAIM``'s reply, the same on every Redis version."""

    next_id: str  # "0-0" once the whole pending list has been scanned
    entries: list[Entry]  # claimed entries that still exist
    deleted_ids: list[str]  # pending entries no longer in the stream (ids known)
    deleted_unknown: int = 0  # Redis 6.2: deleted entries answered as nil, ids not given


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _entry(raw_id: Any, fields: Any) -> Entry:
    if not fields:  # a pending entry deleted from the stream: (id, None)
        return Entry(_text(raw_id), None, deleted=True)
    data = {_text(k): _text(v) for k, v in dict(fields).items()}
    return Entry(_text(raw_id), data.get(FIELD))


# --- the commands ----------------------------------------------------------------------


def create_group(
    client: redis.Redis, stream: str = STREAM, group: str = GROUP, start_id: str = "0"
) -> bool:
    """``XGROUP CREATE <stream> <group> <start_id> MKSTREAM``: True if created,
    False if the group already existed. ``start_id="0"``: the group starts at
    the beginning of the stream; ``"$"``: only entries added from now on."""
    try:
        client.xgroup_create(stream, group, id=start_id, mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
        return False
    return True


def add_message(client: redis.Redis, message: str, stream: str = STREAM) -> str:
    """``XADD <stream> * message <message>``: append one entry; returns its id."""
    return _text(client.xadd(stream, {FIELD: message}))


def read_group(
    client: redis.Redis,
    consumer: str,
    *,
    stream: str = STREAM,
    group: str = GROUP,
    count: int = 1,
    block_ms: int | None = None,
    own_pending: bool = False,
) -> list[Entry]:
    """``XREADGROUP``: up to ``count`` entries never delivered to the group
    (id ``>``), waiting up to ``block_ms`` for one. With ``own_pending``, the
    entries already delivered to ``consumer`` and not acknowledged (id ``0``):
    what a restarted consumer must finish first."""
    reply = client.xreadgroup(
        group, consumer, {stream: "0" if own_pending else ">"}, count=count, block=block_ms
    )
    if not reply:
        return []
    per_stream = reply.values() if isinstance(reply, dict) else (items for _, items in reply)
    entries: list[Entry] = []
    for items in per_stream:
        if len(items) == 1 and isinstance(items[0], list):  # redis-py's RESP3 shape
            items = items[0]
        entries.extend(_entry(raw_id, fields) for raw_id, fields in items)
    return entries


def acknowledge(
    client: redis.Redis, ids: Iterable[str], *, stream: str = STREAM, group: str = GROUP
) -> int:
    """``XACK``: mark entries as handled; returns how many were pending (an
    entry is acknowledged once: a second ``XACK`` of it counts 0)."""
    ids = list(ids)
    return int(client.xack(stream, group, *ids)) if ids else 0


def pending_count(client: redis.Redis, *, stream: str = STREAM, group: str = GROUP) -> int:
    """How many entries were delivered and not acknowledged (``XPENDING`` summary)."""
    return int(client.xpending(stream, group)["pending"])


def pending_by_consumer(
    client: redis.Redis, *, stream: str = STREAM, group: str = GROUP
) -> dict[str, int]:
    """Unacknowledged entries per consumer, by consumer name."""
    summary = client.xpending(stream, group)
    return {
        _text(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []
    }  # fmt: skip


def parse_autoclaim(reply: Sequence[Any]) -> AutoClaim:
    """Normalise ``XAUTOCLAIM``'s reply.

    Redis 7 answers three elements, ``[next_id, entries, deleted_ids]``, and
    drops entries deleted from the stream from the pending list itself.
    Redis 6.2 answers two, ``[next_id, entries]``: a deleted entry comes back
    as nil among the entries (redis-py: ``(None, None)``) and stays pending,
    now with the claimer.
    """
    next_id, raw_entries, *rest = reply
    entries: list[Entry] = []
    deleted = [_text(i) for i in (rest[0] if rest else [])]
    unknown = 0
    for item in raw_entries:
        if item is None or item[0] is None:
            unknown += 1
            continue
        entry = _entry(*item)
        if entry.deleted:
            deleted.append(entry.id)
        else:
            entries.append(entry)
    return AutoClaim(_text(next_id), entries, deleted, unknown)


def claim_abandoned(
    client: redis.Redis,
    consumer: str,
    min_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
    *,
    stream: str = STREAM,
    group: str = GROUP,
    count: int = 100,
) -> AutoClaim:
    """Take over every entry pending for longer than ``min_idle_ms`` with any
    consumer of the group (``XAUTOCLAIM`` from ``0-0`` until it answers
    ``0-0``). Entries deleted from the stream are acknowledged: there is
    nothing left to handle."""
    cursor, entries, deleted, unknown = "0-0", [], [], 0
    while True:
        reply = client.xautoclaim(
            stream, group, consumer, min_idle_ms, start_id=cursor, count=count
        )
        claim = parse_autoclaim(reply)
        entries += claim.entries
        deleted += claim.deleted_ids
        unknown += claim.deleted_unknown
        cursor = claim.next_id
        if cursor == "0-0":
            break
    if unknown:  # Redis 6.2: find their ids among what is now pending with us
        mine = read_group(
            client, consumer, stream=stream, group=group, count=1000, own_pending=True
        )
        deleted += [entry.id for entry in mine if entry.deleted]
    acknowledge(client, deleted, stream=stream, group=group)
    return AutoClaim(cursor, entries, deleted, 0)


#: KEYS[1]: the stream, KEYS[2]: the dead-letter stream; ARGV: group, entry id,
#: deliveries. Acknowledges the entry and copies it, with where it came from,
#: to the dead-letter stream; 0 (and nothing done) if it was not pending.
MOVE_TO_DEAD_LETTERS = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local fields = {'original_id', ARGV[2], 'group', ARGV[1], 'deliveries', ARGV[3]}
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entry > 0 then
  for _, value in ipairs(entry[1][2]) do
    table.insert(fields, value)
  end
end
redis.call('XADD', KEYS[2], '*', unpack(fields))
return 1
"""


def dead_letter_stream(stream: str) -> str:
    """The dead-letter stream of ``stream``."""
    return f"{stream}:dead"


def deliveries(client: redis.Redis, stream: str, group: str, entry_id: str) -> int:
    """How many times ``entry_id`` was delivered (``XPENDING``); 0 if not pending."""
    pending = client.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
    return int(pending[0]["times_delivered"]) if pending else 0


def move_to_dead_letters(
    client: redis.Redis, stream: str, group: str, entry_id: str, delivered: int
) -> bool:
    """Acknowledge ``entry_id`` and copy it to :func:`dead_letter_stream`, in
    one step; False if it was no longer pending (someone else moved it)."""
    script = client.register_script(MOVE_TO_DEAD_LETTERS)
    keys = [stream, dead_letter_stream(stream)]
    return bool(script(keys=keys, args=[group, entry_id, delivered]))


def send_message(
    message: str,
    delay_ms: float,
    client: redis.Redis,
    *,
    start: float | None = None,
    stream: str = STREAM,
) -> str:
    """:func:`helpers.pubsub.publish_message` for a stream: wait until
    ``delay_ms`` after ``start``, print ``About to send <message>``, ``XADD`` it.
    Returns the entry's id."""
    start = time.monotonic() if start is None else start
    remaining = start + delay_ms / 1000 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    print(ABOUT_TO_SEND.format(message=message), flush=True)
    return add_message(client, message, stream)


# --- the consumer ------------------------------------------------------------------------


@dataclass
class Consumer:
    """A consumer of a group: handle each entry, then ``XACK`` it.

    :meth:`run` first finishes its own pending entries (from before a
    restart), then reads new ones; with ``claim_idle_ms`` it also takes over,
    whenever it is idle, entries that another consumer left pending that
    long. ``KILL_SERVER`` ends it, as it ended the subscriber.
    """

    client: redis.Redis
    name: str
    stream: str = STREAM
    group: str = GROUP
    count: int = 1  # entries per XREADGROUP: a bigger batch, more held by one consumer
    block_ms: int = 200
    claim_idle_ms: int | None = None
    hang_after: int | None = None  # stop for ever after acknowledging N (crash experiments)
    handle_ms: int = 0  # simulated work per message, between printing it and XACK
    verbose: bool = False
    out: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    acknowledged: int = 0
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def handle(self, entry: Entry) -> bool:
        """Print the message and acknowledge it; True if it was ``KILL_SERVER``.
        An entry without a message (another writer's) is not dropped: it is
        moved to the dead-letter stream, saying so."""
        if entry.message is None and not entry.deleted:
            delivered = deliveries(self.client, self.stream, self.group, entry.id)
            if move_to_dead_letters(self.client, self.stream, self.group, entry.id, delivered):
                dead = dead_letter_stream(self.stream)
                self.out(f"entry {entry.id} has no {FIELD!r} field: moved to {dead!r}")
            return False
        if entry.message is not None:
            self.out(entry.message)
            if self.handle_ms:
                time.sleep(self.handle_ms / 1000)  # a crash here: handled, not acknowledged
        if acknowledge(self.client, [entry.id], stream=self.stream, group=self.group):
            self.acknowledged += 1
            if self.verbose:
                self.out(f"acked {entry.id}")
        if self.hang_after is not None and self.acknowledged >= self.hang_after:
            self.stop_requested.wait()  # stuck in a "long job" until killed (or SIGTERM)
        return entry.message == KILL_SERVER

    def _handle_all(self, entries: Iterable[Entry]) -> bool:
        """Handle entries in order; True once ``KILL_SERVER`` was handled.
        After a stop request the rest stay pending (a restart finishes them)."""
        for entry in entries:
            if self.stop_requested.is_set():
                return False
            if self.handle(entry):
                return True
        return False

    def run(self) -> int:
        """Consume until ``KILL_SERVER`` or :meth:`stop`; returns how many
        entries this consumer acknowledged."""
        create_group(self.client, self.stream, self.group)
        kw = {"stream": self.stream, "group": self.group}
        # After a restart under the same name: finish what we were given before.
        while not self.stop_requested.is_set():
            own = read_group(self.client, self.name, count=100, own_pending=True, **kw)
            if not own:
                break
            if self._handle_all(own):
                return self.acknowledged
        while not self.stop_requested.is_set():
            if self.claim_idle_ms is not None:
                claim = claim_abandoned(self.client, self.name, self.claim_idle_ms, **kw)
                if claim.entries and self.verbose:
                    self.out(f"claimed {len(claim.entries)} abandoned message(s)")
                if self._handle_all(claim.entries):
                    break
            entries = read_group(
                self.client, self.name, count=self.count, block_ms=self.block_ms, **kw
            )
            if self._handle_all(entries):
                break
        return self.acknowledged

    def stop(self) -> None:
        """Ask :meth:`run` to return after the entry it is handling."""
        self.stop_requested.set()


# --- background processes ------------------------------------------------------------------


def start_consumer(
    name: str,
    *,
    stream: str = STREAM,
    group: str = GROUP,
    count: int = 1,
    claim_idle_ms: int | None = None,
    hang_after: int | None = None,
    handle_ms: int = 0,
    verbose: bool = False,
) -> BackgroundProcess:
    """Start ``python -m helpers.streams consumer`` as a separate process
    logging to a file; :meth:`BackgroundProcess.kill` is the crash."""
    args = ["helpers.streams", "consumer", "--name", name, "--count", str(count)]
    args += ["--stream", stream, "--group", group]
    if claim_idle_ms is not None:
        args += ["--claim-idle-ms", str(claim_idle_ms)]
    if hang_after is not None:
        args += ["--hang-after", str(hang_after)]
    if handle_ms:
        args += ["--handle-ms", str(handle_ms)]
    if verbose:
        args.append("--verbose")
    return start_logged(args, f"consumer-{name}")


# --- the side-by-side experiment -------------------------------------------------------------


@dataclass
class DeliveryResult:
    """What one experiment measured, per mechanism."""

    scenario: str
    sent: int
    pubsub_received: int  # distinct messages a subscriber printed
    stream_received: int  # distinct messages a consumer handled
    stream_handled_twice: int = 0  # handled again after a crash (at least once)
    publish_replies: list[int] = field(default_factory=list)  # PUBLISH's receiver counts

    @property
    def pubsub_lost(self) -> int:
        """Messages sent that no subscriber handled."""
        return self.sent - self.pubsub_received

    @property
    def stream_lost(self) -> int:
        """Messages sent that no consumer handled."""
        return self.sent - self.stream_received


def _counted(outputs: Iterable[list[str]], sent: Sequence[str]) -> tuple[int, int]:
    """(distinct messages of ``sent`` seen in the outputs, how many seen more than once)."""
    expected = set(sent)
    seen = [line for lines in outputs for line in lines if line in expected]
    return len(set(seen)), len(seen) - len(set(seen))


def _all_handled(client: redis.Redis, stream: str, group: str) -> bool:
    """Every entry delivered to the group and acknowledged."""
    last = client.xrevrange(stream, count=1)
    info = {_text(g["name"]): g for g in client.xinfo_groups(stream)}[group]
    delivered = _text(info["last-delivered-id"])
    return bool(last) and delivered == _text(last[0][0]) and int(info["pending"]) == 0


def _fresh(client: redis.Redis, stream: str, group: str) -> None:
    client.delete(stream)
    create_group(client, stream, group)


def measure_consumer_down(
    client: redis.Redis,
    batch: int = 10,
    *,
    channel: str = "lesson11:experiment",
    stream: str = "lesson11:experiment:down",
    group: str = "lesson11:handlers",
    say: Callable[[str], None] = print,
) -> DeliveryResult:
    """Send ``3 × batch`` messages over pub/sub and over a stream: the first
    batch with a subscriber and a consumer running, the second while both are
    down (killed), the third after both restarted. Counts what each received."""
    _fresh(client, stream, group)
    messages = [f"message {i}" for i in range(1, 3 * batch + 1)]
    replies: list[int] = []
    processes: list[BackgroundProcess] = []

    def send(chunk: list[str]) -> None:
        for message in chunk:
            replies.append(int(client.publish(channel, message)))
            add_message(client, message, stream)
        reached = sum(1 for r in replies[-len(chunk) :] if r)
        say(f"sent {chunk[0]} to {chunk[-1]}: {reached} of {len(chunk)} reached a subscriber")

    try:
        subscriber = start_subscriber(channel, client=client)
        consumer = start_consumer("consumer-1", stream=stream, group=group)
        processes += [subscriber, consumer]
        say("subscriber and consumer-1 running")
        send(messages[:batch])
        subscriber.wait_for_output(lambda lines: len(lines) > batch)
        wait_until(lambda: _all_handled(client, stream, group), 30, "consumer-1 handles batch 1")
        subscriber.kill()
        consumer.kill()
        wait_until(
            lambda: subscriber_count(client, channel) == 0,
            30,
            "the server sees the subscriber gone",
        )
        say("both killed (SIGKILL)")
        send(messages[batch : 2 * batch])
        say(f"the stream holds {client.xlen(stream)} entries")
        subscriber = start_subscriber(channel, client=client)
        consumer = start_consumer("consumer-1", stream=stream, group=group)
        processes += [subscriber, consumer]
        say("both restarted")
        send(messages[2 * batch :])
        subscriber.wait_for_output(lambda lines: len(lines) > batch)
        wait_until(lambda: _all_handled(client, stream, group), 30, "consumer-1 catches up")
    finally:
        for process in processes:
            process.stop()
    pubsub, _ = _counted((p.lines() for p in processes[::2]), messages)
    stream_got, twice = _counted((p.lines() for p in processes[1::2]), messages)
    return DeliveryResult(
        "consumer down for a batch", len(messages), pubsub, stream_got, twice, replies
    )


def measure_consumer_killed(
    client: redis.Redis,
    batch: int = 10,
    hang_after: int = 4,
    *,
    channel: str = "lesson11:experiment",
    stream: str = "lesson11:experiment:killed",
    group: str = "lesson11:handlers",
    claim_idle_ms: int = 500,
    say: Callable[[str], None] = print,
) -> DeliveryResult:
    """A subscriber and a consumer each get ``batch`` messages, handle
    ``hang_after`` of them, get stuck, and are killed (SIGKILL). A second
    consumer then claims what the first left pending. Counts what was handled."""
    _fresh(client, stream, group)
    messages = [f"message {i}" for i in range(1, batch + 1)]
    processes: list[BackgroundProcess] = []
    try:
        subscriber = start_subscriber(channel, hang_after=hang_after, client=client)
        processes.append(subscriber)
        replies = [int(client.publish(channel, m)) for m in messages]
        say(f"published {batch}: PUBLISH reached a subscriber {sum(replies)} times")
        subscriber.wait_for_output(lambda lines: len(lines) > hang_after)
        subscriber.kill()
        say(f"subscriber handled {hang_after}, got stuck, was killed")

        for message in messages:
            add_message(client, message, stream)
        first = start_consumer(
            "consumer-1", stream=stream, group=group, count=batch, hang_after=hang_after
        )
        processes.append(first)
        wait_until(
            lambda: pending_count(client, stream=stream, group=group) == batch - hang_after,
            30,
            "consumer-1 handles some and gets stuck",
        )
        first.wait_for_output(lambda lines: len(lines) > hang_after)
        first.kill()
        left = pending_by_consumer(client, stream=stream, group=group)
        say(f"consumer-1 handled {hang_after}, got stuck, was killed; pending: {left}")
        second = start_consumer(
            "consumer-2", stream=stream, group=group, claim_idle_ms=claim_idle_ms
        )
        processes.append(second)
        wait_until(
            lambda: _all_handled(client, stream, group),
            30,
            "consumer-2 claims and handles the rest",
        )
        say(
            f"consumer-2 claimed and handled the rest; pending: {pending_count(client, stream=stream, group=group)}"
        )
    finally:
        for process in processes:
            process.stop()
    pubsub, _ = _counted([processes[0].lines()], messages)
    stream_got, twice = _counted((p.lines() for p in processes[1:]), messages)
    return DeliveryResult("consumer killed mid-batch", batch, pubsub, stream_got, twice, replies)


def delivery_table(results: Sequence[DeliveryResult]) -> str:
    """The results as a small text table."""
    rows = [("scenario", "sent", "pub/sub got", "pub/sub lost", "stream got", "stream lost")]
    rows += [
        (r.scenario, r.sent, r.pubsub_received, r.pubsub_lost, r.stream_received, r.stream_lost)
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            str(v).ljust(w) if i == 0 else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.streams",
        description="The notifications of lesson 05 over a Redis stream and a consumer group.",
    )
    parser.add_argument("role", choices=["publisher", "consumer"])
    parser.add_argument("--stream", default=STREAM, help=f"default: {STREAM!r}")
    parser.add_argument("--group", default=GROUP, help=f"default: {GROUP!r}")
    parser.add_argument("--name", default="consumer-1", help="consumer name in the group")
    parser.add_argument("--count", type=int, default=1, help="entries per read")
    parser.add_argument("--block-ms", type=int, default=200, help="wait per read")
    parser.add_argument(
        "--claim-idle-ms",
        type=int,
        default=None,
        help="take over entries other consumers left pending this long",
    )
    parser.add_argument("--hang-after", type=int, default=None, metavar="N")
    parser.add_argument("--handle-ms", type=int, default=0, help="simulated work per message")
    parser.add_argument("--verbose", action="store_true", help="print each acknowledgement")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)

    def run() -> None:
        client = connect()
        if args.role == "publisher":
            start = time.monotonic()
            for message, delay in MESSAGES:
                send_message(message, delay, client, start=start, stream=args.stream)
            return
        consumer = Consumer(
            client,
            args.name,
            args.stream,
            args.group,
            count=args.count,
            block_ms=args.block_ms,
            claim_idle_ms=args.claim_idle_ms,
            hang_after=args.hang_after,
            handle_ms=args.handle_ms,
            verbose=args.verbose,
        )
        signal.signal(signal.SIGTERM, lambda *_: consumer.stop())  # graceful: finish the entry
        consumer.run()

    return run_command_line(run)


if __name__ == "__main__":
    sys.exit(main())
