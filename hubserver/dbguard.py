"""Checks ``outpost-hub serve`` makes on its database (SQLite; for PostgreSQL the second)
before it opens it as its ledger.

- **One hub per SQLite file.** Two hub processes on one SQLite ledger both accept publishes
  (SQLite serializes them), but neither learns of the other's revisions: subscribers of one
  never get the other's pushes, and a satellite moving between them is told the wrong thing.
  Live sync across several hubs needs PostgreSQL (``docs/scaleout.md``: LISTEN/NOTIFY). So a
  hub holds an OS lock (``flock``) on ``FILE.hub-lock`` beside the database for its whole
  life; the OS releases it when the process ends, however it ends (``kill -9`` included). The
  file stays (removing it would let two hubs lock two different files); it holds the pid of
  the last hub that locked it. Other tools (``verify``, ``backup``, a ``restore`` refusing a
  served target) take no lock: they read, or refuse, as before.
- **Only a hub ledger.** A file that holds tables but no hub ledger (a satellite's replica,
  another program's database) is refused, naming what it is: serving it would add the
  ledger's tables to it, give it a new ledger id and publish into it. An empty or new file,
  and a ledger made by any Outpost version (``evt_meta``), are served. The same for a
  PostgreSQL database (:func:`check_hub_pg`, since session 10: before, one holding another
  program's tables was taken over): its schema must be empty or hold a hub ledger.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from pathlib import Path
from typing import IO

from core.errors import ConfigError
from core.ledger.sql import full_disk

__all__ = ["HubLock", "check_hub_pg", "check_hub_sqlite", "check_port", "lock_path"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the check is skipped there
    fcntl = None  # type: ignore[assignment]


def lock_path(db: Path) -> Path:
    """The lock file of the SQLite database ``db``."""
    return db.with_name(db.name + ".hub-lock")


class HubLock:
    """The lock one hub process holds on its SQLite ledger (:func:`HubLock.acquire`)."""

    def __init__(self, path: Path, f: IO[str] | None):
        self.path = path
        self._f = f

    @classmethod
    def acquire(cls, db: Path) -> HubLock:
        """Lock ``db`` for this process.

        Raises:
            ConfigError: another process holds it (named by its pid), or the lock file
                cannot be made.
        """
        path = lock_path(db)
        if fcntl is None:  # pragma: no cover
            return cls(path, None)
        try:
            f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the hub's life
        except OSError as exc:
            raise ConfigError(f"cannot create the hub's lock file {path}: {exc}: check that "
                              "the directory is writable") from exc
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            f.seek(0)
            pid = f.read().strip()[:20]
            f.close()
            who = f"process {pid}" if pid.isdigit() else "another process"
            raise ConfigError(
                f"{db} is already served by another hub ({who} holds {path}): one SQLite "
                "ledger is served by one hub process (two would not see each other's "
                "publishes: no live sync between them). Stop that hub first, or, for several "
                "hubs on one ledger, use PostgreSQL (--db postgresql://...; see "
                "docs/scaleout.md); nothing was changed") from exc
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError as exc:
            with contextlib.suppress(OSError):
                f.close()
            full = full_disk(db)
            raise ConfigError(
                f"cannot write the hub's lock file {path}: {exc}: "
                + (f"{full}, then start the hub again" if full else
                   "check the disk and that the directory is writable")
                + "; nothing was changed") from exc
        return cls(path, f)

    def release(self) -> None:
        """Unlock (the file stays: see the module doc). Also done by the OS at exit."""
        if self._f is not None:
            self._f.close()
            self._f = None


def check_hub_sqlite(db: Path) -> None:
    """Raise ConfigError when ``db`` exists and holds tables but no hub ledger (read only,
    changes nothing). A missing or empty file, or one that is no database at all (opening it
    as the ledger names that), passes."""
    if not db.is_file() or db.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite_%' ORDER BY name")]
        finally:
            con.close()
    except sqlite3.Error:
        return
    if any(n.startswith("sat_") for n in names):
        raise ConfigError(
            f"refusing to serve {db}: it is an Outpost satellite's replica (a laptop's "
            "satellite.db), not a hub ledger; serving it would publish into it and its "
            "satellite would no longer sync with its own hub. Give the hub's database (a new "
            "file makes a new ledger); nothing was changed")
    if "backup_meta" in names and "evt_meta" not in names:
        raise ConfigError(
            f"refusing to serve {db}: it is an Outpost backup (`outpost-hub backup`), not a "
            f"ledger; restore it first: outpost-hub restore {db} --db NEW_LEDGER, then serve "
            "NEW_LEDGER; nothing was changed")
    if names and "evt_meta" not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ConfigError(
            f"refusing to serve {db}: it holds tables of another program ({shown}) and no "
            "Outpost hub ledger; give the hub's database, or a new file for a new ledger; "
            "nothing was changed")


def check_hub_pg(url: str) -> None:
    """Raise ConfigError when the PostgreSQL database of ``url`` holds tables (in the schema
    the ledger would use: the connection's current schema) but no hub ledger (read only,
    changes nothing). A database that cannot be reached passes: opening it as the ledger
    names that (and the fix: createdb, the server, the password)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    from core.dburl import pg_connect_args, safe_url

    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    try:
        eng = create_engine(u, connect_args=pg_connect_args(u.query)
                            if u.get_backend_name() == "postgresql" else {})
    except Exception:  # a URL SQLAlchemy cannot use: opening it as the ledger says so
        return
    try:
        with eng.connect() as conn:
            insp = inspect(conn)
            names = sorted(insp.get_table_names())
            schema = insp.default_schema_name
            conn.rollback()
    except Exception:
        return
    finally:
        eng.dispose()
    if names and "evt_meta" not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ConfigError(
            f"refusing to serve {safe_url(url)}: its schema {schema!r} holds tables of "
            f"another program ({shown}) and no Outpost hub ledger; serving it would add the "
            "ledger's tables beside them and publish into it. Give the hub's database, or a "
            "new, empty one (CREATE DATABASE) for a new ledger; nothing was changed")


def check_port(host: str, port: int) -> None:
    """Raise OSError (socket.gaierror: the host does not resolve) when ``host:port`` cannot
    be listened on, as the hub would listen (SO_REUSEADDR, every address of ``host``);
    checked before anything is created. Port 0 (a free one) is not checked."""
    if port == 0:
        return
    for family, kind, proto, _, addr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:
            # a family this host cannot make sockets of (IPv6 disabled at boot): asyncio's
            # create_server skips it too, and listens on the others
            continue
        with sock as s:
            if os.name == "posix":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
