"""Beyond one Redis (lesson 17): server sets on loopback, and drills that kill them.

- :mod:`helpers.topology.sets`: start and stop the server sets (a primary
  with persistence, replicas, a Sentinel set, a Redis Cluster, shards);
- :mod:`helpers.topology.durability`: what SIGKILL loses with each
  persistence mode, and what each costs in enqueues/s;
- :mod:`helpers.topology.failover`: RQ workers and a producer through
  Sentinel while the primary is SIGKILLed;
- :mod:`helpers.topology.sharding`: hash slots, ``MOVED``, ``CROSSSLOT``,
  hash tags, lesson 09's stock script on a cluster, a queue per shard.

Command line (``python -m helpers.topology --help``)::

    python -m helpers.topology start sentinel      # start a set, print its ports, wait
    python -m helpers.topology durability --json
    python -m helpers.topology failover --json
    python -m helpers.topology cluster --json

Every process these start stops with the process that started it
(:mod:`helpers.processes`), and every data server has a ``maxmemory``.
"""

from helpers.topology.sets import (
    KINDS,
    PERSISTENCE,
    ServerSet,
    cluster,
    persistent,
    replicated,
    sentinel_set,
    shards,
)

__all__ = [
    "KINDS",
    "PERSISTENCE",
    "ServerSet",
    "cluster",
    "persistent",
    "replicated",
    "sentinel_set",
    "shards",
]
