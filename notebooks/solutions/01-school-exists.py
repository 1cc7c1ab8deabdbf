def school_exists(client, name):
    return client.exists(name) == 1
