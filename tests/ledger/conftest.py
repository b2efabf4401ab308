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

BACKENDS = ["mem", "sqlite", "pg"]

AnyLedger = MemLedger | SqlLedger


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of the backend named by the ``backend`` param."""
    backend = getattr(request, "param", "sqlite")
    if backend == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
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
    else:
        led = SqlLedger(request.getfixturevalue("fresh_pg_db"), project)
    yield led
    led.close()




@pytest.fixture
def sql_ledger(sql_url: str, project: Project) -> Iterator[SqlLedger]:
    """A fresh SQL ledger on SQLite and on PostgreSQL."""
    led = SqlLedger(sql_url, project)
    yield led
    led.close()


MakeLedger = Callable[[], SqlLedger]
