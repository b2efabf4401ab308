"""``evt.hist`` (ours): one record's changes, a page at a time, read off the event loop.

The service checks the request and hands back a :class:`HistRead` (in a
:class:`~hubserver.outputs.Flush`, at the reply's place in the connection's send order); the
adapter reads and encodes it on the writer thread (:func:`hist_read`) and sends it; the
connection's next requests wait until then, as for an ``evt.sat`` reply read from the ledger.
A page holds at most ``lim`` changes (the hub's ``max_batch`` at most) and about
``max_message`` bytes, never cutting a revision; when more remain the reply says
``"more": true`` beside ``res`` and the client asks again with ``after`` set to the last
change's revision. Before session 15 the whole history was read, decoded and encoded on the
event loop: a record of 61 changes of 700 KB made a 42 MB reply (past the 1 MiB frame limit)
that stalled every other connection for 1.6 s, and a reader asking again without reading
grew the hub by gigabytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.errors import OutpostError, StorageError
from core.ledger.protocols import Ledger
from core.revision import format_rev
from core.wire import dumps, format_frame, format_reply
from hubserver.outputs import ConnId, Send
from hubserver.satreply import read_failed

__all__ = ["HistRead", "hist_read", "hist_send_sync"]

log = logging.getLogger("outpost.hub")

_HEAD = 1024
"""Bytes a page leaves under ``max_message`` for the frame's subject, token and wrapping."""


@dataclass(frozen=True, slots=True)
class HistRead:
    """An ``evt.hist`` request checked and waiting for its read: the page it asks for."""

    conn: ConnId
    subj: str
    tok: str
    top: str
    key: str
    after: int
    lim: int
    max_bytes: int


def hist_read(ledger: Ledger, r: HistRead) -> str:
    """Read and encode ``r``'s reply (on the writer thread; blocking). A failing read
    becomes the request's error reply (the cause is logged)."""
    try:
        page, more = ledger.history_page(r.top, r.key, r.after, r.lim,
                                         max(r.max_bytes - _HEAD, 1))
    except StorageError as exc:
        log.warning("conn %s: %s failed: %s", r.conn, r.subj, exc)
        return read_failed(r.subj, r.tok)
    except OutpostError as exc:
        log.warning("conn %s: %s failed: %s", r.conn, r.subj, exc)
        return format_reply(r.subj, r.tok, err=f"{r.subj} failed on the hub: {exc}")
    res = []
    for h in page:
        d: dict[str, Any] = {"rev": format_rev(h.rev), "usr": h.usr, "cmd": h.cmd.value}
        if h.arg is not None:
            d["arg"] = h.arg
        res.append(d)
    body: dict[str, Any] = {"res": res}
    if more:
        body["more"] = True  # ours: ask again with "after" = the last change's rev
    return format_frame(r.subj, r.tok, dumps(body))


def hist_send_sync(ledger: Ledger, r: HistRead) -> Send:
    """Read and build ``r``'s reply at once, on this thread (synchronous drivers)."""
    return Send(r.conn, hist_read(ledger, r))
