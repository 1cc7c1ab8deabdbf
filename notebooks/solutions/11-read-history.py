def read_history(client, stream):
    # XRANGE - + reads every entry, oldest first; a missing stream reads as empty.
    return [fields["message"] for _entry_id, fields in client.xrange(stream, "-", "+")]
