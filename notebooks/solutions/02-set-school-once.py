def set_school_once(client, name, value):
    # SET ... NX answers OK (True) when it set the key, nil (None) when the key existed.
    return client.set(name, value, nx=True) is True
