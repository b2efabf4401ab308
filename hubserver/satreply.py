"""The reply to an ``evt.sat`` (the satellite's sync request), once its transactions' commit is
durable: the acks and rejects of its transactions, in request order, and the events of its
topics after its ``rev`` (with the audits extension), bounded by ``lim``; the connection's
subscription becomes exactly those topics, caught up to the reply's revision.

Called by :meth:`HubService.finish <hubserver.service.HubService.finish>`; reads come from
the recently fanned-out events (:mod:`hubserver.recent`) when they reach back far enough. A
reply that must read the ledger (a satellite with a gap older than those events: up to
``max_batch`` events) is handed to the driver as a ``Flush(conn, SatRead)`` instead of being
built on the spot: the driver reads it where it is in the connection's send order with
:func:`sat_read` (any thread: the asyncio adapter reads it on the writer thread, off the event
loop, and handles none of the connection's next requests until the reply is out) and builds the
reply with :func:`sat_read_done` on the service's thread; a synchronous driver calls
:func:`sat_read_sync`. The reply's promise is the same either way: its ``rev`` is the
fanned-out revision when it is built (the read is bounded by the revision fanned out when it
started, and what was fanned out meanwhile comes from the recent events), or with ``more`` the
last event's, and every event of its topics after the request's ``rev`` up to it is in it.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson

from core.errors import ConflictError, OutpostError, ValidationError
from core.frozen import builder
from core.ledger.protocols import Ledger, PubResult, some_topics
from core.model import Audit, Cmd, Event, Trans
from core.revision import Rev
from core.subs import ConnId, Delivery
from core.wire import (
    ERR_CODE_READ,
    Ack,
    Reject,
    SatReq,
    SatRes,
    enc_audits,
    enc_conflict,
    enc_events,
    enc_sat_res,
    enc_verdicts,
    format_reply,
    format_reply_bytes,
    rev_memo,
)
from hubserver.fanout import audits_of, read_audits
from hubserver.outputs import Flush, Out, PubJob, Send

if TYPE_CHECKING:
    from hubserver.catchup import Backlog
    from hubserver.service import HubService, _Conn

log = logging.getLogger("outpost.hub")

__all__ = ["Got", "SatRead", "all_published", "event_sizes", "fit", "read_failed", "refused_reply",
           "refused_uidless", "sat_events", "sat_read", "sat_read_done", "sat_read_failed",
           "sat_read_sync", "sat_reply", "verdicts"]


@dataclass(slots=True)
class SatRead:
    """An ``evt.sat`` reply whose events are read from the ledger where the reply is in the
    connection's send order (see the module docstring): what the reply needs besides them,
    and the events read so far (``evs``: every event of ``tops`` after ``start`` up to
    ``after``, at most about ``lim``; ``audits``: theirs, when the connection asked)."""

    job: PubJob
    acks: list[Ack]
    rejects: list[Reject]
    start: Rev
    lim: int
    with_audits: bool
    after: Rev = 0
    evs: list[Event] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    held: list[Event] = field(default_factory=list)  # pending pushes the reply will carry
    # the request's transactions stored and refused (uid-less ones too): read_failed's text
    counts: tuple[int, int] = (0, 0)
    budget: int = 0  # bytes the reply's events take at most (fit)
    # the reply's JSON of ``evs`` and ``audits`` as far as encoded where they were read:
    # item runs (comma-separated, no brackets); ``None``: encoded with the reply instead
    enc: list[bytes] | None = field(default_factory=list)
    aenc: list[bytes] = field(default_factory=list)
    size: int = 0  # of the encoded events, as fit counts bytes
    n_enc: int = 0  # how many of ``evs`` ...
    a_enc: int = 0  # ... and of ``audits`` are encoded
    total: int | None = None  # a catch-up's first reply: its size (count_after), read first
    # whole revisions right after ``start`` the connection's last reply read and had no room
    # for (its ``sat_ahead``): the first read starts with them instead of reading them again
    carried: tuple[Event, ...] = ()
    # what this reply's reads had no room for (whole revisions after its end), for the next
    ahead: tuple[Event, ...] = ()
    # a daql client's reply with more: the rest of its catch-up, pushed right after it
    follow: Backlog | None = None

    @property
    def tops(self) -> tuple[str, ...]:
        assert self.job.sat is not None
        return tuple(self.job.sat.tops)

    @property
    def left(self) -> int:
        """How many events the next read asks for (1: only whether more follow)."""
        return max(1, self.lim - len(self.evs))


def sat_reply(svc: HubService, job: PubJob, results: Sequence[PubResult | Exception]
              ) -> list[Out]:
    """The reply to ``job``'s ``evt.sat`` (``results``: of ``job.items``, none failed but
    by a verdict), and the connection's subscription set to its topics."""
    assert job.sat is not None
    req = job.sat
    acks: list[Ack] = []
    rejects: list[Reject] = []
    if not job.pre and len(results) == len(req.trans) and all_published(results):
        # the common case, every transaction published (or a duplicate): acks only
        done = cast("Sequence[PubResult]", results)
        new_ack = _new_ack  # an Ack, built without its __init__ (core.frozen.builder)
        acks = [new_ack(t.uid, r.rev) for t, r in zip(req.trans, done, strict=True) if t.uid]
        counts = (len(done), 0)
    else:
        counts = verdicts(job, results, acks, rejects)
    c = svc._conns.get(job.conn)
    start = req.rev
    carried: tuple[Event, ...] = ()
    if c is not None and c.sat_ahead:
        # the last reply's read past its end: this one's first revisions when it asks from
        # where that one ended (a satellite's next batch after more)
        if c.sat_tops == frozenset(req.tops) and max(start, c.sat_end) == c.sat_end:
            carried = c.sat_ahead
        c.sat_ahead = ()
    if req.cont and c is not None and c.sat_tops == frozenset(req.tops):
        # ours: a request sent before the previous reply arrived (docs/protocol.md); the
        # replies of a connection go out in request order, so everything up to where the
        # last one ended is delivered before this one
        start = max(start, c.sat_end)
    if carried and c is not None and start != c.sat_end:
        carried = ()
    # every read first: a StorageError leaves the subscription as it was
    cap = max(1, svc.limits.max_batch)
    lim = min(req.lim or svc.limits.sat_batch or cap, cap)
    if req.tops and start < svc.rev and not svc._recent.covers(start):
        # older than the recent events: read from the ledger off the event loop, where the
        # reply is in the send order (sat_read, sat_read_done)
        # the events waiting to be pushed to the connection are the reply's (as _answer
        # drops them): out now, or the Flush would seal them into a push ahead of the reply
        return [Flush(job.conn, SatRead(job, acks, rejects, start, lim,
                                        c is not None and c.audits, start,
                                        held=_take_pending(svc, job.conn, start),
                                        budget=svc.limits.max_message // 2,
                                        counts=counts, total=0 if _first(c, req) else None,
                                        carried=carried))]
    evs, more = sat_events(svc, start, req.tops, lim)
    own = _own(job, results) if req.own and req.audits and c is not None and c.audits \
        else None
    return _answer(svc, job, acks, rejects, start, evs, more, own=own)


Own = tuple[str, dict[Rev, tuple[Trans, PubResult]]]
"""A request's own transactions the hub just applied (``own``, ours): the user they were
published as, and by revision the transaction and its result."""


def _own(job: PubJob, results: Sequence[PubResult | Exception]) -> Own | None:
    """The transactions of ``job`` this request applied now (not a resend of a uid applied
    before: its events may be in the client's replica already, or come in full), with a uid,
    published as the job's user; ``None``: none, or not the common case (some refused before
    publishing: the reply is sent in full)."""
    items = job.items
    if job.pre or not items or len(results) != len(items):
        return None
    usr = items[0][1]
    mine = {r.rev: (t, r) for (t, u), r in zip(items, results, strict=True)
            if type(r) is PubResult and not r.dup and t.uid and u == usr}
    return (usr, mine) if mine else None


def _all_own(evs: list[Event], audits: Sequence[Audit], acks: Sequence[Ack], usr: str,
             mine: dict[Rev, tuple[Trans, PubResult]]
             ) -> tuple[list[Event], tuple[Audit, ...], tuple[int, ...]] | None:
    """:func:`_left_out` of a replay's usual reply, in a few passes in C: its events are the
    very events this request's publish made (``PubResult.evs``, the same objects, in order),
    one audit and one ack each, nothing else; ``None``: not that case (or one of them must be
    sent in full), the careful walk decides. The events being the publish's own
    (:func:`core.ledger.rules.plan`'s), each has its action's topic, key and cmd, a ``mod``
    a copy of its action's values (never empty), a ``del`` none, a ``new`` the action's
    values unless the schema's defaults added fields (then its keys differ from the
    action's: sent in full by the walk) or the action had none (the same)."""
    ts = list(mine.values())
    own = [e for _, r in ts for e in r.evs]
    if len(own) != len(evs) or not all(map(operator.is_, evs, own)):
        return None
    trans = [t for t, _ in ts]
    new = Cmd.NEW
    if [(a.uid, a.rev) for a in acks] != [(t.uid, r.rev) for t, r in ts] \
            or [(a.rev, a.uid, a.created, a.usr) for a in audits] \
            != [(r.rev, t.uid, t.created, usr) for t, r in ts] \
            or not all(map(operator.is_, [a.extra for a in audits], [t.extra for t in trans])) \
            or [list(e.arg or ()) for e in evs if e.cmd is new] \
            != [None if a.arg is None else list(a.arg) for t in trans for a in t.acts
                if a.cmd is new]:
        return None
    return [], (), tuple([r.evs[0].id for _, r in ts])


def _left_out(evs: list[Event], audits: Sequence[Audit], acks: Sequence[Ack],
              rejects: Sequence[Reject], own: Own
              ) -> tuple[list[Event], tuple[Audit, ...], tuple[int, ...]] | None:
    """``evs`` and ``audits`` without those of the request's own transactions (``own``) that
    the client rebuilds exactly from what it sent (:func:`core.wire.with_own`), and per ack
    the first event id of each left out (0: sent in full); ``None``: none left out.

    A transaction is left out only when the reply holds all of its events, at its revision,
    with consecutive ids, each the action sent (topic, key, cmd; ``del`` without a value;
    else the very values of the action's ``arg``, in its key order: a ``new`` the schema's
    defaults added to, an action without ``arg``, or an event read back from a database are
    sent in full), and its audit says what was sent (uid, ``created``, ``extra``) and the
    request's user; and it is not also rejected in this reply (a uid sent twice)."""
    usr, mine = own
    if not rejects and len(audits) == len(mine) == len(acks):
        got = _all_own(evs, audits, acks, usr, mine)
        if got is not None:
            return got
    by_rev = {a.rev: a for a in audits}
    no = {x.uid for x in rejects} if rejects else None
    gone: dict[Rev, int] = {}
    kept: list[Event] = []
    add = kept.append
    get = mine.get
    dl = Cmd.DEL
    is_ = operator.is_
    i, n = 0, len(evs)
    while i < n:
        e = evs[i]
        m = get(e.rev)
        if m is not None:
            t = m[0]
            acts = t.acts
            k = len(acts)
            rev, first = e.rev, e.id
            a0 = by_rev.get(rev)
            ok = (a0 is not None and a0.uid == t.uid and a0.usr == usr
                  and a0.created == t.created and a0.extra is t.extra
                  and (no is None or t.uid not in no)
                  and (i + k >= n or evs[i + k].rev != rev))
            j = 0
            while ok and j < k:
                x, a = evs[i + j] if i + j < n else None, acts[j]
                if x is None or x.rev != rev or x.id != first + j or x.cmd is not a.cmd \
                        or x.top != a.top or x.key != a.key:
                    ok = False
                elif x.cmd is dl:
                    ok = x.arg is None
                else:
                    xa, aa = x.arg, a.arg
                    ok = xa is not None and aa is not None and len(xa) == len(aa) \
                        and all(map(is_, xa.values(), aa.values())) and list(xa) == list(aa)
                j += 1
            if ok:
                gone[rev] = first
                i += k
                continue
        add(e)
        i += 1
    if not gone:
        return None
    out = dict(gone)
    ids: list[int] = []
    for ack in acks:
        m = get(ack.rev)
        ids.append(gone.pop(ack.rev, 0) if m is not None and m[0].uid == ack.uid else 0)
    if gone:
        return None  # (an own transaction without its ack: cannot happen) sent in full
    return kept, tuple(x for x in audits if x.rev not in out), tuple(ids)


_PUBLISHED = frozenset({PubResult})
_new_ack = builder(Ack)


def all_published(results: Sequence[PubResult | Exception]) -> bool:
    """Every one of ``results`` is a :class:`~core.ledger.protocols.PubResult` (published,
    or a duplicate): the common case of an ``evt.sat``, told by the set of their types
    (no Python loop)."""
    return _PUBLISHED.issuperset(map(type, results))


def _first(c: _Conn | None, req: SatReq) -> bool:
    """``req`` starts a catch-up on connection ``c``: it does not ask again from where the
    connection's last reply of the same topics ended (a satellite's next batch after
    ``more``, or its edits once live). Its reply, when cut into batches, says how many
    events follow (``total_max``, ours)."""
    return c is None or not (c.sat_tops == frozenset(req.tops) and req.rev <= c.sat_end)


def _take_pending(svc: HubService, conn: ConnId, start: Rev) -> list[Event]:
    """The events pending for ``conn``, taken out (its notes stay, claiming no revision
    beyond ``start``: see :func:`_answer`)."""
    d = svc._pending.get(conn)
    if d is None:
        return []
    evs = list(d.evs)
    d.evs.clear()
    if d.note:
        d.rev = min(d.rev, start)
    else:
        del svc._pending[conn]
    return evs


def _answer(svc: HubService, job: PubJob, acks: list[Ack], rejects: list[Reject], start: Rev,
            evs: list[Event], more: bool, audits: tuple[Audit, ...] | None = None,
            pre: SatRead | None = None, after: bool = False, own: Own | None = None
            ) -> list[Out]:
    """The reply, with ``evs`` (every event of the request's topics after ``start`` up to
    the reply's rev) and ``audits`` (``None``: found here), and the connection's
    subscription set to its topics, caught up to the reply's rev. ``pre``: the read whose
    first events (and audits) are encoded already (:func:`sat_read`), cut to the bytes
    the reply may hold: the rest (from the recent events) is measured and encoded here.
    ``after``: the connection's pending pushes go after this reply (a reply read off the
    loop is sent where it was queued, ahead of them), else before it. ``own``: the
    request's own transactions, left out of the reply where the client rebuilds them
    (:func:`_left_out`)."""
    assert job.sat is not None
    req = job.sat
    c = svc._conns.get(job.conn)
    budget = svc.limits.max_message // 2  # the other half: audits, acks, rejects
    total = pre.total if pre is not None else None
    if pre is not None and pre.enc is not None:
        rest = evs[pre.n_enc:]
        sizes = event_sizes(rest)
        n = len(evs) if sizes is None else \
            pre.n_enc + _cut(rest, sizes, budget, pre.size, pre.n_enc > 0)
    else:
        pre = None
        n = fit(evs, budget, svc._recent.tail_bytes(evs))
    ahead: tuple[Event, ...] = ()
    if n < len(evs):
        # too many bytes for one frame: the first whole revisions that fit, the rest in the
        # next request's reply (more)
        evs, more = evs[:n], True
        if audits is not None:
            audits = tuple(a for a in audits if a.rev <= evs[-1].rev)
    elif pre is not None and more and pre.ahead and evs and pre.ahead[0].rev > evs[-1].rev:
        ahead = pre.ahead  # the revisions right after the reply's end, read for it
    rev = evs[-1].rev if more else max(svc.rev, start)
    total_max = 0
    if more and (total is not None or (pre is None and _first(c, req))):
        # ours: how many events this catch-up holds at most, in its first reply (0: not
        # known, not said)
        known = total or svc._recent.count_after(
            start, some_topics(svc.ledger.project, req.tops))
        total_max = max(known, len(evs)) if known else 0
    if c is None or not c.audits or not evs:
        audits = ()
    elif audits is None:
        # from the cache of audits this hub published (a satellite's own transactions,
        # just remembered by _finish); only older revisions are read
        audits = audits_of(svc, evs)
    follow = _follow(svc, job.conn, c, req, rev) if more else None
    if follow is not None:
        follow.ahead = ahead  # its first batch starts with them
    elif c is not None:
        c.sat_ahead = ahead
    if follow is not None:
        # the rest comes as pushes: the reply ends the catch-up as an evt.sub's first batch
        # does (no more, no total_max), so a client that does follow more does not ask
        # again for what is pushed
        more, total_max = False, 0
    svc.subs.replace(job.conn, req.tops)
    sub = svc.subs.get(job.conn)
    sub.paused = more
    sub.watermark = rev if follow is None else follow.upto
    d = svc._pending.get(job.conn)
    if d is not None:
        # the reply (or, with more, the batches after it) covers every pending event of
        # tops, and the subscription is now exactly tops: drop them all. Notes are in no
        # reply: keep them for the push already on its way (its Flush is queued), and let
        # it claim no revision beyond what the client has when it gets it: what it had
        # when it asked (the push goes before the reply), or the reply's (after it: an
        # earlier one would take the client's revision back)
        d.evs.clear()
        if d.note:
            d.rev = rev if after else min(d.rev, start)
        else:
            del svc._pending[job.conn]
    if c is not None:
        c.sat_end, c.sat_tops = rev, frozenset(req.tops)
    if pre is not None and c is not None:
        out = Send(job.conn, _frame(job, pre, rev, evs, acks, rejects, more, audits,
                                    total_max))
    else:
        mine = None if own is None or not audits else _left_out(evs, audits, acks, rejects,
                                                                   own)
        if own is not None and mine is not None:  # ours: own transactions as their acks
            res = SatRes(rev, tuple(mine[0]), tuple(acks), tuple(rejects), more, mine[1],
                         req.cont, total_max, (own[0], mine[2]))
        else:
            res = SatRes(rev, tuple(evs), tuple(acks), tuple(rejects), more, audits,
                         cont=req.cont, total_max=total_max)
        out = Send(job.conn, format_reply_bytes(job.subj, job.tok, enc_sat_res(res)))
    return [out] if follow is None else [out, Flush(job.conn, follow)]


def _follow(svc: HubService, conn: ConnId, c: _Conn | None, req: SatReq, rev: Rev
            ) -> Backlog | None:
    """A reply cut with ``more`` to a daql client: the rest of its catch-up (the events of
    its topics after ``rev`` up to the hub's revision), queued to be pushed right after the
    reply as ``evt.update`` (as an ``evt.sub``'s, :mod:`hubserver.catchup`), so the client
    ends up current and gets live pushes; ``None`` for an Outpost satellite, which asks
    for the next batch itself. daql's wshub client ignores ``more`` (daql's hub sends
    everything in one reply): before session 12 it was left with the first batch and a
    paused subscription, never pushed anything again. Told by the request: no ``audits``,
    ``lim`` or ``cont``, no uids, and none of them on the connection before."""
    if c is None or c.audits or req.audits or req.lim or req.cont \
            or any(t.uid for t in req.trans) or rev >= svc.rev:
        return None
    from hubserver.catchup import Backlog, add  # catchup imports this module

    return add(svc, conn, Backlog(rev, svc.rev, tuple(req.tops)))


def _frame(job: PubJob, pre: SatRead, rev: Rev, evs: Sequence[Event], acks: list[Ack],
           rejects: list[Reject], more: bool, audits: Sequence[Audit], total_max: int = 0
           ) -> str:
    """The reply's frame, the same text :func:`enc_sat_res` makes, with the JSON of the
    events and audits read off the loop spliced in (``orjson.Fragment``): only those of the
    recent events are encoded here."""
    assert job.sat is not None and pre.enc is not None
    fmt = rev_memo()
    head = enc_sat_res(SatRes(rev, (), tuple(acks), tuple(rejects), more, (), job.sat.cont))
    d: dict[str, Any] = {"rev": head.pop("rev")}
    runs = [x for x in pre.enc if x]
    if len(evs) > pre.n_enc:
        runs.append(orjson.dumps(enc_events(evs[pre.n_enc:], fmt))[1:-1])
    if runs:
        d["evs"] = orjson.Fragment(b"[" + b",".join(runs) + b"]")
    for k in ("acks", "rejects", "more"):
        if k in head:
            d[k] = head[k]
    if audits:
        runs = [x for x in pre.aenc if x]
        if len(audits) > pre.a_enc:
            runs.append(orjson.dumps(enc_audits(audits[pre.a_enc:], fmt))[1:-1])
        d["audits"] = orjson.Fragment(b"[" + b",".join(runs) + b"]")
    if "cont" in head:
        d["cont"] = True
    if total_max:
        d["total_max"] = total_max
    return format_reply(job.subj, job.tok, d)


_EV_BYTES = 100  # an event's JSON around its top, key and arg: rev, id, cmd, the names


def fit(evs: Sequence[Event], budget: int, known: int | None = None) -> int:
    """How many of ``evs`` (in revision order) one reply carries: all when their JSON stays
    within about ``budget`` bytes (half the hub's ``max_message``: the reply's audits, acks
    and rejects take at most about as much again), else the first whole
    revisions that do — at least the first revision, however big. A reply was bounded by
    its count of events only: 5,000 events of 200 bytes passed 1 MiB, more than a client
    holding to the hub's own frame limit takes (it could then never catch up).

    ``known``: the bytes of ``evs`` as :func:`hubserver.recent.arg_bytes` counted them when
    they were fanned out (:meth:`RecentEvents.tail_bytes`), or more: within half the budget
    the events are not encoded here (the reply encodes their values once)."""
    if len(evs) < 2:
        return len(evs)
    if known is not None and known <= budget // 2:
        return len(evs)  # a replay's reply: counted when its events were fanned out
    try:
        if len(orjson.dumps([e.arg for e in evs])) + _EV_BYTES * len(evs) <= budget // 2:
            return len(evs)  # the common case, by far: one cheap encode of the args
    except (TypeError, orjson.JSONEncodeError):
        return len(evs)  # the reply's own encoding will say what is wrong
    sizes = event_sizes(evs)
    return len(evs) if sizes is None else _cut(evs, sizes, budget)


def under(evs: Sequence[Event], max_bytes: int) -> bool:
    """``evs``, read by ``Ledger.events`` with ``max_bytes``, surely hold fewer bytes than
    that by the ledger's count: a read that returned fewer events than asked ended there,
    not at its bytes (else only the next event's revision tells whether more follow). The
    ledger counts the stored JSON text's characters and 100 a row: compact, at most 3 per
    byte of orjson's (``\\uXXXX`` escapes of the stdlib's fallback), so a quarter is sure."""
    try:
        n = len(orjson.dumps([e.arg for e in evs]))
    except (TypeError, orjson.JSONEncodeError):
        return False
    return (n + _EV_BYTES * len(evs)) * 4 < max_bytes


def event_sizes(evs: Sequence[Event]) -> list[int] | None:
    """Each event's bytes as :func:`fit` counts them (``None``: one does not encode)."""
    try:
        return [len(orjson.dumps(e.arg)) + _EV_BYTES + len(e.top) + len(e.key) for e in evs]
    except (TypeError, orjson.JSONEncodeError):
        return None


def _cut(evs: Sequence[Event], sizes: Sequence[int], budget: int, used: int = 0,
         kept: bool = False) -> int:
    """How many of ``evs`` fit in ``budget`` bytes after ``used`` of the events before
    them (``kept``: there are some): whole revisions, at least the first when none
    before (:func:`fit`; ``evs`` end with a whole revision)."""
    keep = 0
    size = used
    for i, e in enumerate(evs):
        size += sizes[i]
        if i + 1 == len(evs) or evs[i + 1].rev != e.rev:  # the end of a revision
            if size > budget and (keep or kept):
                return keep
            keep = i + 1
    return keep


def verdicts(job: PubJob, results: Sequence[PubResult | Exception], acks: list[Ack],
             rejects: list[Reject]) -> tuple[int, int]:
    """The acks and rejects of an ``evt.sat``'s transactions, in request order (into
    ``acks`` and ``rejects``): ``results`` are those of ``job.items``, the transactions
    refused before publishing are in ``job.pre``. Returns how many were stored and refused,
    the uid-less ones (a daql client's: no ack or reject names them) included."""
    assert job.sat is not None
    it = iter(results)
    n_ok = n_no = 0
    pre = job.pre
    for i, t in enumerate(job.sat.trans):
        r: PubResult | Exception | None = pre.get(i) if pre else None
        if r is None:
            r = next(it, None)
            if r is None:
                r = ValidationError("no result")
        if isinstance(r, PubResult):
            n_ok += 1
        else:
            n_no += 1
        if not t.uid:
            continue  # a daql client sends no uid: nothing to acknowledge by (as daql)
        if isinstance(r, PubResult):
            acks.append(Ack(t.uid, r.rev))
        else:
            conflicts = r.conflicts if isinstance(r, ConflictError) else ()
            rejects.append(Reject(t.uid, str(r), conflicts))
    return n_ok, n_no


def refused_uidless(job: PubJob, results: Sequence[PubResult | Exception]
                    ) -> list[tuple[int, Exception]]:
    """The uid-less transactions of ``job``'s ``evt.sat`` (a daql client's) the hub refused,
    as (index in the request, why). No reject can name them: the reply must be an error, as
    daql answers, or the client takes them for applied (wire review 12)."""
    assert job.sat is not None
    if not job.pre and all_published(results):
        return []
    out: list[tuple[int, Exception]] = []
    it = iter(results)
    for i, t in enumerate(job.sat.trans):
        r: PubResult | Exception | None = job.pre.get(i) if job.pre else None
        if r is None:
            r = next(it, None)
        if isinstance(r, Exception) and not t.uid:
            out.append((i, r))
    return out


def refused_reply(job: PubJob, results: Sequence[PubResult | Exception],
                  refused: Sequence[tuple[int, Exception]]) -> str:
    """The error reply to an ``evt.sat`` of which uid-less transactions were refused
    (:func:`refused_uidless`): daql publishes every transaction of an ``evt.sat`` or
    answers an error (``{"err": ...}``, docs/satellite.md), so a daql client must not get a
    ``res`` that says nothing of them. The text names each refused transaction (its place
    in the request, its first action) and why, and how many others were stored: those
    come with the hub's events (a push when subscribed, else the next ``evt.sat``'s reply),
    not in this reply, and must not be sent again. Acks and rejects of transactions with
    uids (a mixed request) ride along as in :func:`read_failed`; one refused transaction's
    conflicts too."""
    assert job.sat is not None
    trans = job.sat.trans
    acks: list[Ack] = []
    rejects: list[Reject] = []
    n_ok, n_no = verdicts(job, results, acks, rejects)
    # a mixed request: transactions with uids refused too are named in the rejects (before,
    # "refused 1 of 3 … the other 1 were stored" while 2 were refused: wire review 13)
    n_uid = n_no - len(refused)
    parts = []
    for i, exc in refused[:5]:
        a = trans[i].acts[0] if trans[i].acts else None
        what = f" ({a.cmd} {a.top} {a.key})" if a is not None else ""
        # a conflict's own text ends with Outpost's fix (`outpost resolve UID`, the
        # Conflicts view), which a daql client has not: only what collided, then its fix
        why = exc.what if isinstance(exc, ConflictError) else str(exc)
        parts.append(f"transaction {i + 1}{what}: {why}")
    if len(refused) > 5:
        parts.append(f"and {len(refused) - 5} more")
    without = " without a uid" if any(t.uid for t in trans) else ""  # a mixed request
    msg = (f"{job.subj}: the hub refused {len(refused)} of the request's {len(trans)} "
           f"transactions{without} and applied nothing of them: {'; '.join(parts)}. Update "
           "the records from the hub's events and make those edits again")
    if n_uid:
        msg += (f"; {n_uid} other{'s' if n_uid > 1 else ''} with a uid "
                f"{'were' if n_uid > 1 else 'was'} refused too (named in this reply's "
                "rejects)")
    if n_ok:
        msg += (f"; {'the other' if not n_uid else 'the remaining'} {n_ok} "
                f"{'were' if n_ok > 1 else 'was'} stored (they come with the hub's events "
                "after your revision): do not send them again")
    extra: dict[str, Any] = dict(enc_verdicts(acks, rejects))
    if len(refused) == 1 and isinstance(refused[0][1], ConflictError):
        extra["conflicts"] = [enc_conflict(x) for x in refused[0][1].conflicts]
    return format_reply(job.subj, job.tok, err=msg, **extra)


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


class Got(NamedTuple):
    """What :func:`sat_read` read (and encoded) for :func:`sat_read_done`."""

    evs: list[Event]
    full: bool  # the reply ends with them (more follow)
    audits: list[Audit]
    enc: bytes | None = None  # the JSON items of ``evs`` (None: not encoded)
    aenc: bytes = b""  # ... of ``audits``
    size: int = 0  # the bytes of ``evs`` as fit counts them
    total: int | None = None  # ``count_after`` of the reply's start (SatRead.total asked it)
    ahead: tuple[Event, ...] = ()  # read after ``evs`` (whole revisions), no room for them


def sat_read(ledger: Ledger, r: SatRead, upto: Rev) -> Got:
    """The next read of ``r`` (any thread: only the ledger is read, ``r`` is not changed):
    the events of its topics after ``r.after`` up to ``upto`` (the revision fanned out when
    the read started), at most about ``r.left`` (whole revisions), whether more of them
    follow before ``upto``, and their audits when the connection asked for them.

    Encoded here too, off the event loop (``Got.enc``): the events that fit in the bytes
    the reply has left (:func:`fit`; cut there, the reply ends with them), and their
    audits. The loop then splices the JSON into the reply (:func:`_frame`): a reply of
    5,000 events held the loop 10-18 ms encoding them."""
    tops, limit = r.tops, r.left
    # a catch-up's first reply says how big it is (ours): asked before its first read
    total = ledger.count_after(r.start, tops) if r.total == 0 else None
    # read by bytes too (the reply's room left, at least one revision): a reply of large
    # values read max_batch of them to send the one that fit (operator review 14)
    room = max(1, r.budget - r.size) if r.budget and len(r.evs) < r.lim else 0
    # the revisions the connection's last reply read past its end come first (read once)
    evs = [e for e in r.carried if e.rev <= upto] \
        if r.carried and not r.evs and r.after == r.start else []
    if evs:
        used = sum(event_sizes(evs) or (room,))
        if evs[-1].rev < upto and len(evs) < limit and (not room or used < room):
            evs += ledger.events(evs[-1].rev, tops, limit - len(evs),
                                 max(1, room - used) if room else 0)
    elif r.after < upto:
        evs = ledger.events(r.after, tops, limit, room)
    ask = False  # whether more follow before upto is still to find out
    if evs and evs[-1].rev > upto:
        evs = [e for e in evs if e.rev <= upto]  # everything up to upto (whole revisions)
    elif evs and evs[-1].rev < upto and (len(evs) >= limit or (room and not under(evs, room))):
        ask = True  # as many as asked, or maybe stopped by the bytes
    audits: list[Audit] = []
    if evs and r.with_audits:
        # those of the revisions of the events read, not of every topic's in their range
        audits = read_audits(ledger, evs, sorted({e.rev for e in evs}))
    if not evs or r.enc is None or len(r.evs) >= r.lim or not r.budget:
        # nothing to encode, or only whether more follow
        return Got(evs, ask and _next(ledger, tops, evs[-1].rev, upto), audits, total=total)
    sizes = event_sizes(evs)
    if sizes is None:  # the reply's encoding says what is wrong
        return Got(evs, ask and _next(ledger, tops, evs[-1].rev, upto), audits, total=total)
    n = _cut(evs, sizes, r.budget, r.size, bool(r.evs))
    full = ask
    ahead: tuple[Event, ...] = ()
    if n < len(evs):  # too many bytes: the reply ends with the first n (more)
        if evs and n and sum(sizes[n:]) <= 2 * r.budget:
            # read already: the next reply from here starts with them (kept on the
            # connection, at most about a frame's bytes), not read twice (session 15)
            ahead = tuple(evs[n:])
        evs, full = evs[:n], True
        audits = [a for a in audits if a.rev <= evs[-1].rev] if evs else []
    elif ask:
        full = _next(ledger, tops, evs[-1].rev, upto)
    fmt = rev_memo()
    enc = orjson.dumps(enc_events(evs, fmt))[1:-1] if evs else b""
    aenc = orjson.dumps(enc_audits(audits, fmt))[1:-1] if audits else b""
    return Got(evs, full, audits, enc, aenc, sum(sizes[:n]), total, ahead)


def _next(ledger: Ledger, tops: Sequence[str], rev: Rev, upto: Rev) -> bool:
    """An event of ``tops`` follows ``rev`` up to ``upto`` (its key read, not its value)."""
    nxt = ledger.event_keys(rev, tops, 1)
    return bool(nxt) and nxt[0].rev <= upto


def sat_read_done(svc: HubService, r: SatRead, got: Got, upto: Rev) -> str | None:
    """A read of ``r`` (:func:`sat_read` up to ``upto``) returned: the reply's frame
    (``""``: the connection is gone), or ``None``: read again (the recent events no longer
    reach back to ``upto``). The events fanned out after ``upto`` come from the recent
    events, so the reply's rev is the fanned-out revision now (as :func:`sat_reply`)."""
    evs, full, audits = got.evs, got.full, got.audits
    if r.job.conn not in svc._conns:
        return ""
    if got.total is not None:
        r.total = got.total
    if len(r.evs) >= r.lim:  # a read of one event: only whether more follow
        if evs:
            return _done(svc, r, True)
    else:
        if r.enc is not None and len(r.evs) == r.n_enc and (got.enc is not None or not evs):
            # encoded where it was read, as every event before it
            r.enc.append(got.enc or b"")
            r.aenc.append(got.aenc)
            r.size += got.size
            r.n_enc += len(evs)
            r.a_enc += len(audits)
        else:
            r.enc = None
        r.evs.extend(evs)
        r.audits.extend(audits)
        if full:
            r.ahead = got.ahead
            return _done(svc, r, True)
    r.after = upto
    if not svc._recent.covers(upto):
        return None
    tops, left = r.tops, r.lim - len(r.evs)
    if upto >= svc.rev:
        return _done(svc, r, False)
    if left <= 0:
        return _done(svc, r, bool(svc._recent.after(upto, tops, 1)))
    extra = svc._recent.after(upto, tops, left)
    more = len(extra) >= left and extra[-1].rev < svc.rev \
        and bool(svc._recent.after(extra[-1].rev, tops, 1))
    if extra:
        r.evs.extend(extra)
        if r.with_audits:
            r.audits.extend(audits_of(svc, extra))
    return _done(svc, r, more)


def _done(svc: HubService, r: SatRead, more: bool) -> str:
    outs = _answer(svc, r.job, r.acks, r.rejects, r.start, r.evs, more, tuple(r.audits), r,
                   after=True)
    o = outs[0]
    assert isinstance(o, Send)
    if len(outs) > 1:  # a daql client's rest of the catch-up: sent right after the reply
        f = outs[1]
        assert isinstance(f, Flush) and f.catch_up is not None and not isinstance(
            f.catch_up, SatRead)
        r.follow = cast("Backlog", f.catch_up)  # _answer's second output is a catch-up
    return o.text


def read_failed(subj: str, tok: str, acks: Sequence[Ack] = (), rejects: Sequence[Reject] = (),
                stored: str = "", counts: tuple[int, int] | None = None) -> str:
    """The error reply to a request the hub could not answer because reading its ledger
    failed, whatever the request and the read (one shape: ``code`` :data:`ERR_CODE_READ`).

    It says what happened and nothing of the hub's storage: the cause (a path, an SQL or
    driver message, the operator's hint) is in the hub's log, where the caller put it; the
    client retries. An ``evt.sat``'s transactions were published before the read (their
    commit is durable): their ``acks`` and ``rejects`` are in the reply, as in a result,
    so they are stored and not sent again; ``counts``: how many of its transactions were
    stored and refused, uid-less ones (a daql client's, which no ack names) included
    (default: the acks and rejects), said in the text; ``stored``: what else was stored (an
    ``evt.pub``'s revision), said in the text."""
    msg = f"{subj}: the hub could not read its ledger to answer; ask again later (the cause " \
          "is in the hub's log)"
    n_ok, n_no = counts if counts is not None else (len(acks), len(rejects))
    if n_ok or n_no:
        named = " (named in acks and rejects)" if acks or rejects else ""
        msg += (f"; {n_ok} of the request's transactions were stored and {n_no} refused "
                f"before that{named}: do not send them again")
    elif stored:
        msg += f"; {stored}"
    extra = enc_verdicts(acks, rejects)
    return format_reply(subj, tok, err=msg, code=ERR_CODE_READ, **extra)


def sat_read_failed(svc: HubService, r: SatRead, exc: OutpostError) -> str:
    """Reading ``r`` failed: its error reply (:func:`read_failed`, with the acks and rejects
    of the request's transactions: they were published; the subscription stays as it was)."""
    job = r.job
    log.warning("conn %s: %s: could not answer: %s", job.conn, job.subj, exc)
    if r.held and job.conn in svc._conns:
        # no reply carries them: pushed after the error reply, as before the request
        d = svc._pending.get(job.conn)
        if d is None:
            d = svc._pending[job.conn] = Delivery(r.held[-1].rev)
        d.evs[:0] = r.held
        d.rev = max(d.rev, r.held[-1].rev)
        r.held = []
    return read_failed(job.subj, job.tok, r.acks, r.rejects, counts=r.counts)


def sat_read_sync(svc: HubService, r: SatRead) -> list[Out]:
    """Read and build ``r``'s reply at once, on this thread (synchronous drivers)."""
    while True:
        upto = svc.rev
        try:
            text = sat_read_done(svc, r, sat_read(svc.ledger, r, upto), upto)
        except OutpostError as exc:
            text = sat_read_failed(svc, r, exc)
        if text is not None:
            outs: list[Out] = [Send(r.job.conn, text)] if text else []
            if text and r.follow is not None:
                outs.append(Flush(r.job.conn, r.follow))  # a daql client's rest
            elif text and svc.has_push(r.job.conn):
                outs.append(Flush(r.job.conn))  # a failed read's pending pushes
            return outs
