"""The hub's service logic without I/O: daql's ``evt`` Ctrl/Server, as a state machine.

:class:`HubService` takes text frames from connections and hands back what to do: frames to
send, connections to close, and, for publishes, a :class:`PubJob` to run against the ledger.
It never touches a socket, a thread or the event loop, so it is tested directly and driven by
the satellite simulation as well as by the asyncio adapter in :mod:`hubserver.server`.

Two ways to drive it:

- synchronously: :meth:`HubService.handle_sync` runs a publish at once on the ledger and
  returns every output (tests, simulation);
- with group commit: :meth:`HubService.handle` returns the job; the adapter collects the jobs
  that arrive while a commit runs, publishes them together with ``publish_many`` (one durable
  commit) on a writer thread, then calls :meth:`HubService.finish` for each job in order.

Consistency of replies and pushes: the service keeps :attr:`HubService.rev`, the last revision
it has fanned out. Replies read the ledger only up to that revision and set the subscriber's
watermark to it; pushes carry only events after the watermark. A commit that is durable but
not yet finished is therefore neither lost nor delivered twice.

Audits (our extension): a connection whose ``evt.sat`` says ``"audits": true`` (an Outpost
satellite) gets, beside the events of every reply and push, the audit of each of their
revisions (who published it), so its replica's history shows the user. The service keeps the
audits of the revisions it published recently (:attr:`HubService.AUDIT_CACHE` of them); others
(catch-ups, revisions published through another hub) are read with ``Ledger.audits`` in one
range query. Other connections never get the field: their frames stay byte-identical to daql.

Pushes are coalesced: fan-out adds events to a per-connection pending :class:`Delivery` and
emits one :class:`Flush` when it was empty; the adapter's writer then calls
:meth:`HubService.take_push`, which drains whatever accumulated meanwhile into one frame.

This module holds the requests and the publish jobs' replies; the rest of the service's logic
is in functions that take the service (its state stays here), several bound as its methods:

- :mod:`hubserver.outputs`: what it hands back (``Send``, ``Close``, ``Flush``, ``PubJob``);
- :mod:`hubserver.catchup`: ``evt.sub`` / ``evt.mon`` catch-ups (``backlog*``);
- :mod:`hubserver.satreply`: the ``evt.sat`` reply;
- :mod:`hubserver.fanout`: fan-out, push coalescing and the audit cache (``published``,
  ``take_push``, ``seal``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.errors import (
    ConflictError,
    DivergedError,
    OutpostError,
    ReadOnlyError,
    StorageError,
    UnstorableError,
    ValidationError,
    WireError,
)
from core.frozen import builder
from core.ledger.protocols import Publisher, PubResult
from core.model import Audit, Event, Status, Trans, Update, Watch
from core.revision import ZERO_REV, Rev, format_rev, now_rev, parse_rev
from core.schema import MAX_KEY
from core.subs import Delivery, Subs
from core.wire import (
    ERR_CODE_DIVERGED,
    ERR_CODE_READONLY,
    MAX_RESTORES,
    Ack,
    Frame,
    Reject,
    dec_mon,
    dec_sat,
    dec_sub,
    dec_trans,
    dec_unmon,
    decode_body,
    enc_conflict,
    enc_last,
    enc_status,
    enc_update,
    format_reply,
    parse_frame,
    pub_reply,
)
from hubserver import catchup, fanout, satreply
from hubserver.auth import ROLES
from hubserver.catchup import Backlog
from hubserver.health import DbHealth
from hubserver.hist import HistRead, hist_send_sync
from hubserver.limits import CLOSE_POLICY, CLOSE_PROTOCOL, Limits
from hubserver.outputs import (
    Close,
    ConnId,
    Flush,
    LastRead,
    Out,
    PubJob,
    Send,
    client_text,
    unavailable,
)
from hubserver.recent import RECENT_BYTES, RecentEvents

__all__ = [
    "SUBJECTS",
    "Backlog",
    "Close",
    "Flush",
    "HubService",
    "Out",
    "PubJob",
    "PushCounts",
    "Send",
]

log = logging.getLogger("outpost.hub")

SUBJECTS = ("dom.project", "evt.hist", "evt.mon", "evt.pub", "evt.sat", "evt.stat",
            "evt.sub", "evt.unmon", "evt.unsub")


class PushCounts(NamedTuple):
    """:meth:`HubService.push_counts`: what is still to send, counted."""

    conns: int  # connections with a push pending (or sealed, not written yet)
    events: int  # the events those pushes hold
    catch_ups: int  # evt.sub / evt.mon catch-ups queued (evt.sat replies: the adapter's)


@dataclass(slots=True)
class _Conn:
    user: str
    role: str
    tokens: float
    last: Rev
    audits: bool = False  # an Outpost satellite: send the audits extension
    sat_end: Rev = ZERO_REV  # where the last evt.sat reply on this connection ended...
    sat_tops: frozenset[str] = frozenset()  # ...and its topics (for "cont" requests)
    # whole revisions after sat_end that the last reply read from the ledger and had no
    # room for: the next reply from sat_end starts with them (each event read once)
    sat_ahead: tuple[Event, ...] = ()


class HubService:
    """daql's hub services over any :class:`~core.ledger.protocols.Publisher`.

    Args:
        ledger: the hub's ledger.
        clock: current time as a revision (ms); injected for deterministic tests.
        limits: the bounds to enforce.
    """

    AUDIT_CACHE = 4096
    """How many recently published revisions' audits are kept for pushes."""

    PUSH_CACHE = 8
    """How many recently encoded push frames are kept for the next subscribers."""

    RECENT_EVENTS = 8192
    """How many recently fanned-out events are kept for ``evt.sat`` replies (see
    :mod:`hubserver.recent`)."""

    RECENT_BYTES = RECENT_BYTES
    """How many bytes of them (their values' JSON) at most: 64 MiB (operator review 14: by
    count only, 8,192 values of 800 KB were 6.5 GB)."""

    BACKLOG_BATCH = 1000
    """Most events one catch-up push of an ``evt.sub`` holds (bounded by ``max_batch``)."""

    def __init__(self, ledger: Publisher, clock: Callable[[], Rev] = now_rev,
                 limits: Limits | None = None):
        self.ledger = ledger
        self.clock = clock
        self.limits = limits or Limits()
        self._bucket_of: Limits | None = None  # the limits _bucket was taken from
        self._bucket = (0.0, 0.0)  # burst, rate: _take_token
        self.subs = Subs()
        self.rev: Rev = ledger.rev()
        self._last_id: int | None = self._last_id_at(self.rev)  # None: unknown
        self._conns: dict[ConnId, _Conn] = {}
        self._pending: dict[ConnId, Delivery] = {}
        self._flushes: dict[ConnId, Flush] = {}  # each connection's Flush without a catch-up
        self._sealed: dict[ConnId, list[Delivery]] = {}  # pushes taken, not sent yet (seal)
        self._backlogs: dict[ConnId, list[Backlog]] = {}  # evt.sub catch-ups to push
        self._backlog_seq = 0
        self.refused: dict[str, int] = {}
        """Requests refused before any commit, by reason (``GET /metrics``'s
        ``outpost_hub_refused_total``): ``rate`` (over ``--rate``: closed), ``frame`` (not a
        frame, or over ``--max-message``: closed), ``invalid`` (a bad request or value, over
        a limit: an error reply; an ``evt.sat``'s transaction over ``--max-acts`` counts
        once each), ``read_only`` (a reader's edits). Bumped on the refusal's path only."""
        # recent revisions, oldest first: an OrderedDict, whose popitem(last=False) is O(1),
        # where deleting a dict's first key (next(iter(d))) walks the slots already deleted
        # before it (about 2.5 us per publish at 4,096: 25 ms of the loop per 10,000)
        self._audits: OrderedDict[Rev, Audit] = OrderedDict()
        self._push_cache: dict[tuple[Any, ...], str] = {}  # recent push frames, oldest first
        # every event after a rev
        self._recent = RecentEvents(self.rev, self.RECENT_EVENTS, self.RECENT_BYTES)
        self._fan: tuple[Sequence[Event], list[int]] = ((), [])  # fanout.published's
        self._mig = ledger.project.version
        # served in evt.stat (Outpost extension): a satellite never syncs a replica of
        # another ledger with this one (core.satellite.machine)
        self._ledger_id = ledger.ledger_id
        self.db: DbHealth | None = None
        """The database's health, served in evt.stat (set by the asyncio hub)."""
        self.last_off_loop = False
        """An ``evt.sat``'s ``last`` the recent events do not answer is handed back as a
        :class:`~hubserver.outputs.LastRead` to read off the event loop and
        :meth:`resume_sat` (set by the asyncio hub); else read from the ledger at once."""
        # and its restore points (the last MAX_RESTORES): a replica that synced past one
        # made since it last synced never syncs with this hub
        self._restored = ledger.restored
        points = tuple(ledger.restores)
        self._restores = points[-MAX_RESTORES:]
        self._restores_omitted = len(points) - len(self._restores)
        self._project_dict = ledger.project.to_dict()
        self._project_dict.setdefault("project", {})["mig"] = self._mig

    def _last_id_at(self, rev: Rev) -> int | None:
        """The id of the last event of the ledger up to ``rev`` (0: none), ``None`` when
        unknown: the id the next event fanned out follows. Known from the start, the first
        publish after a start need not read its own events back to rule out a gap (a
        replaying satellite's first reply waited for a read of the 1,000 events it had just
        published); unknown, that first publish reads the ledger after ``rev`` (a gap from
        other hubs is fetched, as before)."""
        if rev == ZERO_REV:
            return 0
        last = [e for e in self.ledger.events(rev - 1) if e.rev <= rev]
        return last[-1].id if last else None

    # -- connections ---------------------------------------------------------------------------

    def connect(self, conn: ConnId, user: str, role: str = "writer") -> None:
        """Register an authenticated connection; ``user`` becomes the audit ``usr``."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        self._conns[conn] = _Conn(user, role, float(self.limits.burst), self.clock())
        self._flushes[conn] = Flush(conn)  # its pushes' Flush (fanout.queue): made once

    def disconnect(self, conn: ConnId) -> None:
        """Forget a connection: subscriptions, monitors and pending pushes."""
        self._conns.pop(conn, None)
        self._flushes.pop(conn, None)
        self._pending.pop(conn, None)
        self._sealed.pop(conn, None)
        self._backlogs.pop(conn, None)
        self.subs.remove(conn)

    @property
    def connections(self) -> int:
        return len(self._conns)

    def push_counts(self) -> PushCounts:
        """What ``GET /metrics`` shows of the pushes and catch-ups still to send (read-only,
        on the service's thread): connections with events fanned out but not yet written,
        those events, and the ``evt.sub`` / ``evt.mon`` catch-ups queued
        (:mod:`hubserver.metrics` read these by their private names before session 15)."""
        pending, sealed = self._pending, self._sealed
        return PushCounts(
            len(pending) + sum(1 for c in sealed if c not in pending),
            sum(len(d.evs) for d in pending.values())
            + sum(len(d.evs) for ds in sealed.values() for d in ds),
            sum(len(b) for b in self._backlogs.values()))

    # -- requests ------------------------------------------------------------------------------

    def handle(self, conn: ConnId, text: str | bytes) -> tuple[list[Out], PubJob | None]:
        """Process one frame from ``conn``.

        Returns:
            The outputs to carry out now, and a publish job (``evt.pub``, ``evt.sat``) to run
            on the ledger and pass to :meth:`finish`, or ``None``.
        """
        c = self._conns.get(conn)
        if c is None:
            return [Close(conn, CLOSE_PROTOCOL, "not connected")], None
        if not self._take_token(c):
            self._refuse("rate")
            return [Close(conn, CLOSE_POLICY,
                          f"message rate over {self.limits.rate:g}/s: slow down")], None
        try:
            frame = parse_frame(text, self.limits.max_message)
        except WireError as exc:
            # fatal errors (no subject, internal subject, not UTF-8, too big) close, as daql
            self._refuse("frame")
            return [Close(conn, CLOSE_PROTOCOL, str(exc)[:120])], None
        return self._guarded(conn, c, frame, None)

    def resume_sat(self, conn: ConnId, r: LastRead,
                   mine: tuple[int, Rev] | Exception) -> tuple[list[Out], PubJob | None]:
        """Handle an ``evt.sat`` held as a :class:`LastRead` (:attr:`last_off_loop`), with
        ``mine``, the hub's last event at or before ``r.rev`` as the ledger read it (or the
        error reading it): as :meth:`handle` would have, its outcome and reply the same.
        Nothing when the connection is gone."""
        c = self._conns.get(conn)
        if c is None:
            return [], None
        return self._guarded(conn, c, r.frame, mine)

    def _guarded(self, conn: ConnId, c: _Conn, frame: Frame,
                 mine: tuple[int, Rev] | Exception | None) -> tuple[list[Out], PubJob | None]:
        """:meth:`_dispatch` (or, ``mine`` given, :meth:`_sat` resumed), its errors answered."""
        try:
            if mine is None:
                return self._dispatch(conn, c, frame)
            if isinstance(mine, Exception):
                raise mine
            return self._sat(conn, c, frame, mine)
        except DivergedError as exc:
            # ours: the client's history up to its rev is not this hub's (nothing published):
            # the operator should know (a rollback of the ledger's file lost what it holds)
            log.warning("conn %s (user %s): %s", conn, c.user, exc)
            return self._err(conn, frame, str(exc), code=ERR_CODE_DIVERGED,
                             last=enc_last(exc.last if exc.last[0] else None)), None
        except ReadOnlyError as exc:
            # machine-readable: the satellite then catches up without its edits (they stay
            # pending) instead of reconnecting for ever
            self._refuse("read_only")
            return self._err(conn, frame, str(exc), code=ERR_CODE_READONLY), None
        except (WireError, ValidationError) as exc:
            self._refuse("invalid")
            return self._err(conn, frame, str(exc)), None
        except StorageError as exc:
            # the hub's own trouble reading the ledger: an error reply (the client asks again)
            # instead of closing the connection as if it were a bug; the cause is logged
            log.warning("conn %s: %s failed: %s", conn, frame.subj, exc)
            return [Send(conn, satreply.read_failed(frame.subj, frame.tok))], None
        except OutpostError as exc:
            log.warning("conn %s: %s failed: %s", conn, frame.subj, exc)
            return self._err(conn, frame, f"{frame.subj} failed on the hub: {exc}"), None

    def _refuse(self, reason: str, n: int = 1) -> None:
        """Count ``n`` requests refused before a commit for ``reason`` (:attr:`refused`)."""
        self.refused[reason] = self.refused.get(reason, 0) + n

    def handle_sync(self, conn: ConnId, text: str | bytes) -> list[Out]:
        """Process one frame completely, publishing at once (tests and simulation)."""
        outs, job = self.handle(conn, text)
        if job is not None:
            results = self.run_job(job)
            outs.extend(self.finish(job, results))
        for i, o in enumerate(outs):
            if isinstance(o, Flush) and isinstance(o.catch_up, HistRead):
                outs[i] = hist_send_sync(self.ledger, o.catch_up)
                break
            if isinstance(o, Flush) and isinstance(o.catch_up, satreply.SatRead):
                # an evt.sat reply to read from the ledger: read and built now
                outs[i:i + 1] = satreply.sat_read_sync(self, o.catch_up)
                break
            if isinstance(o, Flush) and isinstance(o.catch_up, Backlog) \
                    and o.catch_up.reply is not None:
                # the reply now (what the adapter reads off the loop when its sender gets
                # there); a Flush(conn, b) stands for the rest of the catch-up
                outs[i:i + 1] = self.catch_up_sync(conn, o.catch_up, reply_only=True)
                break
        return outs

    def run_job(self, job: PubJob) -> list[PubResult | Exception]:
        """Publish one job's transactions on the ledger (blocking; not on an event loop)."""
        return self.ledger.publish_many(job.items, self.clock())

    def _take_token(self, c: _Conn) -> bool:
        """The token bucket: ``rate`` messages per second, ``burst`` at once."""
        limits = self.limits
        if limits is not self._bucket_of:  # the limits' numbers, once (not per message)
            self._bucket = (float(limits.burst), limits.rate)
            self._bucket_of = limits
        burst, rate = self._bucket
        now = self.clock()
        tokens = c.tokens + (now - c.last) * rate / 1000.0
        c.last = now
        if not tokens <= burst:  # min(burst, tokens), NaN included (an infinite rate)
            tokens = burst
        if tokens < 1.0:
            c.tokens = tokens
            return False
        c.tokens = tokens - 1.0
        return True

    def _err(self, conn: ConnId, frame: Frame, msg: str, **extra: Any) -> list[Out]:
        return [Send(conn, format_reply(frame.subj, frame.tok, err=msg, **extra))]

    def _res(self, conn: ConnId, frame: Frame, res: Any) -> list[Out]:
        return [Send(conn, format_reply(frame.subj, frame.tok, res))]

    def _dispatch(self, conn: ConnId, c: _Conn,
                  frame: Frame) -> tuple[list[Out], PubJob | None]:
        s = frame.subj
        if s == "evt.stat":
            st = Status(self.rev, self._mig, ZERO_REV, ZERO_REV, self._ledger_id,
                        *self._restored, self._restores, self._restores_omitted)
            res = enc_status(st)
            # ours: the largest frame this hub takes (a satellite keeps evt.sat under it)
            res["max_message"] = self.limits.max_message
            # ours: this hub honours "cont" on evt.sat (docs/protocol.md), said before the
            # first evt.sat, so a satellite sends its second request with its first
            res["cont"] = True
            # ours: every evt.sat reply names each transaction with a uid in "acks" or
            # "rejects" (a daql hub names none: the satellite then takes a reply as the ack
            # of the request's transactions, docs/satellite.md "Syncing with a daql hub")
            res["acks"] = True
            # ours too: the database's health as the hub last saw it (hubserver.health)
            if self.db is not None:
                res.update(self.db.fields())
            # ours: what this user may do ("reader": the satellite refuses edits offline,
            # with the fix, instead of queuing what the hub will never take)
            res["role"] = c.role
            return self._res(conn, frame, res), None
        if s == "evt.pub":
            return self._pub(conn, c, frame)
        if s == "evt.sat":
            # its evt.sub catch-ups are trimmed once its reply resyncs the connection (_reply)
            return self._sat(conn, c, frame)
        if s == "evt.sub":
            return self._sub(conn, frame), None
        if s == "evt.unsub":
            req = dec_sub(decode_body(frame), "evt.unsub")
            self.subs.unsubscribe(conn, req.tops)
            catchup.trim(self, conn)
            # events of these topics fanned out before it are still sent, ahead of the reply
            # (as daql): a push's rev speaks for every topic the client had, so taking them
            # out of a push that also holds other topics would lose them for good
            return self._res(conn, frame, True), None
        if s == "evt.mon":
            return self._mon(conn, frame), None
        if s == "evt.unmon":
            mon = dec_unmon(decode_body(frame))
            catchup.drop_mon(self, conn, mon)
            return self._res(conn, frame, self.subs.unmonitor(conn, mon)), None
        if s == "evt.hist":
            return self._hist(conn, frame), None
        if s == "dom.project":
            return self._res(conn, frame, self._project_dict), None
        if not frame.tok:
            return [], None  # daql: no reply without a token
        return self._err(conn, frame, f"unknown subject {s!r}: known subjects are "
                         + ", ".join(SUBJECTS)), None

    # -- evt.sub / evt.mon / evt.hist ----------------------------------------------------------

    def _check_tops(self, tops: Sequence[str], where: str, what: str = "topics") -> None:
        if len(tops) > self.limits.max_tops:
            raise ValidationError(f"{where}: {len(tops)} {what}; the limit is "
                                  f"{self.limits.max_tops}")
        for t in tops:
            self.ledger.project.model(t)

    def _events(self, rev: Rev, tops: Sequence[str], limit: int = 0) -> list[Event]:
        """Events after ``rev`` up to the fanned-out revision (see the module docstring)."""
        if not tops or rev >= self.rev:
            return []
        evs = self.ledger.events(rev, tops, limit)
        if evs and evs[-1].rev > self.rev:
            evs = [e for e in evs if e.rev <= self.rev]
        return evs

    def _check_rev(self, rev: Rev, where: str) -> None:
        """A request's ``rev`` after the hub's: the client holds revisions this hub does not
        (a hub restored from an older backup, another ledger), or made it up. Refused as
        ``evt.pub`` refuses a future ``base``: answered as if from the hub's revision, the
        connection got no pushes until the hub passed it (its watermark)."""
        if rev > self.rev:
            raise ValidationError(
                f"{where}: rev {format_rev(rev)} is in the future of the ledger (at "
                f"{format_rev(self.rev)}): this hub does not hold the revisions the client "
                "has (a hub restored from an older backup, or another ledger); nothing was "
                "sent or changed. An Outpost satellite: connect a new data directory to this "
                "hub and carry the edits not synced into it (outpost connect URL --data "
                "NEWDIR; outpost carry OLD_DIR --data NEWDIR)")

    def _check_last(self, rev: Rev, last: tuple[int, Rev], mine: tuple[int, Rev] | None) -> None:
        """``evt.sat``'s ``last`` (ours, session 15): the client's last event at or before
        its ``rev`` must be this hub's (``rev`` is at or before the hub's, checked before, so
        the ledger holds every event up to it, on a cluster too). Another one (or none where
        the client holds one) means the hub's history up to ``rev`` is not the one the
        client holds: its file was rolled back (a copy of an older file, a VM snapshot
        reverted with its clock, a point-in-time recovery) to before events the client
        holds, and it published again with its clock behind them, so its revision passed
        the client's and no other check sees it; answering would skip its new events at or
        before ``rev`` as "already held". Refused before anything is published or
        subscribed. ``mine``: the hub's, from the recent events when they reach back to it,
        else a few index lookups of the ledger (``Ledger.last_event_at``), read off the event
        loop by the asyncio hub (:class:`~hubserver.outputs.LastRead`); ``None``: read here."""
        if mine is None:
            mine = self.ledger.last_event_at(rev)
        if mine == (last[0], last[1] if last[0] else ZERO_REV):
            return

        def said(e: tuple[int, Rev]) -> str:
            return f"event {e[0]} at {format_rev(e[1])}" if e[0] else "no event"
        raise DivergedError(
            f"evt.sat: the hub's history up to rev {format_rev(rev)} is not the client's: "
            f"its last event at or before it is {said(mine)}, the client's {said(last)} "
            "(the hub's ledger was rolled back to an older copy, e.g. a copied file, a "
            "snapshot or a point-in-time recovery, and it published again with its clock "
            "behind the revisions it lost); nothing was sent or changed. An Outpost "
            "satellite: connect a new data directory to this hub and carry the edits into "
            "it (outpost connect URL --data NEWDIR; outpost carry OLD_DIR --data NEWDIR "
            "--accepted)", mine)

    def _sub(self, conn: ConnId, frame: Frame) -> list[Out]:
        req = dec_sub(decode_body(frame))
        self._check_tops(req.tops, "evt.sub")
        self._check_rev(req.rev, "evt.sub")
        fresh = self.subs.subscribe(conn, req.tops)
        if not fresh:
            return self._err(conn, frame, "no new subscriptions")
        sub = self.subs.get(conn)
        sub.watermark = max(sub.watermark, self.rev)
        if req.rev >= self.rev:
            return self._res(conn, frame, None)
        # bounded as an evt.sat reply (daql's hub reads and sends everything at once), and
        # read when the connection's sender gets to it, off the event loop: the reply holds
        # the first batch (never cutting a revision); the rest, up to the watermark, follows
        # as evt.update pushes, batch by batch, before any later push
        return [Flush(conn, catchup.add(self, conn, Backlog(
            req.rev, self.rev, tuple(fresh), reply=(frame.subj, frame.tok), total=0)))]

    def _mon(self, conn: ConnId, frame: Frame) -> list[Out]:
        req = dec_mon(decode_body(frame))
        self._check_tops([w.top for w in req.watch], "evt.mon", "watches")
        if req.rev:  # as evt.sat / evt.sub (session 12: it was taken, noting nothing)
            self._check_rev(req.rev, "evt.mon")
        self._check_mon(conn, req.watch)
        m = self.subs.monitor(conn, req.watch)
        if not req.rev or req.rev >= self.rev:
            return self._res(conn, frame, m.id)
        # ours: changes after the given rev were missed: note them (after the reply, before
        # any later push), read batch by batch off the event loop as an evt.sub catch-up
        b = Backlog(req.rev, self.rev, tuple(m.keys), mon=m, reply=(frame.subj, frame.tok))
        c = self._conns.get(conn)
        if c is not None and self.subs.get(conn).paused:
            # in an evt.sat catch-up with more (its last reply is before this one in the
            # send order): the client has the events up to that reply's rev, not the hub's
            b.claim = min(b.upto, c.sat_end)
        return [Flush(conn, catchup.add(self, conn, b))]

    def _check_mon(self, conn: ConnId, watch: Sequence[Watch]) -> None:
        """What one connection's monitors may hold (``Limits.max_watch_keys``,
        ``max_monitors``, ``max_monitor_keys``): bounded, whatever the frames."""
        lim = self.limits
        n = 0
        for w in watch:
            if len(w.keys) > lim.max_watch_keys:
                raise ValidationError(
                    f"evt.mon: the watch of {w.top} holds {len(w.keys)} keys; the hub's limit "
                    f"is {lim.max_watch_keys} keys per watch (outpost-hub serve "
                    "--max-watch-keys): watch fewer keys, or subscribe to the topic "
                    "(evt.sub) to get all of its changes")
            for k in w.keys:
                if len(k) > MAX_KEY:
                    raise ValidationError(
                        f"evt.mon: a key of {w.top} is longer than {MAX_KEY} characters: no "
                        "record has such a key; watch the record's key")
            n += len(w.keys)
        mons, keys = self.subs.held(conn)
        if mons >= lim.max_monitors:
            raise ValidationError(
                f"evt.mon: this connection holds {mons} monitors; the hub's limit is "
                f"{lim.max_monitors} per connection (outpost-hub serve --max-monitors): "
                "remove one with evt.unmon first, or watch several keys in one monitor")
        if keys + n > lim.max_monitor_keys:
            raise ValidationError(
                f"evt.mon: this connection's monitors would watch {keys + n} keys ({keys} "
                f"already, {n} asked); the hub's limit is {lim.max_monitor_keys} per "
                "connection (outpost-hub serve --max-monitor-keys): remove monitors with "
                "evt.unmon first, or subscribe to the topic (evt.sub) to get all of its "
                "changes")

    def _hist(self, conn: ConnId, frame: Frame) -> list[Out]:
        """An ``evt.hist`` page to read off the event loop (:mod:`hubserver.hist`)."""
        body = decode_body(frame)
        if not isinstance(body, dict) or not isinstance(body.get("top"), str) \
                or not isinstance(body.get("key"), str):
            raise WireError('evt.hist: expected {"top": "schema.model", "key": "...", '
                            '"after"?: "rev", "lim"?: n}')
        self.ledger.project.model(body["top"])
        after = body.get("after")
        try:
            start = ZERO_REV if after is None else parse_rev(after)
        except (TypeError, ValueError):
            raise WireError(f"evt.hist: after: expected a revision (the last change's "
                            f"\"rev\" of the previous page), got {str(after)[:40]!r}") from None
        lim = body.get("lim", 0)
        if type(lim) is not int or lim < 0:
            raise WireError("evt.hist: lim: expected a number of changes >= 0, got "
                            f"{str(lim)[:40]!r}")
        cap = self.limits.max_batch
        lim = min(lim, cap) if lim and cap else (lim or cap)
        return [Flush(conn, HistRead(conn, frame.subj, frame.tok, body["top"], body["key"],
                                     start, lim, self.limits.max_message))]

    # -- catch-ups (hubserver/catchup.py: the functions, bound here as methods) -----------------

    backlog = catchup.backlog
    backlog_read = catchup.backlog_read
    backlog_push = catchup.backlog_push
    backlog_failed = catchup.backlog_failed
    catch_up_sync = catchup.catch_up_sync

    # -- evt.pub / evt.sat ---------------------------------------------------------------------

    def _check_trans(self, c: _Conn, t: Trans) -> None:
        if c.role != "writer":
            raise ReadOnlyError(f"user {c.user!r} is a reader and cannot publish: "
                                "ask the hub operator for a writer token")
        if len(t.acts) > self.limits.max_acts:
            raise ValidationError(f"{len(t.acts)} actions in one transaction; the hub's limit "
                                  f"is {self.limits.max_acts}: split it")

    def _pub(self, conn: ConnId, c: _Conn, frame: Frame) -> tuple[list[Out], PubJob | None]:
        t = dec_trans(decode_body(frame), "evt.pub")
        self._check_trans(c, t)
        return [], PubJob(conn, frame.subj, frame.tok, [(t, c.user)])

    def _sat(self, conn: ConnId, c: _Conn, frame: Frame,
             mine: tuple[int, Rev] | None = None) -> tuple[list[Out], PubJob | None]:
        req = dec_sat(decode_body(frame))
        self._check_tops(req.tops, "evt.sat")
        self._check_rev(req.rev, "evt.sat")
        if req.last is not None:
            if mine is None:
                mine = self._recent.last_at(req.rev)
                if mine is None and self.last_off_loop:
                    # a ledger read: off the event loop, before anything is published
                    return [Flush(conn, LastRead(conn, frame, req.rev))], None
            self._check_last(req.rev, req.last, mine)
        if req.audits:
            c.audits = True
        if req.trans and c.role != "writer":
            # not a verdict on the edits: rejecting them would turn them into conflicts the
            # user cannot resolve; an error reply leaves them pending on the satellite
            # (what the satellite does with them is its own to say: a discard may follow)
            raise ReadOnlyError(f"user {c.user!r} may only read: ask the hub operator for a "
                                  "writer token; the hub stored none of these edits")
        if len(req.trans) > self.limits.max_trans:
            raise ValidationError(f"evt.sat: {len(req.trans)} transactions; the limit is "
                                  f"{self.limits.max_trans}: send them in several requests")
        job = PubJob(conn, frame.subj, frame.tok, [], req)
        items, usr, most = job.items, c.user, self.limits.max_acts
        for i, t in enumerate(req.trans):  # _check_trans, inlined (the role is checked above)
            if len(t.acts) > most:
                job.pre[i] = ValidationError(f"{len(t.acts)} actions in one transaction; the "
                                             f"hub's limit is {most}: split it")
                self._refuse("invalid")
                continue
            items.append((t, usr))
        if not job.items:
            return self.finish(job, []), None
        return [], job

    def finish(self, job: PubJob, results: Sequence[PubResult | Exception]) -> list[Out]:
        """Reply to a job after its commit is durable, and fan its events out.

        Only a ValidationError (an UnstorableError too: the database refused the
        transaction's content, logged as a warning) or ConflictError is a verdict on a
        transaction (a reject);
        any other outcome (a StorageError, the hub shutting down, a bug) answers an
        ``evt.sat`` with one error reply, so its transactions stay pending on the satellite
        and are sent again with the same uids (exactly once: an applied uid is acked then).
        An error reading the ledger after the commit (fanning out, building the reply) is
        the error reply of a failed read (:func:`~hubserver.satreply.read_failed`), which
        carries the acks and rejects of the transactions: they were published.

        Args:
            job: the job :meth:`handle` returned.
            results: what ``publish_many`` returned for ``job.items``, in order.
        """
        if job.sat is None and len(results) == 1 and type(results[0]) is PubResult:
            return self._pub_done(job, results[0])  # the common case, without the general path
        outs: list[Out] = []
        frame = Frame(job.subj, job.tok)
        failed: Exception | None = None
        if not satreply.all_published(results):  # else nothing failed or was refused (an evt.sat)
            failed = next((r for r in results if isinstance(r, Exception)
                           and not isinstance(r, ValidationError | ConflictError)), None)
            if failed is not None and not isinstance(failed, OutpostError):
                log.error("conn %s: publish failed with an unexpected error (a hub bug)",
                          job.conn, exc_info=failed)
            for (t, _usr), r in zip(job.items, results, strict=False):
                if type(r) is UnstorableError:
                    # rejected, not retried: the operator should know the database refused
                    # it (the message names the database's reason, never the values)
                    log.warning("conn %s: %s: transaction %s rejected: %s", job.conn,
                                job.subj, t.uid or "(no uid)", r)
        whole = failed is not None and job.sat is not None  # one error reply for the request
        refused: list[tuple[int, Exception]] = []
        if job.sat is not None and failed is None:
            refused = satreply.refused_uidless(job, results)
            if refused:
                # a daql client's (no uids): no reject can name them, so the reply is an
                # error (as daql's), and the others it stored reach it as pushes
                whole = True
                i, why = refused[0]
                log.warning("conn %s: %s: refused %d uid-less transaction(s) of %d (a daql "
                            "client's), answered with an error: transaction %d: %s", job.conn,
                            job.subj, len(refused), len(job.sat.trans), i + 1, why)
        try:
            self._finish(job, results, outs, whole)
            if job.conn in self._conns:  # else the publisher left while its commit ran
                outs[:0] = ([Send(job.conn, satreply.refused_reply(job, results, refused))]
                            if refused else self._reply(job, frame, results, failed))
        except OutpostError as exc:
            log.warning("conn %s: %s: could not answer: %s", job.conn, job.subj, exc)
            if job.conn in self._conns:
                if failed is not None:  # the publish failed: its reply reads nothing
                    outs[:0] = self._reply(job, frame, results, failed)
                elif job.sat is not None:
                    acks: list[Ack] = []
                    rejects: list[Reject] = []
                    counts = satreply.verdicts(job, results, acks, rejects)
                    outs[:0] = [Send(job.conn, satreply.read_failed(
                        job.subj, job.tok, acks, rejects, counts=counts))]
                else:
                    first = results[0] if results else None
                    outs[:0] = [Send(job.conn, satreply.read_failed(
                        job.subj, job.tok, stored=_stored(first)))]
        return outs

    def _pub_done(self, job: PubJob, r: PubResult) -> list[Out]:
        """:meth:`finish` of an ``evt.pub`` that was published (or was a duplicate)."""
        conn = job.conn
        mine = {r.rev: conn}
        try:
            outs: list[Out] = []
            if not r.dup:
                t, usr = job.items[0]
                # what the ledger stored in the audit row (core.ledger.batch), minus arrived
                fanout.remember(self, Audit(r.rev, t.created, ZERO_REV, usr, t.extra, t.uid))
                outs = self.published(r.evs, mine)
            if r.rev > self.rev:  # see _finish: applied through another hub, not fanned out
                outs.extend(fanout.fill_to(self, r.rev, mine))
        except OutpostError as exc:
            log.warning("conn %s: %s: could not answer: %s", conn, job.subj, exc)
            if conn not in self._conns:
                return []
            return [Send(conn, satreply.read_failed(job.subj, job.tok, stored=_stored(r)))]
        if conn in self._conns:  # else the publisher left while its commit ran
            outs.insert(0, Send(conn, pub_reply(job.subj, job.tok, r.rev, r.evs)))
        return outs

    def _reply(self, job: PubJob, frame: Frame, results: Sequence[PubResult | Exception],
               failed: Exception | None) -> list[Out]:
        if job.sat is None:
            r = results[0] if results else ValidationError("nothing published")
            if isinstance(r, PubResult):
                return self._res(job.conn, frame, enc_update(Update(r.rev, r.evs)))
            return self._reply_error(job.conn, frame, r)
        if failed is None:
            outs = satreply.sat_reply(self, job, results)
            if outs and isinstance(outs[0], Send):
                # the reply resyncs the connection from its own rev (its subscription is
                # now the request's topics): an evt.sub catch-up still being pushed would
                # bring it old events. Only now: an evt.sat that errors (refused, its
                # publish failed) changes no subscription, and its catch-ups go on
                # (session 12: they were dropped when the request arrived, the client
                # still subscribed, its events never sent). A reply read off the loop
                # (a Flush) is queued behind them, which are sent whole first: they are
                # left alone, so a read that fails (an error reply) loses none either
                follow = outs[1].catch_up if len(outs) > 1 and isinstance(outs[1], Flush) \
                    and isinstance(outs[1].catch_up, Backlog) else None
                catchup.trim(self, job.conn, sat=True, keep_b=follow)
            return outs
        # an environment failure or a bug is not a verdict on the transactions: rejecting
        # them would move them out of the satellite's pending queue; an error reply keeps
        # them pending and the satellite resends them (same uids) after its backoff
        if isinstance(failed, OutpostError):
            if isinstance(failed, StorageError):
                log.warning("conn %s: %s failed: %s", job.conn, job.subj, failed)
            why = ("the hub could not store the transactions: "
                   f"{unavailable(failed) if client_text(failed) != str(failed) else failed}")
        else:
            why = (f"internal error in the hub while publishing ({type(failed).__name__}; "
                   "the hub operator finds it in the hub's log)")
        return self._err(job.conn, frame,
                         f"{why}; they stay pending on the satellite and are sent again")

    def _finish(self, job: PubJob, results: Sequence[PubResult | Exception], outs: list[Out],
                whole: bool) -> None:
        """Fan out what a job published (into ``outs``; ``whole``: no reply carries it)."""
        # one pass (an evt.sat has up to 1,000): the audits to remember, the new events, and
        # the revisions whose events the publisher gets in its reply (with an error reply
        # instead, as pushes)
        cache = self._audits
        new_audit = _new_audit  # an Audit, built without its __init__ (core.frozen.builder)
        conn = job.conn
        evs: list[Event] = []
        mine: dict[Rev, ConnId] = {}
        for (t, usr), r in zip(job.items, results, strict=False):
            if isinstance(r, PubResult):
                if not whole:
                    mine[r.rev] = conn
                if not r.dup:
                    # what the ledger stored in the audit row (core.ledger.batch), minus
                    # arrived (fanout.remember, with the cap applied once below)
                    cache[r.rev] = new_audit(r.rev, t.created, ZERO_REV, usr, t.extra, t.uid)
                    evs.extend(r.evs)
        for _ in range(len(cache) - self.AUDIT_CACHE):
            cache.popitem(last=False)
        if evs:
            outs.extend(self.published(evs, mine))
        if mine and max(mine) > self.rev:
            # a resend whose uid was applied through another hub that this hub has not fanned
            # out yet: catch up to it, so the reply is not behind its own ack
            top = max(mine)
            outs.extend(fanout.fill_to(self, top, mine))

    def _reply_error(self, conn: ConnId, frame: Frame, exc: Exception) -> list[Out]:
        if isinstance(exc, ConflictError):
            return self._err(conn, frame, str(exc),
                             conflicts=[enc_conflict(x) for x in exc.conflicts])
        if isinstance(exc, OutpostError):
            if isinstance(exc, StorageError):
                log.warning("conn %s: %s failed: %s", conn, frame.subj, exc)
            return self._err(conn, frame, client_text(exc))
        # logged with its traceback by finish()
        return self._err(conn, frame, f"internal error while publishing: {type(exc).__name__}")

    # -- fan-out and pushes (hubserver/fanout.py: the functions, bound here as methods) ---------

    published = fanout.published
    catch_up = fanout.catch_up
    take_push = fanout.take_push
    seal = fanout.seal
    take_sealed = fanout.take_sealed
    sealed_left = fanout.sealed_left
    has_push = fanout.has_push
    pending = fanout.pending


_new_audit = builder(Audit)


def _stored(r: PubResult | Exception | None) -> str:
    """What a failed read's reply to an ``evt.pub`` says of its transaction."""
    if isinstance(r, PubResult):
        return f"the transaction was stored at revision {format_rev(r.rev)}: do not send it again"
    return ""
