"""Fan-out and push delivery of :class:`~hubserver.service.HubService`: newly committed events go
to every subscription and monitor they concern, coalesced per connection, and the audit cache.

Pushes are coalesced: :func:`published` adds events to a per-connection pending
:class:`~core.subs.Delivery` and emits one :class:`~hubserver.outputs.Flush` when it was
empty; the adapter's writer then calls :func:`take_push`, which drains whatever accumulated
meanwhile into one frame (an adapter that must queue it behind a reply uses :func:`seal` and
:func:`take_sealed`). Subscribers of the same topics get the same frame, encoded once.

Audits (our extension): a connection whose ``evt.sat`` says ``"audits": true`` gets, beside
the events of every reply and push, the audit of each of their revisions. The service keeps
the audits of the revisions it published recently (``HubService.AUDIT_CACHE`` of them,
:func:`remember`); others are read with ``Ledger.audits`` in one range query
(:func:`audits_of`).

The public functions are bound as :class:`~hubserver.service.HubService` methods (no extra
call per message); they keep their state on the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from core.ledger.protocols import Ledger
from core.model import Audit, Event, Update
from core.revision import Rev
from core.subs import Delivery
from core.wire import enc_update, format_push
from hubserver.limits import CLOSE_TOO_SLOW
from hubserver.outputs import Close, ConnId, Flush, Out
from hubserver.recent import arg_bytes

if TYPE_CHECKING:
    from hubserver.service import HubService

__all__ = ["GAP_BATCH", "GAP_BYTES", "audits_of", "catch_up", "fill_to", "has_push", "pending",
           "published", "push_frame", "queue", "read_audits", "remember", "seal", "sealed_left",
           "take_push",
           "take_sealed", "unpush"]


def published(svc: HubService, evs: Sequence[Event], exclude: dict[Rev, ConnId] | None = None
              ) -> list[Out]:
    """Fan out newly committed events (in revision order) and advance :attr:`rev`.

    Args:
        evs: the events of the new revisions.
        exclude: revision → publishing connection (it gets them in its reply).
    """
    if not evs:
        return []
    if evs[0].rev <= svc.rev:  # in revision order: else every one is new
        evs = [e for e in evs if e.rev > svc.rev]  # already fanned out (by a catch-up)
        if not evs:
            return []
    if svc._last_id is None or evs[0].id != svc._last_id + 1:
        # event ids are dense and assigned in revision order under the ledger's write
        # lock: a hole means revisions published through another hub (same PostgreSQL
        # ledger) that this hub has not fanned out yet; fetch them first, so subscribers
        # never skip one (docs/scaleout.md)
        pre = fill_to(svc, evs[0].rev - 1, exclude)
        evs = [e for e in evs if e.rev > svc.rev]
        if not evs:
            return pre
    else:
        pre = []

    sizes = arg_bytes(evs)  # for the bounds in bytes: the recent events, pending pushes
    svc._fan = (evs, sizes)
    outs: list[Out] = pre
    add = outs.append
    for conn, d in svc.subs.fanout(evs, exclude).items():
        o = queue(svc, conn, d)
        if o is not None:
            add(o)
    last = evs[-1]
    if last.rev > svc.rev:
        svc.rev = last.rev
    svc._last_id = last.id
    svc._recent.add(evs, sizes)
    return outs


GAP_BATCH = 5000
"""Most events one read of :func:`fill_to` holds (whole revisions)."""
GAP_BYTES = 8 << 20
"""About the most bytes of values one read of :func:`fill_to` holds (at least one revision):
``Hub.CATCH_UP_BYTES`` too."""


def fill_to(svc: HubService, top: Rev, exclude: dict[Rev, ConnId] | None = None
            ) -> list[Out]:
    """Fan out every revision of the ledger after :attr:`rev` up to ``top`` (published
    through other hubs), read :data:`GAP_BATCH` events and about :data:`GAP_BYTES` at a
    time: one read of everything after :attr:`rev` held every value of the gap at once, and
    the revisions after ``top`` too (session 14 noted it, session 15 bounded it)."""
    outs: list[Out] = []
    for _ in range(1 << 20):  # each read fans out at least one revision: bounded
        if svc.rev >= top:
            break
        got = svc.ledger.events(svc.rev, None, GAP_BATCH, GAP_BYTES)
        evs = [e for e in got if e.rev <= top]
        if not evs:
            break
        # read from the ledger after rev: gap-free, it follows the last event fanned out
        svc._last_id = evs[0].id - 1
        outs += published(svc, evs, exclude)
        if len(evs) < len(got):
            break  # read past top: done
    return outs


def _bytes_of(svc: HubService, evs: Sequence[Event]) -> int:
    """The bytes of ``evs``, some of the events being fanned out (:func:`published`)."""
    fan, sizes = svc._fan
    if len(evs) == len(fan):
        return sum(sizes)  # every one of them (one event: a publish's)
    by_id = {e.id: n for e, n in zip(fan, sizes, strict=True)}
    return sum(by_id.get(e.id, 0) for e in evs)


def catch_up(svc: HubService, evs: Sequence[Event]) -> list[Out]:
    """Fan out events read from the ledger after :attr:`rev` (published by other hubs).

    ``evs`` must be every event of the ledger after some revision ``<= svc.rev`` up to
    the end of a revision, in (rev, id) order, as :meth:`Ledger.events` returns them;
    events already fanned out are dropped. Used by :mod:`hubserver.cluster`.
    """
    return published(svc, evs)


def queue(svc: HubService, conn: ConnId, fresh: Delivery) -> Out | None:
    """Add a fan-out's events and notes for ``conn`` to its pending push: a ``Flush`` when
    the push opens, a ``Close`` when too much is waiting, else ``None``.

    ``fresh`` is the fan-out's own delivery for ``conn`` (:meth:`Subs.fanout
    <core.subs.Subs.fanout>` makes one per call): when no push is pending it becomes the
    pending one (no copy: one object and two list copies less per subscriber). The
    ``Flush`` is the connection's own, made once when it connected (a ``Flush`` without a
    catch-up is the same value every time; session 13: one object less per subscriber and
    publish, ~2,700 instructions)."""
    rev = fresh.rev
    if not fresh.evs and svc.subs.get(conn).paused and (c := svc._conns.get(conn)) is not None:
        # notes only, to a satellite in an evt.sat catch-up with more: it has the events
        # up to its last reply's rev, not this fan-out's (as sat_reply's pending notes)
        rev = min(rev, c.sat_end)
    d = svc._pending.get(conn)
    first = d is None
    if d is None:
        fresh.rev = rev
        d = svc._pending[conn] = fresh
    else:
        if rev > d.rev:
            d.rev = rev
        if fresh.evs:
            d.evs.extend(fresh.evs)
            # the first fan-out's are not counted: one publish's, bounded by a frame
            d.size += _bytes_of(svc, fresh.evs)
            if d.size > svc.limits.max_pending_bytes:
                svc._pending.pop(conn, None)
                svc.subs.remove(conn)
                return Close(conn, CLOSE_TOO_SLOW, f"more than {svc.limits.max_pending_bytes:,}"
                             " bytes of events waiting: reconnect and resync from your rev")
        d.note.extend(fresh.note)
    if len(d.evs) + len(d.note) > svc.limits.max_pending:
        svc._pending.pop(conn, None)
        svc.subs.remove(conn)
        return Close(conn, CLOSE_TOO_SLOW, f"more than {svc.limits.max_pending} events "
                     "waiting: reconnect and resync from your rev")
    if not first:
        return None
    f = svc._flushes.get(conn)
    return f if f is not None else Flush(conn)


def take_push(svc: HubService, conn: ConnId) -> str | None:
    """The pending ``evt.update`` frame for ``conn`` (the events and notes coalesced since
    the last one), or ``None``.

    Catch-ups (``Flush.catch_up``) are not in it: each is sent where its ``Flush`` is in
    the connection's send order, with :meth:`HubService.backlog`, ``backlog_read`` and
    ``backlog_push`` (or ``catch_up_sync``).
    """
    d = svc._pending.pop(conn, None)
    if d is None:
        return None
    return push_frame(svc, conn, d)


def seal(svc: HubService, conn: ConnId) -> Delivery | None:
    """Take the pending push of ``conn`` as a frame of its own, to send later with
    :func:`take_sealed` (an adapter that must queue it: a reply or a catch-up follows it
    in the send order), or ``None`` when nothing is pending.

    Until it is taken, a catch-up queued before it whose reply turns into an error
    removes its topics' events (its monitor's notes) from it
    (:meth:`HubService.backlog_failed`).
    """
    d = svc._pending.pop(conn, None)
    if d is None or (not d.evs and not d.note):
        return None
    svc._sealed.setdefault(conn, []).append(d)
    return d


def take_sealed(svc: HubService, conn: ConnId, d: Delivery) -> str | None:
    """The frame of a push sealed by :func:`seal` (``None``: nothing is left of it). Over
    ``max_message`` it is cut: its first part, the rest stays sealed in ``d``
    (:func:`sealed_left`: the adapter takes it again before anything queued after it)."""
    ds = svc._sealed.get(conn)
    if ds:
        if ds[0] is d:
            del ds[0]
        else:
            ds[:] = [x for x in ds if x is not d]
        if not ds:
            del svc._sealed[conn]
    return push_frame(svc, conn, d, True)


def sealed_left(svc: HubService, conn: ConnId, d: Delivery) -> bool:
    """``d``, sealed and taken (:func:`take_sealed`), was cut: its rest is still to send."""
    return any(x is d for x in svc._sealed.get(conn, ()))


def push_frame(svc: HubService, conn: ConnId, d: Delivery, sealed: bool = False
               ) -> str | None:
    """The ``evt.update`` frame of ``d`` for ``conn`` (``None``: nothing is left of it).
    Over the hub's ``max_message`` it is cut (:func:`_cut_push`): the frame of its first
    part, ``d`` keeps the rest, pending again (``sealed``: sealed again)."""
    if not d.evs and not d.note:
        return None
    c = svc._conns.get(conn)
    with_audits = c is not None and c.audits
    key: tuple[Any, ...] | None = None
    if not d.note:
        # subscribers of the same topics get the same frame: encode it once per fan-out
        # (event ids are unique, so the ids and the revision identify the frame)
        evs = d.evs
        key = (d.rev, with_audits, evs[0].id) if len(evs) == 1 else \
            (d.rev, with_audits, *[e.id for e in evs])  # the same key: one event, no loop
        cached = svc._push_cache.get(key)
        if cached is not None:
            return cached
    audits = audits_of(svc, d.evs) if with_audits else ()
    text = format_push("evt.update", enc_update(Update(d.rev, tuple(d.evs), tuple(d.note),
                                                       audits)))
    if len(text) > svc.limits.max_message >> 2 and len(d.evs) > 1:
        # maybe over the frame limit (a character is 1 to 4 bytes): cut when it is
        head = _cut_push(svc, conn, d, text, with_audits, sealed)
        if head is not None:
            return head
    if key is not None:
        if len(svc._push_cache) >= svc.PUSH_CACHE:
            del svc._push_cache[next(iter(svc._push_cache))]
        svc._push_cache[key] = text
    return text


def _cut_push(svc: HubService, conn: ConnId, d: Delivery, text: str, with_audits: bool,
              sealed: bool) -> str | None:
    """``text`` (the push of ``d``) over the hub's ``max_message`` in bytes: the frame of
    its first whole revisions within about half of it (:func:`~hubserver.satreply.fit`, as an
    ``evt.sat`` reply's; at least one revision), taken out of ``d``, which keeps the rest and
    the notes for the next frame: pending again (the caller takes it next: the hub seals
    its pushes and writes every part before what is queued after them), or first of the
    sealed ones (``sealed``); ``None``: send ``text`` whole (it fits, or is
    one revision). Pushes coalesced behind a
    slow reader (up to ``max_pending_bytes``, 64 MiB) went out as one frame, over what the
    client takes: it was closed with 1009 and resynced, for ever (session 14 noted it)."""
    from hubserver.satreply import fit  # satreply imports this module

    limit = svc.limits.max_message
    if len(text.encode()) <= limit:
        return None
    evs = d.evs
    n = fit(evs, limit // 2)
    if n >= len(evs):  # by their values' bytes they fit: the audits or notes did not
        half = len(evs) // 2
        n = next((i for i in range(half, 0, -1) if evs[i].rev != evs[i - 1].rev), 0)
    if n <= 0:
        return None  # one revision: not cut (a push claims whole revisions)
    head = evs[:n]
    d.evs = evs[n:]
    if sealed:
        svc._sealed.setdefault(conn, []).insert(0, d)
    else:  # taken from the pending ones: nothing was fanned out to conn since
        svc._pending.setdefault(conn, d)
    audits = audits_of(svc, head) if with_audits else ()
    return format_push("evt.update", enc_update(Update(head[-1].rev, tuple(head), (), audits)))


def remember(svc: HubService, a: Audit) -> None:
    """Keep the audit of a revision this hub published (the oldest goes past the cap)."""
    svc._audits[a.rev] = a
    if len(svc._audits) > svc.AUDIT_CACHE:
        svc._audits.popitem(last=False)


_rev_of = attrgetter("rev")


def audits_of(svc: HubService, evs: Sequence[Event]) -> tuple[Audit, ...]:
    """The audits of the revisions of ``evs``: from the cache, else read in one query."""
    wanted = set(map(_rev_of, evs))
    revs = sorted(wanted)
    cache = svc._audits
    if cache.keys() >= wanted:  # all of them (a reply to a publish, a push): no Python loop
        return tuple(map(cache.__getitem__, revs))
    found = {r: a for r in revs if (a := cache.get(r)) is not None}
    missing = [r for r in revs if r not in found]
    if missing:
        for a in read_audits(svc.ledger, evs, missing):
            found[a.rev] = a  # from here, not the cache: a big reply outgrows it
            remember(svc, a)
    return tuple(found[r] for r in revs if r in found)


def read_audits(ledger: Ledger, evs: Sequence[Event], revs: Sequence[Rev]) -> list[Audit]:
    """The audits of ``revs`` (ascending, distinct: revisions of ``evs``, which are in
    order) from the ledger, and only those: one range read when ``evs`` are most of the
    ledger's events between their first and last (event ids are dense, so the ids say how
    many there are), else the revisions' rows by key (``Ledger.audits_at``). A range read
    of a reply of one topic read every other topic's audits in between and threw them away
    (5,000 audits among 50,000 revisions: 320 ms of CPU against 34 ms by key); by key costs
    about 1.35x the range read's per row when nothing is in between (docs/benchmarks.md)."""
    if not revs:
        return []
    span = evs[-1].id - evs[0].id + 1 if evs else 0
    if len(evs) * 4 >= span * 3:
        want = set(revs)
        return [a for a in ledger.audits(revs[0] - 1, revs[-1]) if a.rev in want]
    return ledger.audits_at(revs)


def has_push(svc: HubService, conn: ConnId) -> bool:
    """A push is open for ``conn`` (even one emptied by :meth:`HubService.backlog_failed`):
    the next reply must seal it, else the flush queued for it would carry later events ahead
    of that reply."""
    return conn in svc._pending


def pending(svc: HubService, conn: ConnId) -> int:
    """Events and notes waiting to be pushed to ``conn``."""
    d = svc._pending.get(conn)
    return 0 if d is None else len(d.evs) + len(d.note)


def unpush(svc: HubService, conn: ConnId, tops: Sequence[str] = (),
           mon: int | None = None) -> None:
    """Take the events of ``tops`` (the notes of monitor ``mon``) out of what ``conn``
    has not been sent yet: the pending push and the sealed ones (:func:`seal`)."""
    ds = list(svc._sealed.get(conn, ()))
    if (d := svc._pending.get(conn)) is not None:
        ds.append(d)
    for d in ds:
        if tops and d.evs:
            d.evs = [e for e in d.evs if e.top not in tops]
        if mon is not None and d.note:
            d.note = [n for n in d.note if n.mon != mon]
