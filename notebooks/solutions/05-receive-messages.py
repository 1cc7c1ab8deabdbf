def receive(pubsub, n, timeout):
    received = []
    while len(received) < n:
        message = pubsub.get_message(timeout=timeout)
        if message is None:  # nothing came for `timeout` seconds
            break
        if message["type"] == "message":  # skip subscribe/unsubscribe confirmations
            received.append(message["data"])
    return received
