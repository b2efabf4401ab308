"""Operator review 11: a storage failure told by the driver error's type and code (never by
words of a text holding the database's name or path), the users of a moved ledger, a ledger
on a read-only file system, refused handshakes in the log (real hub processes, SQLite files,
PostgreSQL, websockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.errors import StorageError
from core.ledger import MemLedger, open_ledger
from core.model import Action, Cmd, Trans
from core.satellite.replica import read_only_url
from core.schema import Project, load_project
from hubserver.limits import Limits
from hubserver.outputs import client_text, db_reason
from hubserver.server import Hub
from tests.conftest import DEMO_SCHEMA
from tests.hub.conftest import request
from tests.hub.test_cli import stop
from tests.hub.test_ops_review10 import PUB_SITE, _accepted, _add, _env, _healthz, _run, _serve

# -- 1. the kind of a storage failure, by the error's type and code -----------------------------

def test_a_locked_sqlite_ledger_under_a_path_saying_full_is_locked_not_full(
        tmp_path: Path) -> None:
    where = tmp_path / "fullmoon-locked"
    where.mkdir()
    led = open_ledger(str(where / "hub.db"), load_project(DEMO_SCHEMA))
    try:
        led.engine.dispose()
        other = sqlite3.connect(where / "hub.db", isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            import core.ledger.sql as sql
            busy, sql._BUSY_MS = sql._BUSY_MS, 50
            try:
                led.engine.dispose()
                with pytest.raises(StorageError) as got:
                    led.publish(Trans((Action("field.site", "s1", Cmd.NEW, {"name": "a"}),),
                                      uid="u1"), "op")
            finally:
                sql._BUSY_MS = busy
        finally:
            other.execute("ROLLBACK")
            other.close()
    finally:
        led.close()
    assert "fullmoon-locked" in str(got.value)  # the text holds the path ...
    assert db_reason(got.value) == "it is locked by another process"  # ... SQLITE_BUSY
    assert got.value.kind == "locked"
    assert "full" not in client_text(got.value)


def test_a_read_only_sqlite_file_under_a_path_saying_full_and_locked_is_read_only(
        tmp_path: Path) -> None:
    where = tmp_path / "fullmoon-locked"
    where.mkdir()
    open_ledger(str(where / "hub.db"), load_project(DEMO_SCHEMA)).close()
    led = open_ledger(read_only_url(where / "hub.db"), load_project(DEMO_SCHEMA))
    try:
        with pytest.raises(StorageError) as got:
            led.publish(Trans((Action("field.site", "s1", Cmd.NEW, {"name": "a"}),),
                              uid="u1"), "op")
    finally:
        led.close()
    assert db_reason(got.value) == "it is read only", got.value  # SQLITE_READONLY
    assert got.value.kind == "readonly"


@pytest.mark.pg
def test_a_lost_postgresql_named_fullmoon_locked_cannot_be_reached(
        tmp_path: Path, pg_url: str) -> None:
    import psycopg

    name = f"outpost_test_fullmoon_locked_{uuid.uuid4().hex[:8]}"
    base = pg_url.rsplit("/", 1)[0]
    query = ("?" + pg_url.split("?", 1)[1]) if "?" in pg_url else ""
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def database(allow: bool) -> None:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
            if not allow:  # as a PostgreSQL stop does to the hub's sessions
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

    proc, url, _line = _serve(_env(tmp_path / "home"), "--db", f"{base}/{name}{query}",
                              "--auth", "none")

    async def scenario() -> tuple[object, tuple[int, str], object]:
        async with connect(url) as ws:
            assert "res" in await request(ws, "evt.pub", PUB_SITE)
            await asyncio.to_thread(database, False)
            try:
                reply = await request(ws, "evt.pub", PUB_SITE, timeout=60)
                got = await _healthz(url)
                for _ in range(120):  # the periodic check runs every 5 s: at most 60 s
                    if got[0] == 503:
                        break
                    await asyncio.sleep(0.5)
                    got = await _healthz(url)
                stat = await request(ws, "evt.stat")
            finally:
                await asyncio.to_thread(database, True)
        return reply, got, stat

    try:
        try:
            reply, health, stat = asyncio.run(scenario())
        finally:
            rc, err = stop(proc)
    finally:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert rc == 0, err
    assert isinstance(reply, dict) and "err" in reply, reply
    assert "cannot be reached" in str(reply) and "full" not in str(reply), reply
    assert "locked" not in str(reply), reply
    assert health == (503, "database unavailable (it cannot be reached)\n"), health
    assert isinstance(stat, dict) and stat["res"]["db_why"] == "it cannot be reached", stat
    assert "the disk is full" not in err and "locked by another process" not in err, err


# -- 2. the users of a moved ledger --------------------------------------------------------------

def _old_ledger(env: dict[str, str], old: Path) -> str:
    """A ledger a hub served, with user alice: her token."""
    token = _add(env, "alice", "--db", str(old))
    proc, url, _line = _serve(env, "--db", str(old))
    try:
        assert asyncio.run(_accepted(url, token))
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    return token


def test_the_documented_move_keeps_alice_s_token(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    old, new, b = tmp_path / "old.sqlite", tmp_path / "new.sqlite", tmp_path / "b.ledger"
    token = _old_ledger(env, old)
    r = _run(env, "backup", str(b), "--db", str(old))  # docs/operations.md §4: the hub stopped
    assert r.returncode == 0, r.stderr
    r = _run(env, "restore", str(b), "--db", str(new))
    assert r.returncode == 0, r.stderr
    assert f"copied the 1 users of {old}.users.db" in r.stdout, r.stdout
    proc, url, line = _serve(env, "--db", str(new))
    try:
        assert asyncio.run(_accepted(url, token))
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert f"users {new}.users.db" in line and "no users yet" not in err, (line, err)


def test_a_restore_without_the_old_users_file_says_what_to_do_and_serve_names_it(
        tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    old, new, b = tmp_path / "old.sqlite", tmp_path / "new.sqlite", tmp_path / "b.ledger"
    token = _old_ledger(env, old)
    assert _run(env, "backup", str(b), "--db", str(old)).returncode == 0
    aside = tmp_path / "aside.db"
    Path(f"{old}.users.db").rename(aside)  # another machine: the old users file is not here
    r = _run(env, "restore", str(b), "--db", str(new))
    assert r.returncode == 0, r.stderr
    assert "users: none carried over" in r.stdout, r.stdout
    assert f"cp OLD_USERS_FILE {new}.users.db" in r.stdout, r.stdout
    assert not Path(f"{new}.users.db").exists()
    aside.rename(f"{old}.users.db")  # it is back beside the ledgers
    proc, url, _line = _serve(env, "--db", str(new))
    try:
        refused = not asyncio.run(_accepted(url, token))
    finally:
        rc, err = stop(proc)
    assert rc == 0 and refused, err
    warning = next(ln for ln in err.splitlines() if "no users yet" in ln)
    assert f"{old}.users.db (1 users, of a ledger with this ledger id)" in warning, warning
    assert f"cp {old}.users.db {new}.users.db" in warning, warning


def _ledger(path: Path) -> None:
    """An SQLite ledger at ``path`` (another hub's), with no users file."""
    open_ledger(f"sqlite:///{path}", load_project(str(DEMO_SCHEMA))).close()


def test_restore_refuses_a_users_path_that_is_a_ledger_and_changes_nothing(
        tmp_path: Path) -> None:
    # review final (restore_users_overwrites.sh): a ledger counted as an empty users file and
    # was replaced by the backup's users file, the restore reporting success
    env = _env(tmp_path / "home")
    old, new, b = tmp_path / "old.sqlite", tmp_path / "new" / "hub.db", tmp_path / "b.ledger"
    _ledger(old)
    _add(env, "alice", "--db", str(old))
    assert _run(env, "backup", str(b), "--db", str(old)).returncode == 0
    other = tmp_path / "other" / "live.db"
    other.parent.mkdir()
    _ledger(other)
    before = other.read_bytes()
    r = _run(env, "restore", str(b), "--db", str(new), "--users", str(other))  # mistyped
    assert r.returncode != 0, r.stdout
    assert f"--users {other} exists and is not a users file" in r.stderr, r.stderr
    assert "nothing was changed" in r.stderr, r.stderr
    assert other.read_bytes() == before
    assert not new.parent.exists()  # not even its directory
    # the restored ledger's own path as its users file: refused before anything is written
    r = _run(env, "restore", str(b), "--db", str(new), "--users", str(new))
    assert r.returncode != 0, r.stdout
    assert f"--users {new} is the restored ledger's own file" in r.stderr, r.stderr
    assert not new.parent.exists()
    # a users file of its own (empty) is accepted: the restore and the copy are done
    r = _run(env, "restore", str(b), "--db", str(new), "--users", str(tmp_path / "u.db"))
    assert r.returncode == 0, r.stderr
    assert f"copied the 1 users of {old}.users.db" in r.stdout, r.stdout


def test_restore_copies_no_users_file_of_another_hub_at_the_recorded_path(
        tmp_path: Path) -> None:
    # review final (restore_foreign_users.sh): the backup moved to a machine whose own hub has
    # the same path; its users (mallory) were copied into the restored ledger
    env = _env(tmp_path / "home")
    old, new, b = tmp_path / "x" / "hub.db", tmp_path / "new.sqlite", tmp_path / "b.ledger"
    old.parent.mkdir()
    _ledger(old)
    _add(env, "alice", "--db", str(old))
    assert _run(env, "backup", str(b), "--db", str(old)).returncode == 0
    for f in old.parent.iterdir():
        f.unlink()
    _ledger(old)  # another hub, another ledger id, at the same path
    _add(env, "mallory", "--db", str(old))
    r = _run(env, "restore", str(b), "--db", str(new))
    assert r.returncode == 0, r.stderr
    assert "users: none carried over" in r.stdout and "another hub's" in r.stdout, r.stdout
    assert f"cp OLD_USERS_FILE {new}.users.db" in r.stdout, r.stdout
    assert not Path(f"{new}.users.db").exists()


def test_restore_copies_the_ledger_s_users_file_by_its_users_or_its_ledger(
        tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    old, b = tmp_path / "old.sqlite", tmp_path / "b.ledger"
    users = tmp_path / "team-users.db"  # not beside a ledger (as for PostgreSQL)
    _ledger(old)
    _add(env, "alice", "--users", str(users))
    assert _run(env, "backup", str(b), "--db", str(old), "--users", str(users)).returncode == 0
    r = _run(env, "restore", str(b), "--db", str(tmp_path / "a.sqlite"))
    assert f"copied the 1 users of {users}" in r.stdout, r.stdout  # the users of the backup
    _add(env, "bob", "--users", str(users))  # other users now: not shown to be the ledger's
    r = _run(env, "restore", str(b), "--db", str(tmp_path / "b.sqlite"))
    assert "users: none carried over" in r.stdout, r.stdout
    # FILE.users.db beside the backed-up ledger (same ledger id): users added since come too
    _add(env, "alice", "--db", str(old))
    assert _run(env, "backup", str(b) + "2", "--db", str(old)).returncode == 0
    _add(env, "bob", "--db", str(old))
    r = _run(env, "restore", str(b) + "2", "--db", str(tmp_path / "c.sqlite"))
    assert f"copied the 2 users of {old}.users.db" in r.stdout, r.stdout


# -- 4. refused handshakes and connections in the log ----------------------------------------------

async def _knock(url: str, headers: dict[str, str], times: int) -> int:
    """``times`` handshakes (bounded); how many were refused."""
    refused = 0
    for _ in range(times):
        try:
            async with connect(url, additional_headers=headers, open_timeout=10):
                pass
        except InvalidStatus:
            refused += 1
    return refused


def test_refused_handshakes_are_repeat_limited_and_websockets_lines_only_at_debug(
        tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.db")
    token = _add(env, "alice", "--db", db)
    good = {"Authorization": f"Bearer {token}"}

    async def scenario(url: str) -> tuple[int, int]:
        wrong = await _knock(url, {"Authorization": "Bearer wrong"}, 40)
        async with connect(url, additional_headers=good):
            full = await _knock(url, good, 20)  # over --max-connections 1: 503
        return wrong, full

    proc, url, _line = _serve(env, "--db", db, "--max-connections", "1")
    try:
        assert asyncio.run(scenario(url)) == (40, 20)
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    lines = err.splitlines()
    assert len([ln for ln in lines if "missing or unknown token" in ln]) <= 2, err
    assert len([ln for ln in lines if "connections is the limit" in ln]) <= 2, err
    assert "39 more like it" in err and "19 more like it" in err, err
    for noise in ("HTTP response sent", "connection open", "connection closed"):
        assert noise not in err, err
    # one line per connection opened (naming the peer) and one per close
    assert len([ln for ln in lines
                if "alice (writer, token first) connected from 127.0.0.1:" in ln]) == 1
    assert len([ln for ln in lines if "alice disconnected" in ln]) == 1, err

    proc, url, _line = _serve(env, "--db", db, "--log-level", "DEBUG")
    try:
        assert asyncio.run(_knock(url, {"Authorization": "Bearer wrong"}, 2)) == 2
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert "outpost.hub.ws: HTTP response sent (401 Unauthorized)" in err, err


# -- 3. a ledger on a read-only file system ------------------------------------------------------

_READ_ONLY = r"""
set -u
mount -t tmpfs -o size=20m tmpfs "$DISK"
cp "$SRC"/hub.db* "$DISK"/
mount -o remount,ro "$DISK"
for cmd in "verify" "backup $OUT/b.ledger"; do
    echo "=== $cmd"
    timeout 60 "$PY" -m hubserver.cli $cmd --db "$DISK/hub.db" 2>&1
    echo "rc=$?"
done
ls -a "$DISK" | sed 's/^/file /'
"""


def _on_a_read_only_fs(tmp_path: Path, src: Path) -> str:
    """verify and backup of a copy of ``src``/hub.db* on a tmpfs remounted read-only (as ext4
    does on disk errors), in a user and mount namespace (``unshare``: no root needed)."""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed for a real read-only mount"
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir(parents=True)
    out.mkdir()
    env = {**_env(tmp_path / "home"), "DISK": str(disk), "SRC": str(src), "OUT": str(out),
           "PY": sys.executable}
    r = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "bash", "-c",
                        _READ_ONLY], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "=== verify" in r.stdout, (r.stdout, r.stderr)
    return r.stdout


def test_verify_and_backup_read_a_ledger_on_a_read_only_file_system(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    led = open_ledger(str(src / "hub.db"), load_project(DEMO_SCHEMA))
    try:
        for i in range(7):
            led.publish(Trans((Action("field.site", f"s{i}", Cmd.NEW, {"name": f"s{i}"}),),
                              uid=f"u{i}"), "op")
    finally:
        led.close()
    assert not (src / "hub.db-wal").exists()
    got = _on_a_read_only_fs(tmp_path, src)
    assert "not an Outpost ledger" not in got, got
    verify, backup = got.split("=== backup")
    assert verify.strip().endswith("ok\nrc=0"), got
    assert "backup done:" in backup and "7 events" in backup and "rc=0" in backup, got
    assert (tmp_path / "out" / "b.ledger").stat().st_size > 0


def test_a_wal_with_frames_on_a_read_only_file_system_names_it_and_the_fix(
        tmp_path: Path) -> None:
    import shutil

    src, snap = tmp_path / "src", tmp_path / "snap"
    src.mkdir()
    snap.mkdir()
    open_ledger(str(src / "hub.db"), load_project(DEMO_SCHEMA)).close()
    # a hub stopped by the disk's failure, with frames in its -wal: copy the files while a
    # writer holds them
    con = sqlite3.connect(src / "hub.db", isolation_level=None)
    try:
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE evt_meta SET rev = rev + 1")
        con.execute("COMMIT")
        for f in src.iterdir():
            shutil.copy(f, snap / f.name)
    finally:
        con.close()
    assert (snap / "hub.db-wal").stat().st_size > 0
    # ops review 12: with the -shm index beside them (a hub stopped by the failure left it),
    # a read-only open reads the -wal's commits through it: verify and backup are made, and
    # the backup holds the -wal's commit (rev + 1 ms)
    assert (snap / "hub.db-shm").exists()
    got = _on_a_read_only_fs(tmp_path / "with-shm", snap)
    assert got.count("rc=0") == 2 and "backup done:" in got, got
    assert "rev 0001-01-01T00:00:00.001Z" in got, got
    # without it, SQLite would have to make one there: refused, naming the fix
    (snap / "hub.db-shm").unlink()
    got = _on_a_read_only_fs(tmp_path, snap)
    assert "not an Outpost ledger" not in got, got
    assert got.count("is mounted read-only") == 2 and got.count("rc=2") == 2, got
    assert "mount -o remount,rw" in got and "hub.db and hub.db-wal together" in got, got
    assert "only through a -shm index it cannot make there" in got, got


# -- 5. one connection's big publishes slow everyone: logged ---------------------------------------

async def test_a_connection_publishing_over_heavy_writer_a_second_is_logged_once(
        prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    def sat(start: int) -> dict[str, object]:
        return {"rev": "0001-01-01T00:00:00Z", "tops": ["prod.cat"], "lim": 1,
                "trans": [{"uid": f"u{i}", "acts": [{"top": "prod.cat", "key": str(i), "cmd": "new",
                                                     "arg": {"name": f"c{i}"}}]}
                          for i in range(start, start + 60)]}

    caplog.set_level(logging.INFO, logger="outpost.hub")
    async with Hub(MemLedger(prod), port=0, limits=Limits(heavy_writer=50)) as hub:
        assert hub.url is not None
        async with connect(hub.url) as ws, connect(hub.url) as other:
            for k in range(3):  # 180 transactions: over 50 in the first request already
                assert "res" in await request(ws, "evt.sat", sat(k * 60), timeout=30)
            assert "res" in await request(other, "evt.pub", {"acts": [
                {"top": "prod.cat", "key": "999", "cmd": "new", "arg": {"name": "x"}}]})
    heavy = [r.getMessage() for r in caplog.records
             if "transactions within 1 s" in r.getMessage()]
    assert len(heavy) == 1, heavy  # the same warning again within 10 s: counted, not logged
    assert heavy[0].startswith("conn 1: anonymous published over 50 transactions within 1 s: "
                               "the other connections' publishes wait behind them"), heavy
