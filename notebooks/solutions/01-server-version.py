def server_version(client):
    return client.info("server")["redis_version"]
