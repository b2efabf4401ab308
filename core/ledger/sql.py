"""The SQL ledger: SQLite (default, WAL) or PostgreSQL (psycopg 3) through SQLAlchemy Core.

Every publish is one database transaction: take the write lock (``BEGIN IMMEDIATE`` on SQLite,
``pg_advisory_xact_lock`` on PostgreSQL) → read the revision and last event id, the uids, the
touched records and, when a base is behind, the events on them after the base →
:func:`core.ledger.rules.plan` decides (validation, conflicts, revision) → append events,
audit and uid, upsert/delete state, move the revision → commit. Any failure rolls the
transaction back: nothing partial is ever visible and nothing is reverted by hand. The uid
table's primary key (UNIQUE) backs exactly-once even against a second process.
``publish_many`` (the hub's group commit) does the same for several transactions in one
database transaction, deciding each against the ones before it in memory
(:mod:`core.ledger.batch`, :mod:`core.ledger.sql_batch`): one statement per table, whatever
the batch size, and no SAVEPOINT per transaction.

Durability: SQLite runs in WAL mode with ``synchronous=FULL`` by default, because the hub
acknowledges a transaction only once its commit is durable; with ``NORMAL`` a WAL database
stays consistent but can lose the last commits on power loss — commits the hub would already
have acknowledged. ``docs/ledger.md`` has the details.

Checkpoints: SQLite's own auto-checkpoint is kept (every 1,000 WAL pages, run by the commit
that crosses the mark: about one one-action publish in 160 waits a few ms for it). Measured
alternatives, both rejected: PASSIVE checkpoints from a background thread never let the WAL
restart while commits keep coming (the writer restarts it only when the checkpoint has caught
up with the last frame), so it grew without bound (57 MB after 2,000 publishes) and every
commit then extended the file, whose fdatasync costs about twice an overwrite's here; a
smaller ``wal_autocheckpoint`` (100–200 pages) was 11–15% faster for the first 300 commits
of a new file but 13% slower over 2,000 (more checkpoints, each with an fsync of the database
file). Durability is the same either way: every commit fsyncs the WAL.

A publish writes what raw sqlite3 writes for the same rows (6.15 WAL pages for a one-action
publish, 25 KB: the event row and its two indexes, the audit row, the uid, the state row);
it no longer updates ``evt_meta`` — the revision and last event id are read back from the last
audit and event rows (see :attr:`HotSql.read_meta <core.ledger.tables.HotSql>`).

Hot path: Core ``executemany`` and ``INSERT ... ON CONFLICT DO UPDATE`` upserts; the ORM is
not used (``session.merge`` was measured 30–70x slower than raw sqlite3).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from core.dburl import pg_connect_args, safe_url
from core.errors import (
    ConfigError,
    OrderError,
    OutpostError,
    SchemaError,
    StorageError,
    UnstorableError,
    ValidationError,
)
from core.ledger.dberrors import sqlite_code, storage_kind
from core.ledger.protocols import (
    HIST_ENTRY_BYTES,
    HistoryEntry,
    PubResult,
    history_cut,
    some_topics,
)
from core.ledger.sql_batch import chunks, event_of, event_rows, key_entries, publish_batch
from core.ledger.sql_replicate import insert_rows, plan_states, write_states
from core.ledger.tables import (
    LEDGER_FORMAT,
    REC_N,
    REV_INDEX,
    SIG_INDEX,
    HotSql,
    LedgerTables,
    build_tables,
    by_record_ddl,
    dumps,
    hot_sql,
    loads,
    rec_table_name,
    rev_bound,
)
from core.model import Audit, Cmd, Event, Sig, Trans
from core.revision import ZERO_REV, Rev, format_rev, now_rev
from core.schema import MAX_NESTING, Project, nesting, parse_project

_psycopg: Any = None
"""The psycopg module once a PostgreSQL ledger needed it (:func:`_load_psycopg`)."""

_DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
"""Driver errors that mean the database failed (mapped to StorageError)."""
_GUARDED: tuple[type[Exception], ...] = (DBAPIError, *_DB_ERRORS)
_PUB_ERRORS: tuple[type[Exception], ...] = (*_GUARDED, SQLAlchemyError)
"""What a publish maps to StorageError (as :meth:`SqlLedger._guard` does)."""
_DUP_ERRORS: tuple[type[Exception], ...] = (IntegrityError, sqlite3.IntegrityError)


def _load_psycopg() -> bool:
    """Import psycopg for a PostgreSQL ledger and add its errors to the ones above (False:
    it is not installed; PostgreSQL support is optional). Imported only then: a satellite or
    hub on SQLite never pays for it (60-90 ms of every `outpost` command's start), and no
    psycopg error can arise without a PostgreSQL connection."""
    global _psycopg, _DB_ERRORS, _GUARDED, _PUB_ERRORS, _DUP_ERRORS
    if _psycopg is None:
        try:
            import psycopg
        except ImportError:  # exercised in a subprocess by the ledger tests
            return False
        _psycopg = psycopg
        _DB_ERRORS = (sqlite3.Error, psycopg.Error)
        _GUARDED = (DBAPIError, *_DB_ERRORS)
        _PUB_ERRORS = (*_GUARDED, SQLAlchemyError)
        _DUP_ERRORS = (IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
    return True


if "psycopg" in sys.modules:  # imported already (another module's PostgreSQL use)
    _load_psycopg()

__all__ = ["PG_CHANNEL", "PG_LOCK_KEY", "SqlLedger", "new_ledger_id", "open_ledger", "replay",
           "restore_points", "stored_project"]

PG_LOCK_KEY = 0x6F7574706F7374
"""The advisory lock every publish on PostgreSQL takes (``pg_advisory_xact_lock``)."""

PG_OPEN_LOCK_KEY = PG_LOCK_KEY + 1
"""The advisory lock held while a ledger opens on PostgreSQL (checks and makes the tables):
hubs started together on an empty database would otherwise race in ``CREATE TABLE``."""

PG_CHANNEL = "outpost_rev"
"""The LISTEN/NOTIFY channel a publish on PostgreSQL notifies, inside its transaction.

The payload is the new revision as decimal text. It is only a wake-up call: listeners
(``hubserver.cluster``) read the events from the ledger after the last revision they
delivered, they never trust the payload (see ``docs/scaleout.md``)."""

_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")
_BUSY_MS = 10_000


def new_ledger_id() -> str:
    """A new ledger identity: 32 random hex digits (uuid4), made once per ledger."""
    return uuid.uuid4().hex


def restore_points(text: Any, restored: Rev = ZERO_REV,
                   restore_id: str = "") -> tuple[tuple[Rev, str], ...]:
    """The restore points stored as JSON ``text`` (``evt_meta.restores``, a backup's
    ``restores``: ``[[rev, id], ...]``, oldest first); a ledger restored by session 7 stored
    only ``restored``/``restore_id``, which is then the one point (and a last point the text
    lacks, the latest).

    Raises:
        ValueError: ``text`` is not such a list.
    """
    points: list[tuple[Rev, str]] = []
    if text:
        items = loads(text)
        if not isinstance(items, list):
            raise ValueError(f"restore points: expected a list, got {type(items).__name__}")
        for item in items:
            if (not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int
                    or not isinstance(item[1], str) or not item[1]):
                raise ValueError(f"restore points: expected [revision, id], got {item!r}")
            points.append((item[0], item[1]))
    if restore_id and (not points or points[-1][1] != restore_id):
        points.append((int(restored), restore_id))
    return tuple(points)


def _normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_ledger(url_or_path: str | Path, project: Project, *,
                synchronous: str = "FULL", create: bool = True) -> SqlLedger:
    """Open (or create) a SQL ledger from a URL or, for SQLite, a bare file path
    (``create=False``: only an existing one; see :class:`SqlLedger`)."""
    s = str(url_or_path)
    if "://" not in s:
        s = "sqlite:///" + str(Path(s).expanduser().resolve())
    return SqlLedger(s, project, synchronous=synchronous, create=create)


def stored_project(url_or_path: str | Path, *, required: bool = False) -> Project | None:
    """The schema a ledger was made with (the definition its ``evt_meta`` holds), read
    without opening the ledger and without creating or changing anything (on a full disk
    as ``verify`` reads it: :func:`_check_sqlite_ledger`); None when the database holds no
    ledger (or, for SQLite, there is no such file), or with ``required`` ConfigError naming
    that and the fix; None too for a PostgreSQL database that cannot be connected to (opening
    the ledger then names why, with the fix). ``outpost-hub`` uses it when no ``--schema``
    is given: an existing ledger is served, verified and backed up with its own schema (a
    team hub's commands without ``--schema`` were refused against the demo schema; firstday
    review 14).

    Raises:
        ConfigError: ``required`` and there is no ledger.
        StorageError: the database cannot be read.
        SchemaError: the stored definition is not a valid schema.
    """
    s = str(url_or_path)
    if "://" not in s:
        s = "sqlite:///" + str(Path(s).expanduser().resolve())
    where = safe_url(str(url_or_path))
    u = make_url(s)
    definition: str | None = None
    try:
        if u.get_backend_name() == "sqlite":
            if not required and not Path(u.database or "").is_file():
                return None
            try:
                ru = make_url(_check_sqlite_ledger(s))  # the missing file / no-ledger texts
            except ConfigError:
                if required:
                    raise
                return None
            read = (f"{ru.database}?" + "&".join(f"{k}={v}" for k, v in ru.query.items()
                                                  if k != "uri")
                    if ru.query.get("uri") else
                    f"{Path(u.database or '').resolve().as_uri()}?mode=ro")
            con = sqlite3.connect(read, uri=True)
            try:
                row = con.execute("SELECT definition FROM evt_meta").fetchone()
            finally:
                con.close()
            definition = row[0] if row else None
        else:
            engine = SqlLedger._make_engine(s, "FULL")
            try:
                try:
                    conn = engine.connect()
                except SQLAlchemyError:
                    # not reachable, no such database, …: opening the ledger names it with
                    # the fix (createdb, the server); nothing to read the schema from here
                    return None
                with conn:
                    if inspect(conn).has_table("evt_meta"):
                        definition = conn.execute(text(
                            "SELECT definition FROM evt_meta")).scalar()
            finally:
                engine.dispose()
    except (sqlite3.Error, SQLAlchemyError) as exc:
        raise StorageError(f"cannot read the schema stored in {where}: {exc}") from exc
    if definition is None:
        if required:
            raise ConfigError(f"{where} holds no Outpost ledger (no evt_meta table): "
                              f"{NO_LEDGER_FIX}")
        return None
    try:
        data = loads(definition)
    except ValueError as exc:
        raise SchemaError(f"the schema stored in {where} cannot be read ({exc}): give the "
                          "schema file with --schema FILE") from exc
    return parse_project(data, f"the schema stored in {where}")


_PING_IDLE = 1.0
"""Seconds idle after which the kept PostgreSQL publisher connection is checked before a
publish (:meth:`SqlLedger._ping_publisher`): one round trip, never while publishes follow
each other closely."""

LAYOUTS = ("by-record", "by-id", "rev-index")
"""The layouts a new SQLite ledger can be made in (:class:`SqlLedger`'s ``layout``)."""

NO_LEDGER_FIX = ("check --db: give the database the hub serves (the --db of `outpost-hub "
                 "serve`); nothing was created")
"""The fix named when a database holds no ledger (:class:`SqlLedger` with ``create=False``)."""


def replay(evs: Iterable[Event],
           into: dict[Sig, tuple[dict[str, Any], Rev]] | None = None,
           ) -> dict[Sig, tuple[dict[str, Any], Rev]]:
    """Fold events into ``{sig: (fields, rev of last change)}`` (tolerant, like replicas)."""
    state = {} if into is None else into
    for e in evs:
        sig = Sig(e.top, e.key)
        if e.cmd == Cmd.DEL:
            state.pop(sig, None)
        elif e.cmd == Cmd.NEW:
            state[sig] = (dict(e.arg or {}), e.rev)
        else:
            cur = state.get(sig)
            fields = dict(cur[0]) if cur else {}
            fields.update(e.arg or {})
            state[sig] = (fields, e.rev)
    return state


def _run(conn: Connection, sql: str, params: Any = ()) -> Any:
    """Run driver SQL on the DBAPI connection inside ``conn``'s transaction; the cursor.

    The publish path skips SQLAlchemy's per-statement machinery (measured: it cost more than
    SQLite's work for a one-action publish). A list of parameter tuples runs ``executemany``.
    """
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    if isinstance(params, list):
        cur.executemany(sql, params)
    else:
        cur.execute(sql, params)
    return cur


_CMDS = {c.value: c for c in Cmd}
"""A stored command's text → its Cmd."""

_ROW_BYTES = 100  # an event's columns but its argument, in :func:`_fetch_within`'s count
PART_BYTES = 8 << 20
_FETCH_ROWS = 32
PART_ROWS = 64


def fetch_parts(res: Any, max_bytes: int = 0, max_rows: int = PART_ROWS
                ) -> Iterator[list[Any]]:
    """The rows of ``res`` (``fetchmany``: a result streamed with ``stream_results``, or a
    DB-API cursor) a part at a time: at most ``max_rows`` rows and about ``max_bytes`` of
    text (0: :data:`PART_BYTES`) by the largest row seen so far (one row at least),
    starting at one row and doubling: a first row of small values tells nothing of the next
    ones (a large value after many small ones: ``max_rows`` of them at most).
    Backup, restore and verify read a ledger so: 5,000 rows at a time held 5,000 values, of
    any size (operator review 14: 800 KB values, ``backup`` peaked at 1.29 GB, ``verify``
    at 2.47 GB)."""
    n, big = 1, 1
    max_bytes = max_bytes or PART_BYTES
    while True:
        part = res.fetchmany(n)
        if not part:
            return
        for r in part:
            size = sum(len(v) for v in r if isinstance(v, str | bytes))
            if size > big:
                big = size
        yield part
        n = max(1, min(max_rows, max_bytes // big, 2 * len(part)))


def _fetch_limited(res: Any, limit: int, max_bytes: int) -> tuple[list[Any], bool]:
    """The rows of ``res`` (a query with ``LIMIT limit``) and whether the limit cut it (the
    caller completes the last revision): :func:`_fetch_within` when ``max_bytes`` bounds the
    read, else all of them."""
    if max_bytes > 0:
        return _fetch_within(res, limit, max_bytes)
    rows = list(res.all())
    return rows, len(rows) == limit


def _fetch_within(res: Any, limit: int, max_bytes: int) -> tuple[list[Any], bool]:
    """The rows of ``res`` (a query with ``LIMIT limit``, ``arg`` its last column) up to
    ``limit`` of them or until their arguments hold ``max_bytes`` characters (counting
    :data:`_ROW_BYTES` more per row), and whether it stopped before the result's end (the
    caller completes the last revision). Fetched a few at a time: one row first, then as
    many as the bytes left hold at the size of the largest row so far, doubling at most and
    :data:`_FETCH_ROWS` at most (a small first row tells nothing of the next ones: sized by
    it, a read of 800 KB values fetched every one), so a read of large values fetches one
    row past the budget, and one passing from small values to large ones
    :data:`_FETCH_ROWS` at most (PostgreSQL: with ``stream_results``, or the driver would
    fetch them all)."""
    rows: list[Any] = []
    got = 0
    big = 1
    n = 1
    try:
        while True:
            part = res.fetchmany(n)
            rows.extend(part)
            for r in part:
                size = len(r[-1] or "") + _ROW_BYTES
                got += size
                if size > big:
                    big = size
            if len(part) < n:
                return rows, False
            if len(rows) >= limit or got >= max_bytes:
                return rows, True
            n = max(1, min(limit - len(rows), 2 * len(rows), _FETCH_ROWS,
                           -(-(max_bytes - got) // big)))
    finally:
        res.close()


def _where(url: Any) -> str:
    """The database as errors name it: the file of an SQLite URL (also of a read-only
    ``file:`` URI, see core.satellite.replica), else the URL without its password."""
    if url.get_backend_name() == "sqlite" and url.database:
        if not url.query.get("uri"):
            return str(url.database)
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(url.database).path)
    return safe_url(url)  # also a password in ?password=


def _nul_in_ids(t: Trans) -> str:
    """Why ``t``'s uid or a key of it cannot even be looked up on PostgreSQL (a NUL), or ""."""
    if "\x00" in t.uid:
        return "the transaction's uid holds a NUL character (U+0000): PostgreSQL cannot store it"
    for a in t.acts:
        if type(a.key) is str and "\x00" in a.key:
            return (f"{a.cmd} {a.top}: key {a.key[:40]!r} holds a NUL character (U+0000): "
                    "remove it; a PostgreSQL ledger cannot store it")
    return ""


def _is_data_error(exc: StorageError, cause: BaseException | None = None) -> bool:
    """True when ``exc`` (or the driver error ``cause``) was caused by the values stored, not
    by the database's state: PostgreSQL's data exceptions (SQLSTATE class 22: a NUL in text,
    a value too long or out of range), SQLite's "string or blob too big". Storing the same
    again fails the same way."""
    cause = cause or exc.__cause__
    cause = getattr(cause, "orig", None) or cause
    return isinstance(cause, sqlite3.DataError) or (
        _psycopg is not None and isinstance(cause, _psycopg.DataError))


def _file_size_limit() -> int:
    """The process's file-size limit in bytes (``ulimit -f``: writing past it fails with
    EFBIG, which SQLite reports as a disk I/O error); 0 when there is none."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return 0 if soft == resource.RLIM_INFINITY else int(soft)


_FULL_ROOM = 1024 * 1024
"""Free bytes under which an SQLite ledger's disk counts as full: SQLite reports a disk that
cannot hold a reader's ``-shm`` index (32 KiB) or a page of the ``-wal`` as a "disk I/O
error", which named no cause (the operator read "not an Outpost ledger" or "damaged")."""


def disk_free(path: Path) -> int | None:
    """Free bytes (for this user) on the file system of ``path``'s directory; ``None`` when
    that cannot be told (no ``statvfs``, or it failed)."""
    try:
        st = os.statvfs(path.parent if not path.is_dir() else path)
    except (AttributeError, OSError):
        return None
    return int(st.f_bavail * st.f_frsize)


def full_disk(path: Path, move: str = "move the ledger to a disk with room") -> str:
    """Words naming a full disk under the SQLite file ``path`` (``""``: it has room);
    ``move``: the other fix, in the words of who reads it (a satellite's: its data
    directory, not "the ledger", an operator's word)."""
    free = disk_free(path)
    if free is None or free >= _FULL_ROOM:
        return ""
    return (f"the disk holding {path.parent} is full ({free:,} bytes free): free space there "
            f"(or {move})")


def size_limit_reached(path: Path) -> str:
    """Words naming the file-size limit (``ulimit -f``) that the SQLite file ``path`` or its
    ``-wal`` is within :data:`_FULL_ROOM` of (``""``: no limit, or room below it). Writing
    past it fails with EFBIG, which the health check's rolled-back write never meets (it
    writes nothing to the files): /healthz said ok again while every commit failed."""
    limit = _file_size_limit()
    if not limit:
        return ""
    big, name = 0, path.name
    for p in (path, Path(f"{path}-wal")):
        try:
            size = p.stat().st_size
        except OSError:
            continue
        if size > big:
            big, name = size, p.name
    if big + _FULL_ROOM <= limit:
        return ""
    return (f"this process may write files of at most {limit:,} bytes (ulimit -f) and {name} "
            f"holds {big:,}: raise the limit for the hub's process (and restart it), or "
            "move the ledger (backup and restore) while it is small enough")


def read_only_fs(path: Path) -> str:
    """Words naming the read-only file system holding the SQLite file ``path`` (``""``: it is
    writable, or that cannot be told). A disk that failed is often remounted read-only
    (ext4 ``errors=remount-ro``), exactly when a backup is wanted: SQLite cannot make the
    ``-shm`` index a reader of a WAL file needs there ("unable to open database file", which
    was reported as "not an Outpost ledger")."""
    try:
        st = os.statvfs(path.parent)
    except (AttributeError, OSError):
        return ""
    if not st.f_flag & getattr(os, "ST_RDONLY", 1):
        return ""
    return (f"the file system holding {path.parent} is mounted read-only (a failing disk is "
            "often remounted so: check it, e.g. dmesg)")


def _immutable_url(path: Path, immutable: bool = True) -> str:
    """An URL reading the SQLite file ``path`` as it is: ``immutable`` (no ``-shm``, no lock,
    nothing made beside it; the ``-wal`` is not read); without ``immutable`` read only
    through the ``-shm`` index already there (the ``-wal`` read too)."""
    from sqlalchemy.engine import URL

    query = {"uri": "true", "mode": "ro", **({"immutable": "1"} if immutable else {})}
    url = URL.create("sqlite", database=path.absolute().as_uri(), query=query)
    return url.render_as_string(hide_password=False)


def _reads_through_shm(path: Path) -> bool:
    """Whether the ledger ``path`` with commits in its ``-wal`` reads (``mode=ro``) through
    the ``-shm`` index beside it (a hub still running, or one stopped by kill -9, left it):
    then nothing needs to be made on the full or read-only disk (ops review 12: backup was
    refused though a plain read-only open read every event)."""
    if not Path(f"{path}-shm").is_file():
        return False
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            con.execute("SELECT count(*) FROM evt_meta").fetchone()
            return True
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _check_sqlite_ledger(url: str) -> str:
    """Raise ConfigError when an SQLite ``url`` names a missing file or one without a ledger,
    read without changing it (the engine's connect would create the file and switch it to
    WAL). Other databases are checked once connected (:meth:`SqlLedger._open_tables`).

    Returns the URL to read it with: ``url``; or, on a full disk (where SQLite cannot make
    the ``-shm`` index a reader of a WAL file needs), the file read ``immutable`` when its
    ``-wal`` holds nothing (the file is then all of the ledger, and no writer can add to it
    without room to grow the ``-wal``). With frames in the ``-wal``, the file alone is not
    the ledger: it is read ``mode=ro`` through the ``-shm`` index when one is there and
    reads (:func:`_reads_through_shm`), else StorageError naming the full disk and the fix."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:") \
            or u.query.get("uri"):
        return url
    path = Path(u.database)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file, so no ledger to read: {NO_LEDGER_FIX}")
    read = f"{path.resolve().as_uri()}?mode=ro"
    full = full_disk(path) or read_only_fs(path)
    if full:
        wal = Path(f"{path}-wal")
        pending = wal.stat().st_size if wal.exists() else 0
        if pending and _reads_through_shm(path):
            url = _immutable_url(path, immutable=False)
        elif pending:
            fix = ("Free space, or copy" if "is full" in full else
                   "Remount it read-write if the disk is sound (mount -o remount,rw), or copy")
            shm = (f"through its {path.name}-shm index, which cannot be read there"
                   if Path(f"{path}-shm").is_file() else
                   "only through a -shm index it cannot make there")
            raise StorageError(
                f"cannot read {path}: {full}. Its {wal.name} holds {pending:,} bytes of "
                f"commits not yet in the file, which SQLite reads {shm}. {fix} {path.name} "
                f"and {wal.name} together to a writable disk with room and give the copy as "
                "--db; nothing was changed",
                kind="full" if "is full" in full else "readonly")
        else:
            read = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
            url = _immutable_url(path)
    try:
        con = sqlite3.connect(read, uri=True)
        try:
            found = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'evt_meta'").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        full = full_disk(path)
        if full:  # filled up since the check above
            raise StorageError(f"cannot read {path} ({exc}): {full}, then retry; nothing "
                               "was changed") from exc
        raise ConfigError(f"{path} is not an Outpost ledger ({exc}): {NO_LEDGER_FIX}") from exc
    if found is None:
        raise ConfigError(f"{path} holds no Outpost ledger (no evt_meta table): "
                          f"{NO_LEDGER_FIX}")
    return url


class SqlLedger:
    """A ledger stored in SQLite or PostgreSQL (Publisher and Replicator).

    Args:
        url: an SQLAlchemy URL: ``sqlite:///path``, ``sqlite://`` (memory) or
            ``postgresql+psycopg://...`` (plain ``postgresql://`` is accepted).
        project: the schema. A database made with another schema version is refused.
        synchronous: SQLite's ``PRAGMA synchronous`` (``FULL`` for the hub; see the module doc).
        create: make the ledger's tables when the database has none (False: refuse such a
            database, and a missing SQLite file, without creating or changing anything: the
            operations that read an existing ledger, ``verify`` and ``backup``).
        layout: the layout of a NEW SQLite ledger (docs/ledger.md, "SQLite layout"):
            ``"by-record"`` (the default: a topic's state rows and event key entries in one
            B-tree), ``"by-id"`` (the layout made by sessions 8 and 9: the ``(top, key, rev)``
            index; a satellite's replica, whose state tables the desktop scans) or
            ``"rev-index"`` (the one made before, with the revision index too). A database
            that holds a ledger keeps the layout it was made in (:attr:`layout`), and
            PostgreSQL has one layout.

    Attributes:
        engine: the SQLAlchemy engine (others may run their own transactions on it).
        metadata: the MetaData holding the ledger's tables; add tables of your own to it and
            call ``metadata.create_all(engine)``.
        tables: the ledger's tables.

    Raises:
        SchemaError: the database holds another schema version.
        StorageError: the database cannot be opened.
        ConfigError: ``create=False`` and the database holds no ledger.
    """

    def __init__(self, url: str, project: Project, *, synchronous: str = "FULL",
                 create: bool = True, layout: str = "by-record"):
        sync = synchronous.upper()
        if sync not in _SYNC:
            raise ValueError(f"synchronous={synchronous!r}: expected one of {', '.join(_SYNC)}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
        self._new_layout = layout
        self._project = project
        self._url = _normalize_url(url)
        self._create = create
        if not create:
            # before the engine: connecting makes the file; on a full disk, read it as it is
            self._url = _check_sqlite_ledger(self._url)
        self.tables: LedgerTables = build_tables(project)
        self.metadata = self.tables.metadata
        try:
            self.engine: Engine = self._make_engine(self._url, sync)
        except (SQLAlchemyError, ValueError) as exc:
            pw = re.search(r"://[^:/@]*:([^@]+)@", url)  # never shown
            why, shown = str(exc), url
            if pw:
                why, shown = why.replace(pw.group(1), "***"), shown.replace(pw.group(1), "***")
            raise StorageError(f"cannot open ledger database {shown!r}: {why}: "
                               "check the URL (sqlite:///path or postgresql://...)") from exc
        self._where = _where(self.engine.url)
        # the words of a full disk's fix: a satellite's replica sets its own (Replica), for
        # a person at the app rather than a hub's operator
        self.full_move = "move the ledger to a disk with room"
        q = self.engine.url.query
        # a read-only reader (core.satellite.replica.read_only_url) changes nothing, not
        # even an old file's missing ledger id
        self._read_only = q.get("mode") == "ro" or q.get("immutable") == "1"
        self._ledger_id = ""
        self._fmt: int | None = None
        self._restores: tuple[tuple[Rev, str], ...] = ()
        self._pg = self.engine.dialect.name == "postgresql"
        self._sql: HotSql = hot_sql(self.tables, self.engine.dialect.name)
        # SQLite without the revision index (ledgers made since session 8): reads by
        # revision go by id (tables.rev_bound); set by _open_tables from the file itself
        self._by_id = False
        # SQLite, the by-record layout (ledgers made since session 10): no (top, key, rev)
        # index; reads by record go through the topic's B-tree (tables.by_record_ddl)
        self._by_rec = False
        self._partial_sql: dict[tuple[Any, ...], Any] = {}  # sql_replicate's upserts
        # where the applied transaction uids are: ``evt_uid`` (a hub's ledger: the exactly-
        # once check reads it) or, on a satellite's replica of data format 2 and later, only
        # in ``evt_audit`` (core.satellite.replica sets both; docs/satellite.md)
        self.uid_table = True
        """:meth:`replicate` writes ``evt_uid`` rows (False: a satellite's replica of data
        format 2 or later, whose audits alone hold the uids)."""
        self.uids_in_audits = False
        """:meth:`applied_uids` and :meth:`uid_rev` read ``evt_audit`` (a satellite's
        replica, any data format: what ``evt_uid`` held there is what its audits hold)."""
        self._pub_lock = threading.Lock()  # one publish at a time on self._pub
        self._pub: Any = None  # the publisher's pooled connection, kept (see _batch)
        self._pub_pool: Any = None  # the pool it came from (engine.dispose() replaces it)
        self._pub_used = 0.0  # time.monotonic() of its last publish (_ping_publisher)
        try:
            with self._guard("opening the ledger"):
                self._open()
        except BaseException:
            self.engine.dispose()  # a refused database (schema version, no ledger) stays shut
            raise

    # -- setup ---------------------------------------------------------------------------------

    @staticmethod
    def _make_engine(url: str, sync: str) -> Engine:
        u = make_url(url)
        if u.get_backend_name() != "sqlite":
            if u.get_backend_name() != "postgresql":
                raise ValueError(f"unsupported database {u.get_backend_name()!r}: "
                                 "use sqlite or postgresql")
            if not _load_psycopg():
                raise ConfigError(f"{u.render_as_string()}: a PostgreSQL ledger needs psycopg "
                                  "3, which is not installed: pip install 'psycopg[binary]'")
            # READ COMMITTED (PostgreSQL's default, pinned against a server-wide
            # default_transaction_isolation): each statement after pg_advisory_xact_lock takes
            # a new snapshot and so sees the previous publish's commit; under REPEATABLE READ
            # the snapshot would predate the lock wait and re-use the last revision
            # bounded connects and dead-peer detection (PG_CONNECT_DEFAULTS; the URL's own
            # parameters win: SQLAlchemy passes them to psycopg, connect_args would override)
            return create_engine(u, pool_pre_ping=False, isolation_level="READ COMMITTED",
                                 connect_args=pg_connect_args(u.query))
        memory = u.database in (None, "", ":memory:")
        # a read-only reader (mode=ro, core.satellite.replica.read_only_url) keeps ONE
        # connection, so that PRAGMA data_version tells it whether another process committed
        # while it read (the value is per connection)
        single = memory or u.query.get("mode") == "ro"
        # cached_statements: sqlite3 keeps 128 prepared statements per connection by default;
        # the publish path's statements vary with the batch's shape (key counts of the one
        # read, rows of the multi-row inserts: core.ledger.sql_batch), and one prepared again
        # costs more than running it
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False,
                                               "timeout": _BUSY_MS / 1000,
                                               "cached_statements": 512}}
        if single:
            kw["poolclass"] = StaticPool
        engine = create_engine(u, **kw)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi: Any, _rec: Any) -> None:
            # take transaction control from the driver: we issue BEGIN ourselves (below)
            dbapi.isolation_level = None
            cur = dbapi.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("outpost_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _open(self) -> None:
        if not self._pg:
            self._open_tables()
            return
        # one opener at a time (session lock on its own connection; the checks and the
        # CREATE TABLEs below run on other pooled connections and wait for nothing else)
        with self.engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_OPEN_LOCK_KEY})
            lock_conn.commit()
            try:
                self._open_tables()
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_OPEN_LOCK_KEY})
                lock_conn.commit()

    def _open_tables(self) -> None:
        meta = self.tables.meta
        if not self._create and not inspect(self.engine).has_table(meta.name):
            raise ConfigError(f"{self._where} holds no Outpost ledger (no {meta.name} table): "
                              f"{NO_LEDGER_FIX}")
        if inspect(self.engine).has_table(meta.name):
            with self.engine.connect() as conn:
                self._check_format(conn)
                row = conn.execute(select(meta.c.version, meta.c.definition)).first()
            if row is not None and row.version != self._project.version:
                name = ""
                with suppress(ValueError, AttributeError):
                    name = loads(row.definition).get("project", {}).get("name", "")
                raise SchemaError(
                    f"ledger database {self._where} was made with schema version {row.version}"
                    f"{f' (project {name!r})' if name else ''}, but the schema file has version "
                    f"{self._project.version} (project {self._project.name!r}): open it with "
                    "the schema it was made with, or back it up and restore it into a new "
                    "database with the new schema"
                )
        if not self._create:
            # verify / backup: read the ledger as it is, change nothing (not even the
            # columns a newer Outpost adds, nor a missing ledger id: its next writer does)
            with self.engine.connect() as conn:
                self._read_ids(conn, {c["name"] for c in inspect(conn).get_columns(meta.name)})
                self._set_layout(conn)
            return
        if not self._pg and not self._read_only:
            self._make_sqlite_layout()
        self.metadata.create_all(self.engine)
        with self._write() as conn:
            # inside the write lock: two processes opening an old file at once add the
            # columns once
            cols = {c["name"] for c in inspect(conn).get_columns(meta.name)}
            if not self._read_only:
                # a ledger made before ledger ids / restore points: the columns are added
                # (nullable: old readers and writers never name them), the id made below
                for name, sql_type in (("ledger_id", "VARCHAR(64)"), ("restored", "BIGINT"),
                                       ("restore_id", "VARCHAR(64)"), ("restores", "TEXT"),
                                       ("fmt", "INTEGER")):
                    if name not in cols:
                        conn.exec_driver_sql(
                            f"ALTER TABLE evt_meta ADD COLUMN {name} {sql_type}")
                        cols.add(name)
            row = self._read_ids(conn, cols)
            self._set_layout(conn)
            if row is None:
                lid = new_ledger_id()
                conn.execute(meta.insert().values(
                    id=1, rev=ZERO_REV, last_id=0, version=self._project.version,
                    definition=dumps(self._project.to_dict()), ledger_id=lid,
                    fmt=LEDGER_FORMAT))
                self._ledger_id, self._fmt = lid, LEDGER_FORMAT
            elif not self._read_only:
                # the first writer's open since session 13 records the format; the first
                # since session 8 makes the ledger's id: both in one write, each when missing
                # (core review 13: the format's update took the id's place, so a ledger older
                # than ids served its first run without one, and a backup of that run,
                # restored, told its satellites they came from another ledger)
                up: dict[str, Any] = {}
                if (row._mapping.get("fmt") or 0) < LEDGER_FORMAT:
                    up["fmt"] = self._fmt = LEDGER_FORMAT
                if not self._ledger_id:
                    up["ledger_id"] = self._ledger_id = new_ledger_id()
                if up:
                    conn.execute(meta.update().where(meta.c.id == 1).values(**up))

    def _make_sqlite_layout(self) -> None:
        """Make a new SQLite ledger's event and state tables in the layout asked for (the
        rest, and every table of a file that holds a ledger already, ``create_all`` makes
        or leaves alone); inside the write lock, so that two processes opening a new file
        at once make one layout."""
        if self._new_layout == "by-id":
            return  # create_all makes it: the tables' own definitions
        with self._write() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                    "name = 'evt_event'").first() is not None:
                return
            if self._new_layout == "rev-index":
                self.tables.event.create(conn)
                conn.exec_driver_sql(f"CREATE INDEX {REV_INDEX} ON evt_event (rev)")
                return
            for ddl in by_record_ddl(self.tables, self.engine.dialect):
                conn.exec_driver_sql(ddl)

    def _set_layout(self, conn: Connection) -> None:
        """Tell the SQLite layouts apart, from the file: a ledger made before session 8 has
        the revision index (and keeps it: it is read through it, as before); one made since
        has none, and its reads by revision go by id (:func:`core.ledger.tables.rev_bound`).
        One made since session 10 (by-record) has no ``(top, key, rev)`` index either: its
        reads by record go through each topic's B-tree (:func:`~core.ledger.tables.
        by_record_ddl`)."""
        if self._pg:
            return
        found = {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN (?, ?)",
            (REV_INDEX, SIG_INDEX))}
        by_id = REV_INDEX not in found
        # a file without an event table (a reader of one being made) reads as before
        by_rec = SIG_INDEX not in found and conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (rec_table_name(next(iter(self.tables.states), "")),)).first() is not None
        if by_id != self._by_id or by_rec != self._by_rec:
            self._by_id, self._by_rec = by_id, by_rec
            self._sql = hot_sql(self.tables, self.engine.dialect.name, by_id=by_id,
                                by_rec=by_rec)

    @property
    def layout(self) -> str:
        """The SQLite ledger's layout: ``"by-record"`` (made since session 10: a topic's
        state rows and event key entries in one B-tree, no revision index), ``"by-id"``
        (made by sessions 8 and 9: no revision index, reads by revision go by id) or
        ``"rev-index"`` (made before; PostgreSQL too); ``"by-record+rev-index"``: a
        by-record ledger given the revision index (:meth:`add_rev_index`)."""
        if self._by_rec:
            return "by-record" if self._by_id else "by-record+rev-index"
        return "by-id" if self._by_id else "rev-index"

    def add_rev_index(self) -> None:
        """Give an SQLite ledger without the revision index one (the layout made before
        session 8), and read it through it from now on: for events whose ids do not follow
        their revisions (a restore of such a backup, :func:`core.ledger.ops.restore`), which
        the layout without it cannot hold. Other processes with the ledger open must reopen
        it. Nothing happens on a ledger that has the index (and on PostgreSQL).

        Raises:
            StorageError: the database failed; nothing changed.
        """
        if not self._by_id:
            return
        with self._guard("adding the revision index"), self._write() as conn:
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {REV_INDEX} ON evt_event (rev)")
            self._set_layout(conn)

    def _check_format(self, conn: Connection) -> None:
        """Refuse a ledger a newer Outpost wrote in a format this one does not know
        (``evt_meta.fmt`` above :data:`~core.ledger.tables.LEDGER_FORMAT`), before anything
        is created or changed in it (serve, verify, backup, restore, a satellite's replica).

        Raises:
            ConfigError: naming both versions and the fix.
        """
        meta = self.tables.meta
        if "fmt" not in {c["name"] for c in inspect(conn).get_columns(meta.name)}:
            conn.rollback()
            return
        have = conn.execute(select(meta.c.fmt)).scalar()
        conn.rollback()
        if have is not None and int(have) > LEDGER_FORMAT:
            raise ConfigError(
                f"ledger database {self._where} was written by a newer Outpost (ledger format "
                f"{have}; this Outpost reads formats up to {LEDGER_FORMAT}) and would be "
                "misread here: nothing was read or changed. Serve, verify, back up and restore "
                "it with that newer Outpost (or a later one)")

    def _read_ids(self, conn: Connection, cols: set[str]) -> Any:
        """Read the ledger id and restore point from ``evt_meta`` (the columns in ``cols``:
        a ledger made before them has none) into ``self``; the row (``None``: no row)."""
        meta = self.tables.meta
        want = [meta.c.id] + [meta.c[n] for n in ("ledger_id", "restored", "restore_id",
                                                  "restores", "fmt") if n in cols]
        row = conn.execute(select(*want)).first()
        m = row._mapping if row is not None else {}
        self._ledger_id = str(m.get("ledger_id") or "")
        fmt = m.get("fmt")
        self._fmt = None if fmt is None else int(fmt)
        try:
            self._restores = restore_points(m.get("restores"), int(m.get("restored") or 0),
                                            str(m.get("restore_id") or ""))
        except ValueError as exc:
            raise StorageError(f"{self._where}: evt_meta.restores is damaged ({exc}): restore "
                               "the ledger from a backup, or set the column to NULL (the "
                               "latest restore point, restored/restore_id, is then the only "
                               "one served)") from exc
        return row

    # -- transactions and errors ---------------------------------------------------------------

    def _storage_error(self, what: str, exc: BaseException) -> StorageError:
        orig = getattr(exc, "orig", None) or exc
        msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        # told by the error's type and code (storage_kind), never by words of its text: that
        # holds the database's name or path ("fullmoon", /srv/locked-ledgers/...)
        kind = storage_kind(exc)
        code = sqlite_code(orig)
        ioerr = code == sqlite3.SQLITE_IOERR
        if _is_data_error(StorageError(), orig):
            hint = ("the database refuses a value for what it holds (PostgreSQL: a NUL "
                    "character in text, a value too long), so retrying fails the same way; "
                    "nothing was applied")
        elif not self._pg and (kind == "full" or ioerr) and (
                full := full_disk(Path(self._where), self.full_move)):
            kind = "full"
            hint = f"{full}, then retry; nothing was applied"
        elif kind == "full":
            hint = ("the disk is full (or the database reached its size limit): free space, "
                    "then retry; nothing was applied")
        elif self._pg and (m := re.search(r'FATAL: +database "([^"]+)" does not exist',
                                          msg)):  # at connect: no SQLSTATE (psycopg)
            hint = (f"the database does not exist: create it first (createdb {m.group(1)}, or "
                    f"CREATE DATABASE \"{m.group(1)}\"), then retry")
        elif kind == "readonly" and self._pg:
            hint = ("the database takes no writes (a standby, or default_transaction_read_only "
                    "set): point the hub at the primary, or set the database read-write, "
                    "then retry; nothing was applied")
        elif kind == "readonly":
            hint = ("the database is read only: check the permissions of the file and its "
                    "directory (and that the disk is mounted read-write), then retry")
        elif kind == "locked":
            hint = ("the database is locked by another process: wait for it to finish and "
                    "retry; nothing was applied")
        elif kind == "unreachable":
            hint = ("the database server cannot be reached (stopped, restarting, or the "
                    "network is down): nothing was applied; check the server, the hub "
                    "reconnects by itself")
        elif self._pg:
            hint = "nothing was applied; retry, and check the database server if it persists"
        elif ioerr and _file_size_limit():
            hint = (f"writing the file failed: this process may write files of at most "
                    f"{_file_size_limit():,} bytes (ulimit -f), or the disk is full: raise the "
                    "limit or free space, then retry; nothing was applied")
        elif code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or ioerr:
            hint = ("the file cannot be read or written as a database: check the disk (free "
                    "space, errors, a removed drive); if the file is damaged, restore it from "
                    "a backup or move it aside; nothing was applied")
        else:
            hint = "nothing was applied; retry, and check the disk if it persists"
        return StorageError(f"{what} failed on {self._where}: {msg}: {hint}", kind=kind)

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except OutpostError:
            raise
        except _GUARDED as exc:
            raise self._storage_error(what, exc) from exc
        except SQLAlchemyError as exc:
            raise self._storage_error(what, exc) from exc

    @contextmanager
    def _write(self, lock: bool = True) -> Iterator[Connection]:
        """A connection in a write transaction holding the ledger's write lock.

        On SQLite ``BEGIN IMMEDIATE`` is the lock. On PostgreSQL ``lock=False`` leaves the
        advisory lock to the caller (the publish path sends it in its read pipeline).
        """
        with self.engine.connect() as conn:
            conn.execution_options(outpost_write=True)
            with conn.begin():
                if self._pg and lock:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
                yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction for callers that store more beside the ledger (the satellite).

        Takes the same lock as a publish; commits when the block ends, rolls back on error.
        Pass the connection to :meth:`replicate` to store events in the same commit.

        Raises:
            StorageError: the database failed; nothing was committed.
        """
        with self._guard("a write transaction"), self._write() as conn:
            yield conn

    # -- reading -------------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    def _read_meta(self, conn: Connection) -> tuple[Rev, int]:
        # through SQLAlchemy: this may be a connection's first statement (autobegin)
        row = conn.exec_driver_sql(self._sql.read_meta).one()
        return int(row[0]), int(row[1])

    def _meta_now(self) -> tuple[Rev, int]:
        # read every time: another process (a second hub, the CLI) may have published
        with self._guard("reading the revision"), self.engine.connect() as conn:
            res = self._read_meta(conn)
            conn.rollback()
        return res

    def rev(self) -> Rev:
        """The revision of the last published or replicated transaction (read from the db)."""
        return self._meta_now()[0]

    def health(self, write: bool = False) -> Rev:
        """A cheap check that the database works (a hub's monitoring: hubserver.health): the
        revision is read (and returned: hubserver.headwatch compares it with what the hub
        fanned out and with its clock), and an SQLite file's disk must have room for a
        commit. With
        ``write`` (asked while commits are failing) the meta row is also written in a
        transaction that is rolled back: a database that reads but refuses writes (a
        PostgreSQL standby after a failover, ``default_transaction_read_only``) fails it.

        Raises:
            StorageError: naming the problem (the database unreachable, the disk full).
        """
        try:
            head = self._meta_now()[0]
        except StorageError:
            # a pooled connection the server closed (PostgreSQL restarted) fails once, and
            # SQLAlchemy then drops the pool's older connections: is the database there now?
            head = self._meta_now()[0]
        if write and not self._read_only:
            with self._guard("writing (health check)"), self.engine.connect() as conn:
                try:
                    conn.exec_driver_sql("UPDATE evt_meta SET rev = rev WHERE id = 1")
                finally:
                    conn.rollback()
        if not self._pg and self.engine.url.database not in (None, "", ":memory:") \
                and not self._read_only:
            full = full_disk(Path(self._where))
            # while commits fail: the rolled-back write above stored nothing, so it cannot
            # have met the file-size limit a commit meets (EFBIG); a file near it counts as
            # full until a commit works (hubserver.health)
            if not full and write:
                full = size_limit_reached(Path(self._where))
            if full:
                raise StorageError(f"{self._where}: {full}; publishes fail until then",
                                   kind="full")
        return head

    def rev_in(self, conn: Connection) -> Rev:
        """The revision as seen inside the caller's transaction (from :meth:`begin`)."""
        with self._guard("reading the revision"):
            return self._read_meta(conn)[0]

    def last_id(self) -> int:
        """The id of the last event stored."""
        return self._meta_now()[1]

    @property
    def concurrent_reads(self) -> bool:
        """Reads may run on another thread while a publish commits, each in a read
        transaction on a pooled connection of its own: PostgreSQL, and SQLite on a file
        (WAL mode: readers see the last commit and never wait for the writer). Not an
        in-memory or read-only SQLite ledger, which share one connection. A hub reads its
        catch-ups on a reader thread then (hubserver.pipeline.off_loop)."""
        return self._pg or not isinstance(self.engine.pool, StaticPool)

    @property
    def ledger_id(self) -> str:
        """The ledger's identity (:func:`new_ledger_id`, made when it was created, kept for
        its life and by a backup restored: it is the same ledger); ``""`` for a read-only
        or ``create=False`` open (verify, backup) of a ledger made before ids (its first
        writer gives it one)."""
        return self._ledger_id

    @property
    def ledger_format(self) -> int | None:
        """The ledger's data format as ``evt_meta.fmt`` records it (:data:`LEDGER_FORMAT`
        after any writer's open since session 13); ``None``: not recorded (a read-only open,
        ``verify`` or ``backup``, of a ledger no writer of session 13 or later opened)."""
        return self._fmt

    @property
    def restored(self) -> tuple[Rev, str]:
        """The ledger's restore point: the final revision of the backup it was last restored
        from (:func:`core.ledger.ops.restore`) and a random id of that restore; ``(0, "")``
        when it was never restored. A hub serves it (``evt.stat``) so that a replica holding
        revisions after it (which the restore lost) never syncs with it."""
        return self._restores[-1] if self._restores else (ZERO_REV, "")

    @property
    def restores(self) -> tuple[tuple[Rev, str], ...]:
        """Every restore point of the ledger's history, oldest first (the last one is
        :attr:`restored`): the points the backup restored carried, then its own; ``()``
        when never restored. A ledger restored by session 7 has its one point."""
        return self._restores

    def set_restored(self, rev: Rev, conn: Connection,
                     before: Sequence[tuple[Rev, str]] = ()) -> None:
        """Record a restore (inside the caller's transaction, from :meth:`begin`): the
        restore points ``before`` (those the backup carried, oldest first), then ``rev``
        with a new restore id."""
        rid = new_ledger_id()
        points = (*((int(r), str(i)) for r, i in before), (rev, rid))
        with self._guard("storing the restore point"):
            conn.execute(self.tables.meta.update().where(self.tables.meta.c.id == 1)
                         .values(restored=rev, restore_id=rid,
                                 restores=dumps([list(p) for p in points])))
        self._restores = points

    def set_ledger_id(self, lid: str, conn: Connection) -> None:
        """Give the ledger the identity ``lid`` inside the caller's transaction (from
        :meth:`begin`): a restore keeps the id of the ledger backed up."""
        meta = self.tables.meta
        with self._guard("storing the ledger id"):
            conn.execute(meta.update().where(meta.c.id == 1).values(ledger_id=lid))
        self._ledger_id = lid

    def status_mig(self) -> str:
        """The schema version (``Status.mig``) of this ledger."""
        return self._project.version

    @staticmethod
    def _event(row: Any) -> Event:
        return event_of(row)

    def _ev_cols(self) -> Any:
        ev = self.tables.event
        return select(ev.c.id, ev.c.rev, ev.c.top, ev.c.key, ev.c.cmd, ev.c.arg)

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        """Events after ``rev`` of ``tops`` (all when ``None``) in (rev, id) order.

        ``limit`` > 0 stops after that many events, but always completes the last revision.
        ``max_bytes`` > 0 (with a ``limit``) stops too once the events read hold that many
        characters of argument JSON (:func:`_fetch_within`): a catch-up of large values reads
        about what one frame carries, not ``limit`` values of which it sends one (operator
        review 14: 0.8-4 GB read per 800 KB event sent, on the hub's writer thread).
        """
        return [self._event(r) for r in self._event_rows(rev, tops, limit, self._ev_cols(),
                                                         max_bytes)]

    def count_after(self, rev: Rev, tops: Iterable[str] | None = None) -> int:
        """At most how many events (of ``tops``: see below) follow ``rev``: the greatest
        event id less the id of the last event at or before ``rev`` (found by
        :func:`~core.ledger.tables.rev_bound`, or through the revision index where the ledger
        has one). Ids follow revisions, so every event after ``rev`` has an id in between:
        exact without id gaps (a hub's ledger has none: a publish numbers its events
        ``last_id + 1...``), an upper bound otherwise; a ledger that broke the rule
        (``verify()`` names it) gets an estimate, never below 0. A few index lookups, not a
        count of the rows: a catch-up's first reply asks.

        ``tops`` leaving out a topic of the schema (a satellite syncing some topics): the
        events of ``tops`` after ``rev`` are counted, in that range only (the id range after
        :func:`~core.ledger.tables.rev_bound`, or the revision index), reading the ``top``
        column of each (0.1 s per 1,000,000 events after ``rev``, 1 ms per 10,000: the
        catch-up it sizes reads the same rows, and decodes them; docs/benchmarks.md).
        Before session 10 every topic was counted, so such a catch-up never reached its
        "of N"."""
        wanted = some_topics(self._project, tops)
        if wanted is not None:
            return self._count_of(rev, sorted(wanted))
        ev = self.tables.event
        with self._guard("reading events"), self.engine.connect() as conn:
            top = conn.execute(select(func.max(ev.c.id))).scalar()
            if top is None:
                conn.rollback()
                return 0
            if self._by_id:
                low = conn.exec_driver_sql(f"SELECT {rev_bound('?1')}", (rev,)).scalar()
            else:
                low = conn.execute(select(ev.c.id).where(ev.c.rev <= rev).order_by(
                    ev.c.rev.desc(), ev.c.id.desc()).limit(1)).scalar()
            conn.rollback()
        return max(0, int(top) - int(low or 0))

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        """``(id, rev)`` of the last event at or before ``rev`` (of every topic), ``(0,
        ZERO_REV)`` when there is none: found by :func:`~core.ledger.tables.rev_bound` (or
        the revision index where the ledger has one), a few index lookups. See
        :meth:`core.ledger.protocols.Ledger.last_event_at`."""
        ev = self.tables.event
        with self._guard("reading events"), self.engine.connect() as conn:
            if self._by_id:
                row = conn.exec_driver_sql(
                    f"SELECT id, rev FROM evt_event WHERE id = {rev_bound('?1')} AND rev <= ?1",
                    (rev,)).first()
            else:
                row = conn.execute(select(ev.c.id, ev.c.rev).where(ev.c.rev <= rev).order_by(
                    ev.c.rev.desc(), ev.c.id.desc()).limit(1)).first()
            conn.rollback()
        return (0, ZERO_REV) if row is None else (int(row[0]), Rev(row[1]))

    def event_upto(self, eid: int) -> tuple[int, Rev]:
        """``(id, rev)`` of the event with the greatest id at or below ``eid`` (``(0,
        ZERO_REV)``: none), one primary-key lookup: a satellite looking for where a hub's
        history parts from its replica's (``SyncMachine._diverged``)."""
        ev = self.tables.event
        with self._guard("reading events"), self.engine.connect() as conn:
            row = conn.execute(select(ev.c.id, ev.c.rev).where(ev.c.id <= eid).order_by(
                ev.c.id.desc()).limit(1)).first()
            conn.rollback()
        return (0, ZERO_REV) if row is None else (int(row[0]), Rev(row[1]))

    def _count_of(self, rev: Rev, wanted: list[str]) -> int:
        """How many events of the topics ``wanted`` follow ``rev`` (counted: see
        :meth:`count_after`). ``top || ''`` keeps SQLite on the range after ``rev`` (it would
        pick the ``(top, key, rev)`` index, then read every event of those topics)."""
        if not wanted:
            return 0
        ev = self.tables.event
        with self._guard("reading events"), self.engine.connect() as conn:
            if self._by_id:
                marks = ", ".join(f"?{i + 2}" for i in range(len(wanted)))
                n = conn.exec_driver_sql(
                    f"SELECT count(*) FROM evt_event WHERE id > {rev_bound('?1')} "
                    f"AND rev > ?1 AND top || '' IN ({marks})", (rev, *wanted)).scalar()
            else:
                top = ev.c.top if self._pg else ev.c.top.concat("")
                n = conn.execute(select(func.count()).select_from(ev).where(
                    ev.c.rev > rev, top.in_(wanted))).scalar()
            conn.rollback()
        return int(n or 0)

    def event_keys(self, rev: Rev, tops: Iterable[str] | None = None,
                   limit: int = 0) -> list[Event]:
        """:meth:`events` without their ``arg`` (``None``): the ``arg`` column is neither
        read nor decoded (a monitor's notes need only topics, keys and commands)."""
        ev = self.tables.event
        cols = select(ev.c.id, ev.c.rev, ev.c.top, ev.c.key, ev.c.cmd)
        cmd = _CMDS  # a dict lookup, not Cmd(text): a third of the time per row
        return [Event(int(i), int(r), t, k, cmd[c])
                for i, r, t, k, c in self._event_rows(rev, tops, limit, cols)]

    def _event_rows(self, rev: Rev, tops: Iterable[str] | None, limit: int,
                    cols: Any, max_bytes: int = 0) -> list[Any]:
        """The rows of :meth:`events` (``cols``: the select of the columns to read; id and
        rev first; with ``max_bytes``, ``arg`` last)."""
        ev = self.tables.event
        wanted = None if tops is None else list(tops)
        if wanted is not None and not wanted:
            return []
        if limit <= 0:
            max_bytes = 0
        if self._by_id:
            return self._event_rows_by_id(rev, wanted, limit, cols, max_bytes)
        # SQLite without ANALYZE statistics picked the (top, key, rev) index for ``top IN``,
        # then read and sorted every event of those topics: O(ledger size) per catch-up batch
        # (a 1,000,000-event catch-up spent most of its time there). ``top || ''`` cannot use
        # an index, so the rev index serves the range in order. PostgreSQL plans by statistics.
        top = ev.c.top if self._pg else ev.c.top.concat("")
        q = cols.where(ev.c.rev > rev)
        if wanted is not None:
            q = q.where(top.in_(wanted))
        q = q.order_by(ev.c.rev, ev.c.id)
        with self._guard("reading events"), self.engine.connect() as conn:
            if limit > 0:
                # by bytes on PostgreSQL: a server-side cursor, or psycopg fetches every row
                # closed here, not when collected: a server-side cursor left open by a read
                # cut short warns (ResourceWarning) whenever the garbage collector frees it
                with conn.execute(q.limit(limit), execution_options={
                        "stream_results": True, "max_row_buffer": limit}
                        if max_bytes > 0 and self._pg else {}) as res:
                    rows, cut = _fetch_limited(res, limit, max_bytes)
                if cut:
                    last = rows[-1]
                    more = cols.where(ev.c.rev == last.rev, ev.c.id > last.id)
                    if wanted is not None:
                        more = more.where(top.in_(wanted))
                    rows.extend(conn.execute(more.order_by(ev.c.id)).all())
            else:
                rows = list(conn.execute(q).all())
            conn.rollback()
        return rows

    def _event_rows_by_id(self, rev: Rev, wanted: list[str] | None, limit: int,
                          cols: Any, max_bytes: int = 0) -> list[Any]:
        """:meth:`_event_rows` on an SQLite ledger without the revision index: the events
        after ``rev`` are those after the id :func:`~core.ledger.tables.rev_bound` finds, in
        id order (which is (rev, id) order there); the last revision of a limited read is
        completed up to its own bound. ``top || ''`` keeps SQLite on the rowid range (it
        would pick the ``(top, key, rev)`` index for ``top IN``, then sort)."""
        head = "SELECT " + ", ".join(c.name for c in cols.selected_columns)
        n = 0 if wanted is None else len(wanted)
        where_top = "" if n == 0 else " AND top || '' IN (" + ", ".join(
            f"?{i + 2}" for i in range(n)) + ")"
        tp = () if wanted is None else tuple(wanted)
        sql = (f"{head} FROM evt_event WHERE id > {rev_bound('?1')} AND rev > ?1{where_top} "
               "ORDER BY id")
        with self._guard("reading events"), self.engine.connect() as conn:
            if limit > 0:
                res = conn.exec_driver_sql(f"{sql} LIMIT {int(limit)}", (rev, *tp))
                rows, cut = _fetch_limited(res, limit, max_bytes)
                if cut:
                    last = rows[-1]
                    more = (f"{head} FROM evt_event WHERE id > ?{n + 2} AND id <= "
                            f"{rev_bound('?1')} AND rev = ?1{where_top} ORDER BY id")
                    rows.extend(conn.exec_driver_sql(
                        more, (int(last[1]), *tp, int(last[0]))).all())
            else:
                rows = list(conn.exec_driver_sql(sql, (rev, *tp)).all())
            conn.rollback()
        return rows

    def _full(self, top: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._project.model(top).full(fields)

    _REC_COLS = "e.id, e.rev, e.top, e.key, e.cmd, e.arg"

    def _rec_from(self, top: str, audit: bool = False) -> str:
        """By-record layout: ``FROM`` the topic's event key entries (``s``) and their events
        (``e``; with ``audit``, the audit rows ``a``), and ``WHERE`` the entries only (not
        the state row); a caller adds its conditions and order."""
        au = " LEFT JOIN evt_audit a ON a.rev = e.rev" if audit else ""
        return (f" FROM {self._sql.rec[top]} s JOIN evt_event e ON e.id = s.{REC_N}{au} "
                f"WHERE s.{REC_N} > 0")

    def _rec_events(self, conn: Connection, top: str, keys: Sequence[str] | None,
                    cond: str, rev: Rev) -> list[Event]:
        """By-record layout: the events of ``keys`` (every record of ``top`` when None)
        whose revision is ``cond`` (``"<="``, ``">"``) ``rev``, in (rev, id) order."""
        where = "" if keys is None else " AND s.key IN (" + ",".join("?" * len(keys)) + ")"
        sql = (f"SELECT {self._REC_COLS}{self._rec_from(top)}{where} AND e.rev {cond} ? "
               "ORDER BY e.rev, e.id")
        return [self._event(r) for r in conn.exec_driver_sql(sql, (*(keys or ()), rev))]

    def _sig_events(self, conn: Connection, top: str, key: str | None, upto: Rev) -> list[Event]:
        if self._by_rec:
            return self._rec_events(conn, top, None if key is None else [key], "<=", upto)
        ev = self.tables.event
        q = self._ev_cols().where(ev.c.top == top, ev.c.rev <= upto)
        if key is not None:
            q = q.where(ev.c.key == key)
        return [self._event(r) for r in conn.execute(q.order_by(ev.c.rev, ev.c.id))]

    def state(self, top: str, key: str, rev: Rev | None = None) -> dict[str, Any] | None:
        """A record's fields now, or as of ``rev``; ``None`` when it does not exist then."""
        st = self.tables.states.get(top)
        if st is None:
            self._project.model(top)  # raises ValidationError with "did you mean"
            return None
        with self._guard("reading state"), self.engine.connect() as conn:
            if rev is None or rev >= self._read_meta(conn)[0]:
                row = conn.execute(select(st.table).where(st.table.c.key == key)).first()
                conn.rollback()
                return None if row is None else st.values(row)
            folded = replay(self._sig_events(conn, top, key, rev))
            conn.rollback()
        cur = folded.get(Sig(top, key))
        return None if cur is None else self._full(top, cur[0])

    def states(self, top: str, rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        """Every record of a topic, key → fields, now or as of ``rev``."""
        st = self.tables.states.get(top)
        if st is None:
            self._project.model(top)
            return {}
        with self._guard("reading state"), self.engine.connect() as conn:
            if rev is None or rev >= self._read_meta(conn)[0]:
                rows = conn.execute(select(st.table).order_by(st.table.c.key)).all()
                conn.rollback()
                return {r[0]: st.values(r) for r in rows}
            folded = replay(self._sig_events(conn, top, None, rev))
            conn.rollback()
        return {s.key: self._full(top, v[0]) for s, v in sorted(folded.items(),
                                                                key=lambda kv: kv[0].key)}

    def states_of(self, top: str, keys: Iterable[str],
                  rev: Rev | None = None) -> dict[str, dict[str, Any]]:
        """The fields of the given records (key → fields), now or as of ``rev`` (as
        :meth:`state`), in one read per chunk of keys; records that do not exist (then) are
        left out. As of a past ``rev``: the records' events up to it, read by the
        ``(top, key, rev)`` index and folded (``outpost import`` of a ``_rev`` file asked
        :meth:`state` once per row)."""
        st = self.tables.states.get(top)
        if st is None:
            self._project.model(top)
            return {}
        want = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        if not want:
            return out
        hot = self._sql
        with self._guard("reading state"), self.engine.connect() as conn:
            if rev is not None and rev < self._read_meta(conn)[0]:
                ev = self.tables.event
                folded: dict[Sig, tuple[dict[str, Any], Rev]] = {}
                for part in chunks(want):
                    if self._by_rec:
                        replay(self._rec_events(conn, top, part, "<=", rev), folded)
                        continue
                    q = self._ev_cols().where(ev.c.top == top, ev.c.key.in_(list(part)),
                                              ev.c.rev <= rev).order_by(ev.c.rev, ev.c.id)
                    replay((self._event(r) for r in conn.execute(q)), folded)
                conn.rollback()
                for k in want:
                    cur = folded.get(Sig(top, k))
                    if cur is not None:
                        out[k] = self._full(top, cur[0])
                return out
            for part in chunks(want):
                sql = hot.by_keys(hot.select_state[top], len(part))
                for row in _run(conn, sql, hot.in_params(part)):
                    out[row[0]] = st.values(row)
            conn.rollback()
        return out

    def events_of(self, top: str, keys: Iterable[str], rev: Rev) -> dict[str, list[Event]]:
        """The events of the given records after ``rev``, by key, in (rev, id) order: one
        read per chunk of keys, by the ``(top, key, rev)`` index (a satellite asks whether an
        import's rows collide with changes since their ``_rev``; ``outpost carry`` compares the
        histories of thousands of records with ``rev`` 0)."""
        want = list(dict.fromkeys(keys))
        out: dict[str, list[Event]] = {}
        if not want or top not in self.tables.states:
            return out
        ev = self.tables.event
        with self._guard("reading events"), self.engine.connect() as conn:
            for part in chunks(want):
                if self._by_rec:
                    evs = self._rec_events(conn, top, part, ">", rev)
                else:
                    q = self._ev_cols().where(ev.c.top == top, ev.c.key.in_(list(part)),
                                              ev.c.rev > rev).order_by(ev.c.rev, ev.c.id)
                    evs = [self._event(r) for r in conn.execute(q)]
                for e in evs:
                    out.setdefault(e.key, []).append(e)
            conn.rollback()
        return out

    def keys(self, top: str) -> list[str]:
        """The keys of a topic's current records, sorted (an index-only read, no fields)."""
        st = self.tables.states.get(top)
        if st is None:
            self._project.model(top)
            return []
        with self._guard("reading keys"), self.engine.connect() as conn:
            keys = list(conn.execute(select(st.table.c.key).order_by(st.table.c.key)).scalars())
            conn.rollback()
        return keys

    def count(self, top: str) -> int:
        """How many current records a topic has (one ``count(*)``, no keys fetched)."""
        st = self.tables.states.get(top)
        if st is None:
            self._project.model(top)
            return 0
        with self._guard("counting records"), self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(st.table)).scalar_one()
            conn.rollback()
        return int(n)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        """Every change of one record, oldest first, with the user of each revision."""
        ev, au = self.tables.event, self.tables.audit
        q = (select(ev.c.rev, au.c.usr, ev.c.cmd, ev.c.arg)
             .select_from(ev.outerjoin(au, au.c.rev == ev.c.rev))
             .where(ev.c.top == top, ev.c.key == key).order_by(ev.c.rev, ev.c.id))
        with self._guard("reading history"), self.engine.connect() as conn:
            if self._by_rec:  # a topic outside the schema has no events (nor B-tree)
                rows = [] if top not in self.tables.states else conn.exec_driver_sql(
                    f"SELECT e.rev, a.usr, e.cmd, e.arg{self._rec_from(top, audit=True)} "
                    "AND s.key = ? ORDER BY e.rev, e.id", (key,)).all()
            else:
                rows = conn.execute(q).all()
            conn.rollback()
        return [HistoryEntry(int(r[0]), r[1] or "", Cmd(r[2]),
                             None if r[3] is None else loads(r[3])) for r in rows]

    def history_page(self, top: str, key: str, after: Rev = 0, limit: int = 0,
                     max_bytes: int = 0) -> tuple[list[HistoryEntry], bool]:
        """The changes of one record after ``after``, oldest first, cut by ``limit`` changes
        and about ``max_bytes`` (:func:`~core.ledger.protocols.history_cut`, counted on the
        stored JSON before decoding it); whether more remain. Reads at most ``limit`` + 1
        rows (the hub's ``evt.hist``: session 15, a record of 61 changes of 700 KB made a
        42 MB reply read, decoded and encoded on the event loop)."""
        if top not in self.tables.states:
            self._project.model(top)
            return [], False
        ev, au = self.tables.event, self.tables.audit
        with self._guard("reading history"), self.engine.connect() as conn:
            def fetch(cond: str, rev: Rev, lim: int) -> list[Any]:
                if self._by_rec:
                    return list(conn.exec_driver_sql(
                        f"SELECT e.rev, a.usr, e.cmd, e.arg{self._rec_from(top, audit=True)} "
                        f"AND s.key = ? AND e.rev {cond} ? ORDER BY e.rev, e.id"
                        + (f" LIMIT {int(lim)}" if lim else ""), (key, rev)).all())
                q = (select(ev.c.rev, au.c.usr, ev.c.cmd, ev.c.arg)
                     .select_from(ev.outerjoin(au, au.c.rev == ev.c.rev))
                     .where(ev.c.top == top, ev.c.key == key,
                            ev.c.rev > rev if cond == ">" else ev.c.rev == rev)
                     .order_by(ev.c.rev, ev.c.id))
                return list(conn.execute(q.limit(lim) if lim else q).all())

            rows = fetch(">", after, limit + 1 if limit else 0)
            more = bool(limit) and len(rows) > limit
            if more and rows[0][0] == rows[-1][0]:
                # one revision holds more than ``limit`` changes of the record: all of them
                rows = fetch("=", rows[0][0], 0)
                more = bool(fetch(">", rows[0][0], 1))
            n = history_cut([(int(r[0]), HIST_ENTRY_BYTES + len(r[1] or "") + len(r[3] or ""))
                             for r in rows], 0 if len({rows[0][0], rows[-1][0]}) == 1 else limit,
                            max_bytes) if rows else 0
            more = more or n < len(rows)
            conn.rollback()
        return [HistoryEntry(int(r[0]), r[1] or "", Cmd(r[2]),
                             None if r[3] is None else loads(r[3])) for r in rows[:n]], more

    def histories(self, top: str, keys: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        """:meth:`history` of many records of one topic in one read per chunk of keys (key →
        its changes, oldest first; a record without any is left out): the conflicts view
        asked once per conflict (session 13: 1,092 reads per refresh)."""
        want = list(dict.fromkeys(keys))
        out: dict[str, list[HistoryEntry]] = {}
        if not want or top not in self.tables.states:  # a topic outside the schema: none
            return out
        ev, au = self.tables.event, self.tables.audit
        with self._guard("reading history"), self.engine.connect() as conn:
            for part in chunks(want):
                if self._by_rec:
                    rows = conn.exec_driver_sql(
                        f"SELECT s.key, e.rev, a.usr, e.cmd, e.arg{self._rec_from(top, audit=True)}"
                        " AND s.key IN (" + ",".join("?" * len(part)) + ") "
                        "ORDER BY e.rev, e.id", tuple(part)).all()
                else:
                    rows = conn.execute(
                        select(ev.c.key, ev.c.rev, au.c.usr, ev.c.cmd, ev.c.arg)
                        .select_from(ev.outerjoin(au, au.c.rev == ev.c.rev))
                        .where(ev.c.top == top, ev.c.key.in_(list(part)))
                        .order_by(ev.c.rev, ev.c.id)).all()
                for r in rows:
                    out.setdefault(r[0], []).append(HistoryEntry(
                        int(r[1]), r[2] or "", Cmd(r[3]), None if r[4] is None else loads(r[4])))
            conn.rollback()
        return out

    def audit(self, rev: Rev) -> Audit | None:
        """The audit row of one revision, or ``None``."""
        au = self.tables.audit
        with self._guard("reading audit"), self.engine.connect() as conn:
            row = conn.execute(select(au).where(au.c.rev == rev)).first()
            conn.rollback()
        if row is None:
            return None
        return Audit(int(row.rev), int(row.created), int(row.arrived), row.usr,
                     None if row.extra is None else loads(row.extra), row.uid)

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        """The audit rows of the revisions after ``lo`` up to ``hi``, in order (one range
        read of the primary key)."""
        au = self.tables.audit
        q = select(au).where(au.c.rev > lo, au.c.rev <= hi).order_by(au.c.rev)
        with self._guard("reading audits"), self.engine.connect() as conn:
            rows = conn.execute(q).all()
            conn.rollback()
        return [Audit(int(r.rev), int(r.created), int(r.arrived), r.usr,
                      None if r.extra is None else loads(r.extra), r.uid) for r in rows]

    AUDITS_AT_CHUNK = 900
    """Revisions per primary-key lookup query of :meth:`audits_at` (SQLite's oldest limit of
    bound parameters is 999)."""

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        """The audit rows of ``revs`` (ascending, distinct), in order: primary-key lookups,
        ``AUDITS_AT_CHUNK`` revisions per query, in one read transaction."""
        if not revs:
            return []
        au = self.tables.audit
        n = self.AUDITS_AT_CHUNK
        out: list[Audit] = []
        with self._guard("reading audits"), self.engine.connect() as conn:
            for i in range(0, len(revs), n):
                q = select(au).where(au.c.rev.in_(revs[i:i + n])).order_by(au.c.rev)
                out.extend(Audit(int(r.rev), int(r.created), int(r.arrived), r.usr,
                                 None if r.extra is None else loads(r.extra), r.uid)
                           for r in conn.execute(q))
            conn.rollback()
        return out

    def uid_rev(self, uid: str) -> Rev | None:
        """The revision a transaction uid was applied at, or ``None``."""
        if self.uids_in_audits:
            return self.applied_uids([uid]).get(uid)
        u = self.tables.uid
        with self._guard("reading uids"), self.engine.connect() as conn:
            r = conn.execute(select(u.c.rev).where(u.c.uid == uid)).scalar()
            conn.rollback()
        return None if r is None else int(r)

    UIDS_CHUNK = 500
    """Uids per primary-key lookup query of :meth:`applied_uids` on ``evt_uid``."""

    def applied_uids(self, uids: Sequence[str]) -> dict[str, Rev]:
        """The revision each of ``uids`` was applied at, for those applied (one read
        transaction).

        A hub's ledger looks them up in ``evt_uid`` (its primary key, :data:`UIDS_CHUNK` per
        query). A satellite's replica (:attr:`uids_in_audits`) reads its audits instead, which
        have no index by uid: ONE scan of ``evt_audit`` for all of ``uids`` (SQLite: the uids
        as one JSON parameter, which SQLite turns into a lookup table once), the first
        revision of each uid (what ``evt_uid`` kept). Measured on a replica of 1,000,000
        audits: 10,000 uids in 0.20 s of CPU (0.035 s through ``evt_uid``; an index on
        ``evt_audit.uid`` took 0.41 s and 51 MB of log to build, and would cost every write
        what ``evt_uid`` did: docs/benchmarks.md, "Sync (b), session 16")."""
        if not uids:
            return {}
        out: dict[str, Rev] = {}
        with self._guard("reading uids"), self.engine.connect() as conn:
            if not self.uids_in_audits:
                u = self.tables.uid
                for i in range(0, len(uids), self.UIDS_CHUNK):
                    q = select(u.c.uid, u.c.rev).where(u.c.uid.in_(uids[i:i + self.UIDS_CHUNK]))
                    out.update((r[0], int(r[1])) for r in conn.execute(q))
            else:
                au = self.tables.audit.name  # evt_audit
                if self._pg:
                    sql = f"SELECT uid, min(rev) FROM {au} WHERE uid = ANY(%s) GROUP BY uid"
                    params: Any = ([u for u in uids if u],)
                else:
                    # a NUL (stored before session 12 refused it) does not come through
                    # json_each whole: such a uid is bound as it is, in the same scan
                    # (an audit without a uid has ""; never an applied uid)
                    nul = [u for u in uids if "\x00" in u]
                    sql = (f"SELECT uid, min(rev) FROM {au} WHERE uid IN "
                           "(SELECT value FROM json_each(?)"
                           + " UNION ALL SELECT ?" * len(nul) + ") GROUP BY uid")
                    params = (dumps([u for u in uids if u and "\x00" not in u]), *nul)
                out.update((r[0], int(r[1])) for r in conn.exec_driver_sql(sql, params))
            conn.rollback()
        return out

    def verify(self, deep: list[tuple[bool, str]] | None = None) -> list[str]:
        """Replay the event log and compare with the state tables; one line per difference.

        Everything is read in one read transaction (SQLite: one ``BEGIN``; PostgreSQL:
        ``REPEATABLE READ``), so publishes may go on meanwhile.

        Args:
            deep: when given, gets ``(sendable, line)`` for each event field value and audit
                ``extra`` nesting more than :data:`~core.schema.MAX_NESTING` levels (stored
                before session 12 refused them; not a difference): ``sendable`` is false past
                :data:`SENDABLE_NESTING`, where no reply can carry it."""
        ev = self.tables.event
        problems: list[str] = []
        # the streamed results are closed when verify stops, also on an error (a damaged
        # row): a server-side cursor left to the garbage collector warns (ResourceWarning)
        with self._guard("verifying"), self.engine.connect() as conn, ExitStack() as stack:
            if self._pg:
                # one snapshot for the events, meta and state (READ COMMITTED read each at
                # its own time: publishes between them read as corruption)
                conn.execution_options(isolation_level="REPEATABLE READ")
            folded: dict[Sig, tuple[dict[str, Any], Rev]] = {}
            max_rev = ZERO_REV
            # by id: no revision index to read (rev, id) order through; the two orders are
            # the same in a sound ledger, and an event out of revision order is reported
            # (reads by revision rely on it: tables.rev_bound)
            order = (ev.c.id,) if self._by_id else (ev.c.rev, ev.c.id)
            res = stack.enter_context(conn.execution_options(
                stream_results=True, max_row_buffer=PART_ROWS
            ).execute(self._ev_cols().order_by(*order)))
            prev: Event | None = None
            for r in (r for part in fetch_parts(res) for r in part):
                e = self._event(r)
                # an arg is one level, its fields' values the rest: a quick test first
                if deep is not None and e.arg is not None \
                        and nesting(e.arg, MAX_NESTING + 2) > MAX_NESTING + 1:
                    deep.extend(_deep_event(e))
                if isinstance(e.arg, dict) and len(r[-1]) > _BIG_TEXT:
                    e = _digested(e)  # the replay holds a digest of its long texts
                if prev is not None and e.rev < prev.rev and len(problems) < 10:
                    problems.append(
                        f"event {e.id} (revision {format_rev(e.rev)}) follows event {prev.id} "
                        f"of a later revision ({format_rev(prev.rev)}): ids out of revision "
                        "order, so reads by revision may miss events; back the ledger up and "
                        "restore it")
                prev = e
                max_rev = max(max_rev, e.rev)
                replay((e,), folded)
            meta_rev, _ = self._read_meta(conn)
            # the state rows are compared as they stream in, each against its replay (taken
            # out of ``folded``): one copy of the state in memory, not two (operator review
            # 9: 400 MB at 200,000 records); the lines are sorted by record at the end
            found: list[tuple[tuple[str, str], str]] = []
            for topic, st in self.tables.states.items():
                rows = stack.enter_context(conn.execution_options(
                    stream_results=True, max_row_buffer=PART_ROWS).execute(select(st.table)))
                for row in (r for part in fetch_parts(rows) for r in part):
                    sig = Sig(topic, row[0])
                    want = folded.pop(sig, None)
                    if want is None:
                        found.append(((sig.top, sig.key),
                                      f"{sig}: in state but deleted or absent in the event log"))
                        continue
                    g, got_rev = st.values(row), int(row[-1])
                    g = {k: _Digest.of(v) for k, v in g.items()}  # as the replay's
                    w = self._full(sig.top, want[0])
                    diff = [k for k in w if not _same(w[k], g.get(k))]
                    if diff:
                        detail = ", ".join(f"{k}: state {g.get(k)!r} != replay {w[k]!r}"
                                           for k in diff)
                        found.append(((sig.top, sig.key), f"{sig}: {detail}"))
                    if want[1] != got_rev:
                        found.append(((sig.top, sig.key),
                                      f"{sig}: state rev {got_rev} != last event rev {want[1]}"))
            if self._by_rec:
                problems.extend(self._verify_entries(conn))
            if deep is not None:
                deep.extend(self._deep_audits(conn))
            conn.rollback()
        if meta_rev < max_rev:
            problems.append(f"ledger revision {format_rev(meta_rev)} is before the last "
                            f"event's {format_rev(max_rev)}")
        found.extend(((sig.top, sig.key), f"{sig}: in the event log but missing from state")
                     for sig in folded)
        found.sort(key=lambda p: p[0])  # stable: a record's lines keep their order
        problems.extend(msg for _, msg in found)
        return problems

    def _deep_audits(self, conn: Connection) -> list[tuple[bool, str]]:
        """:meth:`verify`'s ``deep`` lines of the audits whose ``extra`` nests too deep."""
        au = self.tables.audit
        out: list[tuple[bool, str]] = []
        for rev, raw in conn.execution_options(yield_per=5000).execute(
                select(au.c.rev, au.c.extra).where(au.c.extra.is_not(None))):
            if raw.count("[") + raw.count("{") <= MAX_NESTING:
                continue  # cannot nest deeper: not decoded
            try:
                n = nesting(loads(raw), SENDABLE_NESTING + 1)
            except RecursionError:  # past the stdlib's reach: past orjson's too
                n = SENDABLE_NESTING + 1
            if n > MAX_NESTING:
                first = conn.execute(select(func.min(self.tables.event.c.id)).where(
                    self.tables.event.c.rev == rev)).scalar()
                out.append(_deep_line(f"the audit of revision {format_rev(int(rev))} (event "
                                      f"{first}): its extra", n))
        return out

    def _verify_entries(self, conn: Connection) -> list[str]:
        """By-record layout: the event key entries against the events (at most 10 lines of
        each kind): reads by record (history, the later events a conflict check reads, a
        past state) go through the entries, so one missing or not matching its event
        makes them miss or misread events."""
        out: list[str] = []
        fix = "reads by record may miss events; back the ledger up and restore it"
        for top, t in self._sql.rec.items():
            for key, n in conn.exec_driver_sql(
                    f"SELECT s.key, s.{REC_N} FROM {t} s LEFT JOIN evt_event e ON e.id = "
                    f"s.{REC_N} WHERE s.{REC_N} > 0 AND (e.id IS NULL OR e.top IS NOT ? OR "
                    "e.key IS NOT s.key OR e.rev IS NOT s.rev) LIMIT 10", (top,)):
                out.append(f"{top} {key}: its event key entry {n} has no event {n} of that "
                           f"record and revision: {fix}")
        if not self._sql.rec:
            return out
        arms = " ".join(f"WHEN ? THEN NOT EXISTS (SELECT 1 FROM {t} s WHERE s.key = e.key "
                        f"AND s.{REC_N} = e.id AND s.rev = e.rev)"
                        for t in self._sql.rec.values())
        for i, top, key in conn.exec_driver_sql(
                f"SELECT e.id, e.top, e.key FROM evt_event e WHERE CASE e.top {arms} "
                "ELSE 1 END LIMIT 10", tuple(self._sql.rec)):
            out.append(f"{top} {key}: event {i} has no event key entry: {fix}")
        return out

    def close(self) -> None:
        """Close every pooled connection."""
        with self._pub_lock:
            proxy, self._pub = self._pub, None
            if proxy is not None:
                self._release(proxy)
        self.engine.dispose()

    @staticmethod
    def _pg_publisher(conn: Any) -> None:
        """Set up the publisher's PostgreSQL session (:meth:`_release` undoes it).

        - autocommit: :mod:`core.ledger.sql_batch` sends BEGIN with the reads and COMMIT with
          the writes in its pipelines (psycopg would wait for its own BEGIN and COMMIT in
          round trips of their own);
        - ``plan_cache_mode = force_generic_plan``: psycopg prepares the publish statements,
          but PostgreSQL plans a prepared statement again at each of its first executions and
          keeps doing so while a custom plan looks cheaper; planning the read and write
          statements cost more server time than running them (0.27 ms to plan the read, 0.10
          ms to run it). Their generic plans are the intended ones: every lookup is an index
          probe per key (:meth:`HotSql.by_keys`), whatever the parameters.
        """
        conn.autocommit = True
        with suppress(*_DB_ERRORS):  # PostgreSQL before 12: plans as before
            conn.execute("SET plan_cache_mode = force_generic_plan")

    def _release(self, proxy: Any) -> None:
        """Give the publisher's connection back to its pool as the pool made it."""
        with suppress(*_GUARDED, SQLAlchemyError):
            if self._pg:
                conn: Any = proxy.driver_connection
                conn.execute("RESET plan_cache_mode")
                conn.autocommit = False
            proxy.close()

    # -- writing -------------------------------------------------------------------------------

    def _batch(self, items: Sequence[tuple[Trans, str]], now: Rev | None,
               ) -> list[PubResult | Exception]:
        """One write transaction publishing ``items`` (see :mod:`core.ledger.sql_batch`) on
        the publisher's connection; commits at the end, else rolls back.

        The publish path's transaction without SQLAlchemy's Connection (measured: its
        connect/begin/commit/close cost as much CPU as a whole one-action publish), and
        without context managers: the hub's writer thread runs this for every group commit,
        and each generator-based ``with`` cost about 2 µs of its CPU (under the GIL). The
        connection is taken from the pool once and kept for every publish (the pool's
        checkout, reset-on-return rollback and checkin cost about a fifth of a one-action
        publish); a lock serializes this process's publishes on it, as the database's write
        lock would anyway. It is dropped (invalidated) when a rollback fails or the server
        closed it, replaced after ``engine.dispose()``, and returned by :meth:`close`. SQLite:
        ``BEGIN IMMEDIATE`` here is the write lock; its wait, every statement and the
        commit's fsync run with the GIL released (``sqlite3`` releases it around each step).
        PostgreSQL: the connection is kept in autocommit mode and
        :mod:`core.ledger.sql_batch` sends ``BEGIN ISOLATION LEVEL READ COMMITTED``, the
        advisory lock and the reads in one pipeline, and the writes with ``COMMIT`` in a
        second (psycopg would wait for its own BEGIN and COMMIT in round trips of their own).

        Raises:
            StorageError: the database failed; nothing of the batch was stored. Its cause is
                an IntegrityError when a uid was stored by another writer meanwhile.
        """
        clock = now_rev if now is None else (lambda: now)
        try:
            with self._pub_lock:
                proxy = self._pub
                if proxy is not None and self._pg \
                        and time.monotonic() - self._pub_used > _PING_IDLE:
                    proxy = self._ping_publisher(proxy)
                if proxy is None or self._pub_pool is not self.engine.pool:
                    proxy = self._new_publisher(proxy)
                dbapi: Any = proxy.driver_connection
                try:
                    if not self._pg:
                        dbapi.execute("BEGIN IMMEDIATE")
                    out = publish_batch(
                        dbapi, project=self._project, tables=self.tables, hot=self._sql,
                        items=items, clock=clock, lock_key=PG_LOCK_KEY, channel=PG_CHANNEL)
                    dbapi.commit()  # sqlite3 commits an open transaction even in autocommit
                except BaseException:
                    self._roll_back(proxy, dbapi)
                    raise
                finally:
                    self._pub_used = time.monotonic()
            return out
        except OutpostError:
            raise
        except _PUB_ERRORS as exc:
            raise self._storage_error("publishing transactions", exc) from exc

    def _ping_publisher(self, proxy: Any) -> Any:
        """The kept publisher connection (PostgreSQL), idle for a while: check it with one
        round trip. A connection the server closed meanwhile (PostgreSQL restarted, a
        failover, an idle-session timeout) is dropped, with every pooled connection made
        before (they were cut too): the publish then runs on a new one instead of failing
        (before session 10 the first publish after PostgreSQL came back failed). Returns the
        connection, or ``None`` to take a new one."""
        try:
            proxy.driver_connection.execute("SELECT 1")
            return proxy
        except _DB_ERRORS:
            self._pub = None
            with suppress(*_GUARDED, SQLAlchemyError):
                proxy.invalidate()
            self.engine.dispose()  # the pooled read connections were cut too
            return None

    def _new_publisher(self, old: Any) -> Any:
        """Take the publisher's connection from the pool (see :meth:`_batch`)."""
        if old is not None:  # engine.dispose() made a new pool: follow it
            self._release(old)
        self._pub_pool = self.engine.pool
        proxy = self._pub = self.engine.raw_connection()
        if self._pg:
            self._pg_publisher(proxy.driver_connection)
        return proxy

    def _roll_back(self, proxy: Any, dbapi: Any) -> None:
        """Roll the publisher's transaction back; drop the connection when that fails."""
        try:
            dbapi.rollback()
            broken = bool(getattr(dbapi, "closed", False))  # psycopg: connection lost
        except _DB_ERRORS:
            broken = True
        if broken:  # never reuse a connection in an unknown state
            self._pub = None
            with suppress(*_GUARDED, SQLAlchemyError):
                proxy.invalidate()

    def _publish(self, items: Sequence[tuple[Trans, str]], now: Rev | None,
                 ) -> list[PubResult | Exception]:
        """:meth:`_batch_retry`, with the transactions the database cannot store for their
        content (:class:`UnstorableError`) rejected one by one instead of failing the batch.

        On PostgreSQL a uid or key with a NUL character is refused before the batch (its
        reads would fail it; the schema refuses NUL in text, keys and refs). When the batch
        still fails with a data error (SQLSTATE class 22, e.g. a value too long), each
        transaction is published alone, in order, so that only the one at fault is rejected
        (each in its own commit: a rare path).
        """
        bad: dict[int, Exception] = {}
        if self._pg:
            for i, (t, _usr) in enumerate(items):
                why = _nul_in_ids(t)
                if why:
                    bad[i] = ValidationError(why)
        if bad:
            rest = [it for i, it in enumerate(items) if i not in bad]
            done = iter(self._publish(rest, now) if rest else [])
            return [bad[i] if i in bad else next(done) for i in range(len(items))]
        try:
            return self._batch_retry(items, now)
        except StorageError as exc:
            if not _is_data_error(exc):
                raise
            if len(items) == 1:
                return [self._unstorable(exc)]
        out: list[PubResult | Exception] = []
        for i, item in enumerate(items):
            try:
                out.extend(self._batch_retry([item], now))
            except StorageError as exc:
                if not _is_data_error(exc):
                    # the database failed meanwhile: the ones before are committed (their
                    # results stand), the rest get the error
                    out.extend(exc for _ in items[i:])
                    break
                out.append(self._unstorable(exc))
        return out

    def _unstorable(self, exc: StorageError) -> UnstorableError:
        orig = exc.__cause__
        orig = getattr(orig, "orig", None) or orig
        msg = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() \
            else type(orig).__name__
        # no database URL: the message goes to the user whose transaction it is
        err = UnstorableError(f"the ledger's database cannot store this transaction: {msg}: "
                              "change the value it names and publish it again; nothing of it "
                              "was applied")
        err.__cause__ = exc.__cause__
        return err

    def _batch_retry(self, items: Sequence[tuple[Trans, str]], now: Rev | None,
                     ) -> list[PubResult | Exception]:
        # the write lock makes this unreachable between our own writers, but a uid stored by
        # a writer that does not take the lock is reported as a duplicate on the second try
        dup = _DUP_ERRORS
        try:
            return self._batch(items, now)
        except StorageError as exc:
            if isinstance(exc.__cause__, dup) and any(t.uid for t, _ in items):
                return self._batch(items, now)
            raise

    def publish(self, trans: Trans, usr: str = "", now: Rev | None = None) -> PubResult:
        """Validate, check conflicts, assign a revision and store ``trans`` in one transaction.

        Args:
            trans: the transaction; its ``usr`` is ignored.
            usr: the authenticated user, recorded in the audit row.
            now: the clock reading the revision derives from (default: wall clock).

        Returns:
            The revision and events; ``dup=True`` with the original ones when the uid was
            applied before (nothing changes then).

        Raises:
            ValidationError: nothing applied.
            ConflictError: nothing applied; names every colliding record.
            StorageError: the database failed (disk full, read only, locked); nothing applied.
        """
        res = self._publish([(trans, usr)], now)[0]
        if isinstance(res, Exception):
            raise res
        return res

    def publish_many(self, trans: Sequence[tuple[Trans, str]],
                     now: Rev | None = None) -> list[PubResult | Exception]:
        """Publish several transactions, each on its own, in ONE durable commit.

        Each transaction is decided as if published alone after the ones before it (it sees
        their records, revisions and events); a rejected one (ValidationError, ConflictError)
        changes nothing and its error takes its place in the result. A uid given twice is
        applied once (the second gets ``dup=True``). A transaction the database refuses for
        its content gets an :class:`UnstorableError` (a ValidationError: rejected) and the
        others are published (see :meth:`_publish`). When the database itself fails, nothing
        is committed and every entry is that StorageError.
        """
        if not trans:
            return []
        try:
            return self._publish(trans, now)
        except StorageError as exc:
            return [exc for _ in trans]

    def replicate(self, rev: Rev, evs: Sequence[Event], audits: Sequence[Audit] = (), *,
                  conn: Connection | None = None) -> None:
        """Store events confirmed elsewhere and move the revision to ``rev``, atomically.

        Events at or before the current revision are skipped (a resend is harmless).

        Args:
            rev: the revision the ledger is at afterwards.
            evs: the events, in (rev, id) order.
            audits: their audit rows, when known (uids in them are recorded as applied: in
                ``evt_uid`` too unless :attr:`uid_table` is off).
            conn: a connection inside the caller's transaction (from :meth:`begin`): write
                with it and leave the commit to the caller.

        Raises:
            ValidationError: ``rev`` is before the current revision.
            StorageError: the database failed; nothing applied.
        """
        if conn is not None:
            with self._guard("replicating events"):
                self._replicate_in(conn, rev, evs, audits)
            return
        with self._guard("replicating events"), self._write() as c:
            self._replicate_in(c, rev, evs, audits)

    def _replicate_in(self, conn: Connection, rev: Rev, evs: Sequence[Event],
                      audits: Sequence[Audit]) -> tuple[Rev, int]:
        cur_rev, last_id = self._read_meta(conn)
        if rev < cur_rev:
            raise ValidationError(
                f"replicate to revision {format_rev(rev)} but the ledger is at "
                f"{format_rev(cur_rev)}: replicas only "
                "move forward; resync from the current revision")
        fresh = [e for e in evs if e.rev > cur_rev]
        if fresh and self._by_id:
            _check_order(fresh, last_id)
        for top in {e.top for e in fresh}:
            if top not in self.tables.states:
                self._project.model(top)  # raises with "did you mean"
        hot = self._sql

        def one(sql: str, params: Any) -> Any:
            return _run(conn, sql, params)

        def run(sql: str, params: Any) -> Any:
            if hot.pg or type(params) is not list or not sql.startswith("INSERT "):
                return _run(conn, sql, params)
            insert_rows(one, self._partial_sql, sql, params)  # SQLite: multi-row statements
            return None

        if fresh:
            run(hot.ins_event, event_rows(fresh))
            if hot.rec:  # by-record: each event's key entry (tables.by_record_ddl)
                for top, ents in key_entries(fresh).items():
                    run(hot.ins_key[top], ents)
        # audits without extra (a satellite's edits: all of them) bind no None for it (a None
        # parameter goes through sqlite3's adapter lookup, ~1,200 instructions)
        rows = [(a.rev, a.created, a.arrived, a.usr, a.uid) for a in audits if a.extra is None]
        if rows:
            run(hot.ins_audit_keep_plain, rows)
        if len(rows) < len(audits):
            run(hot.ins_audit_keep, [(a.rev, a.created, a.arrived, a.usr, dumps(a.extra), a.uid)
                                     for a in audits if a.extra is not None])
        if self.uid_table:  # not on a replica of data format 2: its audits hold the uids
            uids = [(a.uid, a.rev) for a in audits if a.uid]
            if uids:
                run(hot.ins_uid_keep, uids)
        write_states(plan_states(fresh), self.tables, hot, run, self._partial_sql, chunks)
        new_id = max(last_id, max((e.id for e in fresh), default=0))
        _run(conn, hot.set_meta, (rev, new_id))
        return rev, new_id


def _check_order(fresh: Sequence[Event], last_id: int) -> None:
    """Refuse events whose ids do not follow their revisions after ``last_id`` (the ledger's
    last event id): an SQLite ledger without the revision index reads by revision by id
    (:func:`core.ledger.tables.rev_bound`), which is exact only while they do. A hub's
    events always do (it numbers them in revision order); a ledger that must hold other
    events needs the revision index (:meth:`SqlLedger.add_rev_index`)."""
    ids = [e.id for e in fresh]
    revs = [e.rev for e in fresh]
    # sorted and stored under the primary key (a repeated id fails the insert): increasing
    if ids[0] > last_id and ids == sorted(ids) and revs == sorted(revs):
        return
    raise OrderError(
        f"replicate: events with ids {ids[0]}..{ids[-1]} after event {last_id} are not in "
        "revision and id order (ids must grow with revisions, as a hub numbers them): this "
        "ledger holds events its source lost or numbers again; nothing was applied",
        ids[0], ids[-1], last_id)


_BIG_TEXT = 4096


@dataclass(frozen=True, slots=True)
class _Digest:
    """A long text as :meth:`SqlLedger.verify` replays it: its length and a hash (the replay
    held every record's values: 1.2 GB of 800 KB notes, operator review 14)."""

    n: int
    h: bytes

    @staticmethod
    def of(v: Any) -> Any:
        """``v``, or its digest when it is a text longer than 4,096 characters."""
        if type(v) is not str or len(v) <= _BIG_TEXT:
            return v
        return _Digest(len(v), hashlib.blake2b(v.encode("utf-8", "surrogatepass"),
                                               digest_size=16).digest())

    def __repr__(self) -> str:
        return f"<text of {self.n:,} characters, blake2b {self.h.hex()[:12]}>"


def _digested(e: Event) -> Event:
    """``e`` with its long texts digested (:class:`_Digest`)."""
    assert e.arg is not None
    return Event(e.id, e.rev, e.top, e.key, e.cmd, {k: _Digest.of(v) for k, v in e.arg.items()})


def _same(a: Any, b: Any) -> bool:
    """Equal values, and a float zero of the same sign (``-0.0 == 0.0`` in Python)."""
    if a != b:
        return False
    return not (type(a) is float and type(b) is float and a == 0.0) \
        or math.copysign(1.0, a) == math.copysign(1.0, b)


SENDABLE_NESTING = 249
"""The deepest nesting of a field's value (or an audit's ``extra``) that every reply can carry:
orjson writes at most 254 levels, and a reply puts a value 5 levels down (``{"res": {"evs":
[{"arg": {field: value}}]}}``)."""


def _deep_line(what: str, n: int) -> tuple[bool, str]:
    if n > SENDABLE_NESTING:
        return False, (
            f"{what} nests lists and objects more than {SENDABLE_NESTING} levels deep: no "
            "reply can carry it, so every reader whose catch-up reaches it is closed with "
            "1011 (a hub before session 12 stored it; values past "
            f"{MAX_NESTING} levels are refused since): see docs/operations.md, \"Values "
            "nested too deep\", to repair the ledger")
    return True, (
        f"note: {what} nests lists and objects {n} levels deep, past the limit of "
        f"{MAX_NESTING} (a hub before session 12 stored it): it is still sent, but the same "
        "value published again is refused")


def _deep_event(e: Event) -> list[tuple[bool, str]]:
    """:meth:`SqlLedger.verify`'s ``deep`` lines of an event whose field values nest too
    deep."""
    out: list[tuple[bool, str]] = []
    for name, v in (e.arg or {}).items():
        n = nesting(v, SENDABLE_NESTING + 1)
        if n > MAX_NESTING:
            out.append(_deep_line(f"event {e.id} ({e.top} {e.key}, revision "
                                  f"{format_rev(e.rev)}): field {name!r}", n))
    return out
