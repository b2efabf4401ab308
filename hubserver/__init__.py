"""The Outpost hub: daql's hub protocol over WebSocket (``outpost-hub``).

- :mod:`hubserver.service`: the service logic without I/O (``HubService``: requests, publish
  jobs' replies), with :mod:`hubserver.outputs` (what it hands back),
  :mod:`hubserver.catchup` (``evt.sub``/``evt.mon`` catch-ups), :mod:`hubserver.satreply`
  (the ``evt.sat`` reply), :mod:`hubserver.fanout` (fan-out, pushes, the audit cache) and
  :mod:`hubserver.recent` (recently fanned-out events).
- :mod:`hubserver.server`: the asyncio adapter on ``websockets`` (``Hub``; in-process use:
  ``async with Hub(ledger, port=0) as hub: hub.url``), with :mod:`hubserver.peer` (one
  connection's queue and writes), :mod:`hubserver.pipeline` (the writer thread's group
  commit) and :mod:`hubserver.connection` (the websockets connection, the writer thread).
- :mod:`hubserver.cluster`: scale-out, other hubs' revisions on a shared PostgreSQL ledger.
- :mod:`hubserver.auth`: users and hashed tokens.
- :mod:`hubserver.limits`: the bounds the hub enforces.
- :mod:`hubserver.cli`: the ``outpost-hub`` command.
"""

from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import HubService

__all__ = ["Hub", "HubService", "Limits"]
