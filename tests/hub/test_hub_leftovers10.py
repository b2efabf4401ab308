"""Session 9's hub leftovers, fixed in session 10: the steps after a restore whose verify
failed; repeated-warning limiting in every hub, embedded ones too; `serve --db` refuses a
PostgreSQL database of another program. Real hub processes, SQLite files and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.errors import StorageError
from core.ledger import ops
from core.ledger.sql import SqlLedger
from tests.hub.test_cli import ENV, hub_cmd, stop
from tests.hub.test_ops_review9 import _backup, _demo, _run, _serve_fails


def test_a_restore_whose_verify_failed_gives_steps_that_work(tmp_path: Path,
                                                             sql_url: str) -> None:
    """The copy is committed, then verify finds a difference: the target holds the events,
    marked "restore in progress". The messages said "run the restore again", which is
    refused (not empty); they now say to free the target first, then restore again."""
    backup = _backup(tmp_path, 50)
    pg = sql_url.startswith("postgresql")
    target = None if pg else Path(sql_url.removeprefix("sqlite:///"))
    with pytest.MonkeyPatch.context() as mp:  # a difference, as a damaged backup may give
        mp.setattr(SqlLedger, "verify", lambda _self, *_deep: ["field.site s1: name: 'x' != 'y'"])
        with pytest.raises(StorageError) as ei:
            ops.restore(backup, sql_url, _demo())
    err = str(ei.value)
    assert "verify found 1 difference" in err
    free = "drop it (DROP DATABASE) and create it empty (CREATE DATABASE)" if pg \
        else f"{target}. To restore: delete it"
    assert free in err and "then run the restore again" in err, err
    assert "restore an earlier backup" in err, err
    # the old advice, refused: "run the restore again" at once
    again = _run("restore", str(backup), "--db", sql_url)
    assert again.returncode == 2 and "holds what an earlier restore copied" in again.stderr
    assert "then run the restore again" in again.stderr, again.stderr
    # serve (verify, backup) refuse it, naming the same steps
    r = _serve_fails(sql_url, tmp_path)
    assert "restore that did not finish" in r.stderr and "a restore into it is refused" in \
        r.stderr and "then run the restore again" in r.stderr, r.stderr
    assert ("DROP DATABASE" in r.stderr) if pg else (f"delete {target}" in r.stderr)
    # the steps, followed, work
    if pg:
        import psycopg

        base, _, name = sql_url.rpartition("/")
        admin_url = base + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    else:
        assert target is not None
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(target) + suffix).unlink(missing_ok=True)
    ok = _run("restore", str(backup), "--db", sql_url)
    assert ok.returncode == 0 and "restore done" in ok.stdout, ok.stderr
    assert _run("verify", "--db", sql_url).stdout.strip() == "ok"


async def test_an_embedded_hub_logs_a_repeated_warning_once_then_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    """Repeated-warning limiting was in `outpost-hub serve`'s log handlers only: a hub run
    in a program's own process (hubserver.server.Hub, as the library docs show) logged a
    line per refusal. 30 connections over the limit: one line, and the count at stop."""
    import logging

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from core.ledger.memory import MemLedger
    from hubserver.limits import Limits
    from hubserver.server import Hub

    caplog.set_level(logging.WARNING, logger="outpost.hub")
    async with Hub(MemLedger(_demo()), port=0, limits=Limits(max_connections=1)) as hub:
        async with connect(hub.url):
            for _ in range(30):
                with pytest.raises(InvalidStatus):
                    async with connect(hub.url):
                        pass
        lines = [r.getMessage() for r in caplog.records if "connections is the limit" in
                 r.getMessage()]
        assert len(lines) == 1 and lines[0].startswith("connection refused from 127.0.0.1:")
    lines = [r.getMessage() for r in caplog.records if "connections is the limit" in
             r.getMessage()]
    # the count at stop, worded as past events (ops review 10)
    assert len(lines) == 2 and lines[1].startswith(
        "earlier: connection refused from 127.0.0.1:") and \
        "(29 more like it from " in lines[1], lines
    # off, as before in a program that wants every line
    caplog.clear()
    async with Hub(MemLedger(_demo()), port=0, limits=Limits(max_connections=1),
                   repeat_window=0) as hub, connect(hub.url):
        for _ in range(3):
            with pytest.raises(InvalidStatus):
                async with connect(hub.url):
                    pass
    assert sum("connections is the limit" in r.getMessage() for r in caplog.records) == 3


def test_serve_refuses_a_postgresql_database_of_another_program(tmp_path: Path,
                                                                fresh_pg_db: str) -> None:
    """The "is this a hub ledger" check of `serve --db` was SQLite-only: a PostgreSQL
    database holding another program's tables was taken over (the ledger's tables added
    beside them, a ledger id given, publishes stored). Refused now, changing nothing."""
    import psycopg

    with psycopg.connect(fresh_pg_db, autocommit=True) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO customers VALUES (1, 'ACME')")
    r = _serve_fails(fresh_pg_db, tmp_path)
    assert "refusing to serve" in r.stderr and "customers" in r.stderr, r.stderr
    assert "another program" in r.stderr and "CREATE DATABASE" in r.stderr, r.stderr
    with psycopg.connect(fresh_pg_db, autocommit=True) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        assert tables == ["customers"]  # nothing added
    # an empty database is still served (it becomes a ledger)
    with psycopg.connect(fresh_pg_db, autocommit=True) as con:
        con.execute("DROP TABLE customers")
    served = subprocess.Popen(hub_cmd("serve", "--db", fresh_pg_db, "--port", "0", "--auth",
                                      "none"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV)
    assert served.stdout is not None
    line = served.stdout.readline()
    stop(served)
    assert line.startswith("outpost-hub ready: "), line
    ok = _run("verify", "--db", fresh_pg_db)  # the empty database holds a ledger now
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
