"""The operator review's findings on a real hub: --allow-origin and satellites, database URLs
with passwords, tokens in DEBUG logs (real websockets on 127.0.0.1, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.errors import HubError
from core.ledger import MemLedger
from core.ledger.sql import SqlLedger
from core.satellite.client import fetch_hub, hub_error
from core.schema import Project
from hubserver.auth import Users
from hubserver.cluster import ClusterListener
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import ENV, hub_cmd
from tests.support.procs import reap_sync

SECRET = "SECRETPW"


async def test_allow_origin_lets_satellites_in_and_logs_a_refused_origin(
        prod: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    users = Users(tmp_path / "users.db")
    token = users.add("ann")
    try:
        async with Hub(MemLedger(prod), users=users, origins=["https://ok.example"]) as hub:
            # an Outpost satellite sends no Origin: accepted (its token authenticates it)
            project, status = await fetch_hub(hub.url, token)
            assert project.version == prod.version and status is not None
            async with connect(hub.url, origin="https://ok.example",  # type: ignore[arg-type]
                               additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await request(ws, "evt.stat")
            caplog.set_level(logging.WARNING, "outpost.hub")
            with pytest.raises(InvalidStatus) as ei:
                async with connect(hub.url, origin="https://evil.example",  # type: ignore[arg-type]
                                   additional_headers={"Authorization": f"Bearer {token}"}):
                    pass
            assert ei.value.response.status_code == 403
            warned = [r for r in caplog.records if r.levelno == logging.WARNING
                      and "https://evil.example" in r.getMessage()]
            assert warned and "--allow-origin" in warned[0].getMessage()
            msg = str(hub_error(hub.url, ei.value))
            assert "refused the token" not in msg and "403" in msg
            assert "allow-origin" in msg and "https://evil.example" in msg
    finally:
        users.close()


def test_hub_error_401_is_the_token(prod: Project) -> None:
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    e = InvalidStatus(Response(401, "Unauthorized", Headers(), b"missing or unknown token\n"))
    assert "refused the token" in str(hub_error("ws://h:1", e))
    assert isinstance(hub_error("ws://h:1", e), HubError)


async def test_debug_logs_hold_no_token(prod: Project, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    users = Users(tmp_path / "users.db")
    token = users.add("ann")
    caplog.set_level(logging.DEBUG)
    try:
        async with Hub(MemLedger(prod), users=users) as hub:
            await fetch_hub(hub.url, token)  # the satellite's client logs at DEBUG too
            async with connect(hub.url, additional_headers={"Authorization": f"Bearer {token}"},
                               logger=logging.getLogger("outpost.sat.ws")) as ws:
                await request(ws, "evt.stat")
    finally:
        users.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authorization" in text  # the header lines are logged ...
    assert token not in text  # ... without the token
    assert "Authorization: [redacted]" in text


def test_cli_debug_log_level_logs_no_token(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    add = subprocess.run(hub_cmd("user", "add", "ann", "--db", str(db)), capture_output=True,
                         text=True, env=ENV, timeout=60, check=True)
    token = add.stdout.strip().splitlines()[-1]
    proc = subprocess.Popen(hub_cmd("serve", "--db", str(db), "--port", "0", "--log-level",
                                    "DEBUG"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[2]
        check = ("import asyncio, sys\nfrom core.satellite.client import fetch_hub\n"
                 f"asyncio.run(fetch_hub({url!r}, sys.argv[1]))\n")
        subprocess.run([*hub_cmd()[:1], "-c", check, token], env=ENV, check=True, timeout=60)
    finally:
        proc.terminate()
        _, err = reap_sync(proc, 20)
    assert "Authorization" in err and token not in err


def _secret_url(url: str) -> str:
    return url + ("&" if "?" in url else "?") + f"password={SECRET}"


def _cut_off(pg_url: str, db_url: str) -> None:
    """PostgreSQL refuses every connection to the test database (and ends those open)."""
    name = db_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s", (name,))


def _reopen(pg_url: str, db_url: str) -> None:
    name = db_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def test_database_down_tells_clients_and_logs_no_password(
        prod: Project, pg_url: str, fresh_pg_db: str,
        caplog: pytest.LogCaptureFixture) -> None:
    url = _secret_url(fresh_pg_db)
    caplog.set_level(logging.INFO)
    led = SqlLedger(url, prod)
    try:
        async with Hub(led) as hub, connect(hub.url) as ws:
            listener = ClusterListener(url, hub.request_catch_up, backoff=(0.01, 0.05))
            await listener.start()
            ok = await request(ws, "evt.pub", {"acts": [
                {"top": "prod.cat", "key": "1", "cmd": "new", "arg": {"name": "a"}}]})
            assert "res" in ok
            _cut_off(pg_url, fresh_pg_db)
            try:
                reply = await request(ws, "evt.pub", {"acts": [
                    {"top": "prod.cat", "key": "2", "cmd": "new", "arg": {"name": "b"}}]})
                for _ in range(50):  # the listener notices and retries (logged)
                    if listener.reconnects or not listener.connected:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)
            finally:
                _reopen(pg_url, fresh_pg_db)
                await listener.stop()
    finally:
        led.close()
    err = reply["err"]
    # DB_DOWN with the kind, told by the driver error (a lost connection), not by its words
    assert err == ("the hub's database is unavailable (it cannot be reached); your edits stay "
                   "pending (the cause is in the hub's log)"), err
    name = fresh_pg_db.rsplit("/", 1)[1].split("?")[0]
    for secret in (SECRET, name, "127.0.0.1", "postgres"):
        assert secret not in err, err  # clients are told nothing of the database
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert name in logged  # the operator's log names the database ...
    assert SECRET not in logged  # ... never its password
    assert "password=***" in logged


def test_ready_line_and_errors_hide_the_password(tmp_path: Path, fresh_pg_db: str) -> None:
    url = _secret_url(fresh_pg_db).replace("postgresql://postgres@",
                                           f"postgresql://postgres:{SECRET}2@")
    proc = subprocess.Popen(hub_cmd("serve", "--db", url, "--port", "0", "--auth", "none"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = reap_sync(proc, 20)
    assert line.startswith("outpost-hub ready: "), (line, err)
    assert SECRET not in line and SECRET not in err
    assert fresh_pg_db.rsplit("/", 1)[1].split("?")[0] in line  # still names the database


async def test_a_403_from_a_proxy_is_said_in_our_words_its_text_quoted() -> None:
    """Session 9: hub_error put the first line of a 403's body where it says what happened,
    and that line may be a proxy's own text ("Access denied by policy" read as the hub's
    verdict). Now: refused by the hub or a proxy in between, HTTP 403, and the body only as
    quoted detail. A real HTTP server on 127.0.0.1 answering as a proxy would."""

    from core.satellite.client import fetch_project

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'Access "denied" by corporate policy\nticket 42\n'
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HubError) as info:
            await fetch_project(f"ws://127.0.0.1:{port}", "tok", timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    msg = str(info.value)
    assert msg.startswith(f"the hub at ws://127.0.0.1:{port}, or a proxy between here and it, "
                          "refused the connection (HTTP 403 Forbidden): not a token problem")
    assert msg.endswith("; the response said: \"Access 'denied' by corporate policy\"")
    assert "ticket 42" not in msg and "refused the token" not in msg
