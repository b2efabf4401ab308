"""Catch-ups: the events an ``evt.sub`` (or the notes an ``evt.mon`` with a ``rev``) asked for
from before the hub's revision, sent batch by batch at their place in the connection's send order.

A request that needs one hands its driver a ``Flush(conn, backlog)`` (:class:`Backlog`); the
driver reads it when it gets there: :func:`backlog` tells what to read next,
:func:`backlog_read` reads a batch (any thread: only the ledger and the backlog are touched;
the asyncio adapter reads off the event loop) and :func:`backlog_push` turns it into frames
(the request's reply first). A synchronous driver calls :func:`catch_up_sync`. These are
:class:`~hubserver.service.HubService` methods (bound there); an ``evt.unsub``, ``evt.unmon``
or ``evt.sat`` narrows or drops the catch-ups still to send (:func:`trim`, :func:`drop_mon`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import OutpostError
from core.model import Event, Update
from core.revision import Rev
from core.subs import Monitor, notes_for
from core.wire import enc_update, format_push, format_reply
from hubserver.fanout import unpush
from hubserver.limits import CLOSE_TOO_SLOW
from hubserver.outputs import Close, ConnId, Flush, Out, Send
from hubserver.satreply import event_sizes, fit, read_failed, under

if TYPE_CHECKING:
    from hubserver.service import HubService

__all__ = ["Backlog", "add", "backlog", "backlog_failed", "backlog_push", "backlog_read",
           "catch_up_sync", "drop_mon", "trim"]

log = logging.getLogger("outpost.hub")


@dataclass(slots=True)
class Backlog:
    """A catch-up to send in batches, in the connection's send order: the events after
    ``after`` up to ``upto`` (the revision fanned out when it was asked for) of ``tops``.

    - ``evt.sub``: the events the reply holds (``reply``: its subject and token, while the
      reply is not sent), then the rest as ``evt.update`` pushes;
    - ``evt.mon`` with a ``rev`` (``mon``: the monitor): the monitor's id as the reply, then
      notes of the changes it watches as ``evt.update`` pushes.

    Every batch is read with :meth:`HubService.backlog_read` (any thread: it reads only the
    ledger and this object) and turned into frames by :meth:`HubService.backlog_push`.
    """

    after: Rev
    upto: Rev
    tops: tuple[str, ...]
    seq: int = 0  # which catch-up of the connection (kept when evt.unsub narrows ``tops``)
    mon: Monitor | None = None
    reply: tuple[str, str] | None = None  # (subj, tok) of the reply still to send
    rest: tuple[str, ...] | None = None  # evt.sub: topics left for the pushes after the
    # reply (an evt.unsub or evt.sat while the reply was pending); None: ``tops``
    claim: Rev | None = None  # evt.mon: the rev its note pushes claim; None: ``upto``
    total: int | None = None  # evt.sub: how many events follow ``after`` at most, for the
    # reply's ``total_max`` (ours), read with its batch when more follow; None: not asked
    ahead: tuple[Event, ...] = ()  # whole revisions after ``after`` read by the last batch
    # that its frame had no room for: the next batch starts with them (each event read once)


def add(svc: HubService, conn: ConnId, b: Backlog) -> Backlog:
    """Queue catch-up ``b`` of ``conn`` after the ones it has (numbered for :func:`trim`)."""
    svc._backlog_seq += 1
    b.seq = svc._backlog_seq
    svc._backlogs.setdefault(conn, []).append(b)
    return b


def trim(svc: HubService, conn: ConnId, sat: bool = False, keep_b: Backlog | None = None
         ) -> None:
    """An ``evt.unsub`` (or, ``sat``, an ``evt.sat``, which resyncs the connection from its
    own rev) narrowed the subscription: the ``evt.sub`` catch-ups push only what is left.
    A reply still to send is sent as asked (as daql's hub would have, before serving the
    next request); monitors' catch-ups are not concerned, nor ``keep_b`` (the rest of the
    ``evt.sat`` reply's own catch-up, for a daql client: :func:`~hubserver.satreply._follow`)."""
    bls = svc._backlogs.get(conn)
    if not bls:
        return
    tops = set() if sat or conn not in svc.subs else set(svc.subs.get(conn).tops)
    keep = []
    for b in bls:
        if b.mon is not None or b is keep_b:
            keep.append(b)
            continue
        if b.reply is not None:
            b.rest = tuple(t for t in (b.tops if b.rest is None else b.rest) if t in tops)
            keep.append(b)
            continue
        left = tuple(t for t in b.tops if t in tops)
        if left == b.tops:
            keep.append(b)
        elif left:  # a new object: a read for the old topics in flight is dropped
            keep.append(Backlog(b.after, b.upto, left, b.seq))
    if keep:
        svc._backlogs[conn] = keep
    else:
        del svc._backlogs[conn]


def backlog(svc: HubService, conn: ConnId) -> tuple[Backlog, int] | None:
    """The catch-up ``conn`` gets next and how many events to read, or ``None``.

    :func:`backlog_read` reads them (on any thread; the asyncio adapter reads them off
    the event loop) for :func:`backlog_push`. A reply's batch and a monitor's are read
    ``max_batch`` at a time, pushes of events ``HubService.BACKLOG_BATCH`` at a time.
    """
    bls = svc._backlogs.get(conn)
    if not bls:
        return None
    b = bls[0]
    cap = max(1, svc.limits.max_batch)
    return b, cap if b.reply is not None or b.mon is not None \
        else max(1, min(svc.BACKLOG_BATCH, cap))


def backlog_read(svc: HubService, b: Backlog, limit: int) -> tuple[list[Event], bool]:
    """Read the next batch of ``b``: up to ``limit`` events after ``b.after`` (whole
    revisions) within about the bytes one frame carries, and whether more may follow up to
    ``b.upto``. Touches only the ledger and ``b`` (never changed in place while a read may
    run, but for ``b.total`` and ``b.ahead``, which only these reads set and use, one at a
    time): safe on another thread. A monitor's batch is read without the events' arguments
    (its notes name keys only).

    The events are read by bytes too (``Ledger.events``' ``max_bytes``: half the hub's
    ``max_message``, as :func:`~hubserver.satreply.fit` cuts a frame), and what the frame
    has no room for is kept for the next batch (``b.ahead``): a catch-up of large values
    reads each event once. It read ``limit`` events a batch and sent those that fit, then
    read them again: 1,000 events of 800 KB read (0.8 GB) per event sent, on the writer
    thread, where every publish waited behind it (operator review 14)."""
    if b.total == 0 and b.reply is not None:
        # ours: the reply says how many events of its topics follow
        b.total = svc.ledger.count_after(b.after, b.tops)
    if b.mon is not None or not b.tops:  # keys only: bounded by their count
        evs = svc.ledger.event_keys(b.after, b.tops, limit) if b.tops else []
        return _more(svc, b, evs, limit, False)
    budget = svc.limits.max_message // 2  # bounded in bytes, as evt.sat replies
    # (of its topics now: a reply sent meanwhile may have narrowed them, b.rest)
    evs = [e for e in b.ahead if b.after < e.rev <= b.upto and e.top in b.tops]
    b.ahead = ()
    used = 0  # of the budget, by the events kept from the last batch
    if not evs:
        evs = svc.ledger.events(b.after, b.tops, limit, budget)
    elif len(evs) < limit and evs[-1].rev < b.upto:
        used = sum(event_sizes(evs) or (budget,))
        if used < budget:
            evs.extend(svc.ledger.events(evs[-1].rev, b.tops, limit - len(evs),
                                         budget - used))
    n = fit(evs, budget)
    if n < len(evs):
        b.ahead = tuple(e for e in evs[n:] if e.rev <= b.upto)
        evs = evs[:n]  # whole revisions: the rest in the next batch
        return evs, evs[-1].rev < b.upto
    return _more(svc, b, evs, limit, not under(evs, budget - used))


def _more(svc: HubService, b: Backlog, evs: list[Event], limit: int, by_bytes: bool
          ) -> tuple[list[Event], bool]:
    """``evs`` (a whole batch read for ``b``) and whether more of its events may follow up
    to ``b.upto``. Fewer than ``limit`` events read ``by_bytes`` may be a read stopped by
    its bytes: the next event's revision tells (``Ledger.event_keys``: no argument read)."""
    if not evs or evs[-1].rev >= b.upto or (len(evs) < limit and not by_bytes):
        return evs, False
    if len(evs) >= limit and b.reply is None:
        return evs, True  # a push claims its last event's rev: no second read
    # the reply's rev says whether the subscription is caught up: find out
    nxt = svc.ledger.event_keys(evs[-1].rev, b.tops, 1)
    return evs, bool(nxt) and nxt[0].rev <= b.upto


def backlog_push(svc: HubService, conn: ConnId, b: Backlog, evs: Sequence[Event],
                 more: bool = True) -> list[str]:
    """The frames of a batch read for ``b`` (:func:`backlog_read`), in order: the reply
    to its request (first batch) and an ``evt.update`` push (none when nothing is left).

    ``b`` may have changed or gone while its events were read (``evt.unsub``,
    ``evt.unmon``, ``evt.sat``): then nothing is sent and :func:`backlog` tells what to
    read now.
    """
    bls = svc._backlogs.get(conn)
    if not bls or bls[0] is not b:
        return []
    mine = [e for e in evs if b.after < e.rev <= b.upto]
    done = not more or not mine or mine[-1].rev >= b.upto or len(evs) > len(mine)
    rev = b.upto if done else mine[-1].rev
    out: list[str] = []
    if b.reply is not None:
        subj, tok = b.reply
        b.reply = None
        if b.mon is not None:
            out.append(format_reply(subj, tok, b.mon.id))
        else:
            res = enc_update(Update(rev, tuple(mine))) if mine else None
            if res is not None and not done and b.total:
                # ours: the events of its topics this catch-up holds at most (daql ignores it)
                res["total_max"] = max(b.total, len(mine))
            out.append(format_reply(subj, tok, res))
            if b.rest is not None:  # narrowed meanwhile: the pushes cover what is left
                b.tops, b.rest = b.rest, None
                done = done or not b.tops
            mine = []  # in the reply
    if done:  # caught up to the watermark: later events come as live pushes
        bls.pop(0)
        if not bls:
            del svc._backlogs[conn]
    else:
        b.after = mine[-1].rev if mine else rev
    if b.mon is not None:
        notes = notes_for([b.mon], mine)
        if notes:
            # the revision of the request: the client has every event of its topics up
            # to it before this frame (a batch's own would take its revision back); a
            # satellite paused in an evt.sat catch-up only up to its last reply's
            up = Update(b.upto if b.claim is None else b.claim, (), tuple(notes))
            out.append(format_push("evt.update", enc_update(up)))
    elif mine:
        # no audits, as in the evt.sub reply (the audits extension is evt.sat's)
        out.append(format_push("evt.update", enc_update(Update(rev, tuple(mine)))))
    return out


def backlog_failed(svc: HubService, conn: ConnId, b: Backlog, exc: OutpostError) -> str | None:
    """Reading ``b`` failed: the error reply to send when its request is not answered
    yet (nothing of the request is kept), else ``None``: close the connection with 1013
    (its client resyncs from its rev)."""
    log.warning("conn %s: reading its catch-up failed: %s", conn, exc)
    bls = svc._backlogs.get(conn)
    if not bls or bls[0] is not b or b.reply is None:
        return None
    bls.pop(0)
    if not bls:
        del svc._backlogs[conn]
    subj, tok = b.reply
    # nothing of the request goes out after its error reply (pushes sealed after the
    # request follow this catch-up in the send order); the client may ask again
    if b.mon is not None:
        svc.subs.unmonitor(conn, b.mon.id)
        unpush(svc, conn, mon=b.mon.id)
    else:
        gone = b.tops if b.rest is None else b.rest
        svc.subs.unsubscribe(conn, gone)
        unpush(svc, conn, tops=gone)
    return read_failed(subj, tok)


def catch_up_sync(svc: HubService, conn: ConnId, b: Backlog,
                  reply_only: bool = False) -> list[Out]:
    """Read and format catch-up ``b`` at once, on this thread (synchronous drivers: tests,
    the simulation); the frames in order, or a ``Close``. ``reply_only``: only the batch
    that answers its request (a ``Flush(conn, b)`` follows when more is left), and only
    when no earlier catch-up of the connection is still to send (else ``Flush(conn, b)``
    stays in its place: its reply comes after that one)."""
    outs: list[Out] = []
    if reply_only and (bl := backlog(svc, conn)) is not None and bl[0] is not b:
        return [Flush(conn, b)]
    while (bl := backlog(svc, conn)) is not None and bl[0].seq == b.seq:
        cur, limit = bl
        if reply_only and cur.reply is None:
            outs.append(Flush(conn, cur))
            break
        try:
            evs, more = backlog_read(svc, cur, limit)
        except OutpostError as exc:
            err = backlog_failed(svc, conn, cur, exc)
            if err is None:
                return [*outs, Close(conn, CLOSE_TOO_SLOW, "could not read your "
                                     "catch-up: reconnect and resync from your rev")]
            outs.append(Send(conn, err))
            continue
        outs.extend(Send(conn, t) for t in backlog_push(svc, conn, cur, evs, more))
    return outs


def drop_mon(svc: HubService, conn: ConnId, mon: int) -> None:
    """``evt.unmon``: no more notes of that monitor's catch-up (its reply, when still to
    send, is sent: it comes before this request's)."""
    bls = svc._backlogs.get(conn)
    if not bls:
        return
    keep = []
    for b in bls:
        if b.mon is None or b.mon.id != mon:
            keep.append(b)
        elif b.reply is not None:  # a new object: a read in flight is dropped
            keep.append(Backlog(b.after, b.upto, (), b.seq, b.mon, b.reply))
    if keep:
        svc._backlogs[conn] = keep
    else:
        del svc._backlogs[conn]
