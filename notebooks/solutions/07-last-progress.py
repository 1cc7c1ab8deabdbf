def last_progress(events):
    progress = {}
    for event in events:  # in arrival order: a later value replaces an earlier one
        if event.kind == "progress":
            progress[event.job_id] = event.progress
    return progress
