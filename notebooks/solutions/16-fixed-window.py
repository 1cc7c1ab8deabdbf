def allow_fixed_window(client, name, limit, now_s):
    # One counter per whole window: INCR is atomic, so concurrent callers never both get the last place.
    window = int(now_s)  # windows of one second: [0, 1), [1, 2)...
    key = f"patterns:exercise:fixed:{name}:{window}"
    count = client.incr(key)
    client.expire(key, 2)  # gone once its window is over
    return count <= limit
