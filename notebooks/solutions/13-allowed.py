def allowed(name, entries):
    for entry in entries:
        if entry.endswith(".*"):
            # "a.b.*" -> prefix "a.b.": the dot keeps "a.bc.f" (and "a.b" itself) out.
            if name.startswith(entry[:-1]):
                return True
        elif name == entry:
            return True
    return False
