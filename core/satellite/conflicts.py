"""A rejected transaction as base / mine / theirs per conflicting field.

One function, :func:`conflict_fields`, used by the desktop's conflicts view
(``desktop.models.conflicts``) and by ``outpost conflicts``: both show the same values, so
what "keep mine" sends can be seen before it is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model import Cmd
from core.revision import ZERO_REV, Rev
from core.satellite.api import Receipt, SatelliteAPI

__all__ = ["WHOLE", "FieldConflict", "conflict_fields"]

WHOLE = ""
"""The field name of a whole-record conflict (a record deleted, created or modified by the
other side) or of a transaction rejected for another reason (its error)."""


@dataclass(slots=True)
class FieldConflict:
    """One conflicting field (or a whole record: ``field`` is :data:`WHOLE`) of a rejected
    transaction (the desktop's conflicts view adds its label and choice to it:
    ``desktop.models.conflicts.ConflictRow``).

    ``base``: the value when the edit was made (the replica at the transaction's base);
    ``mine``: the edit's value; ``theirs``: the value now in the ledger. For a whole record
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


def conflict_fields(sat: SatelliteAPI, rc: Receipt) -> list[FieldConflict]:
    """The conflicting fields of the rejected transaction ``rc``, in its conflicts' order."""
    out: list[FieldConflict] = []
    acts = {(a.top, a.key): a for a in rc.acts}
    for c in rc.conflicts:
        act = acts.get((c.top, c.key))
        base = sat.state_at(c.top, c.key, rc.base) if rc.base != ZERO_REV else None
        if c.fields and act is not None:
            for name in c.fields:
                out.append(FieldConflict(
                    rc.uid, c.top, c.key, name, (base or {}).get(name),
                    (act.arg or {}).get(name),
                    None if c.theirs is None else c.theirs.get(name),
                    c.usr, c.rev, c.reason, c.cmd))
        else:
            mine = {"new": "create", "mod": "modify", "del": "delete"}.get(str(c.cmd))
            out.append(FieldConflict(rc.uid, c.top, c.key, WHOLE,
                                     "exists" if base is not None else "absent", mine,
                                     c.reason, c.usr, c.rev, c.reason, c.cmd))
    if not rc.conflicts:  # rejected for another reason (validation): one row with the error
        a = rc.acts[0] if rc.acts else None
        out.append(FieldConflict(rc.uid, a.top if a else "", a.key if a else "", WHOLE, None,
                                 str(a.cmd) if a else "", rc.err or "rejected", "", rc.rev,
                                 rc.err or "rejected", a.cmd if a else Cmd.MOD))
    return out
