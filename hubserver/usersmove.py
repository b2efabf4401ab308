"""The users of a ledger that moves: a backup restored elsewhere, a layout or schema change.

Since session 10 the default users file is per ledger (``FILE.users.db`` beside an SQLite
``FILE``, ``users/pg-HOST-PORT-DBNAME.users.db`` for PostgreSQL), so the documented moves
(``backup`` + ``restore`` + ``serve NEW``) gave a ledger without users: every token was
refused (401), and the hub's advice (``user add NAME``) issued new tokens to everyone.
``backup`` now records the users file of the ledger backed up (:func:`core.ledger.ops.backup`'s
notes), ``restore`` copies it to the new ledger's users file when that has none
(:func:`carry_users`), and ``serve`` with no users names the users files found that may be
the ledger's old ones (:func:`old_users_files`).

``restore`` refuses a users file that is not one (``--users`` naming a ledger, a backup, the
restored ledger itself): it counted as empty and was overwritten (:func:`target_problem`).
It copies the recorded users file only when it is shown to be the backed-up ledger's
(:func:`belongs`): on another machine another hub's users file may sit at the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import sqlite3
from pathlib import Path

__all__ = ["belongs", "carry_users", "count_users", "old_users_files",
           "target_problem", "users_digest"]


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


def _is_users_file(path: Path) -> bool:
    """Whether the existing file ``path`` is a users file: empty, or SQLite with ``hub_user``."""
    try:
        if path.stat().st_size == 0:
            return True
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                               "'hub_user'").fetchone() is not None
        finally:
            con.close()
    except (OSError, sqlite3.Error):
        return False


def target_problem(target: Path, ledger: Path | None, restore: bool = True) -> str:
    """Why ``restore`` (``restore``), or ``serve`` and ``user``, must not write a ``hub_user``
    table into the users file ``target`` of the SQLite ledger ``ledger`` (``None``:
    PostgreSQL or in memory), ``""`` when they may: the ledger's own file, or an existing file
    that is not a users file (a mistyped ``--users`` naming a ledger or a backup: restore
    counted it as empty and overwrote it; serve and user wrote a table into it, ops review
    12)."""
    if ledger is not None and target.resolve() == ledger.resolve():
        own = "the restored ledger's own file" if restore else "the ledger itself"
        return (f"--users {target} is {own} (--db): give its users file instead, e.g. "
                f"--users {shlex.quote(str(ledger) + '.users.db')}, or leave --users out "
                "(the default is FILE.users.db beside it)"
                + ("" if restore else "; nothing was changed"))
    if target.exists() and not _is_users_file(target):
        fix = ("restore overwrites no such file, and nothing was changed" if restore else
               "or name a new file to make one; nothing was changed")
        return (f"--users {target} exists and is not a users file (no hub_user table: another "
                f"ledger, a backup, or another file?): check the path; {fix}")
    return ""


def users_digest(path: Path) -> str:
    """A digest of the users of the users file ``path`` (names, roles, token hashes: every
    token of each user, the named ones of ``user token add`` too), read only (``""``: none,
    no such file, or not a users file): ``backup`` records it, so ``restore`` can tell the
    users file it was made with from another at the same path.

    A file whose users have only their first token (every file before session 15) digests
    as before; session 15's covered only the first tokens (a token added or revoked since
    the backup went unseen)."""
    if not path.is_file():
        return ""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT name, role, token_sha256 FROM hub_user "
                               "ORDER BY name").fetchall()
            # (no hub_token: a users file from before session 15, first tokens only)
            with contextlib.suppress(sqlite3.OperationalError):
                rows += con.execute("SELECT user, name, token_sha256 FROM hub_token "
                                    "ORDER BY user, name").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return ""
    if not rows:
        return ""
    return hashlib.sha256("\n".join("\t".join(map(str, r)) for r in rows).encode()).hexdigest()


def belongs(src: Path, ledger_id: str, digest: str | None) -> bool:
    """Whether the users file ``src`` is the one of the ledger backed up (id ``ledger_id``):
    it holds the users it held at the backup (``digest``), or it is ``FILE.users.db`` beside
    an SQLite ``FILE`` with that ledger id (the same ledger; users added since are kept)."""
    if digest and users_digest(src) == digest:
        return True
    return bool(ledger_id) and src.name.endswith(".users.db") and _ledger_id(
        src.with_name(src.name.removesuffix(".users.db"))) == ledger_id


def carry_users(recorded: str | None, target: Path, db: str, ledger_id: str = "",
                digest: str | None = None, ledger: Path | None = None) -> str:
    """Copy the users file ``recorded`` (the one of the ledger backed up, id ``ledger_id``,
    users ``digest`` at the backup) to ``target`` (the users file of the restored ledger
    ``db``, the SQLite file ``ledger``) when ``target`` holds no users and ``recorded`` is
    shown to be that ledger's (:func:`belongs`); returns the line to print: what was done,
    or exactly what to do."""
    problem = target_problem(target, ledger)
    if problem:
        return f"users: none carried over: {problem}"
    have = count_users(target)
    if have:
        return (f"users: {target} holds {have} users already (kept; tokens of other users "
                "files are not accepted)")
    src = Path(recorded) if recorded else None
    foreign = src is not None and bool(count_users(src)) and not belongs(src, ledger_id, digest)
    if (src is not None and not foreign and src.resolve() != target.resolve()
            and count_users(src)):
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
    where = (f"the users file at {src}, where the ledger's was when it was backed up, holds "
             "other users and is not beside a ledger with this ledger id: another hub's? "
             "Not copied" if foreign else
             f"the backup found no users file at {src} when it was made (made on another "
             "machine than the hub's, or with another HOME?)"
             if src is not None and not digest and not count_users(src) else
             f"the users file it was backed up with, {src}, is not here or holds no users"
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
