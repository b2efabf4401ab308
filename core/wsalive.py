"""A WebSocket keepalive that counts any byte received as a sign of life (the satellite's
client and the hub's server connections use it; I/O glue, no decision logic).

websockets' own keepalive sends a ping, waits for its pong at most ``ping_timeout`` seconds,
and then closes the connection ("keepalive ping timeout"). On a slow link a ping or a pong
queues behind a big message in the same byte stream (a 1 MB catch-up reply takes two minutes
at 8 KB/s): both ends closed a link that was working, reconnected, asked again, and a
catch-up never finished (safety review 10, finding 4). Here each end pings every
``ping_interval`` without waiting for earlier pongs, and gives the connection up only when a
ping has gone unanswered for ``ping_timeout`` seconds *and* no byte at all has arrived for
``ping_interval + ping_timeout`` seconds: a peer that is sending (even only its own pings)
is alive; a dead or stalled one is still found within about a minute.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

if TYPE_CHECKING:
    from websockets.asyncio.connection import Connection

    _Base = Connection
else:
    _Base = object

__all__ = ["LiveKeepalive"]

_log = logging.getLogger("outpost.ws")


class LiveKeepalive(_Base):
    """Mixin for a websockets asyncio connection class (before it in the bases): call
    :meth:`note_rx` from ``data_received``; :meth:`keepalive` replaces websockets' own."""

    last_rx: float = 0.0

    def note_rx(self) -> None:
        self.last_rx = self.loop.time()

    async def keepalive(self) -> None:
        assert self.ping_interval is not None
        timeout = self.ping_timeout or self.ping_interval
        window = self.ping_interval + timeout
        pings: list[tuple[float, asyncio.Future[float]]] = []
        if not self.last_rx:
            self.last_rx = self.loop.time()
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                now = self.loop.time()
                pings = [(t, f) for t, f in pings if not f.done()]
                if pings and now - pings[0][0] >= timeout and now - self.last_rx >= window:
                    async with self.send_context():
                        self.protocol.fail(CloseCode.INTERNAL_ERROR,
                                           f"keepalive: nothing received for {window:g} s")
                    return
                pings.append((now, asyncio.ensure_future(await self.ping())))
        except ConnectionClosed:
            pass
        except Exception:
            _log.error("keepalive ping failed", exc_info=True)
        finally:
            for _, f in pings:
                if not f.done():
                    f.cancel()
