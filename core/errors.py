"""The one exception hierarchy of Outpost.

Every error that crosses a boundary (wire, storage, network, configuration) is translated into
one of these, with the original chained as ``__cause__``. Messages name what failed, the bad
value, what was expected and, where there is one, the fix.

::

    OutpostError
    ├── WireError            a frame or body that cannot be parsed (bad JSON, wrong type, too big)
    ├── SchemaError          a schema file that cannot be loaded (names file, line and field)
    ├── ValidationError      an action that does not fit the schema or the ledger state
    │   ├── ReadOnlyError    a reader's edits (the hub's error reply carries a code)
    │   ├── UnstorableError  a transaction the database refuses for its content
    │   ├── OrderError       events to replicate whose ids do not follow their revisions
    │   └── LostRevisionsError  the hub reuses event ids a replica holds: never syncs again
    ├── ConflictError        a transaction whose base is behind changes it collides with
    ├── StorageError         the database failed (disk full, read only, locked); retry later
    ├── HubError             the hub answered with an error, or could not be reached
    └── ConfigError          a bad setting or command line value
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.model import Conflict

__all__ = [
    "CONFLICT_FIX",
    "CONFLICT_FIX_TAKEN",
    "TAKEN_FIX",
    "ConfigError",
    "ConflictError",
    "HubDataError",
    "HubError",
    "LostRevisionsError",
    "OrderError",
    "OutpostError",
    "ReadOnlyError",
    "SchemaError",
    "StorageError",
    "UnstorableError",
    "ValidationError",
    "WireError",
]


class OutpostError(Exception):
    """Base of every error Outpost raises on purpose."""


class WireError(OutpostError):
    """A frame or message body that cannot be decoded.

    Attributes:
        subj: the frame's subject when it was readable, else ``""``.
        tok: the frame's token when it was readable, else ``""``.
        fatal: True when the peer should be disconnected (no subject, internal subject,
            invalid UTF-8, oversized frame), False when an error reply is enough.
    """

    def __init__(self, message: str, *, subj: str = "", tok: str = "", fatal: bool = False):
        super().__init__(message)
        self.subj = subj
        self.tok = tok
        self.fatal = fatal


class SchemaError(OutpostError):
    """A schema file or definition that cannot be used."""


class ValidationError(OutpostError):
    """An action that does not fit the schema or the current ledger state. Nothing was applied."""


class StaleConflictError(ValidationError):
    """A resolution chosen on a conflict as it was shown, when a record of it changed after
    that (someone changed or deleted it again): nothing was resolved; look again (the
    conflicts view and ``outpost conflicts`` show the hub's value as it is now)."""


class ReadOnlyError(ValidationError):
    """A user who may only read sent edits to the hub (a reader's token). Nothing was applied;
    the hub's error reply carries ``"code": "readonly"`` (ours; see docs/protocol.md)."""


class LostRevisionsError(ValidationError):
    """The hub's events reuse event ids a replica holds: the replica holds revisions the hub
    lost (a restore no restore point told of) or numbers again. Nothing was stored, and
    retrying cannot help: sync with this replica stops for good (the message names the fix:
    a new data directory and ``outpost carry``)."""


class DivergedError(ValidationError):
    """An ``evt.sat``'s ``last`` (the client's last event at or before its ``rev``) is not the
    hub's own last event at or before that revision: the hub's history up to the client's
    revision is not the one the client holds (a rollback of the hub's file, then publishes
    with its clock behind the lost revisions). Nothing of the request was published; the
    error reply carries ``"code": "diverged"`` and the hub's ``last`` (ours)."""

    def __init__(self, msg: str, last: tuple[int, int]):
        super().__init__(msg)
        self.last = last


class HubDataError(ValidationError):
    """A hub whose schema could not be compared with the satellite's (a daql hub serves no
    schema version) sent events that break the satellite's schema (an unknown topic or
    field, a value of the wrong type, a key its model refuses, a change of a record that
    does not exist). Nothing was stored and sync stops for good, as for an incompatible
    schema; the message names the event and the fix."""


class OrderError(ValidationError):
    """Events to replicate whose ids do not follow their revisions after the ledger's last
    event (a layout that reads by revision by id needs them to): the ledger holds
    revisions the source lost or reuses ids of. Nothing was applied."""

    def __init__(self, msg: str, first: int, last: int, after: int) -> None:
        super().__init__(msg)
        self.first, self.last, self.after = first, last, after
        """The refused events' first and last ids, the ledger's last event id."""


class UnstorableError(ValidationError):
    """A transaction the database refused to store for what it holds, not for the state of
    the database (PostgreSQL: a NUL character, a value too long or out of range): storing it
    again fails the same way, so it is a verdict on that transaction (a reject), not an
    environment failure to retry. Nothing of it was applied; the cause is chained."""


CONFLICT_FIX = ("To fix: sync, then resolve it in the Conflicts view or with `outpost conflicts` "
                "/ `outpost resolve UID --keep mine|theirs`, or per field `outpost resolve "
                "UID --field FIELD=mine|theirs`")
"""How to fix a conflict; ends every ConflictError message (the hub sends it on the wire as
the ``err`` text: daql clients show it as it is). It names every choice the CLI offers for
it: keep mine, keep theirs, per field (until session 11 it named only ``--keep``)."""

CONFLICT_FIX_TAKEN = CONFLICT_FIX.replace("--keep mine|theirs`", "--keep mine|theirs|both`")
"""CONFLICT_FIX of a conflict of a ``new`` whose key was taken meanwhile: keep both too."""

TAKEN_FIX = ("Two different records may have been given the same key: keep both to add yours "
             "under a new key (Keep both in the Conflicts view, or `outpost resolve UID --keep "
             "both`; refs of the same edit follow it), keep theirs to drop yours, or keep mine "
             "to set your values on their record (the fields only theirs has stay).")
"""What a conflict of a ``new`` whose key was taken meanwhile adds before CONFLICT_FIX."""


class ConflictError(OutpostError):
    """A transaction rejected because changes made after its base collide with it.

    Attributes:
        conflicts: one entry per colliding Sig, naming fields, their current values and the
            revision and user of the change that won.
    """

    def __init__(self, conflicts: Sequence[Conflict]):
        self.conflicts = tuple(conflicts)
        parts = [c.describe() for c in self.conflicts]
        taken = any(c.reason == "created" for c in self.conflicts)
        self.what = "conflict: " + "; ".join(parts)
        """What collided, without the fix (which names Outpost's commands: a daql client's
        error reply words its own, hubserver.satreply.refused_reply)."""
        super().__init__(self.what + ". "
                         + (TAKEN_FIX + " " + CONFLICT_FIX_TAKEN if taken else CONFLICT_FIX))


class StorageError(OutpostError):
    """The database could not do what was asked (disk full, read only, locked, gone).

    Nothing was applied. These are environment problems: show them and retry later.

    Attributes:
        kind: what failed, told from the driver error's type and code (never from words of
            its text, which holds the database's URL or path): ``"full"``, ``"readonly"``,
            ``"locked"``, ``"unreachable"`` (a lost or refused database connection),
            ``"gone"`` (a satellite's data directory deleted or moved away while open) or
            ``""`` (another failure).
    """

    def __init__(self, message: str = "", kind: str = ""):
        super().__init__(message)
        self.kind = kind


class HubError(OutpostError):
    """The hub replied with an error or could not be reached.

    Attributes:
        detail: extra fields of the error reply (for example ``conflicts``).
    """

    def __init__(self, message: str, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.detail = detail or {}


class ConfigError(OutpostError):
    """A bad setting, file or command line value."""
