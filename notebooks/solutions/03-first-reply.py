async def first_reply(client, keys, timeout):
    # BLPOP waits on several lists at once and answers (key, value), or None on timeout.
    reply = await client.blpop(keys, timeout=timeout)
    return None if reply is None else reply[1]
