def enqueue(client, name, job):
    client.lpush(f"lesson04:jobs:{name}", job)


def dequeue(client, name):
    # Pushed on the left, popped on the right: first in, first out.
    return client.rpop(f"lesson04:jobs:{name}")
