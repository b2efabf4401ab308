"""The users of a ledger that moves: a backup restored elsewhere, a layout or schema change.

Since session 10 the default users file is per ledger (``FILE.users.db`` beside an SQLite
``FILE``, ``users/pg-HOST-PORT-DBNAME.users.db`` for PostgreSQL), so the documented moves
(``backup`` + ``restore`` + ``serve NEW``) gave a ledger without users: every token was
refused (401), and the hub's advice (``user add NAME``) issued new tokens to everyone.
``backup`` now records the users file of the ledger backed up (:func:`core.ledger.ops.backup`'s
notes), ``restore`` copies it to the new ledger's users file when that has none
(:func:`carry_users`), and ``serve`` with no users names the users files found that may be
the ledger's old ones (:func:`old_users_files`).
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

__all__ = ["carry_users", "count_users", "old_users_files"]


def count_users(path: Path) -> int:
    """How many users the users file ``path`` holds, read only (0: none, no such file, or
    not a users file)."""
    if not path.is_file():
        return 0
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT count(*) FROM hub_user").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def carry_users(recorded: str | None, target: Path, db: str) -> str:
    """Copy the users file ``recorded`` (the one of the ledger backed up) to ``target`` (the
    users file of the restored ledger ``db``) when ``target`` holds no users; returns the line
    to print: what was done, or exactly what to do."""
    have = count_users(target)
    if have:
        return (f"users: {target} holds {have} users already (kept; tokens of other users "
                "files are not accepted)")
    src = Path(recorded) if recorded else None
    if src is not None and src.resolve() != target.resolve() and count_users(src):
        target.parent.mkdir(parents=True, exist_ok=True)
        old = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            new = sqlite3.connect(target)
            try:
                old.backup(new)  # a consistent copy, also of a users file in use
            finally:
                new.close()
        finally:
            old.close()
        return (f"users: copied the {count_users(target)} users of {src} (the ledger's users "
                f"file when it was backed up) to {target}: their tokens work with {db}")
    where = (f"the users file it was backed up with, {src}, is not here or holds no users"
             if src is not None else "the backup names no users file: it was made before "
             "session 11, or its ledger had none")
    return (f"users: none carried over ({where}). To keep the users' tokens, copy the old "
            f"ledger's users file before serving: cp OLD_USERS_FILE {shlex.quote(str(target))} "
            "(OLD_USERS_FILE: FILE.users.db beside an old SQLite FILE, or users/pg-HOST-PORT-"
            "DBNAME.users.db in the hub's data directory), or serve with --users "
            "OLD_USERS_FILE; `outpost-hub user add NAME` would issue new tokens instead")


def _ledger_id(path: Path) -> str:
    """The ledger id of the SQLite ledger ``path``, read ``immutable`` ("" when none)."""
    if not path.is_file():
        return ""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            row = con.execute("SELECT ledger_id FROM evt_meta").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return ""
    return str(row[0] or "") if row else ""


def old_users_files(path: Path, ledger_id: str, limit: int = 3) -> str:
    """Words naming the users files beside ``path`` (the empty users file of a ledger being
    served) that hold users, first those of an SQLite ledger with the same ``ledger_id`` (this
    ledger before a move: its backup's source), with the command that keeps their tokens;
    ``""`` when there is none."""
    found: list[tuple[bool, Path, int]] = []
    if path.parent.is_dir():
        for f in sorted(path.parent.glob("*.db")):
            if f == path or not (f.name.endswith(".users.db") or f.name == "hub-users.db"):
                continue
            n = count_users(f)
            if n:
                same = bool(ledger_id) and f.name.endswith(".users.db") and _ledger_id(
                    f.with_name(f.name.removesuffix(".users.db"))) == ledger_id
                found.append((same, f, n))
    if not found:
        return ""
    found.sort(key=lambda x: not x[0])
    best = found[0]
    names = ", ".join(f"{f} ({n} users{', of a ledger with this ledger id' if s else ''})"
                      for s, f, n in found[:limit])
    return (f"; users files found beside it: {names}. If this ledger was moved or restored "
            f"from that ledger, stop the hub and copy its users file to keep their tokens: cp "
            f"{shlex.quote(str(best[1]))} {shlex.quote(str(path))} (or serve with --users "
            f"{shlex.quote(str(best[1]))}); `user add` issues new tokens")
