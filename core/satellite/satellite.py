"""The satellite: replica + local queue + view, behind :class:`~core.satellite.api.SatelliteAPI`.

:class:`Satellite` is what the desktop and the headless CLI use; it is also the
:class:`~core.satellite.machine.SyncStore` of the sync state machine. All methods are
synchronous local SQLite work. ``pub`` commits before it returns.

Decisions (see ``docs/satellite.md``):

- A pending transaction that no longer applies on the replica after hub events arrived is
  *marked* (``Receipt.err`` set, counted in ``conflicts``, shown on the record) but stays
  pending and is still sent: the hub's verdict is final.
- Keep theirs marks the rejected receipt resolved (``resolved_by = "theirs"``) and publishes
  nothing; keep mine and per field publish a new transaction on the current view whose
  ``extra`` is ``{"resolves": uid}``, in the same commit that marks the old one resolved.
- Authoritative topics: transactions touching only them are final locally (no pending mark, no
  conflict check) and forwarded to the hub like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.crashpoints import crash_point
from core.errors import ConfigError, ConflictError, StorageError, ValidationError
from core.ids import new_uid
from core.ledger.protocols import HistoryEntry
from core.ledger.rules import Later, conflict_of, plan
from core.model import Action, Cmd, Sig, Trans, Update
from core.revision import ZERO_REV, Rev
from core.satellite.api import (
    Change,
    Keep,
    Listener,
    Receipt,
    ReceiptState,
    RecordView,
    SatStatus,
)
from core.satellite.config import DataDir, SatConfig, sat_clock
from core.satellite.machine import MAX_TRANS_BYTES, Phase, SyncInfo
from core.satellite.queue import Queue
from core.satellite.replica import Replica
from core.satellite.view import Overlay, Queued, keys_of, rebase
from core.satellite.view import _later as view_later
from core.schema import Project
from core.wire import SatRes, dumps, enc_trans

__all__ = ["Satellite"]



class Satellite:
    """One satellite's data, in a data directory.

    Args:
        data: the data directory (a path or :class:`DataDir`).
        project: the schema; when given and the directory has none, it is stored. When not
            given, the stored schema is used.
        clock: wall clock as a revision (creation times of local transactions); default:
            the system clock plus ``OUTPOST_CLOCK_OFFSET_MS`` (:func:`config.sat_clock`).
        synchronous: SQLite's ``PRAGMA synchronous`` for the replica (``FULL``, the default,
            survives power loss; the simulation, which only closes and reopens the file, uses
            ``NORMAL``).

    Raises:
        ConfigError: no schema given and none stored.
    """

    def __init__(self, data: DataDir | Path | str, project: Project | None = None, *,
                 clock: Callable[[], Rev] = sat_clock, synchronous: str = "FULL"):
        self.data = data if isinstance(data, DataDir) else DataDir(data)
        self.data.ensure()
        stored = self.data.load_project()
        if project is None:
            if stored is None:
                raise ConfigError(
                    f"no schema in {self.data.path}: run `outpost connect URL` to fetch the "
                    "hub's schema first"
                )
            project = stored
        elif stored is None or stored.version != project.version:
            self.data.save_project(project)
        self._project = project
        self.config: SatConfig = self.data.load_config()
        self._clock = clock
        self.replica = Replica(self.data.db_file, project, synchronous=synchronous)
        self.queue: Queue = self.replica.queue
        self._listeners: list[Listener] = []
        self._info = SyncInfo()
        self._since: Rev = ZERO_REV
        self._last_sync: Rev = int(self.queue.get_meta("last_sync", 0))
        self._hub_rev: Rev = int(self.queue.get_meta("hub_rev", 0))
        # sat_meta values changed since they were last stored: written with the next batch of
        # hub data (same commit, no fsync of their own) or on close
        self._meta: dict[str, Any] = {}
        self._meta_lock = threading.Lock()
        self.offline_mode = False
        self.on_local: Callable[[], None] | None = None   # set by the sync client
        self._ov = Overlay()
        self._outbox: tuple[int, list[Trans]] | None = None  # (Queue.version, outbox)
        self._rejected: dict[Sig, list[str]] = {}
        self._refresh(persist=True)

    # -- SatelliteAPI: reading ---------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    @property
    def auth_topics(self) -> frozenset[str]:
        return frozenset(self.config.auth_topics)

    def status(self) -> SatStatus:
        counts, local_rev = self.queue.summary()  # one read: the UI asks after every change
        conflicts = counts.get(ReceiptState.REJECTED.value, 0) + len(self._ov.conflicts)
        info = self._info
        return SatStatus(
            online=info.online, since=self._since, hub=self.config.hub,
            rev=self.replica.rev(), hub_rev=max(self._hub_rev, info.hub_rev),
            local_rev=local_rev, pending=counts.get(ReceiptState.PENDING.value, 0),
            conflicts=conflicts,
            last_sync=self._last_sync, last_error=info.last_error, mig=self._project.version,
            syncing=info.phase in (Phase.HANDSHAKE, Phase.CATCHUP), progress=info.progress,
            offline_mode=self.offline_mode)

    def keys(self, top: str) -> list[str]:
        self._project.model(top)
        return keys_of(self.replica.read.keys(top), self._ov, top)

    def records(self, top: str) -> list[RecordView]:
        self._project.model(top)
        base = self.replica.read.states(top)
        keys = set(base)
        keys.update(s.key for s in self._ov.states if s.top == top)
        keys.update(s.key for s in self._ov.conflict_sigs if s.top == top)
        out = []
        for k in sorted(keys):
            rv = self._view(top, k, base.get(k))
            if rv.fields is not None:
                out.append(rv)
        return out

    def record(self, top: str, key: str) -> RecordView | None:
        self._project.model(top)
        rv = self._view(top, key, self.replica.read.state(top, key))
        if rv.fields is None and rv.confirmed is None and not rv.conflict:
            return None
        return rv

    def count(self, top: str) -> int:
        return len(self.keys(top))

    def receipts(self, states: Sequence[ReceiptState] | None = None) -> list[Receipt]:
        return [self._with_local(r) for r in self.queue.receipts(states)]

    def receipt(self, uid: str) -> Receipt | None:
        r = self.queue.receipt(uid)
        return None if r is None else self._with_local(r)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        self._project.model(top)
        return self.replica.read.history(top, key)

    def state_at(self, top: str, key: str, rev: Rev) -> dict[str, Any] | None:
        return self.replica.read.state(top, key, rev)

    def listen(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)

        def stop() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)
        return stop

    # -- SatelliteAPI: writing ---------------------------------------------------------------

    def pub(self, acts: Sequence[Action], *, resolves: str = "", base: Rev | None = None) -> str:
        """Queue a transaction (committed to SQLite before returning); returns its uid.

        ``base``: the replica revision the edit was made on (a form passes the revision it
        loaded the record at); default: the current one. Hub changes after it that collide
        with the edit make it a conflict, marked at once by the rebase and rejected by the hub
        (this satellite's own accepted edits since do not count).

        Raises:
            ValidationError: an action does not fit the schema or what the user sees (e.g.
                ``mod`` of a record that does not exist, ``new`` of one that does); ``base``
                is ahead of the replica.
        """
        uid = new_uid()
        trans = self._make_trans(acts, uid, resolves, base)
        self._check_on_view(trans)
        crash_point("sat.before_local_commit")
        self.queue.add(trans, auth=self._is_auth(trans), resolves=resolves)
        crash_point("sat.after_local_commit")
        self._after_pub(trans)
        if trans.uid in self._ov.conflicts:
            self.queue.set_local({u: e for u, (e, _) in self._ov.conflicts.items()})
        return uid

    def resolve(self, uid: str, keep: Keep | Mapping[str, Mapping[str, Keep]]) -> str:
        """Resolve a rejected transaction; see the module docstring. Returns the new uid or
        ``""`` when nothing was published.

        Raises:
            ValidationError: no rejected transaction has that uid.
        """
        rec = self.queue.receipt(uid)
        if rec is None:
            raise ValidationError(f"no local transaction with uid {uid}: see `outpost conflicts`")
        if rec.state != ReceiptState.REJECTED:
            raise ValidationError(
                f"transaction {uid} is {rec.state.value}, not rejected: only rejected "
                "transactions can be resolved")
        acts = self._resolution(rec, keep)
        if not acts:
            self.queue.resolve(uid, "theirs")
            self._refresh(persist=False)
            self._notify(Change(status=True, receipts=True, records=self._sigs(rec.acts)))
            return ""
        new = new_uid()
        trans = self._make_trans(acts, new, uid)
        self._check_on_view(trans)
        with self.queue._conn(None) as conn:
            self.queue.add(trans, auth=self._is_auth(trans), resolves=uid, conn=conn)
            self.queue.resolve(uid, new, conn)
        self._after_pub(trans, also=rec.acts)
        return new

    # -- SyncStore (for the sync machine) ----------------------------------------------------

    def rev(self) -> Rev:
        return self.replica.rev()

    def mig(self) -> str:
        return self._project.version

    def topics(self) -> list[str]:
        return self._project.topics

    def outbox(self) -> list[Trans]:
        """The pending transactions that can be sent now, in queue order.

        A transaction that touches a record also touched by an earlier pending one waits
        (the list stops before it) until the earlier one is acknowledged; then its base moves
        past that acknowledged revision (:meth:`_advance_bases`). Otherwise the hub would see
        the satellite's own earlier edit as a change made after the base, and reject the
        second of two edits of one record made offline as a conflict with the first. (Bases
        move in :meth:`_refresh`, after every batch of hub data.)
        """
        version = self.queue.version  # read before the rows: a write meanwhile bumps it
        cached = self._outbox
        if cached is not None and cached[0] == version:
            return list(cached[1])
        rows = self.queue.rows([ReceiptState.PENDING])
        out: list[Trans] = []
        seen: set[Sig] = set()
        for r in rows:
            t = Queue.trans_of(r)
            sigs = {Sig(a.top, a.key) for a in t.acts}
            if sigs & seen:
                break
            seen |= sigs
            out.append(t)
        self._outbox = (version, out)
        return list(out)

    def _advance_bases(self, rows: list[dict[str, Any]]) -> None:
        """Move pending transactions made before one of this satellite's own transactions was
        acknowledged onto the replica's revision, when no *other* change on their records
        since their base collides with them (the same rule the hub applies); updates ``rows``.
        """
        rev = self.replica.rev()
        low = min(int(r["base"]) for r in rows)
        if low >= rev:
            return
        own = self.queue.accepted_revs(low)
        if not own:
            return
        trans = {r["uid"]: Queue.trans_of(r) for r in rows}
        tops = sorted({a.top for t in trans.values() for a in t.acts})
        by_sig: dict[Sig, list[Any]] = {}
        for e in self.replica.read.events(low, tops):
            by_sig.setdefault(Sig(e.top, e.key), []).append(e)
        bases: dict[str, int] = {}
        for r in rows:
            base = int(r["base"])
            if base >= rev or not any(base < x <= rev for x in own):
                continue
            ok = True
            for a in trans[r["uid"]].acts:
                later = [Later(e) for e in by_sig.get(Sig(a.top, a.key), ())
                         if e.rev > base and e.rev not in own]
                if conflict_of(a, later, None) is not None:
                    ok = False
                    break
            if ok:
                bases[r["uid"]] = rev
                r["base"] = rev
        if bases:
            self.queue.set_bases(bases)

    def apply_sat(self, res: SatRes) -> None:
        self.write(res)
        self.written(res)

    def apply_update(self, upd: Update) -> None:
        self.write(upd)
        self.written(upd)

    def write(self, item: SatRes | Update) -> None:
        """Store an ``evt.sat`` reply or a push in one commit, without notifying anyone.

        Safe on a worker thread (the sync client runs it there): it touches only the database
        (SQLAlchemy's pool gives the thread its own connection), never the overlay.
        """
        meta = self._take_meta()
        try:
            if isinstance(item, SatRes):
                if item.acks:
                    crash_point("sat.after_ack_before_record")
                self.replica.apply(item.rev, item.evs, item.acks, item.rejects, item.audits,
                                   meta=meta)
                if item.more:
                    crash_point("sat.mid_catchup")
            else:
                self.replica.apply(item.rev, item.evs, audits=item.audits, meta=meta)
        except BaseException:
            self._put_meta(meta)  # not stored: keep for the next commit
            raise

    def written(self, item: SatRes | Update) -> None:
        """After :meth:`write` (on the thread that owns the overlay): rebase the local queue on
        the new replica state and notify listeners."""
        receipts = isinstance(item, SatRes) and bool(item.acks or item.rejects)
        self._after_hub(item.evs, receipts=receipts)

    def _take_meta(self) -> dict[str, Any]:
        with self._meta_lock:
            meta, self._meta = self._meta, {}
        return meta

    def _put_meta(self, meta: dict[str, Any]) -> None:
        with self._meta_lock:
            self._meta = {**meta, **self._meta}

    def set_sync(self, info: SyncInfo) -> None:
        """Take the sync machine's status (called by the client after every input)."""
        old = self._info
        if info == old:
            return
        now = self._clock()
        stopped = info.phase == Phase.STOPPED
        if info.online != old.online or stopped != (old.phase == Phase.STOPPED):
            self._since = now
        if info.last_sync and info.last_sync != old.last_sync:
            self._last_sync = now
            self._hub_rev = max(self._hub_rev, info.hub_rev)
            self._put_meta({"last_sync": now, "hub_rev": self._hub_rev})
        self._info = info
        self._notify(Change(status=True))

    def close(self) -> None:
        meta = self._take_meta()
        if meta:
            try:
                with self.queue._conn(None) as conn:
                    for name, value in meta.items():
                        self.queue.set_meta(name, value, conn)
            except StorageError:
                pass  # display values only (last sync, hub rev): not worth failing a close
        self.replica.close()

    # -- internals ---------------------------------------------------------------------------

    def _make_trans(self, acts: Sequence[Action], uid: str, resolves: str,
                    base: Rev | None = None) -> Trans:
        if not acts:
            raise ValidationError("no actions: a transaction needs at least one action")
        for a in acts:
            self._project.check_action(a)
        extra = {"resolves": resolves} if resolves else None
        rev = self.replica.rev()
        if base is None:
            base = rev
        elif not 0 <= base <= rev:
            raise ValidationError(f"base revision {base} is not between 0 and the replica's "
                                  f"revision {rev}")
        elif base < rev and self._only_own_since(acts, base):
            base = rev
        trans = Trans(tuple(acts), base=base, created=self._clock(), extra=extra, uid=uid)
        size = len(dumps(enc_trans(trans)))
        if size > MAX_TRANS_BYTES:
            raise ValidationError(
                f"transaction too large: {len(acts)} actions, {size // 1024} KiB encoded (at most "
                f"{MAX_TRANS_BYTES // 1024} KiB): split it into smaller transactions")
        return trans

    def _only_own_since(self, acts: Sequence[Action], base: Rev) -> bool:
        """Whether no change after ``base`` but this satellite's own accepted ones collides
        with ``acts`` (then the edit can take the replica's revision as its base: otherwise
        the hub would see the user's own earlier edit as a conflict; cf. _advance_bases)."""
        own = self.queue.accepted_revs(base)
        for a in acts:
            later = [x for x in view_later(self.replica.read, Sig(a.top, a.key), base)
                     if x.ev.rev not in own]
            if conflict_of(a, later, None) is not None:
                return False
        return True

    def _is_auth(self, trans: Trans) -> bool:
        auth = self.auth_topics
        return bool(auth) and all(a.top in auth for a in trans.acts)

    def _check_on_view(self, trans: Trans) -> None:
        """Raise ValidationError when ``trans`` does not apply on what the user sees."""
        states = {}
        for a in trans.acts:
            s = Sig(a.top, a.key)
            if s not in states:
                states[s] = self._seen(s)
        try:
            plan(self._project, trans, last_rev=trans.base, last_id=0, states=states,
                 later={}, now=trans.base)
        except ConflictError as exc:  # cannot happen with base == rev; keep the type clear
            raise ValidationError(str(exc)) from exc

    def _seen(self, s: Sig) -> dict[str, Any] | None:
        if s in self._ov.states:
            return self._ov.states[s]
        return self.replica.read.state(s.top, s.key)

    def _after_pub(self, trans: Trans, also: Sequence[Action] = ()) -> None:
        # extend the overlay with the new transaction only: O(1) per edit, not a full rebase
        self._ov = rebase(self.replica.read, [Queued(trans.uid, trans, self._is_auth(trans))],
                          base=self._ov)
        self._notify(Change(records=self._sigs((*trans.acts, *also)), status=True,
                            receipts=True))
        if self.on_local is not None:
            self.on_local()

    def _after_hub(self, evs: Sequence[Any], receipts: bool) -> None:
        before = self._ov.touched()
        recs: dict[str, set[str]] = {}
        for e in evs:
            recs.setdefault(e.top, set()).add(e.key)
        self._refresh(persist=True, changed=recs)
        for d in (before, self._ov.touched()):
            for t, ks in d.items():
                recs.setdefault(t, set()).update(ks)
        self._notify(Change(records={t: frozenset(k) for t, k in recs.items()}, status=True,
                            receipts=receipts or bool(self._ov.conflicts)))

    def _refresh(self, persist: bool, changed: Mapping[str, set[str]] | None = None) -> None:
        """Rebase the queue on the replica; persist local conflict marks.

        ``changed``: topic → keys hub data just changed; only the transactions it can affect
        are checked again (``view.rebase``). ``None``: check every one.
        """
        rev = self.replica.rev()
        queued = []
        rejected: dict[Sig, list[str]] = {}
        # accepted receipts are kept forever: read only those the replica has not reached
        rows = self.queue.rows([ReceiptState.PENDING, ReceiptState.REJECTED],
                               accepted_after=rev)
        pending = [r for r in rows if r["state"] == ReceiptState.PENDING.value]
        if pending:
            # before the local rebase: else an edit would be marked as colliding with this
            # satellite's own earlier edit and left out of what the user sees
            self._advance_bases(pending)
        for r in rows:
            if r["state"] == ReceiptState.REJECTED.value:
                for s in dict.fromkeys(Sig(a.top, a.key) for a in Queue.trans_of(r).acts):
                    rejected.setdefault(s, []).append(r["uid"])
                continue
            if r["state"] == ReceiptState.ACCEPTED.value and r["rev"] <= rev:
                continue
            queued.append(Queued(r["uid"], Queue.trans_of(r), bool(r["auth"]),
                                 r["state"] == ReceiptState.ACCEPTED.value))
        old = self._ov.conflicts
        sigs = None if changed is None or not queued else {
            Sig(t, k) for t, ks in changed.items() for k in ks}
        self._ov = rebase(self.replica.read, queued, prev=self._ov, changed=sigs)
        self._rejected = rejected
        if persist and (old.keys() != self._ov.conflicts.keys() or self._ov.conflicts):
            self.queue.set_local({u: e for u, (e, _) in self._ov.conflicts.items()})

    def _view(self, top: str, key: str, confirmed: Mapping[str, Any] | None) -> RecordView:
        s = Sig(top, key)
        fields = self._ov.states.get(s, confirmed)
        conflict = tuple(self._ov.conflict_sigs.get(s, ())) + tuple(self._rejected.get(s, ()))
        return RecordView(top, key, fields, confirmed, ZERO_REV,
                          tuple(self._ov.pending.get(s, ())), conflict)

    def _with_local(self, r: Receipt) -> Receipt:
        if r.state == ReceiptState.PENDING and r.uid in self._ov.conflicts:
            from dataclasses import replace

            err, conflicts = self._ov.conflicts[r.uid]
            return replace(r, err=err, conflicts=conflicts)
        return r

    def _resolution(self, rec: Receipt,
                    keep: Keep | Mapping[str, Mapping[str, Keep]]) -> list[Action]:
        """The actions that carry out a resolution on the current view."""
        if keep == Keep.THEIRS:
            return []
        out: list[Action] = []
        for a in rec.acts:
            s = Sig(a.top, a.key)
            arg = dict(a.arg or {})
            cur = self._seen(s)
            if not isinstance(keep, Keep):
                choice = keep.get(f"{a.top} {a.key}", {})
                if a.cmd == Cmd.MOD or (a.cmd == Cmd.NEW and cur is not None):
                    # a new that collided with a record created meanwhile: a mod of the
                    # fields kept as mine (the others: theirs)
                    arg = {f: v for f, v in arg.items() if choice.get(f) == Keep.MINE}
                    if not arg:
                        continue
                elif Keep.MINE not in choice.values():
                    continue  # del, or a new with no record now: nothing of theirs to keep
            if a.cmd == Cmd.DEL:
                if cur is not None:
                    out.append(Action(a.top, a.key, Cmd.DEL))
            elif cur is None:
                before = self.replica.read.state(a.top, a.key, rec.base) or {}
                full = {k: v for k, v in {**before, **arg}.items() if v is not None}
                out.append(Action(a.top, a.key, Cmd.NEW, full))
            else:
                delta = {k: v for k, v in arg.items() if cur.get(k) != v}
                if delta:
                    out.append(Action(a.top, a.key, Cmd.MOD, delta))
        return out

    @staticmethod
    def _sigs(acts: Sequence[Action]) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for a in acts:
            out.setdefault(a.top, set()).add(a.key)
        return {t: frozenset(k) for t, k in out.items()}

    def _notify(self, change: Change) -> None:
        for fn in list(self._listeners):
            fn(change)
