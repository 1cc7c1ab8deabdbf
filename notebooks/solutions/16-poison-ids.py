def poison_ids(client, stream, group, max_deliveries):
    # XPENDING with a range gives each pending entry's delivery count.
    pending = client.xpending_range(stream, group, min="-", max="+", count=1000)
    return [p["message_id"] for p in pending if p["times_delivered"] >= max_deliveries]
