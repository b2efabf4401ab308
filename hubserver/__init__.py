"""The Outpost hub: daql's hub protocol over WebSocket (``outpost-hub``).

- :mod:`hubserver.service`: the service logic without I/O (``HubService``).
- :mod:`hubserver.server`: the asyncio adapter on ``websockets`` (``Hub``; in-process use:
  ``async with Hub(ledger, port=0) as hub: hub.url``).
- :mod:`hubserver.auth`: users and hashed tokens.
- :mod:`hubserver.limits`: the bounds the hub enforces.
- :mod:`hubserver.cli`: the ``outpost-hub`` command.
"""

from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import HubService

__all__ = ["Hub", "HubService", "Limits"]
