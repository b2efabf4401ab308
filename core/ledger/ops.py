"""Ledger operations: verify, backup to one file while running, restore into an empty ledger.

A backup is a SQLite file (format ``outpost-ledger-backup/1``) holding the event log, the
audit log, the applied uids, the schema (version and definition) and the ledger's id
(``backup_meta.ledger_id``; backups made before ids have none) and its restore points
(``backup_meta.restores``, JSON ``[[rev, id], ...]``, oldest first; none when never restored,
and none in backups made before session 8) and the ledger format of what it holds
(``backup_meta.ledger_format``: :data:`~core.ledger.tables.LEDGER_FORMAT` of the Outpost that
wrote it; none before session 14, read as format 1), all read in ONE read
transaction of the source (a snapshot: on SQLite a WAL read transaction, on PostgreSQL
``REPEATABLE READ``), so publishes can go on meanwhile and the backup is still consistent. It is
written to ``<path>.tmp``, synced, then renamed over ``path``: a crash never leaves a half
backup under the final name. State tables are not copied: they are derived, and restore
rebuilds them by replaying the events, then verifies. A restore with another schema version
than the backup's is a schema change: accepted when every event is valid under the new schema
(checked before the target is touched), refused naming the first event that is not. A NUL
character (U+0000) in the history's text (SQLite ledgers stored them before NUL was refused)
is not held against a schema change into SQLite; PostgreSQL cannot store one, so a restore
into it is refused naming the event, audit or uid (restore into SQLite instead). A backup file
damaged on disk is refused as such before the target is touched, and so is a backup of a
newer ledger format than this Outpost knows (naming both formats and the fix).

The hub exposes these as ``outpost-hub verify|backup|restore``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core.crashpoints import crash_point
from core.dburl import safe_url
from core.errors import ConfigError, OutpostError, SchemaError, StorageError, ValidationError
from core.ledger import sql
from core.ledger.dberrors import sqlite_code
from core.ledger.opsguard import (
    RESTORING,
    check_backup_dest,
    check_not_restoring,
    check_restore_target,
    check_restore_target_unused,
    restore_leftovers,
    sqlite_file,
)
from core.ledger.sql import PART_ROWS, SqlLedger, fetch_parts, restore_points
from core.ledger.tables import LEDGER_FORMAT, dumps, loads
from core.model import Audit, Cmd, Event
from core.revision import format_rev
from core.schema import Project, parse_project

__all__ = ["BACKUP_FORMAT", "BackupInfo", "backup", "backup_format", "restore", "verify"]

BACKUP_FORMAT = "outpost-ledger-backup/1"
_BATCH = 5000

_DDL = (
    "CREATE TABLE backup_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE evt_event (id INTEGER PRIMARY KEY, rev INTEGER NOT NULL, top TEXT NOT NULL,"
    " key TEXT NOT NULL, cmd TEXT NOT NULL, arg TEXT)",
    "CREATE INDEX ix_evt_event_rev ON evt_event (rev)",
    "CREATE TABLE evt_audit (rev INTEGER PRIMARY KEY, created INTEGER NOT NULL,"
    " arrived INTEGER NOT NULL, usr TEXT NOT NULL, extra TEXT, uid TEXT NOT NULL)",
    "CREATE TABLE evt_uid (uid TEXT PRIMARY KEY, rev INTEGER NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup holds: its revision, counts, schema version and ledger format."""

    path: Path
    rev: int
    events: int
    audits: int
    uids: int
    version: str
    ledger_format: int = LEDGER_FORMAT


def verify(ledger: SqlLedger, notes: list[str] | None = None) -> list[str]:
    """Replay the event log and compare with the state tables; one line per difference.

    Also one line per event field value or audit ``extra`` no reply can carry (nested past
    :data:`~core.ledger.sql.SENDABLE_NESTING` levels: stored before session 12 refused
    values past :data:`~core.schema.MAX_NESTING`); ``notes`` (when given) gets a line per
    such value still sent (nested past the limit, not past that).

    Raises:
        StorageError: ``ledger`` is the target of a restore that did not finish.
    """
    check_not_restoring(ledger)
    deep: list[tuple[bool, str]] = []
    problems = ledger.verify(deep)
    problems.extend(line for sendable, line in deep if not sendable)
    if notes is not None:
        notes.extend(line for sendable, line in deep if sendable)
    return problems


def key_notes(ledger: SqlLedger) -> list[str]:
    """Records of int-keyed topics under a key not in canonical form ("002", "-0"), taken
    before session 10 refused them: not a fault (they stay readable and editable), but each
    may be a double of the record under the canonical key. One line per topic."""
    out: list[str] = []
    for m in ledger.project.models:
        if m.key != "int":
            continue
        keys = ledger.keys(m.topic)
        odd = [k for k in keys if m.canonical_key(k) != k]
        if not odd:
            continue
        have = set(keys)
        doubled = [k for k in odd if m.canonical_key(k) in have]
        out.append(
            f"note: {m.topic}: {len(odd)} record{'' if len(odd) == 1 else 's'} under an int "
            "key not in canonical form "
            f"(e.g. {odd[0]!r}, canonical {m.canonical_key(odd[0])!r}"
            + (f"; {len(doubled)} beside a record under the canonical key: maybe one record "
               "made twice" if doubled else "")
            + "): they stay readable and editable; a new record under such a key is refused")
    return out


@contextmanager
def _snapshot(ledger: SqlLedger) -> Iterator[Connection]:
    """One read transaction: every read inside sees the same committed state."""
    with ledger.engine.connect() as conn:
        if ledger.engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def backup(ledger: SqlLedger, path: str | Path,
           notes: Mapping[str, str] | None = None) -> BackupInfo:
    """Write a consistent backup of ``ledger`` to one SQLite file while it keeps running.

    Args:
        ledger: the ledger to back up.
        path: the backup file; replaced atomically when it exists.
        notes: more ``backup_meta`` entries (names not used by the format), read back by
            :func:`backup_notes`: the hub's CLI records the users file of the ledger
            (``users_file``), so that a restore can carry the users over.

    Raises:
        StorageError: reading the ledger or writing the file failed; no file at ``path`` was
            changed.
    """
    dest = Path(path)
    check_not_restoring(ledger)  # a restore that did not finish: nothing to back up
    check_backup_dest(dest, ledger.engine.url.render_as_string())  # never the ledger itself
    tmp = dest.with_name(dest.name + ".tmp")
    _drop_tmp(tmp)
    t = ledger.tables
    counts = {"events": 0, "audits": 0, "uids": 0}
    try:
        out = sqlite3.connect(tmp)
        try:
            for ddl in _DDL:
                out.execute(ddl)
            with _snapshot(ledger) as conn:
                meta = conn.execute(select(t.meta.c.version, t.meta.c.definition)).one()
                # the revision and last id as the ledger reads them (a publish leaves
                # evt_meta's own columns behind: see HotSql.read_meta)
                rev, last_id = ledger._read_meta(conn)
                for name, q, sql in (
                    ("events", select(t.event).order_by(t.event.c.id),
                     "INSERT INTO evt_event VALUES (?,?,?,?,?,?)"),
                    ("audits", select(t.audit).order_by(t.audit.c.rev),
                     "INSERT INTO evt_audit VALUES (?,?,?,?,?,?)"),
                    ("uids", select(t.uid), "INSERT INTO evt_uid VALUES (?,?)"),
                ):
                    # by bytes too: 5,000 values of 800 KB were 4 GB (operator review 14)
                    # closed on an error too (a full disk): not left to the collector
                    with conn.execution_options(stream_results=True,
                                                max_row_buffer=PART_ROWS).execute(q) as res:
                        for part in fetch_parts(res):
                            rows = [tuple(r) for r in part]
                            out.executemany(sql, rows)
                            counts[name] += len(rows)
            out.executemany("INSERT INTO backup_meta VALUES (?, ?)", [
                ("format", BACKUP_FORMAT), ("version", meta.version),
                ("definition", meta.definition), ("rev", str(rev)),
                ("last_id", str(last_id)),
                # the format of what it holds: an Outpost that knows only older formats
                # refuses to restore it (this one and later: _open_backup)
                ("ledger_format", str(LEDGER_FORMAT)),
                # the ledger's identity: a restore of this file is the same ledger
                *([("ledger_id", ledger.ledger_id)] if ledger.ledger_id else []),
                # and its restore points: a restore of this file appends its own
                *([("restores", dumps([list(p) for p in ledger.restores]))]
                  if ledger.restores else []),
                *((f"note.{k}", v) for k, v in (notes or {}).items())])
            out.commit()
        finally:
            out.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except OutpostError:
        _drop_tmp(tmp)
        raise
    except (OSError, sqlite3.Error) as exc:
        _drop_tmp(tmp)
        raise StorageError(f"backup to {dest} failed: {exc}: {_backup_fix(exc, dest)}") from exc
    except SQLAlchemyError as exc:
        _drop_tmp(tmp)
        raise StorageError(f"backup of the ledger failed while reading it: {exc}: "
                           "retry; check the database if it persists") from exc
    return BackupInfo(dest, int(rev), counts["events"], counts["audits"], counts["uids"],
                      meta.version, LEDGER_FORMAT)


def _backup_fix(exc: BaseException, dest: Path) -> str:
    """The fix of a backup whose file could not be written: the file-size limit (``ulimit
    -f``: SQLite says "disk I/O error", session 16: the backup named no cause) or the full
    disk when it is one of those, else where to look."""
    limit = sql._file_size_limit()
    io = (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or (
        isinstance(exc, sqlite3.Error) and sqlite_code(exc) in (
            sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL))
    if limit and io:
        return (f"this process may write files of at most {limit:,} bytes (ulimit -f), or "
                "the disk is full: raise the limit for this command (or free space), then "
                "retry; no backup file was made")
    full = sql.full_disk(dest.parent / dest.name, "back up to a disk with room")
    if full:
        return f"{full}, then retry; no backup file was made"
    return "check that the directory exists, is writable and has free space, then retry"


def _drop_tmp(tmp: Path) -> None:
    """Remove a failed backup's temporary file and its rollback journal (``.tmp-journal``:
    left when the disk filled up mid-write)."""
    for p in (tmp, tmp.with_name(tmp.name + "-journal")):
        with suppress(OSError):
            p.unlink(missing_ok=True)


def backup_notes(path: str | Path) -> dict[str, str]:
    """The ``notes`` :func:`backup` wrote into the backup file ``path`` (``{}``: none, or a
    backup made before session 11).

    Raises:
        StorageError: ``path`` is not an Outpost backup.
    """
    src, meta = _open_backup(Path(path))
    src.close()
    return {k[5:]: v for k, v in meta.items() if k.startswith("note.")}


def backup_project(path: str | Path) -> Project:
    """The schema the backup file ``path`` was made with (its ``backup_meta`` definition):
    ``outpost-hub restore`` without ``--schema`` restores a backup with its own schema.

    Raises:
        StorageError: ``path`` is not an Outpost backup.
        SchemaError: its stored definition is not a valid schema.
    """
    src, meta = _open_backup(Path(path))
    src.close()
    try:
        data = loads(meta["definition"])
    except (KeyError, ValueError) as exc:
        raise SchemaError(f"{path}: the backup's schema cannot be read ({exc!r}): give the "
                          "schema file it was made with, --schema FILE") from exc
    return parse_project(data, f"the schema stored in backup {path}")


def _open_backup(path: Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    if not path.is_file():
        raise StorageError(f"backup file {path} not found: check the path")
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        meta = dict(src.execute("SELECT name, value FROM backup_meta").fetchall())
    except sqlite3.Error as exc:
        if "malformed" in str(exc) and _sqlite_file(path):
            raise _damaged(path, exc) from exc  # a backup cut short or overwritten
        raise StorageError(f"{path} is not an Outpost ledger backup ({exc}): give a file "
                           "written by `outpost-hub backup`") from exc
    if meta.get("format") != BACKUP_FORMAT:
        src.close()
        raise StorageError(f"{path}: backup format {meta.get('format')!r} is not "
                           f"{BACKUP_FORMAT!r}: restore it with the Outpost version that made it")
    try:
        _check_ledger_format(path, meta)
    except OutpostError:
        src.close()
        raise
    return src, meta


def backup_format(meta: Mapping[str, str]) -> int:
    """The ledger format of a backup's data (its ``backup_meta``): 1 when not recorded (a
    backup made before session 14, by an Outpost of format 1 or none)."""
    return int(meta.get("ledger_format") or 1)


def _check_ledger_format(path: Path, meta: Mapping[str, str]) -> None:
    """Refuse a backup of a newer ledger format than this Outpost knows, before anything is
    read into a target or created (docs/ledger.md, "Format version").

    Raises:
        ConfigError: naming both formats and the fix.
        StorageError: the recorded format is not a number (a damaged file).
    """
    try:
        have = backup_format(meta)
    except ValueError as exc:
        raise StorageError(f"{path}: its ledger format (backup_meta ledger_format "
                           f"{meta.get('ledger_format')!r}) is not a number: the file is "
                           "damaged; restore another backup; nothing was restored") from exc
    if have > LEDGER_FORMAT:
        raise ConfigError(
            f"backup {path} was written by a newer Outpost (ledger format {have}; this "
            f"Outpost reads formats up to {LEDGER_FORMAT}) and would be misread here: "
            "nothing was restored or changed. Restore it with that newer Outpost (or a later "
            "one)")


def restore(path: str | Path, url: str, project: Project,
            deep: list[str] | None = None) -> SqlLedger:
    """Restore a backup into an empty ledger at ``url``: events, audit, uids, then state.

    State is rebuilt by replaying the events, all in one transaction; then the ledger is
    verified. The restored ledger keeps the id of the ledger backed up (``ledger_id``): it
    is the same ledger, so satellites that synced with it up to the backup accept it. It
    records its restore point (:attr:`SqlLedger.restored`: the backup's final revision and a
    new restore id) after those the backup carried (:attr:`SqlLedger.restores`), which the
    hub serves: a satellite that synced past one of them since it last synced holds
    revisions a restore lost and stops syncing with it (core.satellite.machine). A backup
    made before ledger ids has none: the restored ledger keeps the new id it was made with.

    Args:
        path: a file written by :func:`backup`.
        url: the target database (``sqlite:///...`` or ``postgresql://...``).
        project: the schema. Another version than the backup's (a schema change) is
            accepted when every event of the backup is valid under it: the state is rebuilt
            from the events with the new schema's tables.
        deep: when given, gets :func:`verify`'s line of each event field value and audit
            ``extra`` of the backup no reply can carry (nested past
            :data:`~core.ledger.sql.SENDABLE_NESTING` levels, stored before session 12): a
            hub serving the restored ledger closes every catch-up that reaches one with
            1011 (wire review 13: restored without a word). Found by the restore's own
            verify, at no extra read.

    Returns:
        The restored ledger, open.

    Raises:
        SchemaError: the backup was made with another schema version and one of its events
            is not valid under ``project`` (named, with its revision); nothing was restored.
        StorageError: the target is not empty, the file is not a backup, the database failed,
            or verification found differences.
    """
    p = Path(path)
    check_restore_target(p, url)  # never the backup itself
    src, meta = _open_backup(p)
    try:
        try:
            before = restore_points(meta.get("restores"))
        except ValueError as exc:
            raise StorageError(f"{p}: its restore points (backup_meta restores) are damaged "
                               f"({exc}): restore another backup; nothing was restored") from exc
        change = meta["version"] != project.version
        pg = make_url(url).get_backend_name() == "postgresql"
        try:
            # a damaged file is named as such before the target is touched (read half-way
            # inside the target's transaction, its error named the target)
            _check_intact(src, p)
            if change or pg:
                # a schema change: the state is rebuilt from the events, so every event must
                # be valid under the new schema; PostgreSQL: no NUL in text. Checked before
                # the target database is touched
                _check_events(src, p, meta["version"], project, schema_change=change, pg=pg,
                              now_int=_now_int(meta, project) if change else frozenset())
            if pg:
                _check_nul_rows(src, p)  # the audits' user names and the uids
        except (sqlite3.Error, ValueError) as exc:
            raise _damaged(p, exc) from exc
        lid = meta.get("ledger_id", "")
        check_restore_target_unused(url, lid)  # never a ledger a hub made
        target = sqlite_file(url)
        new_file = target is not None and not (target.exists() and target.stat().st_size)
        try:
            led = SqlLedger(url, project)
        except OutpostError as exc:
            _raise_left(exc, url, new_file)
            raise
        marked = led.ledger_id.startswith(RESTORING)  # left by a restore that failed
        copied = False
        try:
            if led.rev() != 0 or led.last_id() != 0 or led.events(0, limit=1):
                if marked:  # what a restore copied before it failed (its verify): the steps
                    copied = True
                    raise StorageError(
                        f"refusing to restore into {safe_url(url)}: it holds what an earlier "
                        "restore copied before it failed (marked 'restore in progress'), so "
                        "it is not empty")
                raise StorageError(
                    f"refusing to restore into {safe_url(url)}: the ledger is not empty "
                    f"(at revision {format_rev(led.rev())}); restore into a new, empty database")
            # "restore in progress" until the very end (opsguard.RESTORING): a restore that
            # fails (a full disk, a crash) leaves a target no hub serves, and its retry is
            # accepted; a backup without an id keeps the id this target was made with
            final = lid or led.ledger_id.removeprefix(RESTORING)
            with led.begin() as conn:
                led.set_ledger_id(RESTORING + final, conn)
            marked = True
            if led.layout in ("by-id", "by-record") and _ids_out_of_order(src):
                # the layout without the revision index reads by id, exact only while ids
                # follow revisions (docs/ledger.md): a backup whose ids do not gets the index
                led.add_rev_index()
            try:
                _copy(src, led, int(meta["rev"]), RESTORING + final, before, p)
            except ValueError as exc:  # a row that is not what backup wrote: rolled back
                raise _damaged(p, exc) from exc
            copied = True  # committed: a restore into it again is refused (not empty)
            found: list[tuple[bool, str]] = []
            problems = led.verify(found)
            if deep is not None:
                deep.extend(line for sendable, line in found if not sendable)
            if problems:
                raise StorageError(f"restore of {p}: verify found {len(problems)} "
                                   f"difference(s): {'; '.join(problems[:5])}")
            with led.begin() as conn:
                led.set_ledger_id(final, conn)  # the restore is complete: the ledger is served
        except BaseException as exc:
            led.close()
            if isinstance(exc, OutpostError):
                _raise_left(exc, url, new_file or marked, copied)
            raise
        return led
    finally:
        src.close()


def _raise_left(exc: OutpostError, url: str, left: bool, copied: bool = False) -> None:
    """Raise ``exc`` again (its class) with what the failed restore left at ``url`` and how
    to free it (the space a full disk needs), when it left anything (else return);
    ``copied``: the backup's events were committed there (see ``restore_leftovers``)."""
    what = restore_leftovers(url, copied) if left else ""
    if not what or what in str(exc):
        return
    try:
        again = type(exc)(f"{exc}; {what}")
    except TypeError:  # pragma: no cover - an error class with other arguments
        return
    raise again from exc


def _ids_out_of_order(src: sqlite3.Connection) -> bool:
    """Whether an event of the backup has a smaller id than one of an earlier revision (the
    backup's revision index gives (rev, id) order; one pass, no sort)."""
    last = 0
    for (i,) in src.execute("SELECT id FROM evt_event ORDER BY rev, id"):
        if i < last:
            return True
        last = i
    return False


def _now_int(meta: Mapping[str, str], project: Project) -> frozenset[str]:
    """The topics whose key type is ``int`` in ``project`` and was not in the schema the
    backup (``meta``) was made with (all of its int-keyed topics when that cannot be read)."""
    ints = {m.topic for m in project.models if m.key == "int"}
    try:
        old = parse_project(loads(meta["definition"]), "the backup's schema")
    except (KeyError, ValueError, OutpostError):
        return frozenset(ints)
    return frozenset(t for t in ints if not (old.has(t) and old.model(t).key == "int"))


def _same_number(project: Project, live: Mapping[str, set[str]]) -> list[str]:
    """Per topic of ``live`` (its records' keys), the groups of keys that are one integer
    under ``project``'s int key ("007" and "7"), as words; the first :data:`REFUSED_SHOWN`."""
    out: list[str] = []
    for top in sorted(live):
        model = project.model(top)
        by: dict[str, list[str]] = {}
        for k in live[top]:
            by.setdefault(model.canonical_key(k), []).append(k)
        for canon, ks in sorted(by.items()):
            if len(ks) > 1:
                out.append(f"{top}: {', '.join(repr(k) for k in sorted(ks))} (all {canon})")
    return out


def _same_number_text(groups: list[str]) -> str:
    shown = groups[:REFUSED_SHOWN]
    more = f"; and {len(groups) - len(shown)} more" if len(groups) > len(shown) else ""
    return (
        f"{len(groups)} group{'s' if len(groups) != 1 else ''} of records would be one "
        f"number each under the new int key type: {'; '.join(shown)}{more}. A key type "
        "changed from str to int reads keys as integers, and such records would stay two "
        "records of one number (every satellite finds the one under the plain number). On "
        "the hub before the change, keep one record of each group: copy what the others hold "
        "into it, delete the others (`outpost pub TOPIC KEY del`), back up again and restore "
        "that backup; or keep key = \"str\" for the topic")


def _check_events(src: sqlite3.Connection, path: Path, version: str, project: Project, *,
                  schema_change: bool, pg: bool, now_int: frozenset[str] = frozenset()
                  ) -> None:
    """Check the backup's events before the target is touched.

    ``schema_change`` (``project`` has another version than the backup's): raise SchemaError
    naming the events ``project`` does not accept (the first :data:`REFUSED_SHOWN` and how
    many in all; session 15: only the first, one restore attempt per problem): an unknown
    topic or field, a value of another type, a ``new`` without a field the new schema
    requires (without a default). The rule refusing NUL characters (U+0000) in text is not
    applied to the history: SQLite ledgers stored them before it, and an SQLite target
    stores them again. A PostgreSQL target (``pg``, with or without a schema change) cannot:
    the first event holding a NUL is named, with the way out (restore into SQLite).

    ``now_int``: topics whose key type becomes ``int`` with the change: records under keys
    that are one integer ("007" and "7") are refused too, naming them (session 16: they were
    restored as two records, and only ``verify`` noted them)."""
    cur = src.execute("SELECT rev, top, key, cmd, arg FROM evt_event ORDER BY rev, id")
    refused: list[str] = []
    count = 0
    live: dict[str, set[str]] = {t: set() for t in now_int}
    for rev, top, key, cmd, arg_text in cur:
        keys = live.get(top)
        if keys is not None:  # the records there once every event is replayed
            if cmd == Cmd.DEL:
                keys.discard(key)
            elif cmd == Cmd.NEW:
                keys.add(key)
        if not schema_change and not (pg and ("\x00" in key or "\\u0000" in (arg_text or ""))):
            continue  # nothing to check (a NUL escaped in the JSON text: checked below)
        arg = None if arg_text is None else loads(arg_text)
        nul = "\x00" in key or _has_nul(arg)
        if nul and pg:
            raise StorageError(
                f"backup {path} cannot be restored into PostgreSQL: its event at revision "
                f"{format_rev(int(rev))} ({cmd} {top} {key[:40]!r}) holds a NUL character "
                f"(U+0000) in text, which an SQLite ledger stored before NUL was refused and "
                f"{_NO_PG}")
        if not schema_change:
            continue
        if nul:  # the history's NULs stay (SQLite stores them): check the rest
            key, arg = key.replace("\x00", "\ufffd"), _no_nul(arg)
        try:
            model = project.model(top)
            model.check_key(key)
            model.check_arg(Cmd(cmd), key, arg, stored=True)  # history: nested past the limit too
        except (ValidationError, ValueError) as exc:
            count += 1
            if len(refused) < REFUSED_SHOWN:
                what = f"{cmd} {top} {key}"
                refused.append(f"event at revision {format_rev(int(rev))} ({what}): "
                               f"{str(exc).removeprefix(what + ': ')}")  # named once
    groups = _same_number(project, live) if live else []
    if groups and not count:
        raise SchemaError(
            f"backup {path} (schema version {version}) cannot be restored with the schema "
            f"file's version {project.version}: " + _same_number_text(groups)
            + "; nothing was restored")
    if count:
        more = f"; and {count - len(refused)} more" if count > len(refused) else ""
        raise SchemaError(
            f"backup {path} (schema version {version}) cannot be restored with the schema "
            f"file's version {project.version}: {count} of its events "
            f"{'is' if count == 1 else 'are'} not valid under the new schema: "
            + "; ".join(refused) + more
            + (f". Also, {_same_number_text(groups)}" if groups else "")
            + ". Schema changes are add-only: every event the ledger ever stored must fit "
            "the new schema, also those of records changed or deleted since, so a field, "
            "enum value or model any event set cannot be removed or renamed. Change the "
            "schema so that it accepts every event (keep the old field or value, and stop "
            "using it: a label can say so; keep its type; give a new required field a "
            "default), or restore with the schema the backup was made with (its definition "
            "is in the backup's backup_meta table); nothing was restored")


#: how many refused events a schema change's refusal names (and how many in all)
REFUSED_SHOWN = 20


def _sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _damaged(path: Path, exc: BaseException) -> StorageError:
    why = next((ln.strip() for ln in str(exc).splitlines()
                if ln.strip() and not ln.startswith("***")), type(exc).__name__)
    return StorageError(f"backup {path} is damaged and cannot be restored ({why[:200]}): "
                        "restore another backup (an earlier one, or make a new one with "
                        "`outpost-hub backup`); nothing was restored")


def _check_intact(src: sqlite3.Connection, path: Path) -> None:
    """Raise StorageError when the backup file is damaged (SQLite's ``quick_check``: every
    page and row readable; one pass over the file, before the target is touched)."""
    rows = src.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        raise _damaged(path, sqlite3.DatabaseError(
            "; ".join(str(r[0]) for r in rows[:3]) or "quick_check found problems"))


def _read(src: sqlite3.Connection, path: Path, sql: str,
          params: tuple[Any, ...] = ()) -> Iterator[Any]:
    """The rows of ``sql`` on the backup; a read error names the backup as damaged (inside
    the target's transaction it was taken for the target's)."""
    try:
        cur = src.execute(sql, params)
    except sqlite3.Error as exc:
        raise _damaged(path, exc) from exc
    parts = fetch_parts(cur)  # by bytes too (operator review 14)
    while True:
        try:
            rows = next(parts, None)
        except sqlite3.Error as exc:
            raise _damaged(path, exc) from exc
        if not rows:
            return
        yield from rows  # a list: nothing left to close when the caller stops early


_NO_PG = ("PostgreSQL cannot store (no schema change helps: the history is kept as it is). "
          "Restore it into an SQLite ledger instead (--db FILE.db or sqlite:///FILE); nothing "
          "was restored")


def _check_nul_rows(src: sqlite3.Connection, path: Path) -> None:
    """Before a restore into PostgreSQL: raise StorageError naming the first audit (by
    revision) whose user name or transaction uid holds a NUL character (U+0000), else the
    first applied uid that does (an SQLite ledger stored them before NUL was refused;
    PostgreSQL refuses them, which failed the restore mid-way with its own error). An
    audit's ``extra`` is JSON text, where a NUL is escaped (``\\u0000``): PostgreSQL stores
    it, so it is not checked."""
    nul = "instr(CAST({} AS BLOB), x'00') > 0"
    row = src.execute(f"SELECT rev, usr, uid FROM evt_audit WHERE {nul.format('usr')} OR "
                      f"{nul.format('uid')} ORDER BY rev LIMIT 1").fetchone()
    if row is not None:
        rev, usr, uid = row
        what = (f"user name {str(usr)[:40]!r}" if "\x00" in str(usr)
                else f"transaction uid {str(uid)[:40]!r}")
        raise StorageError(
            f"backup {path} cannot be restored into PostgreSQL: its audit at revision "
            f"{format_rev(int(rev))} holds a NUL character (U+0000) in its {what}, which an "
            f"SQLite ledger stored before NUL was refused and {_NO_PG}")
    row = src.execute(f"SELECT uid, rev FROM evt_uid WHERE {nul.format('uid')} "
                      "ORDER BY rev, uid LIMIT 1").fetchone()
    if row is not None:
        uid, rev = row
        raise StorageError(
            f"backup {path} cannot be restored into PostgreSQL: its applied transaction uid "
            f"{str(uid)[:40]!r} (revision {format_rev(int(rev))}) holds a NUL character "
            f"(U+0000), which an SQLite ledger stored before NUL was refused and {_NO_PG}")


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_nul(x) for x in v)
    return False


def _no_nul(v: Any) -> Any:
    """``v`` with every NUL in its text replaced by U+FFFD (for checking everything else)."""
    if isinstance(v, str):
        return v.replace("\x00", "\ufffd")
    if isinstance(v, dict):
        return {_no_nul(k): _no_nul(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nul(x) for x in v]
    return v


def _copy(src: sqlite3.Connection, led: SqlLedger, final_rev: int, lid: str,
          before: tuple[tuple[int, str], ...], path: Path) -> None:
    ins = (pg_dialect.insert if led.engine.dialect.name == "postgresql"
           else sqlite_dialect.insert)
    with led.begin() as conn:
        if lid:
            led.set_ledger_id(lid, conn)
        done_rev = 0
        cur = _read(src, path, "SELECT id, rev, top, key, cmd, arg FROM evt_event "
                    "ORDER BY rev, id")
        batch: list[Event] = []
        held = 0  # characters of the batch's values

        def flush(upto: int) -> None:
            nonlocal done_rev, held
            held = 0
            audits = [Audit(r[0], r[1], r[2], r[3], None if r[4] is None else loads(r[4]), r[5])
                      for r in _read(src, path, "SELECT rev, created, arrived, usr, extra, "
                                     "uid FROM evt_audit WHERE rev > ? AND rev <= ? "
                                     "ORDER BY rev", (done_rev, upto))]
            led.replicate(upto, batch, audits, conn=conn)
            done_rev = upto
            batch.clear()

        for row in cur:
            e = Event(int(row[0]), int(row[1]), row[2], row[3], Cmd(row[4]),
                      None if row[5] is None else loads(row[5]))
            if (len(batch) >= _BATCH or held >= sql.PART_BYTES) and e.rev != batch[-1].rev:
                flush(batch[-1].rev)
            batch.append(e)
            held += len(row[5] or "")
        flush(max(final_rev, batch[-1].rev if batch else done_rev))
        crash_point("ops.restore.mid_copy")  # every event written, nothing committed
        # the restore point, after those the backup carried, served by the hub (evt.stat
        # "restores"): a replica that synced past it holds revisions this ledger lost, and
        # never syncs with it
        led.set_restored(done_rev, conn, before)
        uids: list[dict[str, Any]] = [{"uid": u, "rev": r} for u, r in
                                      _read(src, path, "SELECT uid, rev FROM evt_uid")]
        for i in range(0, len(uids), _BATCH):
            conn.execute(ins(led.tables.uid).on_conflict_do_nothing(), uids[i:i + _BATCH])
