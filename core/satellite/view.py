"""What the user sees: the replica with the local queue's actions applied on top (rebase).

Pure logic, no storage and no I/O: :func:`rebase` takes a read-only ledger (the replica) and
the receipts that still overlay it, in queue order, and computes

- the overlaid state of every record a queued action touches,
- which queued transactions no longer apply on the replica as it is now (a *local conflict*).

A queued transaction is checked exactly as the hub will check it: with
:func:`core.ledger.rules.plan`, against the replica's events on its records after its base,
and on the state left by the queued transactions before it. So a conflict shows up the moment
the hub's events arrive, before the hub is asked. The hub's verdict stays final: a locally
conflicting transaction stays *pending* (it is still sent; the hub rejects it, or accepts it when
the collision went away, e.g. the other side's change was undone), it only is *marked*, and a
marked transaction is not applied to the overlay (the user sees the replica's value for it and
a conflict flag on the record).

Receipts of authoritative topics (the satellite owns them) are applied without a conflict check.
Accepted receipts whose revision the replica has not reached yet (the ack came before the
events in a batched catch-up) stay in the overlay so the record does not flicker back.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConflictError, ValidationError
from core.ledger.protocols import HistoryEntry, Ledger
from core.ledger.rules import Later, plan
from core.model import Conflict, Event, Sig, Trans
from core.revision import Rev

__all__ = ["Outcome", "Overlay", "QueueView", "Queued", "rebase", "sigs_of"]


@dataclass(frozen=True, slots=True)
class Queued:
    """One queued transaction as the view needs it."""

    uid: str
    trans: Trans
    auth: bool = False        # only authoritative topics: final locally, never a conflict
    accepted: bool = False    # accepted by the hub, replica not yet at its revision


@dataclass(slots=True)
class Overlay:
    """The result of a rebase.

    Attributes:
        states: for every record a queued action touches, its fields after the queue
            (``None``: deleted locally).
        pending: record → uids of the not-yet-accepted transactions applied to it.
        conflicts: uid → (error text, conflicts) of queued transactions that no longer apply.
        conflict_sigs: record → uids of conflicting transactions touching it.
    """

    states: dict[Sig, dict[str, Any] | None] = field(default_factory=dict)
    pending: dict[Sig, list[str]] = field(default_factory=dict)
    conflicts: dict[str, tuple[str, tuple[Conflict, ...]]] = field(default_factory=dict)
    conflict_sigs: dict[Sig, list[str]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def topics(self) -> set[str]:
        return {s.top for s in self.states}

    def touched(self) -> dict[str, set[str]]:
        """Topic → keys touched by the overlay (applied or conflicting)."""
        out: dict[str, set[str]] = {}
        for s in (*self.states, *self.conflict_sigs):
            out.setdefault(s.top, set()).add(s.key)
        return out


def _later(ledger: Ledger, sig: Sig, base: Rev) -> list[Later]:
    """The replica's changes of one record after ``base``, as the rules want them."""
    out = []
    for h in ledger.history(sig.top, sig.key):
        if h.rev > base:
            out.append(Later(Event(0, h.rev, sig.top, sig.key, h.cmd, h.arg), h.usr))
    return out


def rebase(ledger: Ledger, queued: Sequence[Queued], *, now: Rev = 0) -> Overlay:
    """Apply queued transactions, in order, on the replica; mark the ones that no longer apply.

    A full rebase (:class:`QueueView` keeps one up to date incrementally).

    Args:
        ledger: the replica (read only).
        queued: pending (and accepted-but-not-yet-replicated) transactions in queue order.
        now: clock reading for the rules (only used to derive a throwaway revision).

    Returns:
        The overlay: records' states after the queue, and the local conflicts.
    """
    view = QueueView()
    view.update(ledger, queued, now=now)
    return view.ov


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one queued transaction did to the overlay (kept to reuse in the next update)."""

    sigs: tuple[Sig, ...]
    states: dict[Sig, dict[str, Any] | None] | None    # None: it conflicts
    conflict: tuple[str, tuple[Conflict, ...]] | None


def sigs_of(t: Trans) -> tuple[Sig, ...]:
    """The records a transaction touches, in order, once each."""
    return tuple(dict.fromkeys(Sig(a.top, a.key) for a in t.acts))


class QueueView:
    """The overlay of the queue, kept up to date in O(what changed).

    It holds the queued transactions in queue order, an index record → transactions touching
    it, and each transaction's :class:`Outcome`. :meth:`update` takes what changed — queued
    transactions added or changed (a base moved, an ack arrived), removed (acknowledged and
    replicated, rejected, resolved), and the records whose replica state changed — and checks
    again only the transactions those can affect, in queue order:

    - every transaction touching a changed record (its state or the events after its base
      changed), or a record of a transaction that left or changed;
    - every later transaction touching a record of one checked again (its input may differ).

    Any other transaction's outcome stands: it depends only on its own actions, base and
    flags, the replica's state and events of its records, and the outcomes of the earlier
    transactions on its records — none of which changed. Then the overlay entries of the
    records involved are folded again from the outcomes. A Hypothesis test checks that any
    sequence of updates equals a full rebase (``tests/satellite/test_view_incremental.py``).
    """

    def __init__(self) -> None:
        self.ov = Overlay()
        self._queued: dict[str, Queued] = {}
        self._pos: dict[str, int] = {}
        self._by_sig: dict[Sig, list[str]] = {}
        self._sigs: dict[str, tuple[Sig, ...]] = {}
        self._next = 0
        # moves at every change of the overlay (update, drop_alone): a caller that checked
        # transactions on it (Satellite.staged) knows whether its outcomes still hold
        self.generation = 0

    def __contains__(self, uid: object) -> bool:
        return uid in self._queued

    def __len__(self) -> int:
        return len(self._queued)

    def get(self, uid: str) -> Queued | None:
        return self._queued.get(uid)

    def on(self, sigs: Iterable[Sig]) -> set[str]:
        """The uids of the queued transactions touching any of ``sigs``."""
        out: set[str] = set()
        for s in sigs:
            out.update(self._by_sig.get(s, ()))
        return out

    def touches(self, s: Sig) -> bool:
        """Whether a queued transaction touches record ``s`` (one look-up; safe on another
        thread than the one that updates the view: read, not changed)."""
        return bool(self._by_sig.get(s))

    def drop_alone(self, uid: str) -> tuple[Sig, ...] | None:
        """Remove the queued transaction ``uid`` when it is the only one on each of its
        records, as :meth:`update` would for it in ``removed``; returns its records (their
        overlay entries are gone: no queued transaction is left to check on them, whatever
        changed there), or ``None`` (not queued, or not alone on a record: nothing done).
        A replay's acks remove 1,000 such transactions per reply."""
        sigs = self._sigs.get(uid)
        if sigs is None:
            return None
        by_sig = self._by_sig
        for s in sigs:
            if len(by_sig[s]) != 1:
                return None
        ov = self.ov
        self.generation += 1
        del self._queued[uid], self._pos[uid], self._sigs[uid]
        states, pending, csigs = ov.states, ov.pending, ov.conflict_sigs
        for s in sigs:
            del by_sig[s]
            states.pop(s, None)
            pending.pop(s, None)
            csigs.pop(s, None)
        ov.outcomes.pop(uid, None)
        ov.conflicts.pop(uid, None)
        return sigs

    def drop_alone_many(self, uids: Iterable[str]) -> tuple[set[Sig], list[str]]:
        """:meth:`drop_alone` of each of ``uids``, in one pass (a replay's reply acks 1,000):
        the records of those dropped, and the uids not dropped (not queued, or not alone on
        a record), in the order given."""
        sigs_of_uid, by_sig, queued, pos = self._sigs, self._by_sig, self._queued, self._pos
        ov = self.ov
        self.generation += 1
        states, pending, csigs = ov.states, ov.pending, ov.conflict_sigs
        outcomes, conflicts = ov.outcomes, ov.conflicts
        gone: set[Sig] = set()
        kept: list[str] = []
        for uid in uids:
            sigs = sigs_of_uid.get(uid)
            if sigs is None:
                kept.append(uid)
                continue
            if len(sigs) == 1:  # one record (a replay's new records)
                s = sigs[0]
                if len(by_sig[s]) != 1:
                    kept.append(uid)
                    continue
                del queued[uid], pos[uid], sigs_of_uid[uid], by_sig[s]
                states.pop(s, None)
                pending.pop(s, None)
                if csigs:
                    csigs.pop(s, None)
                if outcomes:
                    outcomes.pop(uid, None)
                if conflicts:
                    conflicts.pop(uid, None)
                gone.add(s)
                continue
            for s in sigs:
                if len(by_sig[s]) != 1:
                    kept.append(uid)
                    break
            else:
                del queued[uid], pos[uid], sigs_of_uid[uid]
                for s in sigs:
                    del by_sig[s]
                    states.pop(s, None)
                    pending.pop(s, None)
                    csigs.pop(s, None)
                outcomes.pop(uid, None)
                conflicts.pop(uid, None)
                gone.update(sigs)
        return gone, kept

    def update(self, ledger: Ledger, upserts: Iterable[Queued] = (), removed: Iterable[str] = (),
               changed: Iterable[Sig] = (), *, now: Rev = 0, rev: Rev | None = None,
               known: Mapping[str, Mapping[Sig, Mapping[str, Any] | None]] | None = None,
               ) -> set[Sig]:
        """Bring the overlay up to date; returns the records whose overlay may have changed.

        Args:
            ledger: the replica (read only), already holding the changes.
            upserts: transactions new to the queue (appended, in queue order) or changed.
            removed: uids that left the queue.
            changed: records whose replica state or events changed since the last update.
            now: clock reading for the rules (only used to derive a throwaway revision).
            rev: the ledger's revision when the caller knows it (else it is read).
            known: for transactions of ``upserts`` new to the queue, the states of their
                records after them (raw, as :func:`plan` gives them) when the caller checked
                them itself on this very overlay and ledger, each on the earlier ones, and
                they applied (``Satellite.staged``: an import's steps; unchanged
                :attr:`generation` and revision since): taken as their outcome, not
                checked again (session 14: the end of a 50,000-row import checked the 100
                transactions its steps had checked).

        A transaction new to the queue is appended: no earlier transaction's outcome depends
        on it, so only it (and the later ones on its records, all new too) is checked, not
        every transaction on its records (session 14: an import over records with 3,000
        pending edits checked those again).
        """
        ov = self.ov
        by_sig = self._by_sig
        self.generation += 1
        # records whose last queued transaction left: their overlay entries go at once (a
        # replayed queue's acks remove 1,000 transactions per reply, each alone on its
        # record: nothing to fold)
        cleared: set[Sig] = set()
        dirty: set[Sig] = set()
        for uid in removed:
            q = self._queued.pop(uid, None)
            if q is None:
                continue
            del self._pos[uid]
            for s in self._sigs.pop(uid):
                lst = by_sig[s]
                if len(lst) == 1:
                    del by_sig[s]
                    ov.states.pop(s, None)
                    ov.pending.pop(s, None)
                    ov.conflict_sigs.pop(s, None)
                    cleared.add(s)
                else:
                    lst.remove(uid)
                    dirty.add(s)
            ov.outcomes.pop(uid, None)
            ov.conflicts.pop(uid, None)
        # a changed record no queued transaction touches has no overlay entry to redo (a
        # catch-up of 5,000 events with an empty queue costs nothing here)
        dirty.update(s for s in changed if s in by_sig)
        fresh: set[tuple[int, str]] = set()  # (position, uid) of those new to the queue
        for q in upserts:
            old = self._queued.get(q.uid)
            if old is not None and old == q:
                continue
            if old is None:
                sigs = self._sigs[q.uid] = sigs_of(q.trans)
                self._pos[q.uid] = self._next
                fresh.add((self._next, q.uid))
                self._next += 1
                for s in sigs:
                    self._by_sig.setdefault(s, []).append(q.uid)
                self._queued[q.uid] = q
                ov.outcomes.pop(q.uid, None)
                continue
            if old.trans.acts is not q.trans.acts and old.trans.acts != q.trans.acts:
                raise ValueError(f"queued transaction {q.uid} changed its actions")
            sigs = self._sigs[q.uid]
            self._queued[q.uid] = q
            ov.outcomes.pop(q.uid, None)
            dirty.update(sigs)
        if not dirty and not fresh:
            return cleared
        if rev is None:
            rev = ledger.rev()
        # each transaction once: a new one of 500 records was on the heap 500 times, and
        # the set below read each of its records 500 times (0.2 s of a 20,000-row import);
        # ``dirty``: records every transaction of which is on the heap
        heap = list({(self._pos[u], u) for s in dirty for u in self._by_sig.get(s, ())}
                    | fresh)
        heapq.heapify(heap)
        # known outcomes hold only when nothing before them changes in this update, and for
        # a transaction on the current revision (one made on an older one, e.g. a sheet's
        # _rev, is checked against the changes since: its caller did not)
        taken: Mapping[str, Mapping[Sig, Mapping[str, Any] | None]] = {}
        if known and not dirty:
            taken = {u: st for u, st in known.items() if (q := self._queued.get(u)) is not None
                     and (q.auth or q.accepted or q.trans.base >= rev)}
        # the changes after their base of the records of those made on an older revision
        # (a sheet's _rev): one read per topic, not one per record (session 14: 50,000)
        behind = {s for _, u in heap if u not in taken
                  and not ((q := self._queued[u]).auth or q.accepted or q.trans.base >= rev)
                  for s in self._sigs[u]}
        replica = _StateCache(ledger, {s for _, u in heap if u not in taken
                                       for s in self._sigs[u]}, behind)
        done: set[str] = set()
        while heap:
            pos, uid = heapq.heappop(heap)
            if uid in done:
                continue
            done.add(uid)
            q = self._queued[uid]
            oc = None
            if uid in taken and (pos, uid) in fresh:
                oc = _outcome(ledger, self._sigs[uid], taken[uid])
            if oc is None:
                oc = self._check(ledger, q, rev, now, replica)
            ov.outcomes[uid] = oc
            if oc.conflict is not None:
                ov.conflicts[uid] = oc.conflict
            else:
                ov.conflicts.pop(uid, None)
            for s in oc.sigs:
                if s not in dirty:
                    # its outcome may differ: the later transactions on its records too
                    dirty.add(s)
                    for u in self._by_sig[s]:
                        if self._pos[u] > pos:
                            heapq.heappush(heap, (self._pos[u], u))
        for s in dirty:
            self._fold(s)
        return dirty | cleared if cleared else dirty

    def _before(self, uid: str, s: Sig, replica: _StateCache) -> Mapping[str, Any] | None:
        """The state of record ``s`` that transaction ``uid`` applies to: left by the last
        earlier transaction on it that applied, else the replica's."""
        lst = self._by_sig[s]
        outcomes = self.ov.outcomes
        for u in reversed(lst[:lst.index(uid)]):
            oc = outcomes[u]
            if oc.states is not None:
                return oc.states[s]
        return replica.get(s)

    def _check(self, ledger: Ledger, q: Queued, rev: Rev, now: Rev,
               replica: _StateCache) -> Outcome:
        t = q.trans
        sigs = self._sigs[q.uid]
        states = {s: self._before(q.uid, s, replica) for s in sigs}
        check_base = q.auth or q.accepted or t.base >= rev
        later = {} if check_base else {s: replica.later(s, t.base) for s in sigs}
        probe = Trans(t.acts, base=rev if check_base else t.base, uid=t.uid)
        try:
            p = plan(ledger.project, probe, last_rev=rev, last_id=0, states=states,
                     later=later, now=now)
        except ConflictError as exc:
            return Outcome(sigs, None, (str(exc), exc.conflicts))
        except ValidationError as exc:
            return Outcome(sigs, None, (str(exc), ()))
        out = {s: None if st is None else _full(ledger, s.top, st) for s, st in p.states.items()}
        return Outcome(sigs, out, None)

    def _fold(self, s: Sig) -> None:
        """Recompute the overlay entries of record ``s`` from the outcomes, in queue order."""
        ov = self.ov
        ov.states.pop(s, None)
        ov.pending.pop(s, None)
        ov.conflict_sigs.pop(s, None)
        for u in self._by_sig.get(s, ()):
            oc = ov.outcomes[u]
            if oc.states is None:
                ov.conflict_sigs.setdefault(s, []).append(u)
                continue
            ov.states[s] = oc.states[s]
            q = self._queued[u]
            if not q.auth and not q.accepted:
                ov.pending.setdefault(s, []).append(u)


class _StateCache:
    """Replica states of records, read in one query per topic for the records known to be
    needed (a read per transaction made replaying 10,000 offline edits quadratic in queries),
    and one at a time for the rest."""

    def __init__(self, ledger: Ledger, sigs: Iterable[Sig], histories: Iterable[Sig] = ()):
        self._ledger = ledger
        self._got: dict[Sig, Mapping[str, Any] | None] = {}
        need: dict[str, set[str]] = {}
        for s in sigs:
            need.setdefault(s.top, set()).add(s.key)
        for top, keys in need.items():
            self._read(top, keys)
        # the changes of ``histories`` (records -> their history), read at once per topic
        self._hist: dict[Sig, list[HistoryEntry]] = {}
        hist: dict[str, list[str]] = {}
        for s in histories:
            hist.setdefault(s.top, []).append(s.key)
        for top, hkeys in hist.items():
            if top not in ledger.project.topics:
                continue  # plan() rejects the unknown topic with a clear message
            found = ledger.histories(top, hkeys)
            for k in hkeys:
                self._hist[Sig(top, k)] = found.get(k, [])

    def later(self, s: Sig, base: Rev) -> list[Later]:
        """:func:`_later` of a record, from the histories read at once when it was among
        them."""
        hist = self._hist.get(s)
        if hist is None:
            return _later(self._ledger, s, base)
        return [Later(Event(0, h.rev, s.top, s.key, h.cmd, h.arg), h.usr)
                for h in hist if h.rev > base]

    def _read(self, top: str, keys: set[str]) -> None:
        if top not in self._ledger.project.topics:
            for k in keys:  # plan() rejects the unknown topic with a clear message
                self._got[Sig(top, k)] = None
            return
        found = self._ledger.states_of(top, keys)
        for k in keys:
            self._got[Sig(top, k)] = found.get(k)

    def get(self, s: Sig) -> Mapping[str, Any] | None:
        if s not in self._got:
            self._read(s.top, {s.key})
        return self._got[s]


def _full(ledger: Ledger, top: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return ledger.project.model(top).full(fields)


def _outcome(ledger: Ledger, sigs: tuple[Sig, ...],
             states: Mapping[Sig, Mapping[str, Any] | None]) -> Outcome | None:
    """The outcome of a transaction that applied, from the raw states :func:`plan` gave for
    its records (``None`` when one of its records is missing: then it is checked)."""
    out: dict[Sig, dict[str, Any] | None] = {}
    for s in sigs:
        if s not in states:
            return None
        st = states[s]
        out[s] = None if st is None else _full(ledger, s.top, st)
    return Outcome(sigs, out, None)


def keys_of(base: Iterable[str], ov: Overlay, top: str,
            sort: Callable[[str], Any] | None = None) -> list[str]:
    """The keys a user sees in a topic: the replica's keys with the overlay applied, sorted.

    ``base`` comes sorted from ``Ledger.keys``: sorting it again is linear, and the overlay's
    few changes are merged in (a set of a million keys sorted afresh took 1.6 s on the
    desktop's UI thread after a catch-up). ``sort``: the topic's key order
    (:func:`core.satellite.order.key_sort`; default the text)."""
    keys = sorted(base, key=sort)
    gone: set[str] = set()
    new: set[str] = set()
    for s, st in ov.states.items():
        if s.top != top:
            continue
        if st is None:
            gone.add(s.key)
        else:
            new.add(s.key)
    if gone:
        keys = [k for k in keys if k not in gone]
    fresh = [k for k in new if not _has(keys, k, sort)]
    if fresh:
        keys.extend(fresh)
        keys.sort(key=sort)
    return keys


def _has(keys: list[str], key: str, sort: Callable[[str], Any] | None = None) -> bool:
    i = bisect.bisect_left(keys, key if sort is None else sort(key), key=sort)
    return i < len(keys) and keys[i] == key
