"""Operator review 9: one hub per SQLite file, unfinished restores, files a hub must not take,
users replaced on purpose, nothing created before the port, logs without tokens or record
values, repeated warnings, errors naming the fix (real hub processes, SQLite files,
PostgreSQL, websockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import resource
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from core.errors import HubError
from core.ledger import ops
from core.ledger.sql import open_ledger
from core.model import Action, Cmd, Trans
from core.redact import redact
from core.satellite.client import fetch_hub
from core.schema import Project, load_project
from hubserver.auth import Users
from hubserver.cli import DEMO_SCHEMA
from hubserver.logrepeat import RepeatLimit
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import ENV, hub_cmd, start, stop
from tests.support.procs import reap_sync

SITE = "field.site"


def _demo() -> Project:
    return load_project(DEMO_SCHEMA)


def _run(*args: str, limit: int = 0, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    pre: Callable[[], None] | None = None
    if limit:
        def pre() -> None:  # `ulimit -f`: writing past ``limit`` bytes fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    env = env or ENV
    if limit:  # no .pyc written under the limit: CPython writes one cut short (corrupt cache)
        env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(hub_cmd(*args), capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=pre)


def _serve_fails(db: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    r = _run("serve", "--db", db, "--port", "0", "--auth", "none")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "ready" not in r.stdout and "Traceback" not in r.stderr
    return r


def _backup(tmp_path: Path, n: int, size: int = 10) -> Path:
    """A backup of a ledger of ``n`` sites (names of ``size`` characters)."""
    led = open_ledger(tmp_path / "src.db", _demo())
    try:
        for i in range(0, n, 500):
            res = led.publish_many([(Trans([Action(SITE, f"s{j}", Cmd.NEW, {
                "name": f"{j:0{size}d}"})]), "ann") for j in range(i, min(n, i + 500))])
            assert not any(isinstance(r, Exception) for r in res)
        ops.backup(led, tmp_path / "src.ledger")
    finally:
        led.close()
    return tmp_path / "src.ledger"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. one hub process per SQLite ledger ------------------------------------------------------

def test_a_second_hub_on_one_sqlite_file_is_refused_until_the_first_is_killed(
        tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "--auth", "none")
    try:
        r = _serve_fails(str(tmp_path / "hub.db"), tmp_path)
        assert f"process {proc.pid}" in r.stderr  # names the other hub ...
        assert "PostgreSQL" in r.stderr and "docs/scaleout.md" in r.stderr  # ... and the fix
        # verify and backup still read the served ledger
        v = _run("verify", "--db", str(tmp_path / "hub.db"))
        assert v.returncode == 0 and v.stdout.strip() == "ok", v.stderr
    finally:
        proc.send_signal(signal.SIGKILL)  # the OS releases the lock
        reap_sync(proc, 20)
    again, _ = start(tmp_path, "--auth", "none")
    stop(again)


# -- 2. a restore that did not finish is never served ----------------------------------------

def _check_unfinished(db: str, tmp_path: Path, fix: str) -> None:
    r = _serve_fails(db, tmp_path)
    assert "restore that did not finish" in r.stderr and "restore again" in r.stderr
    assert fix in r.stderr
    for cmd in (["verify"], ["backup", str(tmp_path / "b2.ledger")]):
        v = _run(*cmd, "--db", db)
        assert v.returncode == 2 and "restore that did not finish" in v.stderr, v.stderr
    assert not (tmp_path / "b2.ledger").exists()


def test_a_restore_killed_mid_copy_leaves_a_target_no_hub_serves_sqlite(tmp_path: Path) -> None:
    backup = _backup(tmp_path, 300)
    src_lid = ops._open_backup(backup)[1]["ledger_id"]
    target = tmp_path / "r" / "restored.db"
    r = _run("restore", str(backup), "--db", str(target),
             env={**ENV, "OUTPOST_CRASH_AT": "ops.restore.mid_copy"})
    assert r.returncode == 137, r.stderr
    _check_unfinished(str(target), tmp_path, f"delete {target}")
    assert not (target.parent / "restored.db.users.db").exists()
    ok = _run("restore", str(backup), "--db", str(target))  # the retry is accepted
    assert ok.returncode == 0 and f"ledger {src_lid}" in ok.stdout, ok.stderr
    served = subprocess.Popen(hub_cmd("serve", "--db", str(target), "--port", "0", "--auth",
                                      "none"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV)
    assert served.stdout is not None
    line = served.stdout.readline()
    stop(served)
    assert line.startswith("outpost-hub ready: ") and f"ledger {src_lid}" in line


def test_a_restore_onto_a_full_disk_names_what_it_left_and_serve_refuses_it(
        tmp_path: Path) -> None:
    backup = _backup(tmp_path, 4000, size=200)  # about 1.6 MB of events
    target = tmp_path / "restored.db"
    r = _run("restore", str(backup), "--db", str(target), limit=600_000)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr
    assert "ulimit -f" in err and "restore it from a backup" not in err  # EFBIG named
    assert str(target) in err and "delete" in err and "restore again" in err  # what was left
    assert target.exists()
    _check_unfinished(str(target), tmp_path, f"delete {target}")
    ok = _run("restore", str(backup), "--db", str(target))
    assert ok.returncode == 0, ok.stderr
    assert _run("verify", "--db", str(target)).stdout.strip() == "ok"


def test_a_restore_killed_mid_copy_into_postgresql(tmp_path: Path, fresh_pg_db: str) -> None:
    backup = _backup(tmp_path, 300)
    secret = fresh_pg_db.replace("postgresql://postgres@", "postgresql://postgres:SECRETPW9@")
    assert "SECRETPW9" in secret
    r = _run("restore", str(backup), "--db", secret,
             env={**ENV, "OUTPOST_CRASH_AT": "ops.restore.mid_copy"})
    assert r.returncode == 137, r.stderr
    _check_unfinished(secret, tmp_path, "DROP DATABASE")
    ok = _run("restore", str(backup), "--db", secret)
    assert ok.returncode == 0, ok.stderr
    assert "restore done" in ok.stdout and "SECRETPW9" not in ok.stdout + ok.stderr
    assert "***" in ok.stdout  # the URL is shown, masked
    assert _run("verify", "--db", fresh_pg_db).stdout.strip() == "ok"


def test_verify_and_restore_into_a_missing_postgresql_database_say_create_it(
        tmp_path: Path, fresh_pg_db: str) -> None:
    missing = fresh_pg_db.rsplit("/", 1)[0] + "/outpost_no_such_db"
    v = _run("verify", "--db", missing)
    assert v.returncode == 2 and "createdb outpost_no_such_db" in v.stderr, v.stderr
    r = _run("restore", str(_backup(tmp_path, 3)), "--db", missing)
    assert r.returncode == 2 and "createdb outpost_no_such_db" in r.stderr, r.stderr


# -- 4. serve takes only a hub ledger ----------------------------------------------------------

def test_serve_refuses_a_satellite_replica_and_another_programs_file(tmp_path: Path) -> None:
    from core.satellite.satellite import Satellite

    sat = Satellite(tmp_path / "sat", _demo())
    sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "Ridge"})])
    sat.close()
    replica = next(p for p in (tmp_path / "sat").iterdir() if p.suffix == ".db"
                   and "users" not in p.name)
    other = tmp_path / "other" / "other.sqlite"
    other.parent.mkdir()
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'ACME')")
    con.commit()
    con.close()
    # final reread 9: a backup read as "tables of another program (backup_meta, ...)"
    led = open_ledger(f"sqlite:///{tmp_path / 'src.sqlite'}", _demo())
    led.publish(Trans((Action(SITE, "k", Cmd.NEW, {"name": "Ridge"}),)), "office")
    bk = tmp_path / "bk" / "hub.backup"
    bk.parent.mkdir()
    ops.backup(led, bk)
    led.close()
    for db, words in ((replica, "satellite's replica"), (other, "customers"),
                      (bk, "is an Outpost backup")):
        before = _digest(db)
        r = _serve_fails(str(db), tmp_path)
        assert str(db) in r.stderr and words in r.stderr, r.stderr
        assert _digest(db) == before
        assert not db.with_name(db.name + ".users.db").exists()


# -- 6. user add replaces only on purpose -------------------------------------------------------

def test_user_add_of_an_existing_user_needs_replace(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    first = _run("user", "add", "alice", "--db", db)
    token = first.stdout.strip().splitlines()[-1]
    again = _run("user", "add", "alice", "--role", "reader", "--db", db)
    assert again.returncode == 1 and "--replace" in again.stderr and token not in again.stdout
    users = Users(tmp_path / "hub.db.users.db")
    try:
        assert users.authenticate(token) is not None  # unchanged
        assert [u.role for u in users.list()] == ["writer"]
    finally:
        users.close()
    rep = _run("user", "add", "alice", "--role", "reader", "--replace", "--db", db)
    assert rep.returncode == 0
    assert "replaced; the old token stops working within 2 s" in rep.stdout
    users = Users(tmp_path / "hub.db.users.db")
    try:
        assert users.authenticate(token) is None
        assert [u.role for u in users.list()] == ["reader"]
    finally:
        users.close()


# -- 7. nothing created before the port ---------------------------------------------------------

def test_a_port_in_use_creates_no_database_and_no_users_file(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _run("serve", "--db", str(tmp_path / "h2" / "hub.db"), "--port", str(port))
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert not (tmp_path / "h2").exists() or not any((tmp_path / "h2").iterdir())


# -- 5. logs: no token of any scheme, no record value ------------------------------------------

@pytest.mark.parametrize("header", [
    "Authorization: Token {t}", "Authorization: Basic {t}", "Proxy-Authorization: Bearer {t}",
    "('Authorization', 'Token {t}')", "authorization={t}"])
def test_every_authorization_value_is_redacted(header: str) -> None:
    t = "tok-Abc123_secret"
    out = redact(header.format(t=t))
    assert t not in out and "[redacted]" in out


async def test_debug_logs_hold_no_record_value(prod: Project, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from core.ledger import MemLedger

    value = "VALUE-never-in-a-log-7f3a"
    users = Users(tmp_path / "users.db")
    token = users.add("ann")
    caplog.set_level(logging.DEBUG)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        async with Hub(MemLedger(prod), users=users) as hub, \
                connect(hub.url, additional_headers=auth,
                        logger=logging.getLogger("outpost.sat.ws")) as ws:
            await request(ws, "evt.pub", {"acts": [
                {"top": "prod.cat", "key": "1", "cmd": "new", "arg": {"name": value}}]})
            await request(ws, "evt.sub", {"rev": "0001-01-01T00:00:00Z", "tops": ["prod.cat"]})
    finally:
        users.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "TEXT [" in text  # the frames are logged ...
    assert value not in text  # ... without their bodies
    assert token not in text


def test_repeat_limit_one_line_then_a_count() -> None:
    now = [0.0]
    f = RepeatLimit(window=10, clock=lambda: now[0])
    log = logging.getLogger("outpost.test.repeat")
    shown: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            shown.append(record.getMessage())

    h = Keep()
    h.addFilter(f)
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        for i in range(1000):
            now[0] = i / 1000
            log.warning("conn %d: evt.pub failed: disk full", i % 7)
        now[0] = 11.0
        log.warning("conn 3: evt.pub failed: disk full")
        log.info("conn 3: other")
        log.warning("conn 3: evt.pub failed: disk full")
        f.flush()  # by the logger that dropped it (this one), as a past event
    finally:
        log.removeHandler(h)
        log.propagate = True
    assert shown[0] == "conn 0: evt.pub failed: disk full"
    assert shown[1] == "conn 3: evt.pub failed: disk full (999 more like it in the last 11 s)"
    assert shown[2] == "conn 3: other"
    assert shown[3].startswith("earlier: conn 3: evt.pub failed: disk full (1 more like it at ")
    assert shown[3].endswith(", held back by the repeat limit; logged at shutdown)")


async def test_a_full_disk_logs_one_line_and_names_the_file_size_limit(tmp_path: Path) -> None:
    limit = 400_000

    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.Popen(hub_cmd("serve", "--db", str(tmp_path / "hub.db"), "--port", "0",
                                    "--auth", "none"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**ENV, "PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=pre)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.startswith("outpost-hub ready"), line
    failed = 0
    try:
        async with connect(line.split()[2], max_size=None) as ws:
            for i in range(400):
                reply = await request(ws, "evt.pub", {"acts": [
                    {"top": SITE, "key": f"k{i}", "cmd": "new", "arg": {"name": "x" * 20_000}}]})
                if "err" in reply:
                    failed += 1
                    if failed == 40:
                        break
    finally:
        rc, err = await asyncio.to_thread(stop, proc)
    assert failed == 40 and rc == 0
    lines = [x for x in err.splitlines() if "evt.pub failed" in x]
    assert len(lines) == 2, lines  # one, then the count at shutdown
    assert "39 more like it" in lines[1]
    assert "ulimit -f" in lines[0] and "restore it from a backup" not in lines[0]


def test_a_backup_that_fails_for_space_leaves_no_journal(tmp_path: Path) -> None:
    backup = _backup(tmp_path, 4000, size=200)
    restored = tmp_path / "hub.db"
    assert _run("restore", str(backup), "--db", str(restored)).returncode == 0
    dest = tmp_path / "out" / "b.ledger"
    dest.parent.mkdir()
    r = _run("backup", str(dest), "--db", str(restored), limit=300_000)
    assert r.returncode == 2 and "backup to" in r.stderr, r.stderr
    assert sorted(os.listdir(dest.parent)) == []


# -- 9. wss:// and ws:// mixed up ----------------------------------------------------------------

async def test_wss_to_a_plain_hub_and_ws_to_a_tls_hub_name_the_fix(prod: Project,
                                                                   tmp_path: Path) -> None:
    import ssl

    from core.ledger import MemLedger

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    async with Hub(MemLedger(prod)) as plain, Hub(MemLedger(prod), ssl=ctx) as tls:
        wss = plain.url.replace("ws://", "wss://")
        with pytest.raises(HubError) as e1:
            await fetch_hub(wss, "", timeout=5)
        assert ": :" not in str(e1.value) and "use ws://" in str(e1.value), str(e1.value)
        ws = tls.url.replace("wss://", "ws://")
        with pytest.raises(HubError) as e2:
            await fetch_hub(ws, "", timeout=5)
        assert "use wss://" in str(e2.value), str(e2.value)
