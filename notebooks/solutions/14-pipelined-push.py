def push_all(client, key, items, per_trip):
    for start in range(0, len(items), per_trip):
        # One pipeline per round trip: its commands go in one write, replies come back
        # together. client.pipeline(transaction=False) (lesson 04) is one write as well.
        with client.pipeline() as pipe:
            for item in items[start : start + per_trip]:
                pipe.rpush(key, item)
            pipe.execute()
