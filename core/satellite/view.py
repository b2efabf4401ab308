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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConflictError, ValidationError
from core.ledger.protocols import Ledger
from core.ledger.rules import Later, plan
from core.model import Conflict, Event, Sig, Trans
from core.revision import Rev

__all__ = ["Overlay", "Queued", "rebase"]


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


def rebase(ledger: Ledger, queued: Sequence[Queued], *, now: Rev = 0,
           base: Overlay | None = None, prev: Overlay | None = None,
           changed: Iterable[Sig] | None = None) -> Overlay:
    """Apply queued transactions, in order, on the replica; mark the ones that no longer apply.

    Args:
        ledger: the replica (read only).
        queued: pending (and accepted-but-not-yet-replicated) transactions in queue order.
        now: clock reading for the rules (only used to derive a throwaway revision).
        base: an overlay to extend (in place) instead of starting from the bare replica.
        prev: the overlay of the previous full rebase, and ``changed``: the records the replica
            changed since. Then only transactions that touch a changed record (or a record of
            a transaction that left the queue, or of one recomputed before them) are checked
            again; the others keep their outcome (see :func:`_reusable`).

    Returns:
        The overlay: records' states after the queue, and the local conflicts.
    """
    ov = base if base is not None else Overlay()
    rev = ledger.rev()
    project = ledger.project
    todo = _to_check(queued, rev, prev, changed)
    # the replica's state of every record to check, in one read per topic (a read per
    # transaction made replaying 10,000 offline edits quadratic in queries)
    need: dict[str, set[str]] = {}
    for q in queued:
        if q.uid in todo:
            for a in q.trans.acts:
                if Sig(a.top, a.key) not in ov.states:
                    need.setdefault(a.top, set()).add(a.key)
    replica: dict[Sig, Mapping[str, Any]] = {}
    for top, keys in need.items():
        if top not in project.topics:
            continue  # plan() rejects the unknown topic with a clear message
        for k, v in ledger.states_of(top, keys).items():
            replica[Sig(top, k)] = v
    for q in queued:
        if q.uid not in todo and prev is not None:
            _replay(ov, q, prev.outcomes[q.uid])
            continue
        t = q.trans
        sigs = tuple(dict.fromkeys(Sig(a.top, a.key) for a in t.acts))
        states: dict[Sig, Mapping[str, Any] | None] = {}
        for s in sigs:
            states[s] = ov.states[s] if s in ov.states else replica.get(s)
        check_base = q.auth or q.accepted or t.base >= rev
        later = {} if check_base else {s: _later(ledger, s, t.base) for s in sigs}
        probe = Trans(t.acts, base=rev if check_base else t.base, uid=t.uid)
        try:
            p = plan(project, probe, last_rev=rev, last_id=0, states=states, later=later,
                     now=now)
        except ConflictError as exc:
            _replay(ov, q, Outcome(sigs, check_base, None, (str(exc), exc.conflicts)))
            continue
        except ValidationError as exc:
            _replay(ov, q, Outcome(sigs, check_base, None, (str(exc), ())))
            continue
        out = {s: None if st is None else _full(ledger, s.top, st) for s, st in p.states.items()}
        _replay(ov, q, Outcome(sigs, check_base, out, None))
    return ov


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one queued transaction did to the overlay (kept to reuse in the next rebase)."""

    sigs: tuple[Sig, ...]
    checked_on_rev: bool   # checked on the replica's revision (no later events involved)
    states: dict[Sig, dict[str, Any] | None] | None    # None: it conflicts
    conflict: tuple[str, tuple[Conflict, ...]] | None


def _replay(ov: Overlay, q: Queued, oc: Outcome) -> None:
    ov.outcomes[q.uid] = oc
    if oc.states is None:
        assert oc.conflict is not None
        ov.conflicts[q.uid] = oc.conflict
        for s in oc.sigs:
            ov.conflict_sigs.setdefault(s, []).append(q.uid)
        return
    for s, st in oc.states.items():
        ov.states[s] = st
        if not q.auth and not q.accepted:
            ov.pending.setdefault(s, []).append(q.uid)


def _to_check(queued: Sequence[Queued], rev: Rev, prev: Overlay | None,
              changed: Iterable[Sig] | None) -> set[str]:
    """The uids whose outcome may differ from ``prev``'s: the others are replayed as they were.

    A transaction checked on the replica's revision both then and now (its base is not behind,
    or it is authoritative / accepted) depends only on the states of its records, which are
    the replica's or those left by the transactions before it. So its outcome stands unless
    one of its records changed in the replica, or belonged to a transaction that left the
    queue or was checked again before it (then its records count as changed too).
    """
    if prev is None or changed is None:
        return {q.uid for q in queued}
    dirty = set(changed)
    current = {q.uid for q in queued}
    for uid, gone in prev.outcomes.items():
        if uid not in current:
            dirty.update(gone.sigs)
    todo: set[str] = set()
    for q in queued:
        oc = prev.outcomes.get(q.uid)
        now_on_rev = q.auth or q.accepted or q.trans.base >= rev
        if (oc is not None and now_on_rev and oc.checked_on_rev
                and dirty.isdisjoint(oc.sigs)):
            continue
        todo.add(q.uid)
        dirty.update(Sig(a.top, a.key) for a in q.trans.acts)
    return todo


def _full(ledger: Ledger, top: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return ledger.project.model(top).full(fields)


def keys_of(base: Iterable[str], ov: Overlay, top: str) -> list[str]:
    """The keys a user sees in a topic: the replica's keys with the overlay applied, sorted.

    ``base`` comes sorted from ``Ledger.keys``: sorting it again is linear, and the overlay's
    few changes are merged in (a set of a million keys sorted afresh took 1.6 s on the
    desktop's UI thread after a catch-up)."""
    keys = sorted(base)
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
    fresh = [k for k in new if not _has(keys, k)]
    if fresh:
        keys.extend(fresh)
        keys.sort()
    return keys


def _has(keys: list[str], key: str) -> bool:
    i = bisect.bisect_left(keys, key)
    return i < len(keys) and keys[i] == key
