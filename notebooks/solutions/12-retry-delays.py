def retry_delays(max_retries, intervals):
    # RQ picks intervals[len(intervals) - retries_left], never below index 0:
    # the list is matched to the *last* retries, the first one repeats.
    delays = []
    for retries_left in range(max_retries, 0, -1):
        delays.append(intervals[max(len(intervals) - retries_left, 0)])
    return delays
