"""Checks before ``backup`` writes its file and ``restore`` opens its target.

A backup is written to ``DEST.tmp`` and renamed over ``DEST``. When ``DEST`` was the ledger's
own SQLite file (the same path, a symlink or hard link to it, or one of its ``-wal``,
``-shm``, ``-journal`` files), the rename replaced the live ledger under a running hub: the
backup reported success, then the database was malformed and acknowledged edits were gone.
So a backup refuses any destination (or its ``.tmp``) that is one of the ledger's files, and
any existing file that is not an Outpost backup (an empty file excepted): it only ever
replaces an earlier backup. A restore refuses a target that is its own backup file (or one of
the backup's companions) and a target that is an Outpost backup.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from core.dburl import pg_connect_args, safe_url
from core.errors import StorageError

__all__ = ["RESTORING", "check_backup_dest", "check_not_restoring", "check_restore_target",
           "check_restore_target_unused", "is_backup_file", "restore_leftovers", "sqlite_file"]

RESTORING = "restoring-"
"""The prefix of ``evt_meta.ledger_id`` while a restore is in progress (``restoring-<id>``):
set before anything is copied, replaced by the backup's id only once the restore is verified.
A target left so by a restore that failed (a full disk, a crash) holds no ledger to serve:
``serve``, ``verify`` and ``backup`` refuse it (:func:`check_not_restoring`), and a satellite
would see another ledger's id."""

_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (``None``: another database, or in memory)."""
    try:
        u = make_url(url)
    except Exception:  # a plain path
        return Path(url).expanduser()
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    if u.query.get("uri") and u.database.startswith("file:"):  # a read-only reader's URI
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(u.database).path))
    return Path(u.database).expanduser()


def _same(a: Path, b: Path) -> bool:
    """``a`` and ``b`` are one file: the same real path, or (both existing) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _hits(path: Path, db: Path) -> str | None:
    """The name of ``db``'s file that ``path`` is (the database, its -wal/-shm/-journal)."""
    for suffix in _COMPANIONS:
        other = Path(str(db) + suffix) if suffix else db
        if suffix and not other.exists():
            # a name SQLite will take for the database's journal once it exists
            if os.path.realpath(path) == os.path.realpath(db) + suffix:
                return str(other)
            continue
        if _same(path, other):
            return str(other)
    return None


def is_backup_file(path: Path) -> bool:
    """True when ``path`` is an Outpost ledger backup (its ``backup_meta`` names the format)."""
    from core.ledger.ops import BACKUP_FORMAT

    try:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return False
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = src.execute("SELECT value FROM backup_meta WHERE name = 'format'").fetchone()
        finally:
            src.close()
    except (OSError, sqlite3.Error):
        return False
    return row is not None and row[0] == BACKUP_FORMAT


def check_backup_dest(dest: Path, ledger_url: str) -> None:
    """Raise StorageError when writing a backup to ``dest`` would replace anything but an
    earlier backup: the ledger's own files (through any name), or another file."""
    db = sqlite_file(ledger_url)
    tmp = dest.with_name(dest.name + ".tmp")
    if db is not None:
        for p in (dest, tmp):
            hit = _hits(p, db)
            if hit is not None:
                raise StorageError(
                    f"refusing to back up to {dest}: {p} is the ledger's own file {hit} "
                    "(writing the backup there destroys the ledger); give a backup file "
                    "outside the database, e.g. a new name in another directory; nothing was "
                    "written")
    if dest.is_dir():
        raise StorageError(f"refusing to back up to {dest}: it is a directory; give a file "
                           "name; nothing was written")
    if dest.exists() and dest.stat().st_size > 0 and not is_backup_file(dest):
        raise StorageError(
            f"refusing to back up to {dest}: the file exists and is not an Outpost backup "
            "(a backup only replaces an earlier backup); give a new file name, or move that "
            "file away first; nothing was written")


def check_restore_target(backup: Path, url: str) -> None:
    """Raise StorageError when the restore target ``url`` is the backup file itself (or its
    companions), or an Outpost backup file (restoring into it would change it)."""
    db = sqlite_file(url)
    if db is None:
        return
    hit = _hits(db, backup)
    if hit is not None:
        raise StorageError(
            f"refusing to restore {backup} into {db}: the target is the backup's own file "
            f"{hit}; restore into a new database file (e.g. --db restored.db); nothing was "
            "restored")
    if db.exists() and is_backup_file(db):
        raise StorageError(
            f"refusing to restore into {db}: it is an Outpost backup, not a ledger; restore "
            "into a new database file; nothing was restored")


def check_not_restoring(ledger: object) -> None:
    """Raise StorageError when ``ledger`` (an open SqlLedger) is the target of a restore that
    did not finish (:data:`RESTORING`), naming the fix."""
    lid = str(getattr(ledger, "ledger_id", "") or "")
    if not lid.startswith(RESTORING):
        return
    url = ledger.engine.url  # type: ignore[attr-defined]
    db = sqlite_file(url.render_as_string(hide_password=False))
    where = str(db) if db is not None else safe_url(url)
    fix = (f"delete {db} (and its -wal/-shm files)" if db is not None
           else "drop that database (DROP DATABASE) and create it empty (CREATE DATABASE)")
    again = f"outpost-hub restore BACKUP --db {where}"
    copied = bool(ledger.rev() or ledger.last_id())  # type: ignore[attr-defined]
    steps = (f"The restore copied the backup and then failed (its verify, or a crash before "
             f"the end): a restore into it is refused (not empty). {_steps(fix, again)}"
             if copied else f"Run the restore again ({again}), or {fix}")
    raise StorageError(
        f"{where} is the target of a restore that did not finish (restore in progress, or "
        "failed: a full disk, a crash, a verify that found differences): it holds no "
        f"complete ledger and is not served, verified or backed up. {steps}")


def _steps(fix: str, again: str) -> str:
    """What frees a target a restore copied into and then failed on, and what follows."""
    return (f"To restore: {fix}, then run the restore again ({again}); if its verify fails "
            "again, the backup does not hold a sound ledger: restore an earlier backup, and "
            "keep this one to report it")


def restore_leftovers(url: str, copied: bool = False) -> str:
    """What a failed restore into ``url`` left, and how to free it: the SQLite files that
    exist (the database and its -wal/-shm/-journal), or the PostgreSQL database. ``copied``:
    the restore had committed the backup's events (its verify failed after): a restore into
    it again is refused (not empty), so the steps free it first (before session 10 they
    said "run the restore again", which was refused)."""
    db = sqlite_file(url)
    again = f"outpost-hub restore BACKUP --db {safe_url(url) if db is None else db}"
    if db is None:
        if copied:
            return (f"the database {safe_url(url)} is left marked 'restore in progress' (no "
                    "hub serves it), holding the copied events. " + _steps(
                        "drop it (DROP DATABASE) and create it empty (CREATE DATABASE)", again))
        return (f"the database {safe_url(url)} is left marked 'restore in progress' (no hub "
                "serves it): run the restore again, or drop it (DROP DATABASE)")
    files = [str(db) + s for s in _COMPANIONS if Path(str(db) + s).exists()]
    if not files:
        return ""
    them = "them" if len(files) > 1 else "it"
    if copied:
        return (f"left behind, marked 'restore in progress' (no hub serves it), holding the "
                f"copied events: {', '.join(files)}. " + _steps(f"delete {them}", again))
    return (f"left behind, marked 'restore in progress' (no hub serves it): "
            f"{', '.join(files)}; delete {them} to free the space, or run the restore again")


def check_restore_target_unused(url: str, backup_lid: str) -> bool:
    """Raise StorageError when the restore target already holds a ledger that a hub made
    (``outpost-hub serve`` on it, even with no publish yet): satellites may have synced with
    it, and a restore would change its identity (ledger id) under them. A ledger holding the
    backup's own id (left by an earlier restore of it that failed) is no such ledger: True
    is returned (the restore's emptiness check follows), as for a target an unfinished restore
    left (:data:`RESTORING`: never served). False: no ledger there yet."""
    db = sqlite_file(url)
    lid: str | None
    if db is not None:
        if not db.exists() or db.stat().st_size == 0:
            return False
        lid = _sqlite_lid(db)
    else:
        lid = _sql_lid(url)
    if lid is None:
        return False
    if (backup_lid and lid == backup_lid) or lid.startswith(RESTORING):
        return True
    raise StorageError(
        f"refusing to restore into {safe_url(url) if db is None else db}: it already holds a "
        f"ledger (id {lid or 'none'}) that a hub made and may have served; satellites that "
        "synced with it would see another ledger. Restore into a new, empty database (a new "
        "file, or CREATE DATABASE), then point the hubs at it; nothing was restored")


def _sqlite_lid(db: Path) -> str | None:
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                         "name = 'evt_meta'").fetchone() is None:
                return None
            cols = [r[1] for r in c.execute("PRAGMA table_info(evt_meta)")]
            row = c.execute("SELECT * FROM evt_meta").fetchone()
        finally:
            c.close()
    except sqlite3.Error:
        return None  # not a database: opening it as the ledger names the problem
    if row is None:
        return None
    return str(dict(zip(cols, row, strict=False)).get("ledger_id") or "")


def _sql_lid(url: str) -> str | None:
    from sqlalchemy import create_engine, inspect, text

    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    eng = create_engine(u, connect_args=pg_connect_args(u.query)
                        if u.get_backend_name() == "postgresql" else {})
    try:
        with eng.connect() as conn:
            if not inspect(conn).has_table("evt_meta"):
                return None
            row = conn.execute(text("SELECT * FROM evt_meta")).mappings().first()
    except Exception:  # the restore's own open names a database problem
        return None
    finally:
        eng.dispose()
    if row is None:
        return None
    return str(row.get("ledger_id") or "")
