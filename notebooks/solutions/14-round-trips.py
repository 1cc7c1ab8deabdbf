def count_round_trips(commands):
    trips = 0
    in_transaction = False
    for name in commands:
        if name == "MULTI":  # MULTI ... EXEC arrive in one write: one round trip
            in_transaction = True
            trips += 1
        elif name == "EXEC":
            in_transaction = False
        elif not in_transaction:
            trips += 1
    return trips
