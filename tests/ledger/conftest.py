"""Ledger fixtures: one ``ledger`` fixture over every backend (memory, SQLite, PostgreSQL).

The PostgreSQL backend uses the shared ``fresh_pg_db`` fixture (tests/conftest.py): it skips
outside CI when no server is configured and fails in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.schema import Project
from tests.support.layout import make_sqlite_ledger

BACKENDS = ["mem", "sqlite", "sqlite-id", "sqlite-rev", "pg"]
"""``sqlite``: the SQLite layout made since session 10 (by-record: a topic's state rows and
event key entries in one B-tree); ``sqlite-id``: the one made by sessions 8 and 9 (by-id: the
``(top, key, rev)`` index, no revision index); ``sqlite-rev``: the one made before (both
indexes). Ledgers keep the layout they were made in."""

_OLD = {"sqlite-id": "by-id", "sqlite-rev": "rev-index"}

AnyLedger = MemLedger | SqlLedger


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of the backend named by the ``backend`` param."""
    backend = getattr(request, "param", "sqlite")
    if backend == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
    if backend in _OLD:
        return make_sqlite_ledger(tmp_path / "ledger.db", _OLD[backend])
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, project: Project,
           tmp_path: Path) -> Iterator[AnyLedger]:
    """A fresh, empty ledger of each backend."""
    led: AnyLedger
    if request.param == "mem":
        led = MemLedger(project)
    elif request.param == "sqlite":
        led = SqlLedger(f"sqlite:///{tmp_path / 'ledger.db'}", project)
    elif request.param in _OLD:
        led = SqlLedger(make_sqlite_ledger(tmp_path / "ledger.db", _OLD[request.param]),
                        project)
    else:
        led = SqlLedger(request.getfixturevalue("fresh_pg_db"), project)
    yield led
    led.close()


@pytest.fixture(params=["sqlite", "sqlite-id", "sqlite-rev", "pg"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty SQLite file URL (each layout: ``sqlite-id``/``sqlite-rev`` hold the event
    table of an older layout, see :data:`BACKENDS`) or a fresh PostgreSQL database URL."""
    if request.param == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
    if request.param in _OLD:
        return make_sqlite_ledger(tmp_path / "ledger.db", _OLD[request.param])
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def sql_ledger(sql_url: str, project: Project) -> Iterator[SqlLedger]:
    """A fresh SQL ledger on SQLite and on PostgreSQL."""
    led = SqlLedger(sql_url, project)
    yield led
    led.close()


MakeLedger = Callable[[], SqlLedger]
