def largest_school(client):
    schools = client.hgetall("HolbertonSchools")
    return max(schools, key=lambda city: int(schools[city]))
