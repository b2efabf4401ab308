"""The event vocabulary of daql's ``evt`` package, as immutable Python values.

Names follow daql: a :class:`Sig` (topic + key) identifies a record; an :class:`Action` is an
unpublished change (``new``, ``mod`` or ``del``); an :class:`Event` is an action published to a
ledger at a revision; a :class:`Trans` asks to publish actions on a base revision; an
:class:`Audit` describes one published revision. :class:`Watch`, :class:`Note`, :class:`Update`
and :class:`Status` are the subscription and status messages.

Argument dicts (``arg``) are typed as read-only ``Mapping``: never mutate one in place;
:func:`merge` and friends always build new dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from core.errors import ValidationError
from core.frozen import fast_init
from core.revision import ZERO_REV, Rev, format_rev

__all__ = [
    "CMDS",
    "CMD_DEL",
    "CMD_MOD",
    "CMD_NEW",
    "TAKEN",
    "Action",
    "Audit",
    "Cmd",
    "Conflict",
    "Event",
    "Note",
    "Sig",
    "Status",
    "Trans",
    "Update",
    "Watch",
    "apply_action",
    "by_id",
    "by_rev",
    "changed_fields",
    "collect",
    "collect_all",
    "merge",
    "merge_deltas",
]


class Cmd(StrEnum):
    """The three commands that reach storage."""

    NEW = "new"
    MOD = "mod"
    DEL = "del"


CMD_NEW = Cmd.NEW
CMD_MOD = Cmd.MOD
CMD_DEL = Cmd.DEL
CMDS = frozenset(c.value for c in Cmd)

Arg = Mapping[str, Any]


class Sig(NamedTuple):
    """Event signature: a record's topic (``schema.model``) and key.

    A named tuple, not a dataclass: sigs key the satellite's overlay and the ledger's batch
    plans, and a tuple's hash and equality run in C (a frozen dataclass's ``__hash__`` and
    ``__eq__`` are Python functions: about 200,000 calls per 10,000-edit replay)."""

    top: str
    key: str

    def __str__(self) -> str:
        return f"{self.top} {self.key}"


@fast_init
@dataclass(frozen=True, slots=True)
class Action:
    """An unpublished change of one record.

    ``arg`` holds field values: all given fields for ``new``, only the changed ones for
    ``mod``, and ``None`` for ``del``.
    """

    top: str
    key: str
    cmd: Cmd
    arg: Arg | None = None

    @property
    def sig(self) -> Sig:
        return Sig(self.top, self.key)


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """An action published to a ledger: ``id`` counts events, ``rev`` is its transaction's."""

    id: int
    rev: Rev
    top: str
    key: str
    cmd: Cmd
    arg: Arg | None = None

    @property
    def sig(self) -> Sig:
        return Sig(self.top, self.key)

    @property
    def action(self) -> Action:
        return Action(self.top, self.key, self.cmd, self.arg)


@fast_init
@dataclass(frozen=True, slots=True)
class Audit:
    """Detail of one published revision; exactly one per revision."""

    rev: Rev
    created: Rev = ZERO_REV
    arrived: Rev = ZERO_REV
    usr: str = ""
    extra: Arg | None = None
    uid: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class Trans:
    """A request to publish ``acts`` on top of the ledger state at ``base``.

    ``uid`` (ours, not daql's) is made when the user makes the edit; the ledger applies a uid at
    most once. ``usr`` sent by a client is ignored: the hub sets it from the connection.
    """

    acts: tuple[Action, ...]
    base: Rev = ZERO_REV
    id: int = 0
    rev: Rev = ZERO_REV
    created: Rev = ZERO_REV
    arrived: Rev = ZERO_REV
    usr: str = ""
    extra: Arg | None = None
    uid: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class Watch:
    """A monitor's topic and keys; the key ``new`` watches creation in the topic."""

    top: str
    keys: tuple[str, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class Note:
    """A notice to monitor ``mon`` that watched keys changed."""

    mon: int
    watch: tuple[Watch, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class Update:
    """Events (and notes) up to a revision.

    ``audits`` (our extension, sent only to satellites) holds the audit of each revision of
    ``evs``, so a replica can show who made each change.
    """

    rev: Rev
    evs: tuple[Event, ...] = ()
    note: tuple[Note, ...] = ()
    audits: tuple[Audit, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Status:
    """A ledger's revision and schema version (``mig``), with online/offline times, and
    (Outpost extensions) the ledger's identity (``ledger``; ``""``: not served, e.g. by daql)
    and its restore point (``restored``: the final revision of the backup it was last
    restored from, ``restore_id``: that restore's id; ``0``/``""``: never restored, or not
    served), with every restore point of its history (``restores``: ``(rev, restore id)``
    pairs, oldest first, the last one ``(restored, restore_id)``; ``()`` when not served, as
    by a hub of session 7) and how many earlier ones the hub left out of ``restores``
    (``restores_omitted``: it serves the last :data:`core.wire.MAX_RESTORES` only)."""

    rev: Rev
    mig: str = ""
    on: Rev = ZERO_REV
    off: Rev = ZERO_REV
    ledger: str = ""
    restored: Rev = ZERO_REV
    restore_id: str = ""
    restores: tuple[tuple[Rev, str], ...] = ()
    restores_omitted: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class Conflict:
    """One Sig of a transaction that collides with a change made after its base.

    Attributes:
        top, key: the record.
        cmd: the rejected action's command.
        fields: the fields both sides changed (empty for whole-record conflicts).
        theirs: current values of those fields in the ledger (``None`` when deleted).
        rev, usr: revision and user of the change that won (the last one after base).
        reason: short text: ``"field changed"``, ``"deleted"``, ``"modified"``, ``"created"``.
        by: per field of ``fields``, the revision and user of that field's own last change
            after base (``None``: not known, e.g. from a daql hub: :meth:`of` then gives
            ``rev``, ``usr``). Several users may have changed the fields of one record: the
            record's ``rev``/``usr`` name only the last (user review 13 F8).
    """

    top: str
    key: str
    cmd: Cmd
    reason: str
    fields: tuple[str, ...] = ()
    theirs: Arg | None = None
    rev: Rev = ZERO_REV
    usr: str = ""
    by: Mapping[str, tuple[Rev, str]] | None = None

    def of(self, name: str) -> tuple[Rev, str]:
        """``(rev, usr)`` of the last change of field ``name`` after base (the record's
        ``rev``, ``usr`` when the conflict does not say per field)."""
        if self.by:
            got = self.by.get(name)
            if got is not None:
                return got
        return self.rev, self.usr

    def groups(self) -> list[tuple[Rev, str, tuple[str, ...]]]:
        """``fields`` grouped by the change that last set them: ``(rev, usr, fields)`` in
        order of revision (one group when a single change set them all)."""
        out: dict[tuple[Rev, str], list[str]] = {}
        for f in self.fields:
            out.setdefault(self.of(f), []).append(f)
        return sorted(((r, u, tuple(fs)) for (r, u), fs in out.items()), key=lambda g: g[0])

    def describe(self) -> str:
        who = f" by {self.usr}" if self.usr else ""
        names = ", ".join(self.fields)
        what = (f" {'field' if len(self.fields) == 1 else 'fields'} {names}"
                if self.fields else "")
        at = format_rev(self.rev)
        if self.reason == "field changed" and self.fields:
            # "field name changed", "fields name, lat changed" (was "fields name field changed");
            # each field by whoever changed it last ("field lat changed at … by alice, field
            # region changed at … by bob")
            return f"{self.cmd} {self.top} {self.key}:" + ",".join(
                f" {'field' if len(fs) == 1 else 'fields'} {', '.join(fs)} changed at "
                f"{format_rev(r)}" + (f" by {u}" if u else "") for r, u, fs in self.groups())
        if self.reason == "created":
            # two records given one key (e.g. made on two machines before either synced)
            return (f"{self.cmd} {self.top} {self.key}: key {self.key} was taken: a record "
                    f"was created with it at {at}{who}, before yours reached the hub")
        return f"{self.cmd} {self.top} {self.key}:{what} {self.reason} at {at}{who}"


# ---------------------------------------------------------------------------------------------
# ordering, collecting and merging


def by_rev(evs: Iterable[Event]) -> list[Event]:
    """Events sorted by revision, then id (stable for one revision)."""
    return sorted(evs, key=lambda e: (e.rev, e.id))


def by_id(evs: Iterable[Event]) -> list[Event]:
    """Events sorted by id."""
    return sorted(evs, key=lambda e: e.id)


def collect(evs: Iterable[Event], sig: Sig) -> list[Event]:
    """The events of one Sig, in the given order."""
    return [e for e in evs if e.top == sig.top and e.key == sig.key]


def collect_all(evs: Iterable[Event]) -> dict[Sig, list[Event]]:
    """The events grouped by Sig, each group in the given order."""
    res: dict[Sig, list[Event]] = {}
    for e in evs:
        res.setdefault(Sig(e.top, e.key), []).append(e)
    return res


def merge_deltas(a: Arg | None, b: Arg | None) -> dict[str, Any]:
    """Combine two ``mod`` deltas: fields of ``b`` override those of ``a``."""
    res = dict(a or {})
    res.update(b or {})
    return res


def merge(a: Action, b: Action) -> Action:
    """Combine two actions on one Sig (``b`` after ``a``) into one, as daql's ``Merge``.

    new+mod → new with the delta applied; mod+mod → merged delta; del+new → mod; new/mod+del
    → del; new after new, mod after del and del after del are errors.

    Raises:
        ValidationError: the actions are of different Sigs or cannot follow each other.
    """
    if a.top != b.top or a.key != b.key:
        raise ValidationError(f"cannot merge actions of different records: {a.sig} and {b.sig}")
    if a.cmd == Cmd.DEL:
        if b.cmd == Cmd.NEW:
            return Action(a.top, a.key, Cmd.MOD, dict(b.arg or {}))
        if b.cmd == Cmd.MOD:
            raise ValidationError(f"mod after del for {a.sig}: the record is deleted")
        raise ValidationError(f"double del for {a.sig}")
    if b.cmd == Cmd.NEW:
        raise ValidationError(f"new for existing record {a.sig}")
    if b.cmd == Cmd.MOD:
        return Action(a.top, a.key, a.cmd, merge_deltas(a.arg, b.arg))
    return b


TAKEN = ("the record already exists (its key is taken): a new record needs a free key (Ctrl+N "
         "in the app and '-' as the key of `outpost pub TOPIC - new` pick one); to change this "
         "record, edit it instead")
"""Why a ``new`` of a key that exists is refused, and what to do."""


def apply_action(state: Mapping[str, Any] | None, act: Action) -> dict[str, Any] | None:
    """Apply one action to a record's fields; ``None`` means the record does not exist.

    Raises:
        ValidationError: ``new`` on an existing record, ``mod``/``del`` on a missing one.
    """
    if act.cmd == Cmd.NEW:
        if state is not None:
            raise ValidationError(f"new {act.top} {act.key}: {TAKEN}")
        return dict(act.arg or {})
    if state is None:
        raise ValidationError(f"{act.cmd} {act.top} {act.key}: no such record")
    if act.cmd == Cmd.DEL:
        return None
    res = dict(state)
    res.update(act.arg or {})
    return res


def changed_fields(acts: Sequence[Action]) -> tuple[str, ...]:
    """The field names touched by the given actions, in first-seen order."""
    seen: dict[str, None] = {}
    for a in acts:
        for k in a.arg or ():
            seen.setdefault(k, None)
    return tuple(seen)


