"""SQLite ledgers in the layouts made before session 10, for tests that run over every
layout (docs/ledger.md, "SQLite layout")."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine, text

from core.ledger.tables import REV_INDEX, core_tables

LAYOUTS = ["by-record", "by-id", "rev-index"]
"""The SQLite layouts: made since session 10 (a topic's state rows and event key entries in
one B-tree, no revision index), by sessions 8 and 9 (the ``(top, key, rev)`` index, no
revision index) and before (both indexes)."""


def make_sqlite_ledger(path: Path, layout: str) -> str:
    """The URL of an SQLite file in ``path`` that a ledger opened on it makes in ``layout``
    (see :data:`LAYOUTS`).

    ``by-id`` and ``rev-index``: the event table is made now with its ``(top, key, rev)``
    index (and, for ``rev-index``, the index on ``evt_event.rev``), as Outpost made it
    before session 10 (before session 8); the ledger opened on the file makes the other
    tables, for any schema. ``by-record``: nothing is made."""
    url = f"sqlite:///{path}"
    if layout in ("by-id", "rev-index"):
        event = core_tables(MetaData())[0]
        engine = create_engine(url)
        try:
            event.create(engine)
            if layout == "rev-index":
                with engine.begin() as conn:
                    conn.execute(text(f"CREATE INDEX {REV_INDEX} ON evt_event (rev)"))
        finally:
            engine.dispose()
    elif layout != "by-record":
        raise ValueError(layout)
    return url
