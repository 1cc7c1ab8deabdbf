def missed_ticks(last_done, now, every):
    # The first tick after last_done is the next multiple of `every`.
    first = (last_done // every + 1) * every
    return list(range(first, now + 1, every))
