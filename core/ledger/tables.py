"""The SQL ledger's tables, generated from a project.

Fixed tables (the same in every ledger):

==============  =================================================================================
``evt_event``   the event log: ``id`` (pk), ``rev``, ``top``, ``key``, ``cmd``, ``arg`` (JSON text)
``evt_audit``   one row per revision: ``rev`` (pk), ``created``, ``arrived``, ``usr``, ``extra``,
                ``uid``
``evt_uid``     applied transaction uids: ``uid`` (pk, so UNIQUE) → ``rev``
``evt_meta``    one row (``id`` = 1): ``rev``, ``last_id``, schema ``version``, ``definition``,
                ``ledger_id`` (the ledger's identity: 32 hex digits made when it is created),
                ``restored`` / ``restore_id`` (set by a restore: the backup's final revision and
                a random id of that restore; NULL when never restored), ``restores`` (every
                restore point of the ledger's history, oldest first: JSON ``[[rev, id], ...]``)
==============  =================================================================================

and one latest-state table per model, ``st_<schema>_<model>`` (``st_field_site``): ``key``
(pk), one column per field with a fitting SQL type, and ``rev`` of the last change.

``evt_meta.rev``/``last_id`` are set by ``replicate`` only: the ledger's revision and last
event id are the greater of them and the last ``evt_audit.rev`` / ``evt_event.id``
(:attr:`HotSql.read_meta`), so a publish writes no ``evt_meta`` row.

The tables are SQLAlchemy Core :class:`~sqlalchemy.Table` objects in a :class:`MetaData` of
their own per ledger (state tables depend on the project, so they cannot live in SQLModel's
process-wide metadata). Other parts (the satellite's queue) add their tables to the same
``metadata``. Publishing uses Core statements only: the ORM is off the hot path.

Values are stored as follows: ``str``, ``text``, ``date``, ``datetime`` and ``enum`` as text;
``int`` as BIGINT; ``float`` as DOUBLE; ``bool`` as BOOLEAN; ``ref`` and ``json`` as JSON text
(a ``ref`` may hold an integer or a string key, and JSON keeps which).

A float keeps its sign when it is zero (``-0.0``), as in the events: on SQLite a float column
is declared ``DOUBLE_BLOB`` (BLOB affinity: values stay as given; REAL affinity stores an
integral double as an integer, so ``-0.0`` read back as ``0.0``), and floats are read back
as floats; on PostgreSQL (DOUBLE PRECISION keeps the sign) the state read through JSON takes
them as text (JSON's ``-0`` reads back as the integer 0). SQLite ledgers made before keep
their REAL columns, which store ``-0.0`` as ``0.0`` (``verify()`` names such records).

SQLite layout (fewer B-trees, so fewer pages written and synced per commit): the integer
primary keys of ``evt_event`` and ``evt_audit`` are declared ``INTEGER`` there, which makes them
the rowid (no separate primary-key index); ``evt_uid`` and the state tables, keyed by text,
are ``WITHOUT ROWID`` (the row lives in the primary-key B-tree); and ``evt_event`` has no index
on ``rev`` (``ix_evt_event_rev``, one B-tree fewer per commit, since session 8): ids follow
revisions, so the events after a revision are an id range found by :func:`rev_bound`.
Databases made before keep their layout (the revision index included) and work unchanged;
:class:`~core.ledger.sql.SqlLedger` tells them apart by that index. PostgreSQL gets BIGINT,
ordinary tables and the revision index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy import event as sa_event
from sqlalchemy.types import TypeEngine, UserDefinedType

from core.schema import Field, Model, Project

__all__ = [
    "HotSql",
    "LedgerTables",
    "StateTable",
    "build_tables",
    "dumps",
    "hot_sql",
    "loads",
    "rec_table_name",
    "rev_bound",
    "state_table_name",
]


def _adapt_fast() -> None:
    """Register ``sqlite3`` adapters for ``None`` and ``bool`` (once per process).

    Python 3.11's ``sqlite3`` binds only exact ``int``, ``float``, ``str`` and ``bytearray``
    parameters directly; any other value (``None``, a ``bool``) goes through its adapter
    protocol, which, with no adapter registered, looks up ``PrepareProtocol.__adapt__`` and
    builds and discards a formatted AttributeError for every such parameter: about 0.7 µs
    (3,000 instructions) per ``None``. A publish binds several (a state row's unset fields,
    an audit's ``extra``): five per transaction of ``bench/hub.py``. A registered adapter is
    found in the adapters dict instead. What is bound is unchanged: ``None`` stays ``None``
    (NULL; the adapter is ``{}.get``, a C function returning ``None``), a ``bool`` becomes
    the ``int`` ``sqlite3`` binds for it anyway. An adapter registered before (by the
    application) is left alone.
    """
    proto = sqlite3.PrepareProtocol
    if (type(None), proto) not in sqlite3.adapters:
        none: dict[None, None] = {}
        sqlite3.register_adapter(type(None), none.get)
    if (bool, proto) not in sqlite3.adapters:
        sqlite3.register_adapter(bool, int)


_adapt_fast()


def dumps(value: Any) -> str:
    """JSON text of a value (orjson; the stdlib for what orjson refuses, e.g. huge ints)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        import json

        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of JSON text written by :func:`dumps`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        import json

        return json.loads(text)


def state_table_name(topic: str) -> str:
    """``st_`` plus the topic with the dot replaced: ``field.site`` → ``st_field_site``."""
    return "st_" + topic.replace(".", "_")


def rec_table_name(topic: str) -> str:
    """``sk_`` plus the topic with the dot replaced: in an SQLite ledger of the by-record
    layout, the B-tree holding a topic's state rows and its event key entries
    (:func:`by_record_ddl`)."""
    return "sk_" + topic.replace(".", "_")


REC_N = "_n"
"""The by-record table's second key column: 0 for the state row, the event's id for an event
key entry. It starts with ``_``, which no field name can."""

SIG_INDEX = "ix_evt_event_sig"
"""The index on ``evt_event (top, key, rev)``: in every layout but by-record (its absence is
how :class:`~core.ledger.sql.SqlLedger` tells that layout)."""


class _SqliteDouble(UserDefinedType[float]):
    """SQLite's float column: ``DOUBLE_BLOB`` has BLOB affinity ("BLOB" is checked before
    "DOUB"), so SQLite stores the value as given and ``-0.0`` keeps its sign."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "DOUBLE_BLOB"


def _sql_type(f: Field) -> TypeEngine[Any]:
    if f.type == "int":
        return BigInteger()
    if f.type == "float":
        return Double().with_variant(_SqliteDouble(), "sqlite")
    if f.type == "bool":
        return Boolean(create_constraint=False)
    return Text()


def _identity(v: Any) -> Any:
    return v


def _to_json(v: Any) -> Any:
    return None if v is None else dumps(v)


def _from_json(v: Any) -> Any:
    return None if v is None else loads(v)


def _from_float(v: Any) -> Any:
    # an int given for a float field is stored as given on SQLite (no REAL affinity); a
    # PostgreSQL double read as text (see hot_sql) is its shortest exact text
    return None if v is None else float(v)


def _from_bool(v: Any) -> Any:
    # SQLite hands back 0/1 when read through the driver
    return None if v is None else bool(v)


@dataclass(frozen=True, slots=True)
class StateTable:
    """The latest-state table of one model, with value converters per field.

    Attributes:
        model: the model.
        table: its table: ``key``, the fields in order, ``rev``.
        fields: field names in column order.
        to_db / from_db: per field, converts a field value to the column value and back.
    """

    model: Model
    table: Table
    fields: tuple[str, ...]
    to_db: tuple[Callable[[Any], Any], ...]
    from_db: tuple[Callable[[Any], Any], ...]
    # (field, converter or None for "as is"): row_tuple on the publish path
    store: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    plain: bool = False  # no field needs a converter (row_tuple's fast path)
    floats: frozenset[str] = frozenset()  # the float fields (read back as floats)

    def row(self, key: str, values: Mapping[str, Any], rev: int) -> dict[str, Any]:
        """The column values of a record (missing fields are NULL)."""
        out: dict[str, Any] = {"key": key, "rev": rev}
        for name, conv in zip(self.fields, self.to_db, strict=True):
            out[name] = conv(values.get(name))
        return out

    def row_tuple(self, key: str, values: Mapping[str, Any], rev: int) -> tuple[Any, ...]:
        """The column values in table order (``key``, fields..., ``rev``) for driver SQL."""
        get = values.get
        if self.plain:  # no converter: one C-level map over the field names
            return (key, *map(get, self.fields), rev)
        return (key, *[get(name) if conv is None else conv(get(name))
                       for name, conv in self.store], rev)

    def values(self, row: Any) -> dict[str, Any]:
        """Field values of a selected row (``key``, fields..., ``rev`` in column order)."""
        return {name: conv(row[i + 1])
                for i, (name, conv) in enumerate(zip(self.fields, self.from_db, strict=True))}


@dataclass(frozen=True, slots=True)
class LedgerTables:
    """All tables of one ledger, in one :class:`MetaData`."""

    metadata: MetaData
    event: Table
    audit: Table
    uid: Table
    meta: Table
    states: dict[str, StateTable]

    def state(self, topic: str) -> StateTable:
        return self.states[topic]


REV_INDEX = "ix_evt_event_rev"
"""The index on ``evt_event.rev``: on PostgreSQL, and in SQLite ledgers made before session
8 (its presence is how :class:`~core.ledger.sql.SqlLedger` tells the two SQLite layouts
apart)."""


def rev_bound(r: str) -> str:
    """SQLite: a scalar subquery giving the id of the last event at or before revision ``r``
    (an SQL expression, e.g. ``?1``), 0 when there is none, found without a revision index.

    Exact because ids follow revisions: an event stored later has a greater id and a
    revision at least as great (a publish numbers its events ``last_id + 1...`` at a
    revision after the last; ``replicate`` checks the same of what it stores), so
    ``rev(id)`` never decreases and "the events after revision R" are exactly those with
    ``id > rev_bound(R)``. A binary search over the rowid B-tree, in one statement: the
    interval ``(lo, hi)`` keeps every event with ``id <= lo`` at or before ``r`` and every
    one with ``id >= hi`` after it; each step looks at the first event at or after the
    middle (ids may have gaps) and halves the interval or moves ``hi`` down to that event:
    about two steps per halving, a few dozen rowid lookups (about 35 µs on 400,000
    events). Callers still filter on ``rev``, which costs nothing and keeps a read exact
    even on a ledger that broke the rule (``verify()`` reports such a ledger).
    """
    return ("(WITH RECURSIVE b(r, lo, hi) AS ("
            f"SELECT {r}, 0, COALESCE((SELECT max(id) FROM evt_event), 0) + 1 "
            "UNION ALL SELECT b.r, "
            "CASE WHEN e.id IS NOT NULL AND e.id < b.hi AND e.rev <= b.r THEN e.id "
            "ELSE b.lo END, "
            "CASE WHEN e.id IS NULL OR e.id >= b.hi THEN (b.lo + b.hi) / 2 "
            "WHEN e.rev <= b.r THEN b.hi ELSE e.id END "
            "FROM b LEFT JOIN evt_event e ON e.id = (SELECT id FROM evt_event "
            "WHERE id >= (b.lo + b.hi) / 2 ORDER BY id LIMIT 1) "
            "WHERE b.lo + 1 < b.hi) "
            "SELECT lo FROM b WHERE lo + 1 >= b.hi)")


# BIGINT everywhere but SQLite, where INTEGER PRIMARY KEY is the rowid itself (64-bit too)
_ROWID = BigInteger().with_variant(Integer(), "sqlite")


def core_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    """The fixed tables (event, audit, uid, meta) added to ``metadata``; backups use these."""
    event = Table(
        "evt_event", metadata,
        Column("id", _ROWID, primary_key=True, autoincrement=False),
        Column("rev", BigInteger, nullable=False),
        Column("top", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("cmd", String(3), nullable=False),
        Column("arg", Text, nullable=True),
        Index("ix_evt_event_sig", "top", "key", "rev"),
    )
    # the revision index: PostgreSQL only, made with the table. SQLite ledgers made since
    # session 8 have none (reads by revision go by id: see rev_bound); those made before
    # keep theirs, and SqlLedger reads them through it
    sa_event.listen(event, "after_create", DDL(  # type: ignore[no-untyped-call]
        f"CREATE INDEX {REV_INDEX} ON evt_event (rev)").execute_if(dialect="postgresql"))
    audit = Table(
        "evt_audit", metadata,
        Column("rev", _ROWID, primary_key=True, autoincrement=False),
        Column("created", BigInteger, nullable=False, default=0),
        Column("arrived", BigInteger, nullable=False, default=0),
        Column("usr", Text, nullable=False, default=""),
        Column("extra", Text, nullable=True),
        Column("uid", Text, nullable=False, default=""),
    )
    uid = Table(
        "evt_uid", metadata,
        Column("uid", String(200), primary_key=True),
        Column("rev", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    meta = Table(
        "evt_meta", metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("rev", BigInteger, nullable=False),
        Column("last_id", BigInteger, nullable=False),
        Column("version", String(64), nullable=False),
        Column("definition", Text, nullable=False),
        # added after the first release: NULL in ledgers made before, until a writer opens
        # them (SqlLedger gives them one then); readers of such a file get ""
        Column("ledger_id", String(64), nullable=True),
        # set by core.ledger.ops.restore (the restore point: the backup's final revision, and
        # an id of that restore, so a second restore of the same backup differs); NULL when
        # never restored. Added by the first writer of a ledger made before them
        Column("restored", BigInteger, nullable=True),
        Column("restore_id", String(64), nullable=True),
        # every restore point of the ledger's history, oldest first, as JSON text
        # ``[[rev, restore id], ...]`` (the last one is restored/restore_id): a backup carries
        # it, its restore appends its own (session 8). NULL: never restored, or restored by
        # session 7 (restored/restore_id is then the one point)
        Column("restores", Text, nullable=True),
        # the ledger's data format (LEDGER_FORMAT, session 13): NULL in a ledger last opened
        # by a writer before it; a writer records its own, every opening refuses a newer one
        Column("fmt", Integer, nullable=True),
    )
    return event, audit, uid, meta


LEDGER_FORMAT = 1
"""The newest data format of a ledger (``evt_meta.fmt``) this Outpost reads and writes:

===  ===========================================================================================
—    NULL: not recorded (a ledger last opened by a writer before session 13)
1    session 13 (every SQLite layout: by-record, by-id, rev-index; PostgreSQL)
===  ===========================================================================================

A change of the stored ledger an Outpost knowing this version would misread raises it
(docs/ledger.md, "Format version")."""


def build_tables(project: Project, metadata: MetaData | None = None) -> LedgerTables:
    """The tables of a ledger for ``project``.

    Args:
        project: the schema; one state table per model.
        metadata: where to add the tables (default: a new one).
    """
    md = metadata if metadata is not None else MetaData()
    event, audit, uid, meta = core_tables(md)
    states: dict[str, StateTable] = {}
    for m in project.models:
        cols: list[Column[Any]] = [Column("key", String(200), primary_key=True)]
        to_db: list[Callable[[Any], Any]] = []
        from_db: list[Callable[[Any], Any]] = []
        for f in m.fields:
            cols.append(Column(f.name, _sql_type(f), nullable=True))
            if f.type in ("json", "ref"):
                to_db.append(_to_json)
                from_db.append(_from_json)
            elif f.type == "bool":
                to_db.append(_identity)
                from_db.append(_from_bool)
            elif f.type == "float":
                to_db.append(_identity)
                from_db.append(_from_float)
            else:
                to_db.append(_identity)
                from_db.append(_identity)
        cols.append(Column("rev", BigInteger, nullable=False))
        table = Table(state_table_name(m.topic), md, *cols, sqlite_with_rowid=False)
        states[m.topic] = StateTable(
            m, table, tuple(m.field_names()), tuple(to_db), tuple(from_db),
            tuple((f, None if c is _identity else c) for f, c in zip(m.field_names(), to_db,
                                                                     strict=True)),
            all(c is _identity for c in to_db),
            frozenset(f.name for f in m.fields if f.type == "float"))
    return LedgerTables(md, event, audit, uid, meta, states)


def by_record_ddl(lt: LedgerTables, dialect: Any) -> list[str]:
    """SQLite: the statements making a ledger's event and state tables in the by-record
    layout (SQLite ledgers made since session 10; docs/ledger.md, "SQLite layout").

    ``evt_event`` has no ``(top, key, rev)`` index: each topic's latest-state rows and its
    event key entries share one ``WITHOUT ROWID`` B-tree, ``sk_<schema>_<model>``
    (:func:`rec_table_name`) keyed ``(key, _n)``: the state row at ``_n = 0`` (the state
    table's columns), one entry per event of the record at ``_n`` = the event's id (its
    ``rev``, the fields NULL). A commit then writes a record's state row and its event's
    entry to one leaf page instead of one of each B-tree. The state table's name is a view
    of the ``_n = 0`` rows, for readers (``SELECT ... FROM st_field_site``), which also takes
    inserts, updates and deletes (``INSTEAD OF`` triggers onto those rows); Outpost writes
    the B-tree. ``IF NOT EXISTS``: run inside the write lock, after checking that the file holds
    no event table (:class:`~core.ledger.sql.SqlLedger`)."""
    from sqlalchemy.schema import CreateTable

    out = [str(CreateTable(lt.event, if_not_exists=True).compile(dialect=dialect)).strip()]
    for topic, st in lt.states.items():
        t = _q(rec_table_name(topic))
        cols = []
        for c in st.table.columns:
            spec = c.type.compile(dialect=dialect)
            cols.append(f"{_q(c.name)} {spec}" + (" NOT NULL" if c.name in ("key", "rev")
                                                   else ""))
            if c.name == "key":
                # the key's columns first, in the key's order: a WITHOUT ROWID row stores
                # them first, and SQLite 3.40's integrity_check reads a NOT NULL column at
                # its declared position (rev declared after _n: "NULL value in ...rev")
                cols.append(f"{REC_N} INTEGER NOT NULL")
        out.append(f"CREATE TABLE IF NOT EXISTS {t} ({', '.join(cols)}, "
                   f"PRIMARY KEY (key, {REC_N})) WITHOUT ROWID")
        qs = [_q(c.name) for c in st.table.columns]
        v = _q(st.table.name)
        out.append(f"CREATE VIEW IF NOT EXISTS {v} AS SELECT {', '.join(qs)} "
                   f"FROM {t} WHERE {REC_N} = 0")
        # the view takes writes too (an operator's repair, a test's damage), onto the
        # (key, 0) rows; Outpost itself writes the B-tree
        trig = _q("tr_" + st.table.name)[:-1]
        out.append(f'CREATE TRIGGER IF NOT EXISTS {trig}_ins" INSTEAD OF INSERT ON {v} BEGIN '
                   f"INSERT INTO {t} (key, {REC_N}, {', '.join(qs[1:])}) VALUES (NEW.key, 0, "
                   f"{', '.join('NEW.' + c for c in qs[1:])}); END")
        out.append(f'CREATE TRIGGER IF NOT EXISTS {trig}_upd" INSTEAD OF UPDATE ON {v} BEGIN '
                   f"UPDATE {t} SET {', '.join(f'{c} = NEW.{c}' for c in qs)} "
                   f"WHERE key = OLD.key AND {REC_N} = 0; END")
        out.append(f'CREATE TRIGGER IF NOT EXISTS {trig}_del" INSTEAD OF DELETE ON {v} BEGIN '
                   f"DELETE FROM {t} WHERE key = OLD.key AND {REC_N} = 0; END")
    return out


@dataclass(frozen=True, slots=True)
class HotSql:
    """Pre-rendered driver SQL for the publish path, in the driver's parameter style.

    Core statements are compiled and cache-keyed on every execute; for a one-action publish
    that costs more than the database work, so the hot path sends these strings through
    ``Connection.exec_driver_sql`` inside the same transaction (positional parameters:
    ``?`` for sqlite3, ``%s`` for psycopg).
    """

    pg: bool
    read_meta: str
    set_meta: str
    find_uid: str
    find_uids: str
    ins_event: str
    ins_audit: str
    ins_uid: str
    ins_audit_keep: str
    ins_audit_keep_plain: str  # without extra (NULL): (rev, created, arrived, usr, uid)
    ins_uid_keep: str
    events_at: str
    usr_at: str  # the user of a revision's audit row (a resent uid's: rules.uid_clash)
    select_state: dict[str, str]
    json_state: dict[str, str]
    """PostgreSQL: :attr:`select_state` with the float columns as text, for reads through
    JSON (which would print ``-0`` for ``-0.0``, read back as the integer 0)."""
    delete_state: dict[str, str]
    upsert_state: dict[str, str]
    later: str
    meta_uids: str = ""
    rec: dict[str, str] = field(default_factory=dict)
    """By-record layout: per topic, its B-tree (:func:`rec_table_name`, quoted); empty in the
    others."""
    ins_key: dict[str, str] = field(default_factory=dict)
    """By-record layout: per topic, the insert of event key entries ``(key, rev, id)``."""
    ups_rec: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    """By-record layout: per topic, the parts of the publish's one write of its B-tree
    (``head``, the state row's ``VALUES`` row, the entry's, ``tail``): state rows
    (``key, fields..., rev`` parameters, ``_n = 0``, upserted) and event key entries
    (``key, rev, id`` parameters, the fields NULL literals) in one statement
    (:meth:`rec_write`)."""
    later_rec: dict[str, str] = field(default_factory=dict)
    """By-record layout: per topic, :attr:`later` read through the topic's event key entries
    (same parameters)."""
    cache: dict[Any, str] = field(default_factory=dict, compare=False)
    """Statements built per shape: the PostgreSQL one-statement write per batch shape, the
    ``IN`` lists per key count (bounded in size)."""

    def in_list(self, n: int) -> str:
        """`` = ANY(%s)`` on PostgreSQL, `` IN (?, ...)`` with ``n`` markers on SQLite."""
        return " = ANY(%s)" if self.pg else " IN (" + ",".join("?" * n) + ")"

    def meta_uids_in(self, n: int) -> str:
        """SQLite: :attr:`read_meta` with the applied uids among ``n`` (``?`` each), in one
        statement: rows of ``rev, last_id, uid, uid's rev`` (uid NULL when none is applied)."""
        if n == 0:
            return self.read_meta
        ck = ("meta_uids", n)
        sql = self.cache.get(ck)
        if sql is None:
            sql = (f"SELECT mr.rev, mr.last_id, u.uid, u.rev FROM ({self.read_meta}) mr "
                   f"LEFT JOIN evt_uid u ON u.uid{self.in_list(n)}")
            if len(self.cache) < 10_000:
                self.cache[ck] = sql
        return sql

    def in_params(self, keys: Sequence[str]) -> tuple[Any, ...]:
        return (list(keys),) if self.pg else tuple(keys)

    def by_keys(self, select: str, n: int) -> str:
        """``select`` (``... WHERE key``) for ``n`` keys given by :meth:`in_params`.

        On PostgreSQL one index probe per key, whatever the statistics say: ``key = ANY(..)``
        on a table that grew since its last ANALYZE (a new ledger, its first minutes) was
        planned as a scan of every row of the topic, O(ledger size) per publish. The keys
        are unnested and each is looked up in a LATERAL subquery that ``OFFSET 0`` keeps
        from being flattened back into the same plan.
        """
        ck = ("by_keys", select, n if not self.pg else 0)
        sql = self.cache.get(ck)
        if sql is not None:
            return sql
        if not self.pg:
            sql = select + self.in_list(n)
        else:
            head, _, tail = select.partition(" FROM ")
            sql = (f"SELECT s.* FROM unnest(%s::text[]) AS k(k) CROSS JOIN LATERAL "
                   f"(SELECT {head[len('SELECT '):]} FROM {tail} = k.k OFFSET 0) s")
        if len(self.cache) < 10_000:  # key counts vary: keep the cache bounded
            self.cache[ck] = sql
        return sql

    def rec_write(self, top: str, states: int, entries: int) -> str:
        """By-record layout: the statement writing ``states`` state rows and ``entries``
        event key entries of a topic (:attr:`ups_rec`), cached per shape."""
        ck = ("rec_write", top, states, entries)
        sql = self.cache.get(ck)
        if sql is None:
            head, srow, erow, tail = self.ups_rec[top]
            sql = head + ", ".join([srow] * states + [erow] * entries) + tail
            if len(self.cache) < 10_000:
                self.cache[ck] = sql
        return sql

    def later_from(self, top: str) -> str:
        """:attr:`later` for a topic (by-record: through its event key entries)."""
        return self.later_rec.get(top, self.later)

    def later_sql(self, n: int, top: str = "") -> str:
        """Events (with the audit's ``usr``) of a topic after a base on ``n`` keys, in order.

        Parameters: :meth:`later_params`.
        """
        if not self.pg:
            ck = ("later", n, top if self.rec else "")
            sql = self.cache.get(ck)
            if sql is None:
                sql = self.later_from(top) + self.in_list(n) + " ORDER BY e.rev, e.id"
                if len(self.cache) < 10_000:
                    self.cache[ck] = sql
            return sql
        return ("SELECT e.id, e.rev, e.top, e.key, e.cmd, e.arg, a.usr "
                "FROM unnest(%s::text[]) AS k(k) CROSS JOIN LATERAL "
                "(SELECT id, rev, top, key, cmd, arg FROM evt_event WHERE top = %s AND "
                "rev > %s AND key = k.k OFFSET 0) e "
                "LEFT JOIN evt_audit a ON a.rev = e.rev ORDER BY e.rev, e.id")

    def later_params(self, top: str, base: int, keys: Sequence[str]) -> tuple[Any, ...]:
        return (list(keys), top, base) if self.pg else (top, base, *keys)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hot_sql(lt: LedgerTables, dialect: str, *, by_id: bool = False,
            by_rec: bool = False) -> HotSql:
    """The :class:`HotSql` of a ledger's tables for ``dialect`` (``sqlite``/``postgresql``);
    ``by_id``: an SQLite ledger without the revision index (reads by revision go by id);
    ``by_rec``: an SQLite ledger of the by-record layout (:func:`by_record_ddl`: the state
    rows are written to, and read from, the topic's B-tree, with ``_n = 0``)."""
    pg = dialect == "postgresql"
    p = "%s" if pg else "?"

    def marks(n: int) -> str:
        return ",".join([p] * n)

    ev = "evt_event (id, rev, top, key, cmd, arg)"
    au = "evt_audit (rev, created, arrived, usr, extra, uid)"
    # the revision and last event id: a publish does not write evt_meta (one page and one
    # statement fewer per commit); its audit row and events carry them, and the last row
    # of a primary key is one index lookup. evt_meta keeps what replicate sets (a revision
    # may move past the last stored audit there) and what older versions wrote.
    big = "GREATEST" if pg else "max"
    read_meta = (f"SELECT {big}(m.rev, COALESCE((SELECT max(rev) FROM evt_audit), 0)) AS rev, "
                 f"{big}(m.last_id, COALESCE((SELECT max(id) FROM evt_event), 0)) AS last_id "
                 "FROM evt_meta m WHERE m.id = 1")
    sel, jsel, dele, ups = {}, {}, {}, {}
    rec, ins_key, later_rec, ups_rec = {}, {}, {}, {}
    later = ("SELECT e.id, e.rev, e.top, e.key, e.cmd, e.arg, a.usr FROM evt_event e "
             f"LEFT JOIN evt_audit a ON a.rev = e.rev WHERE e.top = {p} AND e.rev > {p} "
             "AND e.key")
    for topic, st in lt.states.items():
        t = _q(st.table.name)
        cols = [c.name for c in st.table.columns]
        sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in cols if c != "key")
        if by_rec:
            # the state row is the (key, 0) row of the topic's B-tree; the view named like
            # the state table (what other readers use) selects the same rows
            t = rec[topic] = _q(rec_table_name(topic))
            sel[topic] = (f"SELECT {', '.join(_q(c) for c in cols)} FROM {t} "
                          f"WHERE {REC_N} = 0 AND key")
            dele[topic] = f"DELETE FROM {t} WHERE {REC_N} = 0 AND key"
            ups[topic] = (f"INSERT INTO {t} (key, {REC_N}, "
                          f"{', '.join(_q(c) for c in cols[1:])}) "
                          f"VALUES ({p}, 0, {marks(len(cols) - 1)}) "
                          f"ON CONFLICT (key, {REC_N}) DO UPDATE SET {sets}")
            ins_key[topic] = f"INSERT INTO {t} (key, rev, {REC_N}) VALUES ({p}, {p}, {p})"
            ups_rec[topic] = (f"INSERT INTO {t} ({', '.join(_q(c) for c in cols)}, {REC_N}) "
                              "VALUES ", f"({marks(len(cols))}, 0)",
                              f"({p}, {'NULL, ' * (len(cols) - 2)}{p}, {p})",
                              f" ON CONFLICT (key, {REC_N}) DO UPDATE SET {sets}")
            # the events after a base: the record's key entries after it (the entry's rev),
            # each event by its id; e.top = ? only keeps the parameters of ``later``
            later_rec[topic] = (
                "SELECT e.id, e.rev, e.top, e.key, e.cmd, e.arg, a.usr FROM "
                f"{t} s JOIN evt_event e ON e.id = s.{REC_N} "
                f"LEFT JOIN evt_audit a ON a.rev = e.rev WHERE e.top = {p} AND s.rev > {p} "
                f"AND s.{REC_N} > 0 AND s.key")
            continue
        sel[topic] = f"SELECT {', '.join(_q(c) for c in cols)} FROM {t} WHERE key"
        jsel[topic] = "SELECT " + ", ".join(f"{_q(c)}::text AS {_q(c)}" if c in st.floats
                                            else _q(c) for c in cols) + f" FROM {t} WHERE key"
        dele[topic] = f"DELETE FROM {t} WHERE key"
        ups[topic] = (f"INSERT INTO {t} ({', '.join(_q(c) for c in cols)}) "
                      f"VALUES ({marks(len(cols))}) ON CONFLICT (key) DO UPDATE SET {sets}")
    return HotSql(
        pg=pg,
        read_meta=read_meta,
        set_meta=f"UPDATE evt_meta SET rev = {p}, last_id = {p} WHERE id = 1",
        find_uid=f"SELECT rev FROM evt_uid WHERE uid = {p}",
        find_uids="SELECT uid, rev FROM evt_uid WHERE uid",
        ins_event=f"INSERT INTO {ev} VALUES ({marks(6)})",
        ins_audit=f"INSERT INTO {au} VALUES ({marks(6)})",
        ins_uid=f"INSERT INTO evt_uid (uid, rev) VALUES ({p}, {p})",
        ins_audit_keep=f"INSERT INTO {au} VALUES ({marks(6)}) ON CONFLICT DO NOTHING",
        ins_audit_keep_plain=(f"INSERT INTO {au} VALUES ({marks(4)}, NULL, {p}) "
                              "ON CONFLICT DO NOTHING"),
        ins_uid_keep=f"INSERT INTO evt_uid (uid, rev) VALUES ({p}, {p}) ON CONFLICT DO NOTHING",
        events_at=(f"SELECT id, rev, top, key, cmd, arg FROM evt_event WHERE rev = {p} "
                   "ORDER BY id" if not by_id else
                   "SELECT id, rev, top, key, cmd, arg FROM evt_event WHERE id > "
                   f"{rev_bound('?1 - 1')} AND id <= {rev_bound('?1')} AND rev = ?1 "
                   "ORDER BY id"),
        usr_at=f"SELECT usr FROM evt_audit WHERE rev = {p}",
        select_state=sel, json_state=jsel, delete_state=dele, upsert_state=ups,
        later=later,
        rec=rec, ins_key=ins_key, later_rec=later_rec, ups_rec=ups_rec,
        # PostgreSQL: the revision and last id with the applied uids of a text[] (rows of
        # rev, last_id, uid, uid's rev; uid NULL when none is applied)
        meta_uids=(f"SELECT mr.rev, mr.last_id, u.uid, u.rev FROM ({read_meta}) mr "
                   "LEFT JOIN LATERAL "
                   "(SELECT s.* FROM unnest(%s::text[]) AS k(k) CROSS JOIN LATERAL "
                   "(SELECT uid, rev FROM evt_uid WHERE uid = k.k OFFSET 0) s) u ON true"
                   if pg else ""),
    )
