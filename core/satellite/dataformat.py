"""The data format version of a satellite's data directory (session 13).

Its replica file (``satellite.db``) records the format of the data in it as SQLite's
``PRAGMA user_version`` (0: not recorded, a directory last written by an Outpost before session
13). Every opening of a directory (:meth:`DataDir.lock <core.satellite.config.DataDir.lock>`
for the app and the commands that write, :meth:`~core.satellite.config.DataDir.check_readable`
for the readers, and :class:`~core.satellite.replica.Replica` itself) refuses a directory whose
format is newer than :data:`FORMAT`, before reading or changing anything in it: this Outpost
would misread it (e.g. session 12's ``sat_acked``, which an older Outpost reads as pending
receipts and would send again).

Versions:

===  ===========================================================================================
0    not recorded (an Outpost before session 13; session 12's acks in ``sat_acked`` or not)
1    session 13: acks in ``sat_acked``/``sat_pending`` (:mod:`core.satellite.queue`)
2    session 16: no ``evt_uid`` rows (the table is kept, empty): the applied transaction uids
     are read from the audits (``evt_audit``), which hold the same; an Outpost of format 1
     would take every edit as not on the hub (``outpost carry``)
===  ===========================================================================================

A change of the stored data that an Outpost knowing :data:`FORMAT` would misread raises
:data:`FORMAT` (and adds a line above); the first writable open of a directory records it
(:class:`~core.satellite.replica.Replica`), after any upgrade of its tables, in the commit of
the upgrade to format 2 (:data:`UIDS_DROPPED`). Outposts before
session 13 check nothing: docs/satellite.md, "Going back to an older Outpost".
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from core.errors import ConfigError

__all__ = ["FORMAT", "UIDS_DROPPED", "check", "stored"]

FORMAT = 2
"""The newest data format this Outpost reads and writes (see the module docstring)."""

UIDS_DROPPED = 2
"""The first format whose replica keeps no ``evt_uid`` rows (a file of an older one keeps
getting them until its upgrade commits: :class:`~core.satellite.replica.Replica`)."""

_HEADER = b"SQLite format 3\x00"


def stored(db: Path) -> int:
    """The data format recorded in the replica file ``db`` (0: none recorded, no file, or not
    an SQLite file), read without changing anything: from the file's header when no ``-wal``
    file holds commits (the header is then the database's), else through SQLite read-only."""
    try:
        with open(db, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ConfigError(f"cannot read {db} ({exc.strerror}): make it readable for this "
                          "user") from exc
    if len(head) < 100 or not head.startswith(_HEADER):
        return 0
    version = int.from_bytes(head[60:64], "big", signed=True)
    wal = Path(f"{db}-wal")
    try:
        if not wal.exists() or wal.stat().st_size == 0:
            return version
        with contextlib.closing(sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro",
                                                uri=True)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except (OSError, sqlite3.Error):
        return version  # the -wal cannot be read here: the header's word


def check(db: Path) -> None:
    """Refuse the replica file ``db`` when its data format is newer than :data:`FORMAT`.

    Raises:
        ConfigError: naming both versions and the fix; nothing was read or changed.
    """
    have = stored(db)
    if have > FORMAT:
        raise ConfigError(
            f"the data directory {db.parent} was written by a newer Outpost (data format "
            f"{have}; this Outpost reads formats up to {FORMAT}) and would be misread here "
            "(edits sent again, conflicts that are not): nothing was read or changed. Open it "
            "with that newer Outpost; to use this one instead, sync every edit with the newer "
            "one first (its `outpost status` says 0 pending), then make a new data directory "
            "with this one (`outpost connect URL --data NEW_DIR`) and sync it")

