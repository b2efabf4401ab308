"""The SQL ledger's tables, generated from a project.

Fixed tables (the same in every ledger):

==============  =================================================================================
``evt_event``   the event log: ``id`` (pk), ``rev``, ``top``, ``key``, ``cmd``, ``arg`` (JSON text)
``evt_audit``   one row per revision: ``rev`` (pk), ``created``, ``arrived``, ``usr``, ``extra``,
                ``uid``
``evt_uid``     applied transaction uids: ``uid`` (pk, so UNIQUE) → ``rev``
``evt_meta``    one row (``id`` = 1): ``rev``, ``last_id``, schema ``version``, ``definition``
==============  =================================================================================

and one latest-state table per model, ``st_<schema>_<model>`` (``st_field_site``): ``key``
(pk), one column per field with a fitting SQL type, and ``rev`` of the last change.

The tables are SQLAlchemy Core :class:`~sqlalchemy.Table` objects in a :class:`MetaData` of
their own per ledger (state tables depend on the project, so they cannot live in SQLModel's
process-wide metadata). Other parts (the satellite's queue) add their tables to the same
``metadata``. Publishing uses Core statements only: the ORM is off the hot path.

Values are stored as follows: ``str``, ``text``, ``date``, ``datetime`` and ``enum`` as text;
``int`` as BIGINT; ``float`` as DOUBLE; ``bool`` as BOOLEAN; ``ref`` and ``json`` as JSON text
(a ``ref`` may hold an integer or a string key, and JSON keeps which).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
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
from sqlalchemy.types import TypeEngine

from core.schema import Field, Model, Project

__all__ = [
    "LedgerTables",
    "StateTable",
    "build_tables",
    "dumps",
    "loads",
    "state_table_name",
]


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


def _sql_type(f: Field) -> TypeEngine[Any]:
    if f.type == "int":
        return BigInteger()
    if f.type == "float":
        return Double()
    if f.type == "bool":
        return Boolean(create_constraint=False)
    return Text()


def _identity(v: Any) -> Any:
    return v


def _to_json(v: Any) -> Any:
    return None if v is None else dumps(v)


def _from_json(v: Any) -> Any:
    return None if v is None else loads(v)


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

    def row(self, key: str, values: Mapping[str, Any], rev: int) -> dict[str, Any]:
        """The column values of a record (missing fields are NULL)."""
        out: dict[str, Any] = {"key": key, "rev": rev}
        for name, conv in zip(self.fields, self.to_db, strict=True):
            out[name] = conv(values.get(name))
        return out

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


def core_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    """The fixed tables (event, audit, uid, meta) added to ``metadata``; backups use these."""
    event = Table(
        "evt_event", metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("rev", BigInteger, nullable=False),
        Column("top", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("cmd", String(3), nullable=False),
        Column("arg", Text, nullable=True),
        Index("ix_evt_event_rev", "rev"),
        Index("ix_evt_event_sig", "top", "key", "rev"),
    )
    audit = Table(
        "evt_audit", metadata,
        Column("rev", BigInteger, primary_key=True, autoincrement=False),
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
    )
    meta = Table(
        "evt_meta", metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("rev", BigInteger, nullable=False),
        Column("last_id", BigInteger, nullable=False),
        Column("version", String(64), nullable=False),
        Column("definition", Text, nullable=False),
    )
    return event, audit, uid, meta


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
            else:
                to_db.append(_identity)
                from_db.append(_identity)
        cols.append(Column("rev", BigInteger, nullable=False))
        table = Table(state_table_name(m.topic), md, *cols)
        states[m.topic] = StateTable(m, table, tuple(m.field_names()), tuple(to_db),
                                     tuple(from_db))
    return LedgerTables(md, event, audit, uid, meta, states)
