def count_subscribers(client, channel):
    # PUBSUB NUMSUB answers (channel, count) pairs, one per channel asked about.
    return int(dict(client.pubsub_numsub(channel))[channel])
