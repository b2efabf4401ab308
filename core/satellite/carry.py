"""Carrying edits not synced yet from one data directory into another (``outpost carry``).

A replica can become unable to sync for good: its hub was restored from an older backup (the
hub is behind it), the hub's schema changed, it is pointed at another ledger, or its file is
damaged. The fix is a new data directory connected to the hub; the user's pending edits must
not stay behind in the old one. :func:`plan_carry` reads the old satellite (opened read-only:
nothing in it is changed) and decides, transaction by transaction, what goes into the new
one's queue; :meth:`Satellite.carry_in` stores the whole plan in one commit.

Decisions (``docs/satellite.md``, "Carrying edits to a new data directory"):

- **Exactly once.** A transaction keeps its uid, creation time, ``extra`` and actions. One
  whose uid the new satellite already has (in its queue, or applied on the hub: the replica
  records the uid of every revision it holds) is skipped: a second run carries nothing twice,
  and one the hub applied before it lost it again is answered by the hub's uid check. A
  daql hub has no uid check: an edit the old directory sent to one without storing the
  answer (``sat_meta`` ``unconfirmed``, still pending) may be applied there already, so it
  is carried as a conflict (put aside) for the user to check, never as pending.
- **Base revision.** A transaction's base is kept when, for every record it touches, the new
  replica's history up to that base is the old replica's (same revisions, commands and values)
  and the base is not after the new replica's revision: the hub then sees exactly the changes
  the user did not see, and reports conflicts as for any edit. That holds for the same ledger
  restored from a backup taken after the base, whatever the ledger ids say. Otherwise (another
  ledger, a base after the restored backup, another schema whose events differ) the base is
  the new replica's revision, and the record is compared instead: where the hub's state now
  differs from the old replica's at the base on what the action depends on (the fields a
  ``mod`` sets; the whole record for ``new``/``del``; its existence), the transaction is
  queued as a conflict (rejected, with the differing fields and the hub's values) for the
  user to resolve; never overwritten silently. The old record is the one the user saw (the
  earlier edits of the old queue the replica did not hold at the base applied), the hub's
  record the one it holds after the earlier ``pending`` items of the plan (not after those
  held as conflicts or rejected: they are not applied until resolved). A ``mod`` of a record
  the hub does not have, that the user saw, is carried as a ``new`` of the record as seen
  with the mod's fields (a ``deleted`` conflict): "keep mine" recreates it whole.
- **Schema.** Every action is checked against the new schema. A transaction with an invalid
  one is reported (uid, topic, key, reason; whether dropping fields would fix it) and nothing
  is carried (carrying the others first and it later would reorder edits of one record);
  ``drop_invalid`` drops just the invalid fields (a ``mod`` left without fields is dropped,
  and a transaction left without actions is not carried: ``emptied``; one still invalid,
  e.g. a ``new`` without a field the new schema requires, is reported as above).
  ``skip_invalid`` (session 15: before, such a transaction held back all the others, with
  no way out) leaves it in the old directory with every later transaction touching one of
  its records (``left``: order within a record is kept), and carries the rest.
- **Rejected** transactions not resolved are carried only when asked (``rejected=True``):
  still rejected, with their error and conflicts, to be resolved in the new satellite.
- **Accepted but lost**: a hub restored from an older backup (or whose file was rolled
  back) lost what it accepted after the backup; the old replica's receipts still hold those
  edits. Asked (``accepted=True``), the accepted transactions whose uid the new replica does
  not hold are carried as pending (same rules; counted as ``lost``). Only for the same
  ledger: against another one they would publish the old ledger's history again (refused
  when both replicas store a ledger id, ``sat_meta`` ``ledger``, and the ids differ). Not
  asked, they are named (``accepted_left``: the new replica stores the ledger id of an
  Outpost hub, the same as the old one's or the old one stores none), never left behind
  silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import Any

import orjson

from core.errors import ConfigError, OutpostError, ValidationError
from core.ledger.rules import Later, conflict_of
from core.ledger.sql import replay
from core.model import Action, Cmd, Conflict, Event, Sig, Trans
from core.revision import ZERO_REV, Rev, format_rev
from core.satellite.api import PUT_ASIDE, ReceiptState, put_aside_err
from core.satellite.queue import Queue
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import dec_conflict

__all__ = ["CONFLICT", "PENDING", "REJECTED", "CarryItem", "CarryPlan", "Invalid", "plan_carry"]


@dataclass(frozen=True, slots=True)
class Invalid:
    """An action of the old queue that the new schema refuses."""

    uid: str
    top: str
    key: str
    reason: str
    #: leaving the fields the new schema refuses out (``drop_invalid``) makes it valid; not
    #: so a ``new`` without a field the new schema requires, a key of another type, a model
    #: the new schema lacks: those only ``skip_invalid`` gets past (session 15: the advice
    #: was --drop-invalid-fields for every invalid action, and repeated it once given)
    fixable: bool = False


@dataclass(frozen=True, slots=True)
class CarryItem:
    """One transaction to queue in the new satellite.

    Attributes:
        trans: uid, base, created time, extra and actions (invalid fields dropped).
        resolves: the uid of the rejected transaction it resolves (``""``: none).
        kind: ``pending`` (to be sent), ``conflict`` (the hub changed its records since:
            stored rejected, for the user to resolve) or ``rejected`` (rejected in the old
            satellite, carried as it is).
        err, conflicts: why it is rejected (``conflict`` and ``rejected``).
        kept_base: its base is the old one (else the new replica's revision).
        dropped: ``top key field`` of every field dropped as invalid.
        lost: accepted by the old hub, unknown to the new one (``accepted=True``).
    """

    trans: Trans
    resolves: str
    kind: str
    err: str = ""
    conflicts: tuple[Conflict, ...] = ()
    kept_base: bool = True
    dropped: tuple[str, ...] = ()
    lost: bool = False

    @property
    def put_aside(self) -> bool:
        """Queued put aside (``err`` begins with :data:`~core.satellite.api.PUT_ASIDE`): sent
        to a daql hub by the old directory, its answer never stored; not a conflict."""
        return self.kind != PENDING and not self.conflicts and self.err.startswith(PUT_ASIDE)


@dataclass
class CarryPlan:
    """What a carry does: the transactions to queue, in the old queue's order, and those
    left out."""

    items: list[CarryItem] = field(default_factory=list)
    already: list[str] = field(default_factory=list)   # uids the new satellite has
    invalid: list[Invalid] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)   # uids left without actions (dropped)
    # with skip_invalid: the transactions left in the old directory (an invalid action, or
    # a later edit of a record one of those touches: carrying it would reorder that
    # record's edits), one entry per action of theirs that is the reason
    left: list[Invalid] = field(default_factory=list)
    # without accepted=True: the old hub's accepted edits the new replica does not hold (a
    # restore or a rollback of the hub lost them), left behind: named, never silently
    accepted_left: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Numbers for the command's output."""
        pend = [i for i in self.items if i.kind == PENDING]
        return {
            "carried": len(self.items),
            "pending": len(pend),
            "rebased": sum(1 for i in pend if not i.kept_base),
            "conflicts": sum(1 for i in self.items if i.kind == CONFLICT and not i.put_aside),
            # sent to a daql hub, its answer never stored: put aside (not a conflict)
            "put_aside": sum(1 for i in self.items if i.put_aside),
            "rejected": sum(1 for i in self.items if i.kind == REJECTED and not i.put_aside),
            "lost": sum(1 for i in self.items if i.lost),
            "already": len(self.already),
            "invalid": len(self.invalid),
            "emptied": len(self.emptied),
            "dropped_fields": sum(len(i.dropped) for i in self.items),
            "accepted_left": len(self.accepted_left),
            "left": len({i.uid for i in self.left}),
        }


PENDING, CONFLICT, REJECTED = "pending", "conflict", "rejected"

#: why a carried edit the old directory sent to a daql hub without learning its fate is held:
#: put aside, in the words (and with the reason code) of the sync's put-aside edits, so
#: `outpost conflicts` and the app show it as one (session 12: carry's own words, shown as a
#: conflict "rejected by the hub")
UNCONFIRMED = put_aside_err(
    "the data directory it was carried from (outpost carry) stopped, or could not store "
    "the hub's reply,")


def plan_carry(old: Satellite, new: Satellite, *, rejected: bool = False,
               accepted: bool = False, drop_invalid: bool = False,
               skip_invalid: bool = False) -> CarryPlan:
    """Decide what carrying ``old``'s edits not synced yet into ``new`` does (module
    docstring). Reads both, changes neither.

    Args:
        old: the satellite to carry from (opened read-only).
        new: the satellite to carry into.
        rejected: carry rejected transactions not resolved as well.
        accepted: carry, as pending, the transactions the old hub accepted whose uid the new
            replica does not hold (what a restore of an older backup lost) as well.
        drop_invalid: drop fields the new schema refuses instead of refusing their
            transaction.
        skip_invalid: leave a transaction the new schema refuses (after ``drop_invalid``)
            in the old directory, with every later one touching one of its records
            (``CarryPlan.left``), and carry the others, instead of carrying nothing.

    Raises:
        ConfigError: ``accepted`` while the replicas name different ledgers (their ids, in
            ``sat_meta`` ``ledger``, once the sync stores them).
    """
    mine, theirs = old.queue.get_meta("ledger", ""), new.queue.get_meta("ledger", "")
    other = bool(mine and theirs and mine != theirs)
    if accepted and other:
        raise ConfigError(
            f"{old.data.path} holds ledger {mine}, {new.data.path} ledger {theirs}: the "
            "edits the old hub accepted belong to another ledger and are not carried; "
            "leave out --accepted to carry the edits not synced yet")
    states = [ReceiptState.PENDING, *([ReceiptState.REJECTED] if rejected else []),
              *([ReceiptState.ACCEPTED] if accepted else [])]
    rows = old.queue.rows(states)
    plan = CarryPlan()
    if not accepted and theirs and not other:
        # what --accepted would carry, named (session 14: after a rollback of the hub's file
        # the advice left --accepted out, and carry said nothing of the accepted edit lost).
        # Only with a hub that names its ledger (an Outpost hub: the new replica records the
        # uid of every revision; a daql one records none, so all would seem lost)
        acc = old.queue.accepted_uids()
        if acc:
            held = {r["uid"] for r in new.queue.rows_of(acc)} | _on_hub(new, acc)
            plan.accepted_left = [u for u in acc if u not in held]
    if not rows:
        return plan
    uids = [r["uid"] for r in rows]
    queued = {r["uid"] for r in new.queue.rows_of(uids)}
    have = queued | _on_hub(new, uids)
    todo = [(r, Queue.trans_of(r)) for r in rows if r["uid"] not in have]
    hist = _Histories(old, new, (Sig(a.top, a.key) for _, t in todo for a in t.acts))
    now = new.rev()
    for r in rows:  # the uids already here, counted (accepted ones the hub has: the usual;
        # accepted ones an earlier carry queued here are counted: they were lost, now here)
        if r["uid"] in queued or (r["uid"] in have and r["state"] != ReceiptState.ACCEPTED.value):
            plan.already.append(r["uid"])
    todo_of = {r["uid"]: t for r, t in todo}
    marked = old.queue.get_meta("unconfirmed", []) or []
    unconfirmed = {u for u in marked if isinstance(u, str)}
    here = _NewEdits(new, {Sig(a.top, a.key) for _, t in todo for a in t.acts},
                     min((t.base for _, t in todo), default=ZERO_REV))
    blocked: dict[Sig, str] = {}  # a record a transaction left behind touches: its uid
    for r in rows:
        uid = r["uid"]
        if uid not in todo_of:
            hist.saw(r, Queue.trans_of(r).acts)  # the user saw it; the new hub holds it
            continue
        trans = todo_of[uid]
        lost = r["state"] == ReceiptState.ACCEPTED.value
        acts, dropped, bad = _fit(new.project, trans, drop_invalid)
        hist.saw(r, trans.acts)
        after = [Invalid(uid, a.top, a.key, f"a later edit of {a.top} {a.key} than "
                         f"{blocked[Sig(a.top, a.key)]}, which is left behind (carried "
                         "alone it would change the record's edits' order)")
                 for a in trans.acts if Sig(a.top, a.key) in blocked]
        if skip_invalid and (bad or after):
            plan.left.extend(bad + after)
            for a in trans.acts:
                blocked.setdefault(Sig(a.top, a.key), uid)
            continue
        if bad:
            plan.invalid.extend(bad)
            continue
        if not acts:
            plan.emptied.append(uid)
            continue
        base = trans.base
        kind = REJECTED if r["state"] == ReceiptState.REJECTED.value else PENDING
        # a zero base is "no base" to the hub (mod/del on whatever is there): never kept
        keep = 0 < base <= now and all(hist.same_until(s, base) for s in _sigs(acts))
        err = ""
        conflicts: tuple[Conflict, ...] = ()
        if kind == REJECTED:
            err = r["err"] or "rejected by the hub"
            conflicts = tuple(dec_conflict(x) for x in orjson.loads(r["conflicts"] or "[]"))
        if not keep:
            acts = [_as_seen(new.project, hist, a, base, seq=r["seq"]) for a in acts]
            collide = [c for a in acts
                       if (c := _collision(new, hist, a, base, seq=r["seq"]))]
            if collide and kind == PENDING:
                kind, conflicts = CONFLICT, tuple(collide)
                err = (f"carried from another replica: the hub changed {len(collide)} of its "
                       f"records since the edit was made (at {format_rev(base)} in that "
                       "replica): keep mine or theirs")
            base = now
        if kind == PENDING:
            # the new directory's own edits: the carried edit never saw them (it was made in
            # the other directory), so they are no "own earlier edit" it may overwrite: one
            # of the same fields (or record, for new/del) makes it a conflict
            mine = [c for a in acts if (c := here.collision(a, trans.base if keep else None))]
            if mine:
                kind, conflicts = CONFLICT, tuple(mine)
                err = (f"carried from another replica: this directory changed "
                       f"{len(mine)} of its records after the edit was made (an edit made "
                       "here, that the carried one never saw): keep mine or theirs")
        if uid in unconfirmed and kind in (PENDING, CONFLICT):
            # sent to a hub that does not confirm edits (daql) and its answer never stored:
            # that hub may have applied it, and cannot answer a resend by its uid: put aside
            # no conflicts of its own: the changes found on the hub since may be this very
            # edit, applied; the put-aside rows show the hub's values now beside the edit's
            kind, err, conflicts = CONFLICT, UNCONFIRMED, ()
        trans = Trans(tuple(acts), base=base, created=trans.created, extra=trans.extra,
                      uid=uid)
        if kind == PENDING:  # later edits are compared with the hub's records after it (a
            hist.carried(acts)  # conflict or a rejected one is held until resolved: not)
        plan.items.append(CarryItem(trans, r["resolves"] or "", kind, err, conflicts, keep,
                                    tuple(dropped), lost))
    return plan


def _on_hub(new: Satellite, uids: Sequence[str]) -> set[str]:
    """Those of ``uids`` the new replica holds as applied on the hub (it records the uid of
    every revision it replicates in the revision's audit: one scan of its audits,
    :meth:`SqlLedger.applied_uids`)."""
    return set(new.replica.ledger.applied_uids(uids))


def _sigs(acts: Sequence[Action]) -> list[Sig]:
    return list(dict.fromkeys(Sig(a.top, a.key) for a in acts))


def _fit(proj: Project, trans: Trans, drop: bool
         ) -> tuple[list[Action], list[str], list[Invalid]]:
    """The transaction's actions checked against ``proj``: (actions, fields dropped, invalid
    actions). With ``drop``, invalid fields are left out of each action first, and a ``mod``
    left without fields is left out."""
    acts: list[Action] = []
    dropped: list[str] = []
    bad: list[Invalid] = []
    for a in trans.acts:
        if drop and a.arg and a.cmd != Cmd.DEL:
            model = _model(proj, a.top)
            if model is not None:
                keep: dict[str, Any] = {}
                for name, value in a.arg.items():
                    f = model.field(name)
                    if f is None or f.check_value(value) is not None:
                        dropped.append(f"{a.top} {a.key} {name}")
                    else:
                        keep[name] = value
                if len(keep) != len(a.arg):
                    if a.cmd == Cmd.MOD and not keep:
                        continue  # it set only fields the new schema has not: nothing left
                    a = Action(a.top, a.key, a.cmd, keep)
        try:
            proj.check_action(a)
        except ValidationError as exc:
            fixable = not drop and not _fit(proj, Trans((a,), uid=trans.uid), True)[2]
            bad.append(Invalid(trans.uid, a.top, a.key, str(exc), fixable))
            continue
        acts.append(a)
    return acts, dropped, bad


def _model(proj: Project, top: str) -> Any:
    try:
        return proj.model(top)
    except OutpostError:
        return None


class _Histories:
    """The events of the records a carry touches, in the old and the new replica, read in
    one read per topic and 500 records (a read per record cost 3 ms: 5,000 edits took 44 s),
    and the new replica's records now."""

    def __init__(self, old: Satellite, new: Satellite, sigs: Iterable[Sig]):
        by_top: dict[str, list[str]] = {}
        for sg in sigs:
            by_top.setdefault(sg.top, []).append(sg.key)
        self._old, self._new = old, new
        self._ev: tuple[dict[Sig, list[Event]], dict[Sig, list[Event]]] = ({}, {})
        self._now: dict[Sig, dict[str, Any]] = {}
        self._over: dict[Sig, dict[str, Any] | None] = {}
        self._saw: dict[Sig, list[tuple[int, Rev | None, Action]]] = {}
        for top, keys in by_top.items():
            for which, sat in enumerate((old, new)):
                for key, evs in sat.replica.ledger.events_of(top, keys, ZERO_REV).items():
                    self._ev[which][Sig(top, key)] = evs
            if _model(new.project, top) is not None:
                for key, st in new.replica.read.states_of(top, keys).items():
                    self._now[Sig(top, key)] = st

    def same_until(self, s: Sig, base: Rev) -> bool:
        """Whether both replicas hold the same changes of ``s`` up to ``base``."""
        return ([(e.rev, e.cmd, e.arg) for e in self._ev[0].get(s, ()) if e.rev <= base]
                == [(e.rev, e.cmd, e.arg) for e in self._ev[1].get(s, ()) if e.rev <= base])

    def saw(self, row: Mapping[str, Any], acts: Sequence[Action]) -> None:
        """Note an old queue row (in queue order) the user saw in the old satellite's view
        while it was pending: a pending one, or an accepted one until its revision. A rejected
        one is not in that view."""
        if row["state"] == ReceiptState.REJECTED.value:
            return
        rev = row["rev"] if row["state"] == ReceiptState.ACCEPTED.value else None
        for a in acts:
            self._saw.setdefault(Sig(a.top, a.key), []).append((row["seq"], rev, a))

    def was(self, s: Sig, base: Rev, seq: int) -> dict[str, Any] | None:
        """The record as the user saw it in the old satellite when the edit of queue
        position ``seq`` was made: the old replica's at ``base`` (as ``Ledger.state`` folds
        it), with the earlier edits of its queue not in the replica at ``base`` on top."""
        st = replay(e for e in self._ev[0].get(s, ()) if e.rev <= base).get(s)
        model = self._old.project.model(s.top)
        out = None if st is None else model.full(st[0])
        for q, rev, a in self._saw.get(s, ()):
            if q < seq and (rev is None or rev > base):
                out = _apply(model, out, a)
        return out

    def now(self, s: Sig) -> dict[str, Any] | None:
        """The new replica's record now, with the edits carried so far applied."""
        return self._over[s] if s in self._over else self._now.get(s)

    def carried(self, acts: Sequence[Action]) -> None:
        """Apply a carried transaction's actions to what :meth:`now` gives: a later edit of
        the same record is compared with the hub's record as it will be after them (an
        accepted edit the hub lost, carried back, is no change of the hub's)."""
        for a in acts:
            s = Sig(a.top, a.key)
            self._over[s] = _apply(self._new.project.model(a.top), self.now(s), a)

    def last(self, s: Sig) -> tuple[Rev, str]:
        """The revision and user of the new replica's last change of ``s``."""
        evs = self._ev[1].get(s)
        if not evs:
            return 0, ""
        return evs[-1].rev, self._usr(evs[-1].rev)

    def _usr(self, rev: Rev) -> str:
        au = self._new.replica.read.audit(rev)
        return au.usr if au is not None else ""

    def by(self, s: Sig, fields: Sequence[str]) -> dict[str, tuple[Rev, str]] | None:
        """Per field of ``fields``, the revision and user of the new replica's last change
        of it, as a hub conflict's ``by`` (session 14: a conflict found by a carry named the
        record's last changer for every field); ``None`` when that change set them all (or
        none is known: the record's last change stands for them)."""
        at: dict[str, Rev] = {}
        for e in self._ev[1].get(s, ()):
            for f in e.arg or ():
                if f in fields:
                    at[f] = e.rev
        evs = self._ev[1].get(s)
        last = evs[-1].rev if evs else 0
        if not at or all(r == last for r in at.values()):
            return None
        usr: dict[Rev, str] = {}
        out: dict[str, tuple[Rev, str]] = {}
        for f in fields:
            r = at.get(f, last)
            if r not in usr:
                usr[r] = self._usr(r)
            out[f] = (r, usr[r])
        return out


class _NewEdits:
    """The new directory's own edits of the records a carry touches: pending ones, and
    accepted ones (the hub applied them) after the oldest carried base. A carried edit made
    in the other directory never saw them; without this, it was queued after them and sent
    as pending, and the sync counted the new directory's accepted edit as the satellite's
    own earlier one (``Satellite._advance_bases``): the older carried value overwrote the
    newer one silently (safety review 10, finding 2)."""

    def __init__(self, new: Satellite, sigs: set[Sig], low: Rev):
        self._new = new
        self._by: dict[Sig, list[tuple[Rev | None, Action]]] = {}
        if not sigs:
            return
        for r in new.queue.rows([ReceiptState.PENDING], accepted_after=low):
            rev = r["rev"] if r["state"] == ReceiptState.ACCEPTED.value else None
            for a in Queue.trans_of(r).acts:
                sg = Sig(a.top, a.key)
                if sg in sigs:
                    self._by.setdefault(sg, []).append((rev, a))

    def collision(self, a: Action, base: Rev | None) -> Conflict | None:
        """The conflict of carried ``a`` with the new directory's edits of its record (its
        pending ones; its accepted ones after ``base``, when the carried edit keeps its base:
        else the comparison with the hub's record covers those), as the hub would find it;
        *theirs* is the record as this directory shows it."""
        sg = Sig(a.top, a.key)
        edits = self._by.get(sg)
        if not edits:
            return None
        top = self._new.rev() + 1
        later = [Later(Event(0, top if rev is None else rev, b.top, b.key, b.cmd, b.arg))
                 for rev, b in edits if rev is None or (base is not None and rev > base)]
        rv = self._new.record(a.top, a.key)
        c = conflict_of(a, later, None if rv is None else rv.fields)
        if c is None:
            return None
        acc = [rev for rev, _ in edits if rev is not None]
        return dc_replace(c, rev=max(acc) if acc else ZERO_REV, usr="you (this directory)")


def _apply(model: Any, state: dict[str, Any] | None, a: Action) -> dict[str, Any] | None:
    """``state`` after ``a`` (as :func:`replay` folds events: a ``mod`` of no record makes
    one)."""
    if a.cmd == Cmd.DEL:
        return None
    if a.cmd == Cmd.NEW:
        return dict(model.full(a.arg or {}))
    return dict(model.full({**(state or {}), **(a.arg or {})}))


def _as_seen(proj: Project, hist: _Histories, a: Action, base: Rev, seq: int) -> Action:
    """A ``mod`` of a record the hub no longer has (and the user saw) as a ``new`` of the
    record as the user saw it with the mod's fields: keeping it ("keep mine") then recreates
    the whole record, not only the fields the mod set (the rebased base is the new replica's
    revision, where the record does not exist). Any other action as it is."""
    sg = Sig(a.top, a.key)
    if a.cmd != Cmd.MOD or hist.now(sg) is not None:
        return a
    was = hist.was(sg, base, seq)
    if was is None:
        return a
    model = proj.model(a.top)
    full: dict[str, Any] = {}
    for name, value in was.items():
        f = model.field(name)
        if value is not None and f is not None and f.check_value(value) is None:
            full[name] = value
    full.update({k: v for k, v in (a.arg or {}).items() if v is not None})
    b = Action(a.top, a.key, Cmd.NEW, full)
    try:
        proj.check_action(b)
    except ValidationError:
        return a  # the new schema refuses the record as it was: the mod as it is
    return b


def _collision(new: Satellite, hist: _Histories, a: Action, base: Rev,
               seq: int) -> Conflict | None:
    """How the hub's state of ``a``'s record now differs from what the user saw (the old
    satellite at ``base``, with the edits carried before it applied to both) on what ``a``
    depends on, as a conflict; ``None`` when it does not."""
    sg = Sig(a.top, a.key)
    was, now = hist.was(sg, base, seq), hist.now(sg)
    names = new.project.model(a.top).field_names()
    if (was is None) != (now is None):
        reason = "created" if now is not None else "deleted"
        return Conflict(a.top, a.key, a.cmd, reason, (), _some(now, names), *hist.last(sg))
    if was is None or now is None:
        return None  # neither has it: made (or deleted) by the edits carried with it
    if a.cmd == Cmd.MOD:
        diff = tuple(f for f in (a.arg or {}) if was.get(f) != now.get(f))
        reason = "field changed"
    else:
        diff = tuple(f for f in names if was.get(f) != now.get(f))
        reason = "modified"
    if not diff:
        return None
    return Conflict(a.top, a.key, a.cmd, reason, diff, {f: now.get(f) for f in diff},
                    *hist.last(sg), hist.by(sg, diff))


def _some(state: Mapping[str, Any] | None, names: Sequence[str]) -> dict[str, Any] | None:
    return None if state is None else {f: state.get(f) for f in names}
