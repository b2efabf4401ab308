"""Operator review 10: one users file per ledger, users files replaced by rename, a full
disk named as such, idle timeouts that spare quiet healthy satellites, the database's health,
repeated warnings at shutdown, `user list/remove` creating nothing, `serve --help` defaults
(real hub processes, SQLite files, PostgreSQL, websockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.hub.conftest import request
from tests.hub.test_cli import ENV, hub_cmd, stop
from tests.support.procs import reap_sync


def _env(home: Path) -> dict[str, str]:
    """A child's environment with its own data directory (``~/.local/share/outpost-hub``)."""
    e = {k: v for k, v in ENV.items() if k != "XDG_DATA_HOME"}
    e["HOME"] = str(home)
    return e


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hub_cmd(*args), capture_output=True, text=True, env=env, timeout=120)


def _add(env: dict[str, str], name: str, *opts: str) -> str:
    r = _run(env, "user", "add", name, *opts)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def _serve(env: dict[str, str], *opts: str) -> tuple[subprocess.Popen[str], str, str]:
    """A hub process; (process, URL, ready line)."""
    proc = subprocess.Popen(hub_cmd("serve", "--port", "0", *opts), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("outpost-hub ready: "):
        proc.kill()
        raise AssertionError(f"no ready line: {line!r} {reap_sync(proc, 20)}")
    return proc, line.split()[2], line


async def _accepted(url: str, token: str) -> bool:
    try:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert "res" in await request(ws, "evt.stat")
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 401
        return False


# -- 1. one users file per ledger ---------------------------------------------------------------

def _two_teams(env: dict[str, str], team_a: str, team_b: str) -> None:
    alice = _add(env, "alice", "--db", team_a)
    bob = _add(env, "bob", "--db", team_b)
    for db, ok, refused in ((team_a, alice, bob), (team_b, bob, alice)):
        proc, url, line = _serve(env, "--db", db)
        try:
            assert asyncio.run(_accepted(url, ok))
            assert not asyncio.run(_accepted(url, refused))  # the other team's user
        finally:
            rc, err = stop(proc)
        assert rc == 0, err
        assert ".users.db" in line and "users " in line  # the ready line names the file
        listed = _run(env, "user", "list", "--db", db).stdout
        assert listed.split("\t")[0] == ("alice" if ok == alice else "bob")


def test_two_sqlite_ledgers_in_one_directory_have_their_own_users(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    _two_teams(env, str(tmp_path / "teama.db"), str(tmp_path / "teamb.db"))
    assert (tmp_path / "teama.db.users.db").exists() and (tmp_path / "teamb.db.users.db").exists()
    assert not (tmp_path / "hub-users.db").exists()


@pytest.mark.pg
def test_two_postgresql_databases_have_their_own_users(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    from tests.conftest import _with_db

    names = [f"outpost_t10_{os.getpid()}_{t}" for t in ("a", "b")]
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
        for n in names:
            admin.execute(f'CREATE DATABASE "{n}"')
        try:
            env = _env(tmp_path / "home")
            _two_teams(env, _with_db(pg_url, names[0]), _with_db(pg_url, names[1]))
            files = sorted(p.name for p in (tmp_path / "home").rglob("*.users.db"))
            assert len(files) == 2 and all(n in "".join(files) for n in names), files
            # the machine's shared file of before session 10 is still read, with a warning
            from hubserver.auth import Users

            legacy = next((tmp_path / "home").rglob("users")).parent / "hub-users.db"
            shared = Users(legacy)
            shared.add("carol")
            shared.close()
            other = _with_db(pg_url, "outpost_t10_never_served")
            r = _run(env, "user", "list", "--db", other)
            assert r.returncode == 0 and r.stdout.startswith("carol\t"), r
            assert "shared by every PostgreSQL database" in r.stderr
            assert f"--users {legacy}" in r.stderr and "pg-" in r.stderr
        finally:
            for n in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_an_existing_shared_users_file_keeps_working_with_a_warning(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = tmp_path / "hub.db"
    proc, _url, _line = _serve(env, "--db", str(db), "--auth", "none")  # an existing ledger
    stop(proc)
    from hubserver.auth import Users

    legacy = tmp_path / "hub-users.db"  # as `user add` wrote it before session 10
    users = Users(legacy)
    token = users.add("carol")
    users.close()
    proc, url, line = _serve(env, "--db", str(db))
    try:
        assert asyncio.run(_accepted(url, token))  # not locked out by the upgrade
    finally:
        _rc, err = stop(proc)
    assert f"users {legacy}" in line
    warn = next(ln for ln in err.splitlines() if "shared by every SQLite ledger" in ln)
    assert f"{db}.users.db" in warn and f"--users {legacy}" in warn
    r = _run(env, "user", "list", "--db", str(db))
    assert r.stdout.startswith("carol") and "shared by every SQLite ledger" in r.stderr
    # the fix the warning names: the ledger's own file, used from then on, without warning
    os.rename(legacy, f"{db}.users.db")
    r = _run(env, "user", "list", "--db", str(db))
    assert r.stdout.startswith("carol") and "warning" not in r.stderr
    # a ledger created after the upgrade never takes the shared file
    Users(legacy).close()
    dave = _add(env, "dave", "--db", str(tmp_path / "new.db"))
    assert (tmp_path / "new.db.users.db").exists()
    proc, url, _line = _serve(env, "--db", str(tmp_path / "new.db"))
    try:
        assert asyncio.run(_accepted(url, dave))
    finally:
        stop(proc)


# -- 2. a users file replaced by rename, or deleted ---------------------------------------------

async def _closed_within(ws: object, seconds: int = 30) -> str:
    """Wait (bounded) until the hub closes ``ws``; the close reason."""
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed

    assert isinstance(ws, ClientConnection)
    with pytest.raises(ConnectionClosed) as ei:
        for _ in range(seconds * 10):
            await request(ws, "evt.stat", timeout=30)
            await asyncio.sleep(0.1)
    assert ei.value.rcvd is not None and ei.value.rcvd.code == 1008, ei.value
    return ei.value.rcvd.reason


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_user_removed_in_a_copy_renamed_over_the_users_file_is_revoked(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    master, served = tmp_path / "master.users.db", tmp_path / "hub" / "users.db"
    served.parent.mkdir()
    bob = _add(env, "bob", "--users", str(master))
    ann = _add(env, "ann", "--users", str(master))
    served.write_bytes(master.read_bytes())
    proc, url, _line = _serve(env, "--db", str(tmp_path / "hub.db"), "--users", str(served))

    async def scenario() -> None:
        async with connect(url, additional_headers=_auth(bob)) as b, \
                connect(url, additional_headers=_auth(ann)) as a:
            r = await asyncio.to_thread(_run, env, "user", "remove", "bob", "--users",
                                        str(master))
            assert r.returncode == 0, r.stderr
            # as rsync / Ansible copy / install do: a new file, renamed over the old one
            tmp = served.with_name(".users.tmp")
            tmp.write_bytes(master.read_bytes())
            os.rename(tmp, served)
            assert "revoked" in await _closed_within(b)
            assert "res" in await request(a, "evt.stat")  # ann keeps her connection
            assert not await _accepted(url, bob)
            assert await _accepted(url, ann)
            # the file deleted: revocation must take effect, so nobody is accepted ...
            served.rename(tmp)
            await _closed_within(a)
            assert not await _accepted(url, ann)
            # ... until it is back
            tmp.rename(served)
            assert await _accepted(url, ann)

    try:
        asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert f"the users file {served} was replaced" in err
    assert f"the users file {served} is gone" in err and "every token is refused" in err
    assert f"the users file {served} is back" in err


# -- 3. a full disk is named as such, and verify/backup still read the ledger -------------------

_FULL_DISK = r"""
set -u
mount -t tmpfs -o size=2m tmpfs "$DISK"
cp "$SRC"/hub.db* "$DISK"/
dd if=/dev/zero of="$DISK/other-logs" bs=64k 2>/dev/null
for cmd in "verify" "backup $OUT/b.ledger" "serve --port 0 --auth none"; do
    [ "$cmd" = "serve --port 0 --auth none" ] && ls -a "$DISK" | sed 's/^/file /'
    echo "=== $cmd"
    timeout 60 "$PY" -m hubserver.cli $cmd --db "$DISK/hub.db" 2>&1
    echo "rc=$?"
done
"""


def _on_a_full_disk(tmp_path: Path, src: Path) -> dict[str, str]:
    """Run verify, backup and serve on a copy of ``src``/hub.db* on a full tmpfs (mounted in a
    user and mount namespace: ``unshare``, no root needed); each command's output and rc."""
    import shutil
    import sys

    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed for a real full disk"
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    env = {**_env(tmp_path / "home"), "DISK": str(disk), "SRC": str(src), "OUT": str(out),
           "PY": sys.executable}
    r = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "bash", "-c",
                        _FULL_DISK], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "=== verify" in r.stdout, (r.stdout, r.stderr)
    parts: dict[str, str] = {}
    for chunk in r.stdout.split("=== ")[1:]:
        head, _, body = chunk.partition("\n")
        parts[head.split()[0]] = "\n".join(ln for ln in body.splitlines()
                                           if not ln.startswith("file "))
    parts["files"] = " ".join(ln[5:] for ln in r.stdout.splitlines() if ln.startswith("file "))
    return parts


def _ledger(src: Path, events: int) -> None:
    from core.ledger.sql import open_ledger
    from core.model import Action, Cmd, Trans
    from core.schema import load_project
    from hubserver.cli import DEMO_SCHEMA

    led = open_ledger(str(src / "hub.db"), load_project(DEMO_SCHEMA))
    try:
        for i in range(events):
            led.publish(Trans((Action("field.site", f"s{i}", Cmd.NEW, {"name": f"site {i}"}),),
                              uid=f"u{i}"), "op")
    finally:
        led.close()


def test_verify_and_backup_read_a_ledger_on_a_full_disk_and_serve_names_it(
        tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _ledger(src, 20)
    got = _on_a_full_disk(tmp_path, src)
    assert got["verify"].strip().endswith("ok\nrc=0"), got["verify"]
    assert "backup done:" in got["backup"] and "20 events" in got["backup"], got["backup"]
    assert (tmp_path / "out" / "b.ledger").stat().st_size > 0
    assert "rc=2" in got["serve"] and "is full (" in got["serve"], got["serve"]
    assert "bytes free): free space there" in got["serve"] and "Traceback" not in got["serve"]
    assert "not an Outpost ledger" not in "".join(got.values())
    assert "hub.db-shm" not in got["files"]  # verify and backup made nothing beside it


def test_a_wal_with_frames_on_a_full_disk_is_not_read_without_them(tmp_path: Path) -> None:
    import shutil
    import sqlite3

    src, snap = tmp_path / "src", tmp_path / "snap"
    src.mkdir()
    snap.mkdir()
    _ledger(src, 5)
    # a hub killed with frames in its -wal: copy the files while a writer holds them
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
    (snap / "hub.db-shm").unlink()
    got = _on_a_full_disk(tmp_path, snap)
    for cmd in ("verify", "backup"):
        out = got[cmd]
        assert "rc=2" in out and "is full (" in out and "hub.db-wal holds" in out, out
        assert "commits not yet in the file" in out and "not an Outpost ledger" not in out
    assert not (tmp_path / "out" / "b.ledger").exists()


# -- 4. the idle timeout spares healthy quiet clients -------------------------------------------

async def _silent_client(url: str, token: str, seconds: float) -> bytes:
    """A client that completes the handshake and then neither sends nor answers anything
    (no pong); what the hub sent it within ``seconds`` (bounded), until it closed."""
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: "
                 "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    got = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(4096):
                got += chunk
    except TimeoutError:
        pass
    finally:
        writer.close()
    return got


def test_idle_timeout_closes_a_silent_client_but_not_a_quiet_healthy_one(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = tmp_path / "hub.db"
    token = _add(env, "op", "--db", str(db))
    proc, url, _line = _serve(env, "--db", str(db), "--idle-timeout", "1.5")

    async def scenario() -> tuple[str, bytes]:
        silent = asyncio.create_task(_silent_client(url, token, 20))
        async with connect(url, additional_headers=_auth(token)) as quiet:
            assert "res" in await request(quiet, "evt.stat")
            await asyncio.sleep(5)  # more than 3 idle timeouts without a message
            reply = await request(quiet, "evt.stat")  # still open: its pongs count
        return str(reply), await silent

    try:
        reply, silent = asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert "res" in reply
    assert silent.startswith(b"HTTP/1.1 101") and b"idle for 1.5 s" in silent  # closed: 1008
    assert err.count("closing: idle for 1.5 s") == 1, err


# -- 5. the database's health: evt.stat's db and GET /healthz -----------------------------------

async def _healthz(url: str) -> tuple[int, str]:
    """``GET /healthz`` without a token, as a load balancer asks: (status, body)."""
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n")
                              if ln.lower().startswith(b"content-length:")))
            body = await reader.readexactly(length)
    finally:
        writer.close()
    return int(head.split()[1]), body.decode()


PUB_SITE = {"acts": [{"top": "field.site", "key": "k1", "cmd": "new",
                      "arg": {"name": "Ridge", "region": "X", "lat": 1}}]}


@pytest.mark.pg
def test_healthz_and_evt_stat_say_when_postgresql_is_gone_and_back(
        tmp_path: Path, fresh_pg_db: str, pg_url: str) -> None:
    import psycopg

    name = fresh_pg_db.rsplit("/", 1)[1].split("?")[0]
    proc, url, _line = _serve(_env(tmp_path / "home"), "--db", fresh_pg_db, "--auth", "none")

    def database(allow: bool) -> None:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
            if not allow:  # as a PostgreSQL restart does: every session is cut
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

    async def until(status: int) -> tuple[int, str]:
        for _ in range(120):  # the periodic check runs every 5 s: at most 60 s here
            got = await _healthz(url)
            if got[0] == status:
                return got
            await asyncio.sleep(0.5)
        raise AssertionError(f"/healthz never answered {status}: {got}")

    async def scenario() -> None:
        assert await _healthz(url) == (200, "ok\n")
        async with connect(url) as ws:
            stat = await request(ws, "evt.stat")
            assert stat["res"]["db"] == "ok" and "db_why" not in stat["res"]
            assert "res" in await request(ws, "evt.pub", PUB_SITE)
            await asyncio.to_thread(database, False)
            try:
                reply = await request(ws, "evt.pub", PUB_SITE, timeout=60)
                assert "err" in reply  # the publish failed: its satellite keeps it pending
                _status, body = await until(503)
                assert body == "database unavailable (it cannot be reached)\n", body
                stat = await request(ws, "evt.stat")
                assert stat["res"]["db"] == "unavailable" and stat["res"]["db_why"]
                assert pg_url.split("@")[-1].split("/")[0] not in str(stat)  # no host:port
            finally:
                await asyncio.to_thread(database, True)
            await until(200)  # the periodic check saw it back, without a publish
            stat = await request(ws, "evt.stat")
            assert stat["res"]["db"] == "ok"

    try:
        asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert err.count("the database is failing") == 1, err
    assert "the database works again" in err
    assert "HTTP response sent (200" not in err  # probes are not logged


# -- 6. the first publish after PostgreSQL came back succeeds -----------------------------------

@pytest.mark.pg
def test_the_first_publish_after_postgresql_cut_every_session_succeeds(
        tmp_path: Path, fresh_pg_db: str, pg_url: str) -> None:
    import psycopg

    name = fresh_pg_db.rsplit("/", 1)[1].split("?")[0]
    proc, url, _line = _serve(_env(tmp_path / "home"), "--db", fresh_pg_db, "--auth", "none")

    def cut() -> int:  # what a PostgreSQL restart (or a failover) does to the hub's sessions
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
            rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s AND pid <> pg_backend_pid()",
                                 (name,)).fetchall()
        return len(rows)

    async def scenario() -> list[object]:
        replies = []
        async with connect(url) as ws:
            for i in range(3):
                body = {"acts": [{"top": "field.site", "key": f"k{i}", "cmd": "new",
                                  "arg": {"name": f"Ridge {i}", "region": "X", "lat": 1}}]}
                if i:
                    assert await asyncio.to_thread(cut) >= 1
                    await asyncio.sleep(1.5)  # the hub's connections are idle a while
                replies.append(await request(ws, "evt.pub", body, timeout=60))
        return replies

    try:
        replies = asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert all(isinstance(r, dict) and "res" in r for r in replies), (replies, err)
    assert "commit of" not in err and "the database is failing" not in err, err
    assert "Traceback" not in err and "pipeline" not in err.lower(), err


# -- 7. counts held by the repeat limit are logged at shutdown as past events -------------------

@pytest.mark.pg
def test_held_repeats_are_logged_at_shutdown_by_their_logger_as_past_events(
        tmp_path: Path, fresh_pg_db: str, pg_url: str) -> None:
    import psycopg

    name = fresh_pg_db.rsplit("/", 1)[1].split("?")[0]
    proc, url, _line = _serve(_env(tmp_path / "home"), "--db", fresh_pg_db, "--auth", "none")

    def cut() -> None:
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                          "datname = %s AND pid <> pg_backend_pid()", (name,))

    async def scenario() -> None:
        async with connect(url) as ws:
            for _ in range(3):  # the LISTEN connection is lost three times within 10 s
                await asyncio.to_thread(cut)
                for _ in range(100):  # until it is back (bounded)
                    await asyncio.sleep(0.1)
                    if "res" in await request(ws, "evt.stat"):
                        break
                await asyncio.sleep(1.5)

    try:
        asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    lost = [ln for ln in err.splitlines() if "lost the LISTEN connection" in ln]
    assert len(lost) == 2, err  # the first, and the held count at shutdown
    assert " WARNING outpost.hub.cluster: lost the LISTEN" in lost[0]
    assert " WARNING outpost.hub.cluster: earlier: lost the LISTEN" in lost[1], lost
    assert "(2 more like it from " in lost[1] and "logged at shutdown)" in lost[1], lost


# -- 8. user list / user remove with a wrong --db create nothing --------------------------------

def test_user_list_and_remove_with_a_wrong_db_create_nothing_and_name_the_file(
        tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = tmp_path / "hub.db"
    _add(env, "bob", "--db", str(db))
    wrong = tmp_path / "other" / "hub.sqlite"
    for args in (("list",), ("remove", "bob")):
        r = _run(env, "user", *args, "--db", str(wrong))
        assert r.returncode == 2, r
        assert f"no users file {wrong}.users.db" in r.stderr and "nothing was created" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "other").exists()
    r = _run(env, "user", "list", "--db", str(db))
    assert r.stdout == "bob\twriter\n" and f"1 users in {db}.users.db" in r.stderr
    r = _run(env, "user", "remove", "alice", "--db", str(db))
    assert r.returncode == 1 and f"no user named 'alice' in {db}.users.db" in r.stderr
    r = _run(env, "user", "remove", "bob", "--db", str(db))
    assert r.returncode == 0 and f"removed user bob from {db}.users.db" in r.stdout


# -- 9. serve --help shows the defaults; a 503 names the peer -----------------------------------

def test_serve_help_shows_the_defaults(tmp_path: Path) -> None:
    r = _run(_env(tmp_path / "home"), "serve", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # argparse wraps lines
    for option, default in (("--host HOST", "(default: 127.0.0.1"), ("--port PORT", "8765"),
                            ("--max-connections MAX_CONNECTIONS", "(default: 1000)"),
                            ("--idle-timeout IDLE_TIMEOUT", "default: 0)"),
                            ("--max-monitors MAX_MONITORS", "(default: 100)"),
                            ("--max-monitor-keys MAX_MONITOR_KEYS", "(default: 20000)"),
                            ("--max-watch-keys MAX_WATCH_KEYS", "(default: 10000)"),
                            ("--auth {token,none}", "(default: token)")):
        after = text.split(f" {option} ", 1)[1]  # its description (usage has "[--host HOST]")
        assert default in after.split(" --", 1)[0], (option, after[:200])


def test_a_connection_over_the_limit_is_logged_with_its_address(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    proc, url, _line = _serve(env, "--db", str(tmp_path / "hub.db"), "--auth", "none",
                              "--max-connections", "1")

    async def scenario() -> int:
        async with connect(url) as first:
            assert "res" in await request(first, "evt.stat")
            with pytest.raises(InvalidStatus) as ei:
                async with connect(url):
                    pass
            return ei.value.response.status_code

    try:
        status = asyncio.run(scenario())
    finally:
        rc, err = stop(proc)
    assert rc == 0 and status == 503, err
    line = next(ln for ln in err.splitlines() if "connections is the limit" in ln)
    assert "connection refused from 127.0.0.1:" in line and "(--max-connections)" in line
