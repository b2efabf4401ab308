"""The reply to an ``evt.sat`` (the satellite's sync request), once its transactions' commit is
durable: the acks and rejects of its transactions, in request order, and the events of its
topics after its ``rev`` (with the audits extension), bounded by ``lim``; the connection's
subscription becomes exactly those topics, caught up to the reply's revision.

Called by :meth:`HubService.finish <hubserver.service.HubService.finish>`; reads come from
the recently fanned-out events (:mod:`hubserver.recent`) when they reach back far enough, else
from the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from core.errors import ConflictError, ValidationError
from core.ledger.protocols import PubResult
from core.model import Audit, Event
from core.revision import Rev
from core.wire import Ack, Reject, SatRes, enc_sat_res, format_reply
from hubserver.fanout import audits_of
from hubserver.outputs import Out, PubJob, Send

if TYPE_CHECKING:
    from hubserver.service import HubService

__all__ = ["sat_events", "sat_reply", "verdicts"]


def sat_reply(svc: HubService, job: PubJob, results: Sequence[PubResult | Exception]
              ) -> list[Out]:
    """The reply to ``job``'s ``evt.sat`` (``results``: of ``job.items``, none failed but
    by a verdict), and the connection's subscription set to its topics."""
    assert job.sat is not None
    req = job.sat
    acks: list[Ack] = []
    rejects: list[Reject] = []
    if not job.pre and len(results) == len(req.trans) \
            and all(type(r) is PubResult for r in results):
        # the common case, every transaction published (or a duplicate): acks only
        done = cast("Sequence[PubResult]", results)
        acks = [Ack(t.uid, r.rev) for t, r in zip(req.trans, done, strict=True) if t.uid]
    else:
        verdicts(job, results, acks, rejects)
    c = svc._conns.get(job.conn)
    start = req.rev
    if req.cont and c is not None and c.sat_tops == frozenset(req.tops):
        # ours: a request sent before the previous reply arrived (docs/protocol.md); the
        # replies of a connection go out in request order, so everything up to where the
        # last one ended is delivered before this one
        start = max(start, c.sat_end)
    # every read first: a StorageError leaves the subscription as it was
    cap = max(1, svc.limits.max_batch)
    lim = min(req.lim or svc.limits.sat_batch or cap, cap)
    evs, more = sat_events(svc, start, req.tops, lim)
    rev = evs[-1].rev if more else max(svc.rev, start)
    audits: tuple[Audit, ...] = ()
    if evs and c is not None and c.audits:
        # from the cache of audits this hub published (a satellite's own transactions,
        # just remembered by _finish); only older revisions are read
        audits = audits_of(svc, evs)
    svc.subs.replace(job.conn, req.tops)
    sub = svc.subs.get(job.conn)
    sub.paused = more
    sub.watermark = rev
    d = svc._pending.get(job.conn)
    if d is not None:
        # the reply (or, with more, the batches after it) covers every pending event of
        # tops, and the subscription is now exactly tops: drop them all. Notes are in no
        # reply: keep them for the push already on its way (its Flush is queued), and let
        # it claim no revision beyond what the client had when it asked
        d.evs.clear()
        if d.note:
            d.rev = min(d.rev, start)
        else:
            del svc._pending[job.conn]
    if c is not None:
        c.sat_end, c.sat_tops = rev, frozenset(req.tops)
    res = SatRes(rev, tuple(evs), tuple(acks), tuple(rejects), more, audits,
                 cont=req.cont)
    return [Send(job.conn, format_reply(job.subj, job.tok, enc_sat_res(res)))]


def verdicts(job: PubJob, results: Sequence[PubResult | Exception], acks: list[Ack],
             rejects: list[Reject]) -> None:
    """The acks and rejects of an ``evt.sat``'s transactions, in request order (into
    ``acks`` and ``rejects``): ``results`` are those of ``job.items``, the transactions
    refused before publishing are in ``job.pre``."""
    assert job.sat is not None
    it = iter(results)
    pre = job.pre
    for i, t in enumerate(job.sat.trans):
        r: PubResult | Exception | None = pre.get(i) if pre else None
        if r is None:
            r = next(it, None)
            if r is None:
                r = ValidationError("no result")
        if not t.uid:
            continue  # a daql client sends no uid: nothing to acknowledge by (as daql)
        if isinstance(r, PubResult):
            acks.append(Ack(t.uid, r.rev))
        else:
            conflicts = r.conflicts if isinstance(r, ConflictError) else ()
            rejects.append(Reject(t.uid, str(r), conflicts))


def sat_events(svc: HubService, rev: Rev, tops: Sequence[str], lim: int
               ) -> tuple[list[Event], bool]:
    """The events of an ``evt.sat`` reply (as :meth:`HubService._events`) and whether more
    follow: from the recently fanned-out events when they reach back to ``rev`` (a replaying
    satellite's reply holds the events its batch just published), else from the ledger."""
    if svc._recent.covers(rev):
        evs = svc._recent.after(rev, tops, lim) if tops and rev < svc.rev else []
        more = len(evs) >= lim and evs[-1].rev < svc.rev \
            and bool(svc._recent.after(evs[-1].rev, tops, 1))
        return evs, more
    evs = svc._events(rev, tops, lim)
    more = False
    if len(evs) >= lim and evs[-1].rev < svc.rev:
        nxt = svc.ledger.events(evs[-1].rev, tops, 1)
        more = bool(nxt) and nxt[0].rev <= svc.rev
    return evs, more
