"""The satellite's replica: the hub's confirmed events and state, and the local queue, in one
SQLite file.

The replica is the SQL ledger (:class:`core.ledger.sql.SqlLedger`) used as a
:class:`~core.ledger.protocols.Replicator`; the queue's tables (:mod:`core.satellite.queue`) sit
in the same file, so :meth:`Replica.apply` stores the hub's events, the new revision and the
acks/rejects of local transactions in ONE database transaction: a crash between them cannot
leave an accepted transaction pending (which would be harmless: it is resent and the hub acks the
uid again) or, worse, a pending one marked accepted without its events.

Durability: the file runs in WAL mode with ``synchronous=FULL``. WAL with ``NORMAL`` survives a
crash of the process but may lose the last commits on power loss or an OS crash; a field laptop
whose battery dies must not lose the edit the user just saved, and a commit with FULL costs one
fsync of the WAL (a few ms), far below the time a person takes to make an edit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from core.crashpoints import crash_point
from core.errors import LostRevisionsError, OrderError, StorageError, ValidationError
from core.ledger.protocols import Ledger
from core.ledger.sql import SqlLedger
from core.model import Audit, Event
from core.revision import Rev, format_rev
from core.satellite import dataformat
from core.satellite.api import ReceiptState
from core.satellite.machine import new_dir_fix
from core.satellite.order import KEY_INDEX, OLD_KEY_INDEX, key_order_sql
from core.satellite.queue import Queue
from core.schema import MAX_INT, Project
from core.wire import Ack, Reject

log = logging.getLogger("outpost.sat.replica")

__all__ = ["INT_KEYS", "Replica", "int_key", "read_only_url", "sqlite_url", "stored_version"]

INT_KEYS = "int_keys"
"""``sat_meta`` name of the greatest int key per int-keyed topic of the replica's events,
``{"rev": R, "max": {topic: "N"}}`` (as of the replica's revision R; decimal text: keys may
pass 64 bits), written in the commit of the events that move it (:meth:`Replica.apply`)."""


def int_key(key: str) -> int:
    """An int-keyed topic's key as a number (0 for one that is not an integer, or is one
    beyond 64 bits: a key the hub took before session 12 refused them, which the next key
    :meth:`Satellite.new_key` makes must not pass)."""
    if key.isascii() and (key.isdigit() or (key[:1] == "-" and key[1:].isdigit())):
        v = int(key)
        return v if -MAX_INT - 1 <= v <= MAX_INT else 0
    return 0


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def read_only_url(path: Path) -> str:
    """A URL that opens the SQLite file ``path`` read-only (``mode=ro``): SQLite refuses every
    write on it, and creates nothing when the file is missing. A file that does not exist yet
    (a satellite that never stored anything), or is still empty (a writer making it right now),
    gives an empty in-memory database instead.

    When no connection has the file open (no ``-wal`` file), a reader of a WAL database makes
    the empty ``-wal`` and the ``-shm`` index SQLite needs. In a directory this process may not
    write it cannot, and a reader running as another user than the file's owner should not
    (files of that user could stop the owner's app from writing; SQLite running as root
    hands them to the database's owner, so for ``sudo`` it is a precaution), and on a full
    disk it fails ("disk I/O error": `outpost status` could not even say how many edits were
    pending): in these cases the file is opened ``immutable`` instead (nothing is made; no
    writer has it open)."""
    if not path.exists() or path.stat().st_size == 0:  # a writer may be making it right now
        return "sqlite://"
    # SQLite's own URI, percent-encoded (the path may hold '?', '#' or '%'), as an SQLAlchemy
    # URL that renders it back unchanged
    query = {"uri": "true", "mode": "ro"}
    geteuid = getattr(os, "geteuid", None)
    other_user = geteuid is not None and path.stat().st_uid != geteuid()
    wal = Path(f"{path}-wal")
    if not wal.exists() and (other_user or not os.access(path.parent, os.W_OK)):
        query["immutable"] = "1"
    elif _disk_full(path.parent) and (not wal.exists() or wal.stat().st_size == 0):
        # an empty -wal (left by a reader that could not make its -shm, or a writer that
        # holds nothing uncheckpointed): the file holds everything, and no writer can add
        # to it without room to grow the -wal
        query["immutable"] = "1"
    url = URL.create("sqlite", database=path.absolute().as_uri(), query=query)
    return url.render_as_string(hide_password=False)


_SHM_ROOM = 256 * 1024
"""Bytes a reader needs free to make the ``-shm`` index (32 KiB) and an empty ``-wal``."""


def _disk_full(directory: Path) -> bool:
    """Whether ``directory``'s file system has too little room for a reader's ``-shm``."""
    try:
        st = os.statvfs(directory)
    except (AttributeError, OSError):  # no statvfs (Windows), or it failed: try the open
        return False
    return st.f_bavail * st.f_frsize < _SHM_ROOM


def _unfinished(path: Path, project: Project, immutable: bool = False) -> bool:
    """Whether the SQLite file ``path`` lacks a table of the replica or the queue, or the
    ledger's meta row (what a first open makes), read without changing it; ``immutable``:
    read as the reader will (:func:`read_only_url`: nothing made beside the file, e.g. on
    a full disk)."""
    from sqlalchemy import MetaData

    from core.ledger.tables import build_tables
    from core.satellite.queue import queue_tables

    tables = build_tables(project)
    want = set(tables.metadata.tables) | {t.name for t in queue_tables(MetaData())}
    try:
        with contextlib.closing(sqlite3.connect(
                f"{path.absolute().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}",
                uri=True)) as db:
            # a view too: the by-record layout's state tables are views (docs/ledger.md)
            have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE "
                                             "type IN ('table', 'view')")}
            if not want <= have:
                return True
            return bool(db.execute(f'SELECT count(*) FROM "{tables.meta.name}"').fetchone()[0] == 0)
    except sqlite3.Error:
        return False


def _being_created(path: Path) -> str:
    """Why a reader finds the replica ``path`` without all its tables: being created or
    its creation interrupted, or (session 16) copied without its write-ahead log: a file in
    WAL mode that holds no table at all, whose ``-wal`` is not beside it (or is empty). A
    writer creating it, or killed while it did, leaves its tables in the ``-wal`` beside
    it; a copy of ``satellite.db`` alone (the app running, or crashed, before its first
    checkpoint) left behind what the ``-wal`` held, the whole replica and every edit, and
    "run `outpost sync --once` to finish it" then made a new, empty replica."""
    wal = Path(f"{path}-wal")
    # empty: made by a reader (read_only_url) after the copy, not by a writer's tables
    if (_wal_mode(path) and (not wal.exists() or wal.stat().st_size == 0)
            and _no_tables(path)):
        return (f"the replica {path} is incomplete and its write-ahead log {wal.name} is not "
                "beside it: if this data directory (or satellite.db alone) was copied, the "
                f"copy left out {wal.name}, which holds the replica and the edits not yet "
                "synced. With Outpost not running there, copy the whole folder again, "
                f"{wal.name} and {path.name}-shm included (docs/guide.md, \"Moving or copying "
                "a data directory\"); do not run `outpost sync` here first: it would make a "
                "new, empty replica without those edits. If nothing was copied (its creation "
                "failed, e.g. on a full disk), run `outpost sync --once` to make it again")
    return (f"the data directory {path.parent} is being created, or its creation was "
            f"interrupted ({path.name} does not hold all its tables yet): wait a moment and "
            "retry; if it persists, run a command that writes once (e.g. `outpost sync "
            "--once`) to finish it. If this directory was copied, copy it whole again, with "
            f"{wal.name} (docs/guide.md, \"Moving or copying a data directory\")")


def _no_tables(path: Path) -> bool:
    """Whether the SQLite file ``path`` itself holds no table (read as it is: nothing made
    beside it)."""
    try:
        with contextlib.closing(sqlite3.connect(
                f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
    except sqlite3.Error:
        return False


def _wal_mode(path: Path) -> bool:
    """Whether the SQLite file ``path``'s header says WAL mode (bytes 18 and 19 are 2)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:16] == b"SQLite format 3\x00" and head[18:20] == b"\x02\x02"


def stored_version(path: Path) -> str | None:
    """The schema version the replica in the SQLite file ``path`` was made with (``None``:
    no file, or none stored yet), read without changing it and without a schema."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro",
                                                uri=True)) as db:
            row = db.execute("SELECT version FROM evt_meta WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Replica:
    """The replica ledger and the local queue of one satellite, in ``path``.

    Args:
        path: the SQLite file (created when missing).
        project: the schema.
        synchronous: SQLite's ``PRAGMA synchronous`` (see the module docstring for FULL).
        read_only: open the file read-only (:func:`read_only_url`): for readers beside the
            process that has the data directory open; every write fails.
    """

    def __init__(self, path: Path, project: Project, *, synchronous: str = "FULL",
                 read_only: bool = False):
        self.path = Path(path)
        self.project = project
        self._read_only = read_only
        dataformat.check(self.path)  # a newer Outpost's file: refused before it is opened
        url = read_only_url(self.path) if read_only else sqlite_url(self.path)
        # a reader looks BEFORE it opens whether the file is whole: opening one that is not
        # tries to make what is missing and fails ("attempt to write a readonly database"),
        # and a look only after that failure came too late when the writer finished in
        # between (seen under load: `outpost status` beside a starting `outpost sync`).
        # Tables and the meta row are only ever added, so a whole file stays whole.
        immutable = "immutable=1" in url
        if read_only and url != "sqlite://" and _unfinished(self.path, project, immutable):
            raise StorageError(_being_created(self.path))
        try:
            # a replica keeps the layout of sessions 8-9 (by-id): the desktop scans its
            # state tables whole, which the by-record layout interleaves with event key
            # entries (docs/ledger.md, "SQLite layout")
            self.ledger = SqlLedger(url, project, synchronous=synchronous, layout="by-id")
            # the applied uids are read from the audits, in every data format: a replica's
            # evt_uid rows (format 1 and before) only ever held what its audits hold
            self.ledger.uids_in_audits = True
            # said to a person at the app or the CLI, not a hub's operator (session 16)
            self.ledger.full_move = ("with Outpost closed, move the whole data directory "
                                     "to a disk with room")
            self.queue = Queue(self.ledger.engine, self.ledger.metadata, self.ledger.begin,
                               self.ledger._storage_error)
            if not read_only:
                self.queue.upgrade()
                self._mark_format()
        except StorageError as exc:
            # a reader cannot make the tables a writer killed while making them (or still
            # making them) left out: say so, not the SQL that failed on the read-only file
            if read_only and _unfinished(self.path, project, immutable):
                raise StorageError(_being_created(self.path)) from exc
            raise
        # the revision, kept: only apply() moves it (one process writes a data directory,
        # docs/satellite.md), and reading it from the database on every call cost the sync
        # loop a pooled connection, a BEGIN and a ROLLBACK five times per evt.sat reply
        self._version = self.data_version()  # before the first read of data
        self._rev: Rev = int(self.ledger.rev())
        # the greatest key of each int-keyed topic's events (new keys go above it), kept in
        # sat_meta by apply(): reading it from the events took one scan of the topic's index
        # (0.35-0.46 s at 1,000,000 events) on the UI thread at the first Ctrl+N of a run.
        # A topic missing here (a replica made before session 9) is scanned once, then kept.
        # The lock: apply() on the sync worker holds it until its commit, so a scan sees
        # either its events or a known topic that apply() then moves up
        self._int_tops = frozenset(m.topic for m in project.models if m.key == "int")
        self._int_lock = threading.Lock()
        self._int_max: dict[str, int] = {}
        self._int_dirty = False  # _int_max holds what sat_meta does not yet
        if self._int_tops:
            self._load_int_keys()
            if not read_only:
                self._index_int_keys()

    def _mark_format(self) -> None:
        """Record :data:`dataformat.FORMAT` in a file that records an older one, once its
        tables are upgraded (a write only at the first writable open by this Outpost). The
        upgrade to format 2 deletes the replica's ``evt_uid`` rows (its audits hold the same;
        1,000,000 rows: 0.12 s of CPU, ~55 MB of write-ahead log) in the commit that records
        the format, so a kill at any point leaves either the old file whole or the new one.
        Not upgraded (a full disk: :meth:`Queue.upgrade`, or no room for the commit) or not
        written: left as it is, ``evt_uid`` still written (:attr:`SqlLedger.uid_table`), and
        tried again at the next open."""
        have = 0
        try:
            with self.ledger.engine.connect() as conn:
                have = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
                conn.rollback()
            if self.queue.fast and have < dataformat.FORMAT:
                with self.ledger.begin() as conn:
                    uid = _quote(self.ledger.tables.uid.name)
                    if have < dataformat.UIDS_DROPPED and conn.exec_driver_sql(
                            f"SELECT 1 FROM {uid} LIMIT 1").first() is not None:
                        conn.exec_driver_sql(f"DELETE FROM {uid}")  # (a new file has none)
                        crash_point("sat.mid_format_upgrade")
                    conn.exec_driver_sql(f"PRAGMA user_version = {dataformat.FORMAT}")
                have = dataformat.FORMAT
        except (StorageError, SQLAlchemyError):
            pass
        # a file still of an older format (not upgraded) gets evt_uid rows as before: an
        # older Outpost opening it again reads them
        self.ledger.uid_table = have < dataformat.UIDS_DROPPED

    def _index_int_keys(self) -> None:
        """An index of each int-keyed topic's state table in key order (by number,
        :func:`core.satellite.order.key_order_sql`): the app's table reads a million keys in
        that order as fast as in the order of their text. Made in a new replica at once, in
        a replica made before session 13 (whose index, if any, ordered keys beyond 64 bits
        by their text) at its first writable open (about 0.2-0.5 s of CPU per 1,000,000
        records, once); a reader of a replica without it sorts instead. Not made (a nearly
        full disk: the build needs about the index's size in the write-ahead log): the old
        index stays, the replica opens and works (readers sort), and it is tried again at
        the next open (core review 13: the build failed the whole open, so pending edits
        could not be synced from a disk the older Outpost wrote on fine)."""
        try:
            with self.ledger.begin() as conn:
                for top in sorted(self._int_tops):
                    name = self.ledger.tables.state(top).table.name
                    conn.exec_driver_sql(
                        f"CREATE INDEX IF NOT EXISTS {_quote(KEY_INDEX.format(table=name))} "
                        f"ON {_quote(name)} ({key_order_sql(True)})")
                    # the index of sessions 10-12 (keys beyond 64 bits in their text's
                    # order), dropped once the new one is there
                    conn.exec_driver_sql(
                        f"DROP INDEX IF EXISTS {_quote(OLD_KEY_INDEX.format(table=name))}")
        except (StorageError, SQLAlchemyError) as exc:
            log.warning("the key-order index of %s was not made (%s); it is tried again at "
                        "the next open", self.path, exc)

    def _load_int_keys(self) -> None:
        kept = self.queue.get_meta(INT_KEYS)
        if isinstance(kept, dict) and kept.get("rev") == self._rev:
            # a greatest key beyond 64 bits (kept before session 12): scanned again
            self._int_max = {t: int(v) for t, v in (kept.get("max") or {}).items()
                             if t in self._int_tops and int(v) <= MAX_INT}
        if self._int_max.keys() >= self._int_tops:
            return
        ev = _quote(self.ledger.tables.event.name)
        with self.ledger.engine.connect() as conn:
            empty = conn.exec_driver_sql(f"SELECT 1 FROM {ev} LIMIT 1").first() is None
            conn.rollback()
        if empty:  # a new replica: every topic known from its first event on
            self._int_max = dict.fromkeys(self._int_tops, 0)
            self._int_dirty = True

    def unknown_int_tops(self) -> list[str]:
        """The int-keyed topics whose greatest key is not kept yet (a replica made before
        session 9): :meth:`greatest_int_key` scans their events once."""
        return sorted(self._int_tops - self._int_max.keys())

    def greatest_int_key(self, top: str) -> int:
        """The greatest integer key among the replica's events of the int-keyed topic
        ``top`` (records deleted since count; 0 when none is positive): kept, so no read,
        but once for a topic a replica made before it was kept (one scan of the topic's
        events, then stored)."""
        got = self._int_max.get(top)
        if got is not None:
            return got
        with self._int_lock:  # apply() on the sync worker adds to it meanwhile
            got = self._int_max.get(top)
            if got is None:
                got = self._int_max[top] = self._scan_int_key(top)
                self._int_dirty = True
                if not self._read_only:
                    try:
                        with self.ledger.begin() as conn:
                            self._store_int_keys(conn, self._rev)
                    except (SQLAlchemyError, sqlite3.Error, StorageError):
                        # e.g. a full disk: the key is known all the same (kept, and
                        # stored with the next write), so Ctrl+N works as it did before
                        pass
        return got

    def _scan_int_key(self, top: str) -> int:
        ev = _quote(self.ledger.tables.event.name)
        best = 0
        with self.ledger.engine.connect() as conn:
            # one scan of the (top, key, rev) index; SQLite's CAST stops at 2**63 - 1
            got = conn.exec_driver_sql(
                f"SELECT max(CAST(key AS INTEGER)) FROM {ev} WHERE top = ?", (top,)).scalar()
            if got is not None:
                best = max(best, int(got))
            if best >= MAX_INT:  # a key of 19 digits or more: compared in Python
                # (CAST gives 2**63 - 1 for a key beyond: only the shorter keys count)
                got = conn.exec_driver_sql(
                    f"SELECT max(CAST(key AS INTEGER)) FROM {ev} WHERE top = ? "
                    "AND length(key) < 19", (top,)).scalar()
                best = max(0, int(got or 0))
                for (k,) in conn.exec_driver_sql(
                        f"SELECT DISTINCT key FROM {ev} WHERE top = ? AND length(key) >= 19",
                        (top,)):
                    best = max(best, int_key(k))
            conn.rollback()
        return best

    def int_keys_used(self, top: str, keys: Sequence[int]) -> set[int]:
        """Those of ``keys`` that some event of the int-keyed topic ``top`` has (records
        deleted since count): one look-up of the (top, key, rev) index each."""
        ev = _quote(self.ledger.tables.event.name)
        out: set[int] = set()
        with self.ledger.engine.connect() as conn:
            for k in keys:
                if conn.exec_driver_sql(f"SELECT 1 FROM {ev} WHERE top = ? AND key = ? LIMIT 1",
                                        (top, str(k))).first() is not None:
                    out.add(k)
            conn.rollback()
        return out

    def greatest_int_key_below(self, top: str, bound: int) -> int:
        """The greatest integer key below ``bound`` (at most 2**63 - 1) among the events of
        the int-keyed topic ``top`` (0 when none is positive): one scan of the topic's keys
        in the index (only when the kept greatest key is at the top of the range:
        ``Satellite.new_key``)."""
        ev = _quote(self.ledger.tables.event.name)
        with self.ledger.engine.connect() as conn:
            # canonical keys shorter than the bound's decimal text are below it, and those
            # of its length compare as text; SQLite's CAST stops at 2**63 - 1
            got = conn.exec_driver_sql(
                f"SELECT max(CAST(key AS INTEGER)) FROM {ev} WHERE top = ? AND "
                "(length(key) < ? OR (length(key) = ? AND key < ?))",
                (top, len(str(bound)), len(str(bound)), str(bound))).scalar()
            conn.rollback()
        v = int(got) if got is not None else 0
        return v if 0 < v < bound else 0

    def _note_int_keys(self, evs: Sequence[Event]) -> None:
        """Move the kept greatest keys up with ``evs`` (under ``_int_lock``)."""
        known, tops = self._int_max, self._int_tops
        for e in evs:
            if e.top in tops:
                cur = known.get(e.top)
                # a key shorter than the greatest's decimal text cannot be greater
                if cur is not None and len(e.key) >= len(str(cur)):
                    v = int_key(e.key)
                    if v > cur:
                        known[e.top] = v
                        self._int_dirty = True

    def _store_int_keys(self, conn: Any, rev: Rev) -> None:
        # one statement (Queue.set_meta's delete and insert through SQLAlchemy cost about
        # 0.2 ms: written with every batch a catch-up stores)
        value = orjson.dumps({"rev": rev, "max": {t: str(v) for t, v in
                                                  sorted(self._int_max.items())}}).decode()
        conn.exec_driver_sql(
            f"INSERT OR REPLACE INTO {_quote(self.queue.meta.name)} (name, value) VALUES (?, ?)",
            (INT_KEYS, value))
        self._int_dirty = False

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: moves when another connection commits (a
        read-only replica has one connection: see :meth:`changed`)."""
        with self.ledger.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())

    def changed(self) -> bool:
        """Whether another process committed since this replica was opened: a read-only
        reader's reads then may not fit together (a reply stored between two of them) and
        should be read again."""
        return self.data_version() != self._version

    @property
    def read(self) -> Ledger:
        """The replica as a read-only ledger."""
        led: Ledger = self.ledger
        return led

    def rev(self) -> Rev:
        """The replica's revision (as of the last :meth:`apply` that committed)."""
        return self._rev

    def apply(self, rev: Rev, evs: Sequence[Event], acks: Sequence[Ack | Audit] = (),
              rejects: Sequence[Reject] = (), audits: Sequence[Audit] = (),
              meta: Mapping[str, Any] | None = None,
              seq_revs: Mapping[int, int] | None = None) -> None:
        """Store the hub's events up to ``rev``, the outcomes of local transactions and
        ``meta`` (``sat_meta`` values), in one commit. Events at or before the replica's
        revision are skipped (duplicates). ``seq_revs``: ``seq -> rev`` of every ack's
        receipt, when the caller knows each one's queue ``seq`` and no uid is acked twice
        (:meth:`Queue.accept_seqs`); else the acks are stored by uid.

        Raises:
            LostRevisionsError: the hub's events reuse event ids this replica holds: it
                holds revisions the hub lost (a restore) or numbers again.
            ValidationError: the hub's events are not in order among themselves (an id twice,
                ids or revisions going back): the hub's fault; nothing stored.
        """
        _check_hub_order(evs)
        try:
            self._apply(rev, evs, acks, rejects, audits, meta, seq_revs)
        except OrderError as exc:
            ids = (f"event {exc.first}" if exc.first == exc.last
                   else f"events {exc.first}..{exc.last}")
            # the hub may have applied pending edits sent with this request: they still show
            # pending here (nothing of the reply was stored); retyping them would double them
            done = (f"the hub had already applied {len(acks)} of the edits shown pending "
                    "here (its reply acknowledged them; nothing of it was stored)" if acks else
                    "edits shown pending here may already be on the hub (it may have applied "
                    "them before its reply could be stored)")
            raise LostRevisionsError(
                f"the hub sent {ids}, but this replica already holds "
                f"events up to {exc.after}: this replica holds revisions the hub lost "
                "or reused (a hub restored from an older backup, or another ledger); nothing "
                f"of them was stored. {done[0].upper()}{done[1:]}: do not make them again. "
                "Use a new data directory for this hub (outpost connect URL --data NEWDIR), "
                "sync it; "
                + new_dir_fix(lost=True, rejected=self.queue.count(ReceiptState.REJECTED))
                .partition("; ")[2] + " (it skips the edits the hub holds)") from exc

    def _apply(self, rev: Rev, evs: Sequence[Event], acks: Sequence[Ack | Audit],
               rejects: Sequence[Reject], audits: Sequence[Audit],
               meta: Mapping[str, Any] | None, seq_revs: Mapping[int, int] | None) -> None:
        if not self._int_tops:
            self._apply_in(rev, evs, acks, rejects, audits, meta, seq_revs)
            return
        with self._int_lock:  # until the commit: see greatest_int_key
            self._apply_in(rev, evs, acks, rejects, audits, meta, seq_revs)

    def _apply_in(self, rev: Rev, evs: Sequence[Event], acks: Sequence[Ack | Audit],
                  rejects: Sequence[Reject], audits: Sequence[Audit],
                  meta: Mapping[str, Any] | None, seq_revs: Mapping[int, int] | None) -> None:
        with self.ledger.begin() as conn:
            cur = self.ledger.rev_in(conn)
            fresh = [e for e in evs if e.rev > cur]
            new_rev = max(rev, cur)
            if new_rev > cur or fresh or audits:
                self.ledger.replicate(new_rev, fresh, audits, conn=conn)
                new_rev = self.ledger.rev_in(conn)  # as rev() reads it (audits count too)
            if self._int_tops:
                self._note_int_keys(fresh)
                if self._int_max and (self._int_dirty or new_rev != cur):
                    self._store_int_keys(conn, new_rev)  # kept as of the new revision
            if acks:
                if seq_revs is not None and len(seq_revs) == len(acks) and self.queue.fast:
                    self.queue.accept_seqs(seq_revs, [a.uid for a in acks], conn)
                else:
                    self.queue.accept_many([(a.uid, a.rev) for a in acks], conn)
            for r in rejects:
                # an edit the hub applied all the same (a daql hub's, over a colleague's
                # change) is stored at its own revision, marked so: its event is the user's own
                if self.queue.reject(r.uid, r.err, r.conflicts, conn, rev=r.rev or new_rev,
                                     own=bool(r.rev)):
                    # the same fields saved again offline, rejected for the same change: one
                    # conflict, the later save's (its values would have won)
                    self.queue.fold_into(r.uid, r.conflicts, conn)
            for name, value in (meta or {}).items():
                self.queue.set_meta(name, value, conn)
        self._rev = new_rev  # committed (one int: read on other threads without a lock)
        if acks or rejects:
            self.queue.touch()  # after the commit (Queue.version)

    def close(self) -> None:
        self.ledger.close()


def _check_hub_order(evs: Sequence[Event]) -> None:
    """Refuse events of one hub message that are not in order among themselves: a hub numbers
    its events one by one in revision order. Before session 11 an id sent twice failed the
    insert and was reported as "UNIQUE constraint failed … check the disk if it persists",
    and ids or revisions going back as revisions the hub lost: this names the hub's fault."""
    if len(evs) < 2:
        return
    ids = [e.id for e in evs]
    revs = [e.rev for e in evs]
    if all(a < b for a, b in pairwise(ids)) and all(a <= b for a, b in pairwise(revs)):
        return
    for i in range(1, len(evs)):
        a, b = evs[i - 1], evs[i]
        if b.id == a.id:
            what = f"event id {b.id} twice"
        elif b.id < a.id:
            what = f"event id {b.id} after {a.id}"
        elif b.rev < a.rev:
            what = f"event {b.id} of revision {format_rev(b.rev)} after {format_rev(a.rev)}"
        else:
            continue
        break
    raise ValidationError(
        f"the hub sent {what} in one message: its events are not in order (ids and revisions "
        "grow), a fault of the hub (a bug in it, or a server that is not an Outpost or daql "
        "hub), not of this computer; nothing of it was stored and sync retries later; tell "
        "the hub's operator if it persists")
