"""helpers.autopipeline: one pipelined connection for every caller of a
process (the HTTP service's client). Replies reach the right caller, redis-py's
parsing and NOSCRIPT fallback still apply, an error or a timeout does not put
the replies out of step, a MULTI/EXEC block stays whole among other callers'
commands, and a Redis restart costs no failed command. Each test runs a
private Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio

from helpers.autopipeline import AutoPipelinedRedis
from helpers.server import ServerInfo, start_server, stop_server


def run(coroutine):  # noqa: ANN001, ANN201 (a test's own event loop)
    return asyncio.run(coroutine)


def test_many_callers_share_one_connection_and_get_their_own_replies(private: ServerInfo) -> None:
    async def main() -> tuple[list[int], int]:
        client = AutoPipelinedRedis(private.url)
        await client.mset({f"n{i}": i for i in range(300)})
        replies = await asyncio.gather(*(client.incrby(f"n{i}", 1000) for i in range(300)))
        await client.aclose()
        return replies, len(redis.Redis.from_url(private.url).client_list())

    replies, clients = asyncio.run(main())
    assert replies == [i + 1000 for i in range(300)]  # each caller its own key's reply
    assert clients == 1  # only the checking client is left: the shared one closed


def test_one_connection_while_in_use(private: ServerInfo) -> None:
    async def main() -> int:
        client = AutoPipelinedRedis(private.url)
        await asyncio.gather(*(client.get("x") for _ in range(200)))
        used = len(redis.Redis.from_url(private.url).client_list()) - 1
        await client.aclose()
        return used

    assert run(main()) == 1


def test_replies_are_parsed_as_redis_py_parses_them(private: ServerInfo) -> None:
    async def main() -> list[object]:
        client = AutoPipelinedRedis(private.url)
        got = [
            await client.set("k", "v"),
            await client.get("k"),
            await client.get("missing"),
            await client.hset("h", mapping={"a": "1", "b": "2"}),
            await client.hgetall("h"),
            await client.exists("k", "h", "missing"),
            await client.ping(),
        ]
        await client.aclose()
        return got

    assert run(main()) == [True, "v", None, 2, {"a": "1", "b": "2"}, 2, True]


def test_a_script_is_loaded_again_after_a_script_flush(private: ServerInfo) -> None:
    async def main() -> list[object]:
        client = AutoPipelinedRedis(private.url)
        add = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        first = await add(keys=["s"], args=[2])
        await client.script_flush()  # Redis forgets it: EVALSHA answers NOSCRIPT
        second = await add(keys=["s"], args=[3])
        await client.aclose()
        return [first, second]

    assert run(main()) == [2, 5]


def test_an_error_reply_raises_and_the_next_replies_stay_in_step(private: ServerInfo) -> None:
    async def main() -> list[object]:
        client = AutoPipelinedRedis(private.url)
        await client.set("text", "abc")
        results = await asyncio.gather(
            client.incr("text"), client.set("a", "1"), client.get("a"), return_exceptions=True
        )
        await client.aclose()
        return results

    error, set_reply, get_reply = run(main())
    assert isinstance(error, redis.ResponseError) and "not an integer" in str(error)
    assert (set_reply, get_reply) == (True, "1")


def test_a_transaction_stays_whole_among_other_callers(private: ServerInfo) -> None:
    async def main() -> tuple[list[object], list[object], str | None]:
        client = AutoPipelinedRedis(private.url)
        others = [client.incr("other") for _ in range(50)]
        block = client.transaction([("SET", "t", "1"), ("INCR", "t"), ("GET", "t")])
        results = await asyncio.gather(*others[:25], block, *others[25:])  # block among them
        replies, counts = results[25], results[:25] + results[26:]
        await client.set("text", "abc")
        with pytest.raises(redis.ResponseError, match="not an integer"):
            await client.transaction([("INCR", "text"), ("SET", "after", "yes")])
        after = await client.get("after")  # MULTI/EXEC: the other commands still ran
        await client.aclose()
        return counts, replies, after

    counts, replies, after = run(main())
    assert replies == ["OK", 2, "2"]  # EXEC's replies, unparsed
    assert sorted(counts) == list(range(1, 51))
    assert after == "yes"


def test_a_stalled_redis_times_out_and_later_replies_go_to_the_right_caller(
    private: ServerInfo,
) -> None:
    async def main() -> tuple[float, str | None]:
        client = AutoPipelinedRedis(private.url, timeout_s=0.3)
        await client.set("k", "before")
        pauser = redis.Redis.from_url(private.url)
        pauser.client_pause(1000)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await client.get("k")
        waited = time.monotonic() - started
        pauser.client_unpause()
        await client.set("k", "after")  # the stale reply of the GET is thrown away
        got = await client.get("k")
        await client.aclose()
        pauser.close()
        return waited, got

    waited, got = run(main())
    assert 0.25 < waited < 0.9
    assert got == "after"


def test_a_redis_restart_costs_no_failed_command(private: ServerInfo, tmp_path: Path) -> None:
    async def main() -> list[object]:
        client = AutoPipelinedRedis(private.url)
        await client.set("k", "1")
        stop_server(tmp_path)
        await asyncio.sleep(0.2)  # the reader sees the connection close
        start_server(tmp_path, port=private.port)
        got = [await client.set("k", "2"), await client.get("k")]
        await client.aclose()
        return got

    assert run(main()) == [True, "2"]


def test_redis_down_is_a_connection_error(private: ServerInfo, tmp_path: Path) -> None:
    async def main() -> None:
        client = AutoPipelinedRedis(private.url, timeout_s=0.5)
        stop_server(tmp_path)
        with pytest.raises(redis.ConnectionError, match="Error connecting"):
            await client.get("k")
        await client.aclose()

    run(main())


def test_the_url_selects_the_database(private: ServerInfo) -> None:
    async def main() -> None:
        client = AutoPipelinedRedis(f"{private.url.rsplit('/', 1)[0]}/3")
        await client.set("in3", "yes")
        await client.aclose()

    run(main())
    base = private.url.rsplit("/", 1)[0]
    assert redis.Redis.from_url(f"{base}/3").get("in3") == b"yes"
    assert redis.Redis.from_url(f"{base}/0").get("in3") is None


def test_only_plain_tcp_urls_are_accepted() -> None:
    for url in ("rediss://127.0.0.1:6379/0", "unix:///tmp/redis.sock"):
        with pytest.raises(ValueError, match="plain TCP"):
            AutoPipelinedRedis(url)


def test_a_refused_set_up_is_a_clear_error_and_keeps_no_connection(private: ServerInfo) -> None:
    admin = redis.Redis.from_url(private.url)

    async def main() -> None:
        client = AutoPipelinedRedis(private.url.replace("redis://", "redis://nobody:wrong@"))
        for _ in range(3):
            with pytest.raises(redis.RedisError, match="(?i)wrongpass|invalid username"):
                await client.get("k")
        await asyncio.sleep(0.1)
        assert len(admin.client_list()) == 1  # only admin: no half-open connection kept
        await client.aclose()

    run(main())
    admin.close()
