"""SQLite ledgers in the layout made before session 8 (with the revision index), for tests
that run over both layouts (docs/ledger.md, "SQLite layout")."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine, text

from core.ledger.tables import REV_INDEX, core_tables

LAYOUTS = ["by-id", "rev-index"]
"""The SQLite layouts: made since session 8 (no revision index) and before (with it)."""


def make_sqlite_ledger(path: Path, layout: str) -> str:
    """The URL of an SQLite file in ``path`` that a ledger opened on it makes in ``layout``
    (see :data:`LAYOUTS`).

    ``rev-index``: the event table is made now with the index on ``evt_event.rev`` (the only
    difference between the two layouts), as Outpost made it before session 8; the ledger
    opened on the file makes the other tables, for any schema. ``by-id``: nothing is made."""
    url = f"sqlite:///{path}"
    if layout == "rev-index":
        event = core_tables(MetaData())[0]
        engine = create_engine(url)
        try:
            event.create(engine)
            with engine.begin() as conn:
                conn.execute(text(f"CREATE INDEX {REV_INDEX} ON evt_event (rev)"))
        finally:
            engine.dispose()
    elif layout != "by-id":
        raise ValueError(layout)
    return url
