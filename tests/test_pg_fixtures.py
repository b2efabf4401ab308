"""The PostgreSQL fixtures of conftest.py work against the real server."""

from __future__ import annotations

import psycopg
import pytest

# The second test checks what the first left behind: under pytest-xdist (`make test` runs
# ``-n 2 --dist loadgroup``) the group keeps both on one worker; run first or alone (a full
# run under xdist once ran it first), it makes and drops a database by the fixture's code.
pytestmark = [pytest.mark.pg, pytest.mark.xdist_group("pg_fixtures")]

# names of the databases made by fresh_pg_db in this module, checked by the test after
_made: list[str] = []


def test_fresh_pg_db_is_empty_and_dropped_afterwards(pg_url: str, fresh_pg_db: str) -> None:
    name = fresh_pg_db.rsplit("/", 1)[1]
    assert name.startswith("outpost_test_")
    with psycopg.connect(fresh_pg_db, autocommit=True) as conn:
        assert conn.execute("select current_database()").fetchone() == (name,)
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("create table t (x int primary key)")
    _made.append(name)


def test_previous_fresh_db_was_dropped(pg_url: str) -> None:
    if not _made:  # run alone or first (-k, another xdist worker): the fixture's own code
        from tests.conftest import fresh_pg_db

        made = fresh_pg_db.__wrapped__(pg_url)  # what pytest runs around a test
        _made.append(next(made).rsplit("/", 1)[1])
        made.close()  # the teardown
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from pg_database where datname = any(%s)",
                           (_made,)).fetchone()
    assert row == (0,)
