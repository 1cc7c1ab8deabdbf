def job_outcomes(lines):
    outcomes = {"completed": 0, "failed": 0}
    for line in lines:
        if not line.startswith("Seat reservation job "):
            continue
        if line.endswith(" completed"):
            outcomes["completed"] += 1
        elif " failed: " in line:
            outcomes["failed"] += 1
    return outcomes
