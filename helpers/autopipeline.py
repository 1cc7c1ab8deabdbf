"""One Redis connection shared by every request of a process, pipelined.

redis-py's asyncio client lends each command a connection from its pool,
sends it, waits for its reply and gives the connection back: one connection
per command in flight, and some 50 µs of Python per command on this machine.
Node's Redis client, which the original service used, does something
cheaper: every command goes down **one** connection, and the replies come
back in the order the commands went out (Redis answers each connection in
order). :class:`AutoPipelinedRedis` does the same in asyncio:

- a command is packed (hiredis) and put on a list; the first command of an
  event-loop turn schedules one write for all the commands of that turn
  (many requests waiting at once: one system call for all of them);
- one reader task reads the replies and hands each to the oldest waiting
  command (a FIFO of futures);
- a command that waits longer than ``timeout_s`` fails with
  :class:`redis.TimeoutError` (its reply, when it comes, is thrown away);
- a connection that breaks fails every command already sent on it with
  :class:`redis.ConnectionError` (it may or may not have run: never sent
  again), and the next command opens a new connection; a command that was
  about to go out on a connection found broken is sent on the new one.

It is a :class:`redis.asyncio.Redis`: ``get``, ``mset``, ``register_script``
and the rest are redis-py's own methods, replies parsed by redis-py's
callbacks; only :meth:`execute_command`, the way a command travels, is
replaced. :meth:`transaction` sends a MULTI/EXEC block down the same
connection (written in one piece, nothing else can come between). Commands
that hold a connection (``BLPOP``, ``SUBSCRIBE``) do not belong here:
``pipeline()`` and ``pubsub()`` still use redis-py's own pool, bounded by
``pool_size``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

import hiredis
import redis
import redis.asyncio
from redis._parsers.base import BaseParser

DEFAULT_TIMEOUT_S = 2.0
Command = Sequence[Any]  # ("SET", "key", 1): a command's name, then its arguments


class NotSent(redis.ConnectionError):
    """The connection was found broken before the command went out: it did not run."""


class _Link:
    """One open connection: its writer, the futures waiting for replies in
    the order their commands went out, and the task that reads the replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.broken: Exception | None = None
        self.task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Hand each reply to the oldest waiting command, until the connection ends."""
        parser = hiredis.Reader(encoding="utf-8", replyError=redis.ResponseError)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise redis.ConnectionError("Connection closed by server.")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = self.waiting.popleft()
                    if not future.done():  # done: it timed out, nobody wants the reply
                        if isinstance(reply, redis.ResponseError):
                            future.set_exception(BaseParser.parse_error(str(reply)))
                        else:
                            future.set_result(reply)
        except (OSError, redis.ConnectionError, IndexError) as error:
            self.fail(
                error
                if isinstance(error, redis.ConnectionError)
                else redis.ConnectionError(str(error))
            )
        except asyncio.CancelledError:
            self.fail(redis.ConnectionError("Connection closed."))
            raise

    def fail(self, error: Exception) -> None:
        """The connection is gone: every command still waiting fails with ``error``."""
        self.broken = error
        self.writer.close()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, packed: list[bytes], futures: list[asyncio.Future[Any]]) -> None:
        """Write the commands of one turn in one go; their futures wait in order."""
        self.waiting.extend(futures)
        self.writer.writelines(packed)


class AutoPipelinedRedis(redis.asyncio.Redis):
    """A redis-py asyncio client whose commands share one pipelined connection."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S, pool_size: int = 4) -> None:
        parts = urlparse(url)
        if parts.scheme != "redis":
            raise ValueError(
                f"AutoPipelinedRedis connects over plain TCP (redis://host:port/db), not {url!r}"
            )
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=pool_size, timeout=timeout_s, protocol=2
        )  # protocol 2 (RESP2): what the shared connection speaks, so redis-py's RESP2 parsing
        super().__init__(connection_pool=pool)
        url_kwargs = pool.connection_kwargs  # the URL as redis-py read it (unquoted)
        self._address = (url_kwargs.get("host") or "127.0.0.1", url_kwargs.get("port") or 6379)
        self._hello: list[bytes] = []  # what a new connection says first: AUTH, SELECT
        if url_kwargs.get("password"):
            user = url_kwargs.get("username") or "default"
            self._hello.append(hiredis.pack_command(("AUTH", user, url_kwargs["password"])))
        if url_kwargs.get("db"):
            self._hello.append(hiredis.pack_command(("SELECT", url_kwargs["db"])))
        self._timeout_s = timeout_s
        self._link: _Link | None = None
        self._opening: asyncio.Task[_Link] | None = None
        self._turn: list[tuple[bytes, list[asyncio.Future[Any]]]] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Send one command down the shared connection; parse its reply as redis-py would."""
        name = args[0]
        (reply,) = await self._send([args])
        options.pop("keys", None)
        callback = self.response_callbacks.get(name)
        return callback(reply, **options) if callback else reply

    async def transaction(self, commands: Iterable[Command]) -> list[Any]:
        """Run ``commands`` as one MULTI/EXEC block; their replies (EXEC's),
        unparsed. A command that failed inside the block raises its error."""
        *_, replies = await self._send([("MULTI",), *commands, ("EXEC",)])
        if replies is None:  # EXEC answers nil when a WATCHed key changed: none here
            raise redis.WatchError("Transaction aborted")
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise BaseParser.parse_error(str(reply))
        return replies

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        """Queue ``commands`` for this turn's write, together, and wait for their replies."""
        packed = b"".join(hiredis.pack_command(_words(command)) for command in commands)
        try:
            return await self._round_trip(packed, len(commands))
        except NotSent:  # found broken before it went out: it did not run, send it again
            return await self._round_trip(packed, len(commands))

    async def _round_trip(self, packed: bytes, count: int) -> list[Any]:
        """Queue ``packed`` (``count`` commands) for this turn's write and
        wait for their replies. They come in order: when the last is there,
        all are. (A timer, not ``asyncio.wait_for``: no task per command.)"""
        link = self._link
        if link is None or link.broken is not None:
            link = await self._open()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        if not self._turn:
            loop.call_soon(self._flush, link)
        self._turn.append((packed, futures))
        timer = loop.call_later(self._timeout_s, _give_up, futures, self._timeout_s)
        try:
            await futures[-1]
        finally:
            timer.cancel()
        return [future.result() for future in futures]

    def _flush(self, link: _Link) -> None:
        """One write for every command queued in this turn of the event loop."""
        turn, self._turn = self._turn, []
        if link.broken is not None:
            for _, futures in turn:
                for future in futures:
                    future.set_exception(NotSent(str(link.broken)))
            return
        link.send([packed for packed, _ in turn], [f for _, futures in turn for f in futures])

    async def _open(self) -> _Link:
        """Open the connection (one opening at a time, however many commands wait)."""
        if self._opening is None or self._opening.done():
            self._opening = asyncio.get_running_loop().create_task(self._connect())
        try:
            return await asyncio.shield(self._opening)
        except (OSError, asyncio.TimeoutError) as error:
            raise redis.ConnectionError(f"Error connecting to {self._address}: {error}") from None

    async def _connect(self) -> _Link:
        """A new connection, authenticated and on the URL's database."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*self._address), self._timeout_s
        )
        link = _Link(reader, writer)
        hello = [asyncio.get_running_loop().create_future() for _ in self._hello]
        link.send(self._hello, hello)  # AUTH, SELECT: before any command of a caller
        try:
            for future in hello:
                await asyncio.wait_for(future, self._timeout_s)
        except BaseException:  # refused (a wrong password) or no answer: not kept open
            link.task.cancel()
            link.fail(redis.ConnectionError("Connection set-up failed."))
            raise
        self._link = link
        return link

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the shared connection (and redis-py's pool)."""
        link, self._link = self._link, None
        if link is not None:
            link.task.cancel()
            link.fail(redis.ConnectionError("Client closed."))
            try:
                await link.writer.wait_closed()
            except OSError:
                pass  # closed already, by the other side
        await super().aclose(close_connection_pool)


def _give_up(futures: list[asyncio.Future[Any]], timeout_s: float) -> None:
    """No reply in time: the commands fail (their replies, if they come, are thrown away)."""
    for future in futures:
        if not future.done():
            future.set_exception(redis.TimeoutError(f"No reply from Redis in {timeout_s} s"))


def _words(command: Command) -> Sequence[Any]:
    """redis-py names some commands in two words ("SCRIPT LOAD"): two on the wire."""
    name = command[0]
    if isinstance(name, str) and " " in name:
        return (*name.split(), *command[1:])
    return command
