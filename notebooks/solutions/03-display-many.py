import asyncio

async def display_many(client, names):
    # Each GET is awaited concurrently; gather keeps the order of its arguments.
    return list(await asyncio.gather(*(client.get(name) for name in names)))
