def recover(client, stream, group, consumer, min_idle_ms):
    recovered = []
    start = "0-0"
    while True:
        # Redis 6.2 answers [next start, entries]; Redis 7 adds the ids of deleted entries.
        start, entries, *_deleted = client.xautoclaim(
            stream, group, consumer, min_idle_ms, start_id=start
        )
        for entry_id, fields in entries:
            if entry_id is None:  # Redis 6.2: an entry deleted from the stream
                continue
            recovered.append(fields["message"])
            client.xack(stream, group, entry_id)
        if start == "0-0":
            return recovered
