"""One connection of the running hub (:class:`~hubserver.server.Hub`): its socket, its
outbound queue and its sender task, and the direct write that skips the queue when nothing of
the connection is queued or in flight.

The queue holds reply frames (``str``), :data:`FLUSH` (write the connection's pending push when
the sender gets there), sealed pushes (:class:`~core.subs.Delivery`), catch-ups
(:class:`~hubserver.catchup.Backlog`) and ``evt.sat`` replies to read
(:class:`~hubserver.satreply.SatRead`) and ``evt.hist`` pages to read
(:class:`~hubserver.hist.HistRead`), in the connection's send order.
"""

from __future__ import annotations

import asyncio
import struct

from websockets.protocol import State

from hubserver.auth import User
from hubserver.connection import HubConnection

__all__ = ["FLUSH", "Peer"]

_HEADS = [bytes((0x81, n)) for n in range(126)]
"""The header of an unmasked text frame of each length under 126 bytes."""
_HEAD16 = struct.Struct("!BBH").pack
"""The header of one of 126 to 65,535 bytes: ``_HEAD16(0x81, 126, length)``."""

FLUSH = object()
"""A queue item: write the connection's pending push (``HubService.take_push``) now."""


class Peer:
    """One connection: its socket, its outbound queue and its sender task."""

    __slots__ = ("busy", "conn", "flushes", "gone", "held", "idle", "last", "pub_n", "pub_t",
                 "push_due", "qbytes", "queue", "sender", "timer", "user", "void", "ws")

    def __init__(self, conn: int, ws: HubConnection, user: User, size: int):
        self.conn = conn
        self.ws = ws
        self.user = user
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=size)
        self.qbytes = 0
        """Characters of the reply frames in the queue (``Limits.send_queue_bytes``)."""
        self.sender: asyncio.Task[None] | None = None
        self.idle = False
        """The sender waits for the queue: nothing of this connection is being written."""
        self.busy = False
        """A publish of this connection waits for its commit: its next messages wait."""
        self.held = False
        """An ``evt.sat`` or ``evt.hist`` reply of this connection waits for its ledger read
        (queued as a :class:`~hubserver.satreply.SatRead` or
        :class:`~hubserver.hist.HistRead`): its next messages wait."""
        self.gone = False
        """Closed or being closed: nothing more is read from it."""
        self.last = 0.0
        """Loop time of the last message handled or reply to a publish (idle timeout)."""
        self.timer: asyncio.TimerHandle | None = None
        self.push_due = False
        """Pushes are pending and will be written by ``Hub._push_now`` (not the sender)."""
        self.flushes = 0
        """Flush items in the queue."""
        self.pub_t = -1e9
        self.pub_n = 0
        """Transactions submitted since ``pub_t`` (monotonic), a window of 1 s
        (:func:`hubserver.pipeline.submit`: a heavy writer is logged)."""
        self.void = 0
        """How many of them to skip: a reply behind them took their push with it."""

    def send_now(self, text: str | bytes) -> bool:
        """Write ``text`` (or its UTF-8 bytes) at once when nothing is queued or in flight;
        False: queue it.

        The sender task's ``ws.send`` does the same (``protocol.send_text`` then
        ``send_data``) after a queue hop and a task switch, which cost more CPU than the
        write itself for a small reply. On a connection the hub parses itself (no extension)
        the frame is built here too. Only taken while the connection is open and its
        transport accepts more (not paused): a client that does not read still fills the
        bounded queue and is closed with 1013.
        """
        ws = self.ws  # ready(), inlined: once per reply
        if not (self.idle and not self.queue.qsize() and not ws.paused
                and ws.send_in_progress is None and ws.protocol.state is State.OPEN):
            return False
        self.write(text)
        return True

    def ready(self) -> bool:
        """Nothing of this connection is queued or in flight: ``write`` may write now."""
        ws = self.ws
        return self.idle and not self.queue.qsize() and not ws.paused \
            and ws.send_in_progress is None and ws.protocol.state is State.OPEN

    def write(self, text: str | bytes) -> None:
        """Write ``text`` (or its UTF-8 bytes: sent as they are) as a text frame at once
        (only when :meth:`ready`)."""
        ws = self.ws
        data = text.encode() if isinstance(text, str) else text
        if ws._fast:
            # no extension: the frame is the header and the text (a server does not mask);
            # websockets' own writes are always flushed before the loop runs anything else
            n = len(data)
            if n < 126:
                head = _HEADS[n]
            elif n < 1 << 16:
                head = _HEAD16(0x81, 126, n)
            else:
                head = b"\x81\x7f" + n.to_bytes(8, "big")
            ws.transport.write(head + data)
        else:
            ws.protocol.send_text(data)
            ws.send_data()
