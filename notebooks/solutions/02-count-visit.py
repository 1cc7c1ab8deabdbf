def count_visit(client, school):
    # INCR reads, adds and writes in one step on the server: no update is lost.
    return client.incr(f"lesson02:visits:{school}")
