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

BACKENDS = ["mem", "sqlite", "sqlite-rev", "pg"]
"""``sqlite``: the SQLite layout made since session 8 (no revision index); ``sqlite-rev``:
the one made before (with it), which such ledgers keep."""

AnyLedger = MemLedger | SqlLedger


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of the backend named by the ``backend`` param."""
    backend = getattr(request, "param", "sqlite")
    if backend == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
    if backend == "sqlite-rev":
        return make_sqlite_ledger(tmp_path / "ledger.db", "rev-index")
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
    elif request.param == "sqlite-rev":
        led = SqlLedger(make_sqlite_ledger(tmp_path / "ledger.db", "rev-index"), project)
    else:
        led = SqlLedger(request.getfixturevalue("fresh_pg_db"), project)
    yield led
    led.close()


@pytest.fixture(params=["sqlite", "sqlite-rev", "pg"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty SQLite file URL (either layout: ``sqlite-rev`` holds an empty ledger made
    with the revision index) or a fresh PostgreSQL database URL."""
    if request.param == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
    if request.param == "sqlite-rev":
        return make_sqlite_ledger(tmp_path / "ledger.db", "rev-index")
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def sql_ledger(sql_url: str, project: Project) -> Iterator[SqlLedger]:
    """A fresh SQL ledger on SQLite and on PostgreSQL."""
    led = SqlLedger(sql_url, project)
    yield led
    led.close()


MakeLedger = Callable[[], SqlLedger]
