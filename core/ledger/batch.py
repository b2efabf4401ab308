"""Planning a batch of transactions for one commit, without storage (sans-I/O).

The SQL ledger publishes several transactions (``publish_many``: the hub's group commit; and
``publish``, a batch of one) in ONE database transaction without a SAVEPOINT per
transaction. Under the write lock it reads, once for the whole batch, what the rules need:

- the current state of every Sig of every transaction (:func:`batch_keys`),
- the uids already applied,
- the events after the oldest base on the Sigs whose transactions may conflict
  (:func:`later_wanted`),

and :func:`plan_batch` then decides every transaction in order with
:func:`core.ledger.rules.plan` against an in-memory overlay: each transaction sees the state,
revision, event ids and events of the ones before it, exactly as if each had been published
and committed on its own. ``plan`` raises before anything is built, so a rejected transaction
leaves the overlay untouched and needs no rollback. What the batch stores (event, audit and uid
rows, the final state of every touched record, the new revision and last event id) is
returned in one :class:`BatchPlan` for the ledger to write with one statement per table.

Exactly-once: a uid the database already holds is a duplicate (``dup_of``: the ledger reads
that revision's events); a uid published earlier in the same batch is a duplicate of that
result; a uid whose earlier attempt in the batch was rejected is planned again, as a resend
after a rejection would be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConflictError, ValidationError
from core.ledger.protocols import PubResult
from core.ledger.rules import Later, needs_conflict_check, plan, sigs_of, uid_clash
from core.model import Cmd, Event, Sig, Trans
from core.revision import ZERO_REV, Rev
from core.schema import Project

__all__ = ["AuditRow", "BatchPlan", "batch_keys", "batch_reads", "later_wanted", "plan_batch"]

AuditRow = tuple[Rev, Rev, Rev, str, Mapping[str, Any] | None, str]
"""An audit row to store: ``(rev, created, arrived, usr, extra, uid)``."""


@dataclass(slots=True)
class BatchPlan:
    """What one commit of a batch stores, and each transaction's outcome.

    Attributes:
        results: per transaction, in order: its :class:`PubResult`, the ValidationError or
            ConflictError that rejected it, or ``None`` for a uid applied before the batch
            (see ``dup_of``; the ledger compares it with the first: ``uid_clash``).
        dup_of: index in ``results`` → the revision a uid was applied at before the batch.
        events: the new events, in (rev, id) order.
        audits: one row per new revision.
        uids: ``(uid, rev)`` of every applied transaction that carries a uid.
        states: the final fields (``None``: deleted) and revision of every touched record.
        last_rev, last_id: the ledger's revision and last event id after the batch.
    """

    results: list[PubResult | Exception | None]
    dup_of: dict[int, Rev]
    events: list[Event] = field(default_factory=list)
    audits: list[AuditRow] = field(default_factory=list)
    uids: list[tuple[str, Rev]] = field(default_factory=list)
    states: dict[Sig, tuple[dict[str, Any] | None, Rev]] = field(default_factory=dict)
    last_rev: Rev = ZERO_REV
    last_id: int = 0

    @property
    def changed(self) -> bool:
        """True when the batch stores anything (some transaction was applied)."""
        return bool(self.audits)


_NO_LATER: Mapping[Sig, Sequence[Later]] = {}
"""No later events (shared: plan() never changes the mapping it gets)."""


def batch_keys(items: Sequence[tuple[Trans, str]]) -> dict[str, list[str]]:
    """Per topic, every distinct key the batch touches, in first-seen order."""
    seen: dict[str, dict[str, None]] = {}
    for t, _ in items:
        for a in t.acts:
            keys = seen.get(a.top)
            if keys is None:
                seen[a.top] = {a.key: None}
            else:
                keys[a.key] = None
    return {top: list(keys) for top, keys in seen.items()}


def later_wanted(items: Sequence[tuple[Trans, str]], last_rev: Rev,
                 ) -> dict[str, tuple[Rev, list[str]]]:
    """Per topic, the oldest base and the keys whose stored events after it the batch needs.

    A transaction needs the events on its Sigs after its base when that base is behind the
    ledger (``last_rev``, the revision before the batch); events of earlier transactions of
    the batch come from the plan itself. With the zero base (daql's "no base") only ``new``
    actions are checked, so only their Sigs are wanted.
    """
    out: dict[str, tuple[Rev, dict[str, None]]] = {}
    new = Cmd.NEW
    for t, _ in items:
        base = t.base
        if not needs_conflict_check(t, last_rev):
            continue
        only_new = base == ZERO_REV
        for a in t.acts:
            if only_new and a.cmd != new:
                continue
            got = out.get(a.top)
            if got is None:
                out[a.top] = (base, {a.key: None})
            else:
                got[1][a.key] = None
                if base < got[0]:
                    out[a.top] = (base, got[1])
    return {top: (base, list(keys)) for top, (base, keys) in out.items()}


def batch_reads(items: Sequence[tuple[Trans, str]], last_rev: Rev,
                ) -> tuple[list[str], dict[str, list[str]], dict[str, tuple[Rev, list[str]]]]:
    """The batch's distinct uids, :func:`batch_keys` and :func:`later_wanted` in one pass
    over its actions (the publish path's reads; it runs for every group commit)."""
    uids: dict[str, None] = {}
    seen: dict[str, dict[str, None]] = {}
    out: dict[str, tuple[Rev, dict[str, None]]] = {}
    new = Cmd.NEW
    for t, _ in items:
        if t.uid:
            uids[t.uid] = None
        base = t.base
        check = base < last_rev  # needs_conflict_check, inlined: it runs per transaction
        only_new = base == ZERO_REV
        for a in t.acts:
            top, key = a.top, a.key
            keys = seen.get(top)
            if keys is None:
                seen[top] = {key: None}
            else:
                keys[key] = None
            if not check or (only_new and a.cmd != new):
                continue
            got = out.get(top)
            if got is None:
                out[top] = (base, {key: None})
            else:
                got[1][key] = None
                if base < got[0]:
                    out[top] = (base, got[1])
    return (list(uids), {top: list(keys) for top, keys in seen.items()},
            {top: (base, list(keys)) for top, (base, keys) in out.items()})


def plan_batch(
    project: Project,
    items: Sequence[tuple[Trans, str]],
    *,
    last_rev: Rev,
    last_id: int,
    states: Mapping[Sig, Mapping[str, Any] | None],
    later: Mapping[Sig, Sequence[Later]],
    applied: Mapping[str, Rev],
    clock: Callable[[], Rev],
) -> BatchPlan:
    """Decide every transaction of a batch in order, as if each were committed on its own.

    Args:
        project: the schema.
        items: ``(transaction, authenticated user)`` pairs, in publish order.
        last_rev, last_id: the ledger's revision and last event id before the batch.
        states: the stored fields of every Sig of the batch (missing or ``None``: no record).
        later: stored events after the bases :func:`later_wanted` asked for, per Sig, in
            (rev, id) order, with the user of each; filtered per transaction by its base.
        applied: uids of the batch already stored → their revision.
        clock: called once per planned transaction for the clock reading its revision
            derives from (also its audit's ``arrived``).

    Returns:
        The plan. A ValidationError or ConflictError is an outcome in ``results``, never
        raised; anything else (a bug) propagates.
    """
    out = BatchPlan(results=[], dup_of={}, last_rev=last_rev, last_id=last_id)
    results, out_states = out.results, out.states
    # the records as the next transaction sees them: stored, then changed earlier in the batch
    seen: dict[Sig, Mapping[str, Any] | None] = dict(states)
    mine: dict[str, list[tuple[Event, str]]] = {}  # events of this batch (and user), per key
    # keys with events a transaction whose base is behind may collide with (stored events
    # after the bases asked for, and this batch's): any other transaction skips the search
    hot: set[str] = {s.key for s in later}
    done: dict[str, PubResult] = {}  # uids applied in this batch
    defaults: dict[str, dict[str, Any]] = {}  # per topic, for plan()
    last = len(items) - 1
    for i, (t, usr) in enumerate(items):
        uid = t.uid
        if uid:
            first = done.get(uid)
            if first is not None:
                # its user from its audit row: looked for only on a duplicate
                first_usr = next(a[3] for a in out.audits if a[0] == first.rev)
                clash = uid_clash(project, t, usr, first.evs, first_usr)
                results.append(clash or PubResult(first.rev, first.evs, dup=True))
                continue
            stored = applied.get(uid)
            if stored is not None:
                out.dup_of[i] = stored
                results.append(None)
                continue
        lt: Mapping[Sig, Sequence[Later]] = _NO_LATER
        base = t.base
        acts = t.acts
        # one action (the common case) without any()'s generator
        if hot and base < out.last_rev and (acts[0].key in hot if len(acts) == 1
                                            else any(a.key in hot for a in acts)):
            lt = {}
            for s in sigs_of(t):
                got = [x for x in later.get(s, ()) if x.ev.rev > base]
                got.extend(Later(e, u) for e, u in mine.get(s.key, ())
                           if e.rev > base and e.top == s.top)
                if got:
                    lt[s] = got
        now = clock()
        try:
            p = plan(project, t, last_rev=out.last_rev, last_id=out.last_id, states=seen,
                     later=lt, now=now, defaults=defaults)
        except (ValidationError, ConflictError) as exc:
            results.append(exc)
            continue
        res = PubResult(p.rev, p.evs)
        results.append(res)
        out.events.extend(p.evs)
        out.audits.append((p.rev, t.created, now, usr, t.extra, uid))
        if uid:
            out.uids.append((uid, p.rev))
            done[uid] = res
        rev = p.rev
        for s, v in p.states.items():
            out_states[s] = (v, rev)
        if i < last:  # what the next transactions of the batch see
            seen.update(p.states)
            for e in p.evs:
                key = e.key
                got_mine = mine.get(key)
                if got_mine is None:
                    mine[key] = [(e, usr)]
                    hot.add(key)
                else:
                    got_mine.append((e, usr))
        out.last_rev = rev
        if p.evs:
            out.last_id = p.evs[-1].id
    return out
