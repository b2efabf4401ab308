"""What :class:`~hubserver.service.HubService` hands back to its driver: the outputs to carry
out (:class:`Send`, :class:`Close`, :class:`Flush`) and the publish jobs to run on the ledger
(:class:`PubJob`).

The asyncio adapter (:mod:`hubserver.server`) and the satellite simulation (``tests/sim``)
carry them out; the service itself never touches a socket.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import StorageError
from core.frozen import fast_init
from core.model import Trans
from core.revision import Rev
from core.wire import Frame, SatReq

if TYPE_CHECKING:
    from hubserver.catchup import Backlog
    from hubserver.hist import HistRead
    from hubserver.satreply import SatRead

__all__ = ["DB_DOWN", "DB_UNAVAILABLE", "Close", "ConnId", "Flush", "HubStopping", "LastRead",
           "Out", "PubJob", "Send", "client_text", "db_reason", "unavailable"]

DB_UNAVAILABLE = "the hub's database is unavailable (the cause is in the hub's log)"
DB_DOWN = ("the hub's database is unavailable; your edits stay pending (the cause is in the "
           "hub's log)")
"""What a client is told of a storage failure: never the database's URL, path or message."""


class HubStopping(StorageError):
    """A publish refused because the hub is shutting down (said to the client as it is)."""


_REASONS = {"full": "the disk is full", "readonly": "it is read only",
            "locked": "it is locked by another process", "unreachable": "it cannot be reached"}


def db_reason(exc: Exception) -> str:
    """The kind of a storage failure a client may know (the disk is full, the database is
    read only, locked or cannot be reached), without where or what the database is; "" when
    none of these. Told by :attr:`StorageError.kind <core.errors.StorageError.kind>` (the
    driver error's type and code), never by words of the text: that holds the database's URL
    or path, and a database named ``fullmoon`` was reported as a full disk."""
    return _REASONS.get(getattr(exc, "kind", "") or "", "")


def unavailable(exc: Exception) -> str:
    """:data:`DB_UNAVAILABLE`, with the kind of failure when it is one a client may know."""
    why = db_reason(exc)
    return (f"the hub's database is unavailable ({why}; the cause is in the hub's log)"
            if why else DB_UNAVAILABLE)


def client_text(exc: Exception) -> str:
    """The text of an error reply for ``exc``: a storage failure's own text names the
    database (its URL, with user, host and maybe a password; a file path; a driver message),
    which stays in the hub's log; the client gets :data:`DB_DOWN` (with the kind of failure:
    :func:`db_reason`)."""
    if isinstance(exc, StorageError) and not isinstance(exc, HubStopping):
        why = db_reason(exc)
        return DB_DOWN if not why else (f"the hub's database is unavailable ({why}); your "
                                        "edits stay pending (the cause is in the hub's log)")
    return str(exc)

ConnId = Hashable


@fast_init
@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``conn`` as one text frame: a ``str``, or its UTF-8 bytes (an
    ``evt.sat`` reply, as ``orjson`` made them: sent without a copy as text and back)."""

    conn: ConnId
    data: str | bytes

    @property
    def text(self) -> str:
        """The frame's text (``data`` decoded when it is bytes)."""
        d = self.data
        return d if isinstance(d, str) else d.decode("utf-8")


@fast_init
@dataclass(frozen=True, slots=True)
class Close:
    """Close ``conn`` with a WebSocket close code and a reason (at most 120 bytes)."""

    conn: ConnId
    code: int
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class Flush:
    """Pushes are pending for ``conn``: call :meth:`HubService.take_push` when ready to send.

    ``catch_up``: an ``evt.sub`` or ``evt.mon`` catch-up instead, to send at this place of
    the connection's send order: before any reply or push that comes after this ``Flush``.
    While ``catch_up.reply`` is set it also owes its request's reply (the adapter reads
    even that batch off the event loop). An adapter reads it batch by batch
    (:meth:`HubService.backlog`) when it gets there; a synchronous one may call
    :meth:`HubService.catch_up_sync` (``handle_sync`` already sends the reply so).

    Or an ``evt.sat`` reply to read from the ledger at this place
    (:class:`~hubserver.satreply.SatRead`): the connection's next requests are handled
    only once it is sent (``handle_sync`` builds it at once). Or an ``evt.hist`` reply to
    read so (:class:`~hubserver.hist.HistRead`). Or an ``evt.sat`` whose ``last`` is to
    be checked against the ledger first (:class:`LastRead`): the connection's next requests
    are handled only once it is resumed (:meth:`HubService.resume_sat`).
    """

    conn: ConnId
    catch_up: Backlog | SatRead | HistRead | LastRead | None = None


@dataclass(frozen=True, slots=True)
class LastRead:
    """An ``evt.sat`` held before anything of it is published or subscribed: its ``last``
    is checked against the hub's last event at or before ``rev``, which the recent events
    did not know (a hub just started), so it is read from the ledger
    (``Ledger.last_event_at``) off the event loop (session 15: read on the loop, a paused
    or silently dropped PostgreSQL froze the whole hub, /healthz and pings included, for as
    long as the database hung). The adapter reads it, then calls
    :meth:`HubService.resume_sat` with the result, which handles the request as
    :meth:`HubService.handle` would have (a diverged request is refused whole)."""

    conn: ConnId
    frame: Frame
    rev: Rev


Out = Send | Close | Flush


@dataclass(slots=True)
class PubJob:
    """Transactions of one request, to publish on the ledger (``items``: trans and user)."""

    conn: ConnId
    subj: str
    tok: str
    items: list[tuple[Trans, str]]
    sat: SatReq | None = None
    pre: dict[int, Exception] = field(default_factory=dict)  # rejected before publishing

