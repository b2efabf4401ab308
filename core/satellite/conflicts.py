"""A rejected transaction as base / mine / theirs per field, and in plain words.

Two functions used by the desktop's conflicts view (``desktop.models.conflicts``,
``desktop.widgets.conflicts``) and by ``outpost conflicts``, so both show the same:

- :func:`conflict_fields`: every field of the rejected edit, base / mine / theirs: the
  conflicting ones and, marked ``conflict=False``, the others. The hub rejects a transaction
  whole (DESIGN §3), and "keep theirs" drops it whole (issue #5: "keep theirs (drop it)"), so
  the user sees every value it drops before choosing, not only the conflicting ones.
- :func:`explain`: one sentence per record saying what each side did ("they deleted this
  record; you changed name to ...") and what keep mine / keep theirs then do.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.ledger.protocols import HistoryEntry
from core.model import Action, Cmd, Conflict
from core.revision import ZERO_REV, Rev, format_rev
from core.satellite.api import (
    ASIDE,
    Receipt,
    SatelliteAPI,
    conflict_seen,
    is_put_aside,
    overwrote,
    refused_here,
)

__all__ = ["SETTLED", "WHOLE", "FieldConflict", "Own", "aside_arrived", "conflict_fields",
           "could_overwrite", "explain", "explain_aside", "history_notes", "last_changes",
           "latest_settled",
           "own_of", "same_value", "seen_of", "settled_same", "since_sentences", "theirs_only"]

SETTLED = "settled: same values on both sides"
"""How a rejected transaction settled by itself is said (:func:`settled_same`): every field
that conflicted already held the user's value (both set lon to 9.9); DESIGN §5."""

WHOLE = ""
"""The field name of a whole-record conflict (a record deleted, created or modified by the
other side) or of a transaction rejected for another reason (its error)."""


@dataclass(slots=True)
class FieldConflict:
    """One conflicting field (or a whole record: ``field`` is :data:`WHOLE`) of a rejected
    transaction (the desktop's conflicts view adds its label and choice to it:
    ``desktop.models.conflicts.ConflictRow``).

    ``base``: the value when the edit was made (the replica at the transaction's base);
    ``mine``: the edit's value; ``theirs``: the hub's value now, as the replica holds it (not
    the value at the rejection: a change made since is shown, and ``since`` says so). For a
    whole record
    ``base`` is ``"exists"`` or ``"absent"``, ``mine`` the edit (``"create"``, ``"modify"``,
    ``"delete"``) and ``theirs`` the reason; for a rejection that is no conflict ``mine`` is
    the command and ``theirs`` the error.
    """

    uid: str
    top: str
    key: str
    field: str
    base: Any
    mine: Any
    theirs: Any
    usr: str
    rev: Rev
    reason: str
    cmd: Cmd
    conflict: bool = True
    """False: a field (or, as a whole record, a delete) of the rejected edit that collided
    with nothing; the hub rejected it with the rest, and keep theirs drops it too."""
    since: str = ""
    """What happened to the record after the conflict (after ``rev``): ``""`` nothing,
    ``"changed"``, ``"deleted"`` or ``"created"`` (again); ``since_usr`` and ``since_rev`` say
    who and when (the last such change). ``theirs`` already shows its result."""
    since_usr: str = ""
    since_rev: Rev = ZERO_REV
    own_since: str = ""
    """The user's own later change (one of this satellite's accepted transactions after
    ``rev``), as ``since`` says others': ``""``, ``"changed"``, ``"deleted"``, ``"created"``,
    at ``own_since_rev``. Not "changed since": a resolution is not refused for it (session 11:
    the inbox said "changed since" of the user's own later edits too)."""
    own_since_rev: Rev = ZERO_REV
    last_usr: str = ""
    """A record someone created under the key (``reason`` "created", or deleted and created
    again): who last changed this field (the whole record's row: any field) after that
    creation, up to the conflict being known, when that is a later change than the creation
    ``usr`` and ``rev`` name (user review 12: bob's values were credited to carol, who created
    the record); ``""`` when none. ``last_rev``: when."""
    last_rev: Rev = ZERO_REV
    theirs_only: bool = False
    """A field of the record someone else created under the key (``reason`` "created", or
    deleted and created again) that the user's edit does not set: keep mine leaves it as
    theirs has it (user review 13 F2: no view listed region and notes, which stayed). No
    choice: ``mine`` is ``None``."""
    overwrote: bool = False
    """A row of an edit the hub applied over a colleague's change (a daql hub:
    :func:`core.satellite.api.overwrote`): ``theirs`` is what it overwrote, not the record
    now; a change since is said in its own words (:func:`since_sentences`)."""
    same: bool = False
    """A conflicting field whose value is the same on both sides (theirs now is mine: both
    set lon to 9.9; user review 13 F4): shown as identical, no choice needed (either keeps
    the value)."""


def theirs_only(c: Conflict, a: Action | None) -> dict[str, Any]:
    """The fields (with values) that the record someone else created under the key has and
    the user's ``new`` or ``mod`` ``a`` does not set (``c.reason`` "created", or "deleted" and
    created again): keep mine sets the user's values on that record and leaves these as they
    are (user review 13 F2: "replaces their record's values with yours" kept them unsaid)."""
    if a is None or a.cmd == Cmd.DEL or c.theirs is None or c.reason not in ("created",
                                                                            "deleted"):
        return {}
    mine = a.arg or {}
    return {f: v for f, v in c.theirs.items() if f not in mine and v is not None}


def same_value(a: Any, b: Any) -> bool:
    """Whether two field values are the same (``1`` and ``True``, ``1`` and ``1.0`` are not:
    the record would hold another type)."""
    return type(a) is type(b) and a == b


def settled_same(rc: Receipt) -> bool:
    """Whether the rejected transaction ``rc`` conflicted only where the other side had set the
    user's own values (user review 13 F4: both set lon to 9.9): each conflict a changed field
    of a ``mod`` or ``new``, and theirs at the rejection equal to mine in every conflicting
    field. Nothing is left to choose: the satellite settles it by itself
    (:meth:`core.satellite.satellite.Satellite.resolve` keep mine of what differs)."""
    if not rc.conflicts or is_put_aside(rc) or refused_here(rc):
        return False
    acts = {(a.top, a.key): a for a in rc.acts}
    for c in rc.conflicts:
        a = acts.get((c.top, c.key))
        if (c.reason != "field changed" or not c.fields or a is None or a.cmd == Cmd.DEL
                or c.theirs is None):
            return False
        mine = a.arg or {}
        if any(f not in mine or f not in c.theirs or not same_value(mine[f], c.theirs[f])
               for f in c.fields):
            return False
    return True


def latest_settled(sat: SatelliteAPI, n: int = 5) -> list[tuple[Receipt, Receipt | None]]:
    """The ``n`` latest rejected transactions settled by themselves (:func:`settled_same`),
    oldest first, each with the transaction that sent what differed of it (``None``: nothing
    was left to send), for ``outpost conflicts`` and the app's conflicts view to name them."""
    # only those the satellite settled (session 14: a keep mine the user chose of such an
    # edit, left to them because the field changed again, was listed as settled too)
    done = [r for r in sat.settled_receipts() if settled_same(r)]
    done.sort(key=lambda r: r.created)
    out: list[tuple[Receipt, Receipt | None]] = []
    for r in done[-n:]:
        by = sat.receipt(r.resolved_by) if r.resolved_by else None
        out.append((r, by if by is not None and by.resolves == r.uid else None))
    return out


def history_notes(sat: SatelliteAPI, top: str, key: str,
                  hist: Iterable[HistoryEntry]) -> dict[Rev, str]:
    """What the history of the record ``top key`` says beside its changes ``hist`` (session
    14: an edit settled by itself was said only by ``outpost conflicts`` and the audit), by
    revision: a colleague's change that already had the values of the user's edit, which
    then settled by itself; the change that sent the rest of such an edit; and the user's
    own resolution of a conflict. One text per revision (``outpost history``, the app's
    history view). Reads the settled receipts and the user's receipts at these revisions."""
    revs = {h.rev for h in hist}
    notes: dict[Rev, list[str]] = {}
    if not revs:
        return {}
    for r in sat.settled_receipts():
        for c in r.conflicts:
            if (c.top, c.key) != (top, key):
                continue
            for rev, _usr, fields in c.groups():
                if rev in revs:
                    notes.setdefault(rev, []).append(
                        f"had your values already ({', '.join(fields)}): your edit {r.uid} "
                        f"{SETTLED_BY_ITSELF}")
    for r in sat.accepted_at(revs):
        if not r.resolves or all((a.top, a.key) != (top, key) for a in r.acts):
            continue
        notes.setdefault(r.rev, []).append(
            f"your other changes of edit {r.resolves}, sent when it {SETTLED_BY_ITSELF}"
            if r.settled else f"you resolved conflict {r.resolves} with this change")
    return {rev: "; ".join(ns) for rev, ns in notes.items()}


SETTLED_BY_ITSELF = "settled by itself (same values on both sides)"
"""How a record's history says an edit settled by itself (:func:`history_notes`)."""


def conflict_fields(sat: SatelliteAPI, rc: Receipt) -> list[FieldConflict]:
    """Every field of the rejected transaction ``rc``, record by record in its conflicts'
    order: the conflicting ones first, then those of the same edit that did not conflict
    (``conflict=False``; ``theirs`` is then the hub's value as the replica holds it), then
    the records of the transaction that collided with nothing.

    A record deleted or created by the other side is a whole-record row followed by my
    edit's fields (what keep mine sends); my delete of a record they changed is one
    whole-record row (``mine`` ``"delete"``): :func:`explain` names their changes.
    """
    if is_put_aside(rc):
        return _aside_fields(sat, rc)
    out: list[FieldConflict] = []
    acts = {(a.top, a.key): a for a in rc.acts}
    seen = seen_of(sat, rc) if rc.conflicts else ZERO_REV

    def keep(top: str, key: str) -> Callable[[HistoryEntry], bool] | None:
        # a receipt rejected before session 10: only changes keep mine could overwrite (the
        # others may have come before the rejection: see seen_of), as resolve counts them
        return None if rc.rev else (lambda h: could_overwrite(rc, top, key, h.cmd, h.fields))

    over = overwrote(rc)
    done: set[tuple[str, str]] = set()
    for c in rc.conflicts:
        done.add((c.top, c.key))
        act = acts.get((c.top, c.key))
        base = _base(sat, rc, c.top, c.key)
        mine = dict(act.arg or {}) if act is not None and act.cmd != Cmd.DEL else {}
        # theirs as it is now, not as it was at the rejection; of an edit the hub applied
        # over their change (overwrote) the hub has mine now: theirs is what it overwrote
        now = (dict(sat.state_at(c.top, c.key, c.rev) or {}) if over
               else _now(sat, c.top, c.key))
        first = len(out)
        if c.fields and act is not None and act.cmd != Cmd.DEL:  # the same fields changed
            for name in c.fields:
                rev, usr = c.of(name)  # who changed this field last (user review 13 F8)
                out.append(FieldConflict(
                    rc.uid, c.top, c.key, name, base.get(name), mine.get(name),
                    now.get(name), usr, rev, c.reason, c.cmd,
                    same=name in mine and name in now and same_value(mine[name], now[name])))
            rest = [f for f in mine if f not in c.fields]
            for name in rest:
                # no user and revision: no change of theirs collided with it
                out.append(FieldConflict(rc.uid, c.top, c.key, name, base.get(name),
                                         mine[name], now.get(name), "", ZERO_REV, c.reason,
                                         c.cmd, conflict=False))
            _mark_since(sat, out[first:], c.top, c.key, seen, keep(c.top, c.key))
            continue
        again = c.reason == "deleted" and c.theirs is not None  # deleted, created again
        out.append(FieldConflict(rc.uid, c.top, c.key, WHOLE,
                                 "exists" if base else "absent", _EDIT.get(str(c.cmd)),
                                 "recreated" if again else c.reason, c.usr, c.rev, c.reason,
                                 c.cmd))
        for name, value in mine.items():
            # the record is gone (keep mine recreates it with these) or they created it too
            out.append(FieldConflict(rc.uid, c.top, c.key, name, base.get(name), value,
                                     now.get(name), c.usr, c.rev, c.reason, c.cmd))
        if now:
            for name in theirs_only(dataclasses.replace(c, theirs=now), act):
                # what their record has beyond my fields: kept by keep mine, listed so the
                # result is on screen (user review 13 F2)
                out.append(FieldConflict(rc.uid, c.top, c.key, name, base.get(name), None,
                                         now.get(name), c.usr, c.rev, c.reason, c.cmd,
                                         conflict=False, theirs_only=True))
        if c.reason == "created" or again:
            _mark_last(sat, out[first:], c.top, c.key, c.rev, seen or sat.rev())
        _mark_since(sat, out[first:], c.top, c.key, seen, keep(c.top, c.key))
    if over:
        for row in out:
            row.overwrote = True
    if rc.conflicts:
        for a in rc.acts:  # rejected with the rest, though they collided with nothing
            if (a.top, a.key) in done:
                continue
            base = _base(sat, rc, a.top, a.key)
            if a.cmd == Cmd.DEL:
                out.append(FieldConflict(rc.uid, a.top, a.key, WHOLE,
                                         "exists" if base else "absent", "delete",
                                         "no conflict", "", ZERO_REV, "", a.cmd,
                                         conflict=False))
                continue
            now = _now(sat, a.top, a.key)
            for name, value in (a.arg or {}).items():
                out.append(FieldConflict(rc.uid, a.top, a.key, name, base.get(name), value,
                                         now.get(name), "", ZERO_REV, "", a.cmd,
                                         conflict=False))
    else:  # rejected for another reason (validation): one row with the error
        a0 = rc.acts[0] if rc.acts else None
        out.append(FieldConflict(rc.uid, a0.top if a0 else "", a0.key if a0 else "", WHOLE,
                                 None, str(a0.cmd) if a0 else "", rc.err or "rejected", "",
                                 rc.rev, rc.err or "rejected", a0.cmd if a0 else Cmd.MOD))
    return out


_EDIT = {"new": "create", "mod": "modify", "del": "delete"}


def _aside_fields(sat: SatelliteAPI, rc: Receipt) -> list[FieldConflict]:
    """The rows of a put-aside transaction (:func:`core.satellite.api.is_put_aside`: sent,
    its answer lost): per field of each action the edit's value (``mine``) and the record as
    the hub's replica holds it now (``theirs``), so the user sees whether it arrived; a
    delete is one whole-record row (``theirs`` ``"exists"`` or ``"absent"``). ``reason``
    :data:`core.satellite.api.ASIDE`; nothing conflicted (no user, no revision)."""
    out: list[FieldConflict] = []
    for a in rc.acts:
        base = _base(sat, rc, a.top, a.key)
        rv = sat.record(a.top, a.key)
        now = (rv.confirmed if rv is not None else None)
        if a.cmd == Cmd.DEL or not a.arg:
            out.append(FieldConflict(rc.uid, a.top, a.key, WHOLE,
                                     "exists" if base else "absent", _EDIT.get(str(a.cmd)),
                                     "exists" if now is not None else "absent", "", ZERO_REV,
                                     ASIDE, a.cmd))
            continue
        for name, value in a.arg.items():
            out.append(FieldConflict(rc.uid, a.top, a.key, name, base.get(name), value,
                                     (now or {}).get(name), "", ZERO_REV, ASIDE, a.cmd))
    return out


def aside_arrived(sat: SatelliteAPI, rc: Receipt) -> bool:
    """Whether the hub provably holds the put-aside transaction ``rc``: each of its actions
    creates a record under a fresh key of the user's own (a UUIDv7 drawn here: no one else
    can have used it; an ``int`` key could be someone else's) and the hub's replica now has
    that record with the edit's values. A change or a delete proves nothing (someone else may
    have made the same), so it is never said of those."""
    if not is_put_aside(rc) or not rc.acts:
        return False
    for a in rc.acts:
        if a.cmd != Cmd.NEW or not sat.project.has(a.top):
            return False
        if sat.project.model(a.top).key == "int":
            return False
        rv = sat.record(a.top, a.key)
        now = rv.confirmed if rv is not None else None
        if now is None or any(now.get(f) != v for f, v in (a.arg or {}).items()):
            return False
    return True


def explain_aside(sat: SatelliteAPI, rc: Receipt, *,
                  name: Callable[[str, str], str] = lambda top, field: field,
                  show: Callable[[str, str, Any], str] | None = None,
                  record: Callable[[str, str], str] = lambda top, key: f"{top} {key}",
                  send: str = "send it again (keep mine)",
                  drop: str = "drop it (keep theirs)") -> list[str]:
    """:func:`explain` of a put-aside transaction: one sentence per record saying it was sent
    but its answer was lost, what the edit did, what the hub's replica holds now, and the
    choice worded for it (``send`` / ``drop``: the CLI names its commands). Where
    :func:`aside_arrived` proves the hub holds it, it says so: dropping it finishes."""
    shown = show or _json
    arrived = aside_arrived(sat, rc)

    def having(top: str, arg: Mapping[str, Any]) -> str:
        return ", ".join(f"{name(top, f)} {shown(top, f, v)}" for f, v in arg.items())

    out: list[str] = []
    for a in rc.acts:
        rv = sat.record(a.top, a.key)
        now = rv.confirmed if rv is not None else None
        mine = dict(a.arg or {})
        did = {Cmd.NEW: f"you created it ({having(a.top, mine)})",
               Cmd.DEL: "you deleted it"}.get(a.cmd, f"you changed {having(a.top, mine)}")
        if a.cmd == Cmd.DEL:
            hub = ("the hub still has this record" if now is not None
                   else "the hub has no such record now")
        elif now is None:
            hub = "the hub has no such record now"
        else:
            theirs = {f: now.get(f) for f in mine}
            same = theirs == mine
            hub = ("the hub has it with your values" if same
                   else f"the hub has {having(a.top, theirs)}")
        maybe = "" if arrived else ": the hub may or may not hold it"
        out.append(f"{record(a.top, a.key)}: sent to the hub, but its answer was lost{maybe}. "
                   f"{did[:1].upper()}{did[1:]}; {hub}")
    if arrived:  # a record under the user's own fresh key, with the edit's values
        out[-1] += f". The hub has it: {drop} to finish"
    else:
        out[-1] += (f". If the hub does not hold it, {send}; if it does, {drop} (sending it "
                    "again could make it twice)")
    return out


def _base(sat: SatelliteAPI, rc: Receipt, top: str, key: str) -> dict[str, Any]:
    """The record as the edit saw it (the replica at the transaction's base)."""
    if rc.base == ZERO_REV:
        return {}
    return dict(sat.state_at(top, key, rc.base) or {})


def seen_of(sat: SatelliteAPI, rc: Receipt) -> Rev:
    """The revision the rejected transaction ``rc``'s conflict shows its records at:
    :func:`conflict_seen`, what the refusal of a resolution without a revision seen and the
    inbox's "changed since" compare with.

    A receipt rejected before session 10 has no rejection revision stored (``rc.rev`` 0), and
    the revisions of the changes that won are earlier than the hub's at the rejection when
    the record changed again before it (created, then edited; deleted, then created again),
    so a resolution was refused though nothing had changed since. For those the conflict
    itself tells more: its ``theirs`` is the whole record as the hub had it at the rejection,
    so the first revision from the change that won at which the replica's record is exactly
    that is one the hub had reached by then (never one after the rejection: a later change
    of another user still counts). A record never found so: the change's revision (as
    before). Changes that keep mine cannot overwrite (:func:`could_overwrite`: a field the
    edit does not set) are not counted for such a receipt: nothing tells whether they came
    before the rejection, and they are not overwritten either way."""
    seen = conflict_seen(rc)
    if rc.rev or not rc.conflicts:
        return seen
    for c in rc.conflicts:
        if c.reason == "created" or (c.reason == "deleted" and c.theirs is not None):
            seen = max(seen, _theirs_reached(sat, c))
    return seen


def _theirs_reached(sat: SatelliteAPI, c: Conflict) -> Rev:
    """The first revision from ``c.rev`` at which the record is ``c.theirs`` (``None``:
    absent); ``c.rev`` when it never is."""
    def values(st: Mapping[str, Any] | None) -> dict[str, Any] | None:
        # an empty field: absent in the hub's record, None in the replica's
        return None if st is None else {f: v for f, v in st.items() if v is not None}

    want = values(c.theirs)
    revs = [c.rev, *(h.rev for h in sat.history(c.top, c.key) if h.rev > c.rev)]
    for rev in dict.fromkeys(revs):
        if values(sat.state_at(c.top, c.key, rev)) == want:
            return rev
    return c.rev


def could_overwrite(rc: Receipt, top: str, key: str, cmd: Cmd, fields: Iterable[str]) -> bool:
    """Whether keep mine (or a per-field choice) of ``rc`` could overwrite a change ``cmd`` of
    ``fields`` of the record ``top key``: a delete or a creation, any change of a record
    ``rc`` deletes, a change of a field ``rc`` sets there. A ``mod`` of other fields only is
    not: keep mine sends only the edit's own fields."""
    mine = [a for a in rc.acts if (a.top, a.key) == (top, key)]
    if cmd != Cmd.MOD or not mine or any(a.cmd == Cmd.DEL for a in mine):
        return True
    sets = {f for a in mine for f in (a.arg or ())}
    return not sets.isdisjoint(fields)


def _mark_last(sat: SatelliteAPI, rows: list[FieldConflict], top: str, key: str,
               created: Rev, upto: Rev) -> None:
    """Set ``last_usr`` / ``last_rev`` on the rows of a record created (again) at
    ``created``: the last change of each row's field after it, up to ``upto`` (the rejection;
    later ones are ``since``); the whole record's row takes the last change of any field."""
    later = [h for h in sat.history(top, key)
             if created < h.rev <= upto and h.cmd != Cmd.DEL]
    for r in rows:
        h = next((x for x in reversed(later)
                  if r.field == WHOLE or x.cmd == Cmd.NEW or r.field in x.fields), None)
        if h is not None:
            r.last_usr, r.last_rev = h.usr, h.rev


def last_changes(rows: Iterable[FieldConflict]) -> dict[tuple[str, str], tuple[str, Rev]]:
    """(user, revision) of the last change after its creation of each record of ``rows``
    created under a taken key (``FieldConflict.last_usr``): for :func:`explain`'s ``last``."""
    return {(r.top, r.key): (r.last_usr, r.last_rev) for r in rows
            if r.field == WHOLE and r.last_rev}


def _mark_since(sat: SatelliteAPI, rows: list[FieldConflict], top: str, key: str,
                rev: Rev, keep: Callable[[HistoryEntry], bool] | None = None) -> None:
    """Set ``since`` on the rows of one record from its last change by another user after
    ``rev`` (``own_since`` from the user's own: this satellite's accepted transactions,
    which :meth:`Satellite.resolve` does not refuse for): every row when it was deleted or
    created since, else the whole-record rows and those of the fields the changes since set
    (a field nobody touched since is not "changed since"). ``keep``: which later changes
    count (all by default)."""
    later = [h for h in sat.history(top, key) if h.rev > rev] if rev else []
    if keep is not None:
        later = [h for h in later if keep(h)]
    if not later:
        return
    own = sat.own_revs(h.rev for h in later)
    _mark(rows, [h for h in later if h.rev not in own], own=False)
    _mark(rows, [h for h in later if h.rev in own], own=True)


def _mark(rows: list[FieldConflict], later: list[HistoryEntry], *, own: bool) -> None:
    if not later:
        return
    h = later[-1]
    what = {Cmd.DEL: "deleted", Cmd.NEW: "created"}.get(h.cmd, "changed")
    touched: set[str] | None = None  # None: every row
    if all(x.cmd == Cmd.MOD for x in later):
        touched = {f for x in later for f in x.fields}
    for r in rows:
        if touched is None or r.field == WHOLE or r.field in touched:
            last = h if touched is None else next(
                (x for x in reversed(later) if r.field == WHOLE or r.field in x.fields), h)
            if own:
                r.own_since, r.own_since_rev = what, last.rev
            else:
                r.since, r.since_usr, r.since_rev = what, last.usr, last.rev


def since_sentences(rows: list[FieldConflict], *,
                    record: Callable[[str, str], str] = lambda top, key: f"{top} {key}",
                    when: Callable[[Rev], str] = format_rev) -> list[str]:
    """One sentence per record of ``rows`` that changed after its conflict: what happened,
    who, when, and that theirs shows it as it is now (what keep mine then does)."""
    out: list[str] = []
    by_record: dict[tuple[str, str], list[FieldConflict]] = {}
    for row in rows:
        by_record.setdefault((row.top, row.key), []).append(row)
    for (top, key), rs in by_record.items():
        r = next((x for x in rs if x.since), None)
        if rs[0].overwrote:  # theirs is what the edit overwrote, not the record now
            said = _since_overwrote(r or next((x for x in rs if x.own_since), None), when)
            if said:
                out.append(f"{record(top, key)}: {said}")
            continue
        if r is None:  # only the user's own later edits: no colleague's change overwritten
            own = next((x for x in rs if x.own_since), None)
            if own is not None:
                did = {"deleted": "deleted it", "created": "created it again"}.get(
                    own.own_since, "changed it")
                out.append(f"{record(top, key)}: since the conflict you {did} yourself "
                           f"({when(own.own_since_rev)}); theirs shows it as it is now, with "
                           "your change")
            continue
        by = f" ({r.since_usr or 'someone'}, {when(r.since_rev)})"
        then = ("keep mine creates it again with your values" if r.since == "deleted"
                else "keep mine replaces these values with yours")
        out.append(f"{record(top, key)}: since the conflict it was {r.since} again{by}"
                   if r.since != "deleted" else
                   f"{record(top, key)}: since the conflict it was deleted{by}")
        out[-1] += f"; theirs shows it as it is now: {then}"
    return out


def _since_overwrote(r: FieldConflict | None, when: Callable[[Rev], str]) -> str:
    """:func:`since_sentences`' words for a record the user's edit overwrote a colleague's
    change of (the hub applied it over theirs) and that changed after (session 14: "theirs
    shows it as it is now: keep mine replaces these values with yours", of a view whose theirs
    is what was overwritten and whose keep mine sends nothing)."""
    if r is None:
        return ""
    if r.since:
        who = f"{r.since_usr or 'someone'}, {when(r.since_rev)}"
        if r.since == "deleted":
            return (f"since your edit it was deleted ({who}): keep mine leaves it deleted; "
                    "keep theirs creates it again with the values shown as theirs")
        return (f"since your edit it was {r.since} again ({who}): the hub no longer holds "
                "only your values; keep mine leaves it as it is now; keep theirs sends the "
                "values shown as theirs over that change")
    did = {"deleted": "deleted it", "created": "created it again"}.get(r.own_since,
                                                                        "changed it")
    return (f"since your edit you {did} yourself ({when(r.own_since_rev)}): keep mine "
            "leaves it as it is now; keep theirs sends the values shown as theirs over your "
            "change")


def _now(sat: SatelliteAPI, top: str, key: str) -> Mapping[str, Any]:
    """The record as the hub has it now (the replica's state, without the user's edits)."""
    rv = sat.record(top, key)
    return (rv.confirmed or {}) if rv is not None else {}


def _json(top: str, field: str, value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass(frozen=True)
class Own:
    """What is the user's own, so that the winner of a conflict is named "you" (session 10:
    the text said "they" of the user's own edits): ``revs``, the revisions of this
    satellite's accepted transactions, and ``users``, the hub's name of this satellite's
    user, whose edits from another satellite (a second laptop) are theirs too. ``users`` is
    empty without a token: a hub without accounts gives every satellite one name, so it
    cannot tell the user from a colleague."""

    revs: frozenset[Rev] = frozenset()
    users: frozenset[str] = frozenset()
    named: bool = False  # users have names (a token): others are named by theirs

    def __call__(self, c: Conflict) -> bool:
        return (bool(c.rev) and c.rev in self.revs) or (bool(c.usr) and c.usr in self.users)


def own_of(sat: SatelliteAPI, revs: Iterable[Rev]) -> Own:
    """:class:`Own` of ``sat`` for conflicts whose winners are at ``revs``: those of them
    that are its accepted receipts', and with a token the user of the last accepted one's
    events (one history read). Reads only those revisions and the last receipt (session 11:
    every accepted receipt was read and decoded, 0.1-0.3 s per refresh of the conflicts
    view with 20,000 of them)."""
    token = getattr(getattr(sat, "config", None), "token", "")
    mine = sat.accepted_among(r for r in revs if r)
    last = sat.last_accepted() if token else None
    if not token or last is None:
        return Own(mine, named=bool(token))
    a = last.acts[0]
    return Own(mine, frozenset(h.usr for h in sat.history(a.top, a.key)
                               if h.rev == last.rev and h.usr), named=True)


def explain(rc: Receipt, *,
            name: Callable[[str, str], str] = lambda top, field: field,
            show: Callable[[str, str, Any], str] = _json,
            record: Callable[[str, str], str] = lambda top, key: f"{top} {key}",
            when: Callable[[Rev], str] = format_rev,
            own: Own | None = None,
            last: Mapping[tuple[str, str], tuple[str, Rev]] | None = None) -> list[str]:
    """One sentence per record of the rejected transaction ``rc``: what the other side
    did, what the user did (with their values), and what keep mine / keep theirs then do.

    ``name(top, field)``, ``show(top, field, value)`` and ``record(top, key)`` render a
    field's name, a value and a record, ``when(rev)`` a revision (the CLI: names, JSON, RFC
    3339; the app: titles, its cells, its dates). The other side is "earlier, you" when
    ``own`` (:func:`own_of`) says the change that won is the user's own, its user's name
    ("bob changed …") when users have names (``own.named``: a token), else "they" with the
    user in brackets ("they changed … (anonymous, …)": a hub without accounts). ``last``
    (:func:`last_changes`): who changed a record created under a taken key after its
    creation, named beside theirs ("theirs has … (last changed by bob, …)").
    """
    own = own or Own()
    acts = {(a.top, a.key): a for a in rc.acts}
    out: list[str] = []

    def values(top: str, arg: Mapping[str, Any] | None) -> str:
        return ", ".join(f"{name(top, f)} to {show(top, f, v)}" for f, v in (arg or {}).items())

    def names(top: str, fields: Any) -> str:
        return ", ".join(name(top, f) for f in fields)

    def having(top: str, arg: Mapping[str, Any] | None) -> str:
        # what a record holds: 'title "Plot bob"' ("has title to ..." read as a change)
        return ", ".join(f"{name(top, f)} {show(top, f, v)}" for f, v in (arg or {}).items())

    if overwrote(rc):
        for c in rc.conflicts:
            out.append(f"{record(c.top, c.key)}: " + _overwrote_sentence(
                c, acts.get((c.top, c.key)), values, having, when, own(c), own.named))
        return _resolving(rc, out)
    seen: set[tuple[str, str]] = set()
    for c in rc.conflicts:
        seen.add((c.top, c.key))
        a = acts.get((c.top, c.key))
        said = _sentence(c, a, values, names, when, having, own(c), own.named,
                         (last or {}).get((c.top, c.key)))
        out.append(f"{record(c.top, c.key)}: {said}")
    if not rc.conflicts:
        out.append(f"rejected by the hub: {rc.err or 'no reason given'}. Keep theirs drops "
                   "the edit; keep mine sends it again")
        return _resolving(rc, out)
    here = refused_here(rc)
    if here:  # found here (a daql hub): the hub never saw it (session 12: "the hub rejected")
        out[0] += (". Not sent: this hub (a daql hub) does not check an edit against changes "
                   "made after it, so sending it would have overwritten theirs")
    for a in rc.acts:
        if (a.top, a.key) in seen:
            continue
        what = "your delete" if a.cmd == Cmd.DEL else (
            f"your {'new record' if a.cmd == Cmd.NEW else 'change'} ({values(a.top, a.arg)})")
        out.append(f"{record(a.top, a.key)}: {what} collided with nothing, but "
                   + ("it was held back with the rest of the edit (not sent)" if here else
                      "the hub rejected the whole transaction")
                   + ": keep theirs drops it too, keep mine sends it")
    return _resolving(rc, out)


def _resolving(rc: Receipt, out: list[str]) -> list[str]:
    """A rejected resolution says so: the earlier conflict is resolved only when it is."""
    if rc.resolves and out:
        out[-1] += (f". This edit was your resolution of an earlier conflict (transaction "
                    f"{rc.resolves}); "
                    + ("it conflicts too (not sent)" if refused_here(rc)
                       else "the hub rejected it too")
                    + ": resolve it again here")
    return out


def _sentence(c: Conflict, a: Action | None,
              values: Callable[[str, Mapping[str, Any] | None], str],
              names: Callable[[str, Any], str], when: Callable[[Rev], str],
              having: Callable[[str, Mapping[str, Any] | None], str],
              mine_too: bool = False, named: bool = False,
              last: tuple[str, Rev] | None = None) -> str:
    # who made the change that won: the user (an edit of theirs accepted before this one),
    # another user by name, or "they" (a hub without accounts: one name for everyone)
    name = c.usr if named and c.usr and not mine_too else ""
    who = "earlier, you" if mine_too else name or "they"
    both = "you (here and earlier)" if mine_too else f"you and {who}"
    # the user's own change is "earlier, you (REV)", not "(someone, REV)" (session 14: a
    # daql hub names no user)
    by = ((f" ({when(c.rev)})" if name or (mine_too and not c.usr)
           else f" ({c.usr or 'someone'}, {when(c.rev)})") if c.rev else "")
    mine = dict(a.arg or {}) if a is not None else {}

    def changers(theirs: Mapping[str, Any] | None) -> str:
        # "bob changed lat to 46.0 (…)", or per user when several changed the fields
        # ("alice changed lat to 46.0 (…); bob changed region to "East" (…)": user review 13
        # F8 credited both to bob, the last)
        groups = ([(r, u, tuple(f for f in fs if f in (theirs or {})))
                   for r, u, fs in c.groups()] if c.by else [(c.rev, c.usr, tuple(theirs or ()))])
        groups = [g for g in groups if g[2]]
        if len(groups) == 1:
            return f"{who} changed {values(c.top, theirs)}{by}"
        parts = []
        for rev, usr, fs in groups:
            one = usr if named and usr and not mine_too else ""
            say = "earlier, you" if mine_too else one or "they"
            at = (f" ({when(rev)})" if one or (mine_too and not usr)
                  else f" ({usr or 'someone'}, {when(rev)})") if rev else ""
            parts.append(f"{say} changed "
                         f"{values(c.top, {f: (theirs or {}).get(f) for f in fs})}{at}")
        return "; ".join(parts)

    # the record's values changed after it was created (again): by whom, beside theirs
    changed = f" (last changed by {last[0] or 'someone'}, {when(last[1])})" if last else ""
    if c.reason == "deleted" and c.theirs is not None:
        # deleted, then created again under the same key: it exists now. The conflict names
        # the delete (who and when); who created it again may be another user: "(bob, …)"
        # read as bob's re-creation
        deleted = f" (deleted by {c.usr or 'someone'}, {when(c.rev)})" if c.rev else ""
        again = f"they deleted this record and created it again{deleted}"
        if a is not None and a.cmd == Cmd.DEL:
            return (f"{again} (it has {having(c.top, c.theirs)}); you deleted it. Keep mine "
                    "deletes the record they created again; keep theirs keeps it")
        now = {f: c.theirs.get(f) for f in mine}
        only = theirs_only(c, a)
        return (f"{again}; you changed {values(c.top, mine)}, theirs has "
                f"{having(c.top, now)}{changed}. Keep mine sets your values on the record they "
                "created again" + (f" (what only theirs has stays: {having(c.top, only)})"
                                   if only else "")
                + "; keep theirs keeps it as they made it and drops your changes")
    if c.reason == "deleted":
        if a is not None and a.cmd == Cmd.DEL:
            return f"{both} both deleted this record{by}; it stays deleted either way"
        return (f"{who} deleted this record{by}; you changed {values(c.top, mine)}. Keep mine "
                "recreates it (as you saw it, with your changes); keep theirs leaves it "
                "deleted and drops your changes")
    if c.reason == "modified":
        return (f"you deleted this record; {changers(c.theirs)}. Keep "
                "mine deletes it anyway; keep theirs keeps it, with their changes")
    if c.reason == "created":
        theirs = {f: (c.theirs or {}).get(f) for f in mine}
        only = theirs_only(c, a)
        theirs.update(only)  # every field of theirs said (user review 13 F2)
        if c.theirs is None:  # they deleted theirs since: the key is free again
            return (f"{both} both created a record under this key{by}; theirs was "
                    f"deleted since. Keep mine creates yours ({having(c.top, mine)}); keep "
                    "theirs drops yours")
        return (f"{both} both created a record under this key{by}: yours has "
                f"{having(c.top, mine)}; theirs has {having(c.top, theirs)}{changed}. Keep "
                "both adds "
                "yours as a new record under another key, theirs unchanged (this edit's refs "
                "to it follow; your later edits of it, saved apart, stay on their record: "
                "check them after); keep mine sets your values on their record (no second "
                "record)" + (f"; what only theirs has stays: {having(c.top, only)}" if only
                             else "") + "; keep theirs drops yours")
    # a field both set to the same value needs no choice (user review 13 F4: "mine 9.9 |
    # theirs 9.9" was a conflict to resolve)
    same = [f for f in c.fields if f in mine and f in (c.theirs or {})
            and same_value(mine[f], (c.theirs or {})[f])]
    differ = tuple(f for f in c.fields if f not in same)
    yours = {f: mine.get(f) for f in differ}
    rest = {f: v for f, v in mine.items() if f not in c.fields}
    text = (f"you changed {values(c.top, yours)}; "
            f"{changers({f: (c.theirs or {}).get(f) for f in differ})}"
            if differ else "")
    if same:
        text = (text + "; " if text else "") + (
            f"you both set {values(c.top, {f: mine[f] for f in same})}: identical, no "
            "choice needed")
    if rest:
        text += (f"; your change of {values(c.top, rest)} did not conflict. Keep mine sends "
                 f"all your changes; keep theirs drops all of them, {names(c.top, rest)} too "
                 "(or keep per field)")
    else:
        text += ". Keep mine sends your values; keep theirs keeps theirs"
    return text


def _overwrote_sentence(c: Conflict, a: Action | None,
                        values: Callable[[str, Mapping[str, Any] | None], str],
                        having: Callable[[str, Mapping[str, Any] | None], str],
                        when: Callable[[Rev], str], mine_too: bool = False,
                        named: bool = False) -> str:
    """:func:`explain`'s sentence of a change the user's edit overwrote (an edit a daql hub
    applied over it: :func:`core.satellite.api.overwrote`)."""
    name = c.usr if named and c.usr and not mine_too else ""
    who = "your own earlier" if mine_too else f"{name}'s" if name else "a colleague's"
    by = f" ({when(c.rev)})" if name else f" ({c.usr or 'someone'}, {when(c.rev)})"
    how = ("the hub (a daql hub, which does not check an edit against changes made after "
           "it) took theirs just before yours arrived and applied yours over it")
    if a is not None and a.cmd == Cmd.NEW:  # a record created under the key just before
        maker = "you, earlier," if mine_too else name or "a colleague"
        had = {f: v for f, v in (c.theirs or {}).items() if v is not None}
        has = {f: v for f in c.fields if (v := (a.arg or {}).get(f)) is not None}
        return (f"your new record replaced the one {maker} created under this key just "
                f"before{by}; theirs had {having(c.top, had) or 'no values'}, yours has "
                f"{having(c.top, has) or 'no values'}: {how}. Keep "
                "mine leaves yours on the hub; keep theirs sets their values back (a new edit)")
    if a is not None and a.cmd == Cmd.DEL:
        return (f"your delete overwrote {who} change{by}: they had changed "
                f"{values(c.top, c.theirs)}; {how}, so the record is deleted. Keep mine "
                "leaves it deleted; keep theirs creates it again as they left it (a new edit)")
    mine = {f: (a.arg or {}).get(f) for f in c.fields} if a is not None else {}
    return (f"your edit overwrote {who} change{by}; theirs was {having(c.top, c.theirs)}, "
            f"yours is {having(c.top, mine)}: {how}. Keep mine leaves yours on the hub; "
            "keep theirs sends theirs back (a new edit)")
