"""The publish rules of DESIGN §3, without storage.

A ledger gathers what the rules need — the current state of every record a transaction touches
and, when the transaction's base is behind, the events on those records after the base — and
:func:`plan` decides: it validates, detects conflicts, applies the actions and returns the
revision, the events and the new states to store. Both the in-memory and the SQL ledger call
it, so the rules live in one place and are tested once.

Conflicts (base < ledger rev; for every action, the events on its Sig after base):

=========  ==============================================  ===================
action     collides with, after base                       reason
=========  ==============================================  ===================
new        a ``new`` of the same key                       ``created``
mod        a ``del`` of the record                         ``deleted``
mod        a change of any field the mod also changes      ``field changed``
del        a ``del`` of the record                         ``deleted``
del        a ``mod`` of the record                         ``modified``
=========  ==============================================  ===================

Changes to different fields of one record merge cleanly. A zero base is daql's "no base":
``mod`` and ``del`` then apply to the current state (last writer wins); a ``new`` still reports
a key created by someone else as a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.errors import ConflictError, ValidationError
from core.model import TAKEN, Action, Cmd, Conflict, Event, Sig, Trans
from core.revision import ZERO_REV, Rev, format_rev
from core.schema import MAX_NESTING, Model, Project, nesting

__all__ = [
    "MAX_ACTS",
    "Later",
    "Plan",
    "apply_events",
    "conflict_of",
    "needs_conflict_check",
    "plan",
    "same_acts",
    "sigs_of",
    "uid_clash",
    "uid_clash_prefix",
]

MAX_ACTS = 10_000
"""The most actions one transaction may carry."""
MAX_UID = 200
"""Longest transaction uid (the ``evt_uid`` column is ``VARCHAR(200)``)."""

_NEW, _MOD, _DEL = Cmd.NEW, Cmd.MOD, Cmd.DEL  # module constants: Enum class lookups are slow
_CMDS = (_NEW, _MOD, _DEL)
_sig = tuple.__new__  # what Sig's (a NamedTuple's) __new__ calls, per action planned
_UNSEEN: Any = object()  # "not changed earlier in this transaction" (None means deleted)


@dataclass(frozen=True, slots=True)
class Later:
    """An event on a Sig after a transaction's base, with the user who published it."""

    ev: Event
    usr: str = ""


class Plan(NamedTuple):
    """What a publish will store: its revision, events and each touched record's new state.

    A named tuple, not a frozen dataclass: one is built per planned transaction on the hub's
    writer thread, and a tuple is built in C (a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``)."""

    rev: Rev
    evs: tuple[Event, ...]
    states: dict[Sig, dict[str, Any] | None]


def sigs_of(trans: Trans) -> list[Sig]:
    """The distinct Sigs a transaction touches, in first-seen order."""
    seen: dict[Sig, None] = {}
    for a in trans.acts:
        seen.setdefault(Sig(a.top, a.key), None)
    return list(seen)


def needs_conflict_check(trans: Trans, last_rev: Rev) -> bool:
    """True when ``trans`` has a base behind the ledger, so later changes may collide with it."""
    return trans.base < last_rev


def check_shape(project: Project, trans: Trans, last_rev: Rev) -> None:
    """Validation that needs no stored state: actions present, base not in the future, schema.

    Raises:
        ValidationError: the first problem found, naming record, field, value and fix.
    """
    if not trans.acts:
        raise ValidationError("no actions: a transaction needs at least one action")
    uid = trans.uid
    if uid and (len(uid) > MAX_UID or "\x00" in uid):
        # the uid column is VARCHAR(200) and PostgreSQL text holds no NUL: refused here,
        # the database would fail the whole batch
        raise ValidationError(f"uid {uid[:40]!r}{'...' if len(uid) > 40 else ''}: expected at "
                              f"most {MAX_UID} characters without a NUL (U+0000)")
    extra = trans.extra
    if extra:
        # a satellite's extra ({"resolves": uid}) holds no list or object: not walked
        for v in extra.values():
            if type(v) is dict or type(v) is list:
                if nesting(extra) > MAX_NESTING:
                    # every reply and push carrying its audit would fail to encode (orjson:
                    # 254 levels), closing each reader's connection with 1011
                    raise ValidationError(
                        f"extra nests lists and objects more than {MAX_NESTING} levels deep; "
                        f"the limit is {MAX_NESTING} levels (docs/protocol.md): flatten it")
                break
    if len(trans.acts) > MAX_ACTS:
        raise ValidationError(
            f"{len(trans.acts)} actions in one transaction; the limit is {MAX_ACTS}: split it"
        )
    if trans.base > last_rev:
        raise ValidationError(
            f"base revision {format_rev(trans.base)} is in the future of the ledger "
            f"(at {format_rev(last_rev)}): sync first, then publish on the current revision"
        )
    if len(trans.acts) == 1:
        project.check_action(trans.acts[0])
        return
    models: dict[str, Model] = {}
    for a in trans.acts:
        m = models.get(a.top)
        if m is None:
            m = models[a.top] = project.check_action(a)  # the topic's model, first action
            continue
        # Project.check_action without the topic lookup
        m.check_key(a.key, a.cmd == _NEW)
        if a.cmd not in _CMDS:
            project.check_action(a)  # raises with the message
        m.check_arg(a.cmd, a.key, a.arg)


def conflict_of(act: Action, later: Sequence[Later],
                current: Mapping[str, Any] | None) -> Conflict | None:
    """The conflict of one action with the changes ``later`` made to its record after the
    transaction's base (the table in this module's docstring), or ``None``.

    ``current`` is the record's state now (reported as *theirs*).
    """
    if not later:
        return None
    last = later[-1]
    if act.cmd == Cmd.NEW:
        for lt in later:
            if lt.ev.cmd == Cmd.NEW:
                return Conflict(act.top, act.key, act.cmd, "created", (),
                                dict(current) if current is not None else None,
                                lt.ev.rev, lt.usr)
        return None
    dels = [lt for lt in later if lt.ev.cmd == Cmd.DEL]
    if dels:
        return Conflict(act.top, act.key, act.cmd, "deleted", (),
                        None if current is None else dict(current), dels[-1].ev.rev, dels[-1].usr)
    if act.cmd == Cmd.DEL:
        # per field, the last change after base (each field names its own user)
        by: dict[str, tuple[Rev, str]] = {}
        for lt in later:
            for k in lt.ev.arg or ():
                by[k] = (lt.ev.rev, lt.usr)
        theirs = {k: (current or {}).get(k) for k in by}
        return Conflict(act.top, act.key, act.cmd, "modified", tuple(by), theirs,
                        last.ev.rev, last.usr, _by(by, last))
    mine = set(act.arg or ())
    hit: dict[str, tuple[Rev, str]] = {}
    winner: Later | None = None
    for lt in later:
        touched = [k for k in (lt.ev.arg or ()) if k in mine]
        if touched:
            winner = lt
            for k in touched:
                hit[k] = (lt.ev.rev, lt.usr)
    if winner is None:
        return None
    theirs = {k: (current or {}).get(k) for k in hit}
    return Conflict(act.top, act.key, act.cmd, "field changed", tuple(hit), theirs,
                    winner.ev.rev, winner.usr, _by(hit, winner))


def _by(by: dict[str, tuple[Rev, str]], last: Later) -> dict[str, tuple[Rev, str]] | None:
    """The per-field ``by`` of a conflict, or ``None`` when the last change set every field
    (the record's ``rev``/``usr`` say it all: the wire stays daql's shape)."""
    whole = (last.ev.rev, last.usr)
    return None if all(v == whole for v in by.values()) else by


def plan(
    project: Project,
    trans: Trans,
    *,
    last_rev: Rev,
    last_id: int,
    states: Mapping[Sig, Mapping[str, Any] | None],
    later: Mapping[Sig, Sequence[Later]],
    now: Rev,
    defaults: dict[str, dict[str, Any]] | None = None,
) -> Plan:
    """Decide a publish.

    Args:
        project: the schema to validate against.
        trans: the transaction.
        last_rev, last_id: the ledger's current revision and last event id.
        states: the current fields of every Sig of ``trans`` (``None``: no such record).
        later: for every Sig, the events on it after ``trans.base`` in order (empty when the
            base is current).
        now: the clock reading the revision derives from.
        defaults: a cache of each topic's default values, kept by a caller that plans many
            transactions (the batch planner); filled here.

    Raises:
        ValidationError: nothing to apply.
        ConflictError: with every colliding Sig.
    """
    check_shape(project, trans, last_rev)
    # conflict_of finds nothing without later events: skip the loop when there are none
    if later and needs_conflict_check(trans, last_rev):
        conflicts: dict[Sig, Conflict] = {}
        for a in trans.acts:
            sig = Sig(a.top, a.key)
            if sig in conflicts:
                continue
            if trans.base == ZERO_REV and a.cmd != Cmd.NEW:
                # the zero base is daql's "no base" (its clients leave it out; the daql capture
                # applies a mod without base): mod/del apply to the current state
                continue
            c = conflict_of(a, later.get(sig, ()), states.get(sig))
            if c is not None:
                conflicts[sig] = c
        if conflicts:
            raise ConflictError(list(conflicts.values()))
    new_states: dict[Sig, dict[str, Any] | None] = {}
    rev = now if now > last_rev else last_rev + 1  # next_rev(last_rev, now), inlined
    evs: list[Event] = []
    eid = last_id
    if defaults is None:  # per topic: built once per plan (or batch), not per action
        defaults = {}
    state_of = states.get
    for a in trans.acts:
        sig = _sig(Sig, (a.top, a.key))  # Sig(a.top, a.key) without its Python __new__
        cur = new_states.get(sig, _UNSEEN) if new_states else _UNSEEN
        if cur is _UNSEEN:
            cur = state_of(sig)
        cmd = a.cmd
        arg: dict[str, Any] | None
        if cmd == _NEW:
            if cur is not None:
                raise ValidationError(f"new {a.top} {a.key}: {TAKEN}")
            d = defaults.get(a.top)
            if d is None:
                d = defaults[a.top] = project.model(a.top).defaults()
            arg = {**d, **a.arg} if d and a.arg else dict(a.arg or d)
            new_states[sig] = arg.copy()
        elif cur is None:
            raise ValidationError(f"{cmd} {a.top} {a.key}: no such record")
        elif cmd == _DEL:
            arg = None
            new_states[sig] = None
        else:
            arg = dict(a.arg or {})
            new_states[sig] = {**cur, **arg}
        eid += 1
        evs.append(Event(eid, rev, a.top, a.key, cmd, arg))
    return Plan(rev, tuple(evs), new_states)


def apply_events(state: dict[Sig, dict[str, Any]], evs: Sequence[Event]) -> None:
    """Fold events into a state map in place (replay); tolerant of replicas' own order."""
    for e in evs:
        sig = Sig(e.top, e.key)
        if e.cmd == Cmd.DEL:
            state.pop(sig, None)
        elif e.cmd == Cmd.NEW:
            state[sig] = dict(e.arg or {})
        else:
            cur = state.setdefault(sig, {})
            cur.update(e.arg or {})


def uid_clash(project: Project, trans: Trans, usr: str, evs: Sequence[Event],
              first_usr: str | None) -> ValidationError | None:
    """A transaction whose uid was applied before (as ``evs``, by ``first_usr``; ``None``:
    unknown) is a resend only when it carries the same actions and comes from the same user;
    else the error that rejects it (``None``: a resend, acknowledged with the first
    revision). Compared only on a duplicate, never on the publish path.

    Before session 11 any transaction with a known uid was acknowledged with the first one's
    revision: another edit under that uid (or another user's) was dropped without an error.
    """
    same = same_acts(project, trans.acts, evs)
    if (first_usr is None or first_usr == usr) and same:
        return None
    if same and evs:
        # the very edit, resent with another user's token (a token changed between the send
        # and a lost answer): it WAS applied, as the first user's (session 16: "already
        # applied with other actions … nothing of this one was applied", which was false).
        # The sender holds its uid and actions, and every reader sees who made a revision
        # (evt.sat's audits), so naming the user and revision tells nothing more
        return ValidationError(
            f"{uid_clash_prefix(trans.uid)} with these same actions at revision "
            f"{format_rev(evs[0].rev)}, sent with user {first_usr}'s token: this edit is in "
            f"the hub as {first_usr}'s and was not applied again (nothing was changed)")
    # the same words for another user's uid with other actions: nothing of that user's edit
    return ValidationError(
        f"{uid_clash_prefix(trans.uid)} with other actions; a client must make a new "
        "uid per transaction (nothing of this one was applied)")


def uid_clash_prefix(uid: str) -> str:
    """How the hub's error for a transaction whose uid was applied before starts
    (:func:`uid_clash`): a satellite tells such a reject from others by it."""
    return f"uid {uid} was already applied"


def same_acts(project: Project, acts: Sequence[Action], evs: Sequence[Event]) -> bool:
    """Whether ``evs`` are what :func:`plan` made of ``acts`` (a ``new`` gets its topic's
    defaults)."""
    if len(acts) != len(evs):
        return False
    for a, e in zip(acts, evs, strict=True):
        if a.top != e.top or a.key != e.key or a.cmd != e.cmd:
            return False
        if a.cmd == Cmd.DEL:
            continue
        want: Mapping[str, Any] = a.arg or {}
        if a.cmd == Cmd.NEW:
            try:
                d = project.model(a.top).defaults()
            except ValidationError:
                return False
            want = {**d, **want}
        if want != (e.arg or {}):
            return False
    return True
