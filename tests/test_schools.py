"""Tasks 0-4 of the original: exact output, sync and async."""

from __future__ import annotations

import asyncio

import redis.asyncio

from helpers import schools, schools_async


def test_basic_operations_print_the_original_lines(r, capsys) -> None:
    r.set("Holberton", "School")
    schools.display_school_value(r, "Holberton")
    schools.set_new_school(r, "HolbertonSanFrancisco", "100")
    schools.display_school_value(r, "HolbertonSanFrancisco")
    assert capsys.readouterr().out == "School\nReply: OK\n100\n"


def test_async_operations_print_the_same_lines(r, redis_server, capsys) -> None:
    r.set("Holberton", "School")

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        await schools_async.display_school_value(client, "Holberton")
        await schools_async.set_new_school(client, "HolbertonSanFrancisco", "100")
        await schools_async.display_school_value(client, "HolbertonSanFrancisco")
        await client.aclose()

    asyncio.run(run())
    assert capsys.readouterr().out == "School\nReply: OK\n100\n"


def test_hash_first_run_then_rerun(r, capsys) -> None:
    schools.create_schools_hash(r)
    schools.display_schools_hash(r)
    first = capsys.readouterr().out.splitlines()
    assert first[:6] == ["Reply: 1"] * 6
    assert first[6] == (
        "{'Portland': '50', 'Seattle': '80', 'New York': '20', "
        "'Bogota': '20', 'Cali': '40', 'Paris': '2'}"
    )
    schools.create_schools_hash(r)
    assert capsys.readouterr().out.splitlines() == ["Reply: 0"] * 6


def test_async_hash_matches_sync(r, redis_server, capsys) -> None:
    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        await schools_async.create_schools_hash(client)
        await schools_async.display_schools_hash(client)
        await client.aclose()

    asyncio.run(run())
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == ["Reply: 1"] * 6
    assert out[6].startswith("{'Portland': '50'")
