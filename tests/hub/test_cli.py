"""``outpost-hub`` as a real process: ready line, users and tokens, SIGTERM, ops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hubserver.cli import main
from tests.hub.conftest import request
from tests.support.procs import reap_sync

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def hub_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hubserver.cli", *args]


def start(tmp_path: Path, *args: str, scheme: str = "ws") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(hub_cmd("serve", "--db", str(tmp_path / "hub.db"), "--port", "0",
                                    *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=tmp_path)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the ready line (or exit)
    if not line.startswith("outpost-hub ready: "):
        proc.kill()
        raise AssertionError(f"no ready line: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    url = line.split()[2]
    assert url.startswith(f"{scheme}://127.0.0.1:")
    return proc, url


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = reap_sync(proc, 20)
    return proc.returncode, err


def test_user_add_list_remove_prints_token_once(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "hub.db")
    assert main(["user", "add", "ann", "--role", "reader", "--db", db]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert len(token) >= 40
    assert main(["user", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "ann\treader" in listed and token not in listed
    assert main(["user", "remove", "ann", "--db", db]) == 0
    assert main(["user", "remove", "ann", "--db", db]) == 1


async def test_serve_with_tokens_and_sigterm_exit_0(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    add = subprocess.run(hub_cmd("user", "add", "ann", "--db", db), capture_output=True,
                         text=True, env=ENV, check=True)
    token = add.stdout.strip().splitlines()[-1]
    proc, url = await asyncio.to_thread(start, tmp_path)
    try:
        with pytest.raises(InvalidStatus):
            async with connect(url):
                pass
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            res = await request(ws, "evt.pub", {"acts": [
                {"top": "field.site", "key": "s1", "cmd": "new", "arg": {"name": "Alder"}}]})
            assert res["res"]["evs"][0]["key"] == "s1"
            # a token added while the hub runs works at once
            add2 = subprocess.run(hub_cmd("user", "add", "bob", "--db", db),
                                  capture_output=True, text=True, env=ENV, check=True)
            tok2 = add2.stdout.strip().splitlines()[-1]
        async with connect(url, additional_headers={"Authorization": f"Bearer {tok2}"}) as ws:
            assert (await request(ws, "evt.stat"))["res"]["rev"] != "0001-01-01T00:00:00Z"
    finally:
        rc, err = await asyncio.to_thread(stop, proc)
    assert rc == 0
    assert token not in err and tok2 not in err and "Alder" not in err  # no secrets, no bodies


async def test_auth_none_is_announced_and_data_survives_restart(tmp_path: Path) -> None:
    proc, url = await asyncio.to_thread(start, tmp_path, "--auth", "none", "--user", "field")
    try:
        async with connect(url) as ws:
            await request(ws, "evt.pub", {"acts": [
                {"top": "field.site", "key": "s1", "cmd": "new", "arg": {"name": "A"}}]})
            hist = await request(ws, "evt.hist", {"top": "field.site", "key": "s1"})
            assert hist["res"][0]["usr"] == "field"
            lid = (await request(ws, "evt.stat", None))["res"]["ledger"]
    finally:
        rc, err = await asyncio.to_thread(stop, proc, signal.SIGINT)
    assert rc == 0 and "AUTH DISABLED" in err and len(lid) == 32
    proc, url = await asyncio.to_thread(start, tmp_path, "--auth", "none")
    try:
        async with connect(url) as ws:
            # the restarted hub serves the same ledger id
            assert (await request(ws, "evt.stat", None))["res"]["ledger"] == lid
            sub = await request(ws, "evt.sub", {"rev": "0001-01-01T00:00:00Z",
                                                "tops": ["field.site"]})
            assert [e["key"] for e in sub["res"]["evs"]] == ["s1"]
    finally:
        await asyncio.to_thread(stop, proc)


async def test_rate_and_burst_options_set_the_flood_limit(tmp_path: Path) -> None:
    """``--rate``/``--burst`` replace the 200/s, 400 default (bench/hub.py raises them)."""
    proc, url = await asyncio.to_thread(start, tmp_path, "--auth", "none", "--rate", "0.001",
                                        "--burst", "3")
    try:
        async with connect(url) as ws:
            for _ in range(3):
                assert "res" in await request(ws, "evt.stat")
            await ws.send("evt.stat#x")
            with pytest.raises(ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 10)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1008
    finally:
        await asyncio.to_thread(stop, proc)
    r = subprocess.run(hub_cmd("serve", "--db", str(tmp_path / "h.db"), "--rate", "0"),
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode != 0 and "--rate 0" in r.stderr


def test_auth_none_off_loopback_is_refused(tmp_path: Path) -> None:
    r = subprocess.run(hub_cmd("serve", "--db", str(tmp_path / "h.db"), "--auth", "none",
                               "--host", "0.0.0.0", "--port", "0"),
                       capture_output=True, text=True, env=ENV, timeout=30)
    assert r.returncode == 2 and "loopback" in r.stderr and "ready" not in r.stdout


def test_a_port_in_use_is_an_error_and_the_hub_exits(tmp_path: Path) -> None:
    """The port is taken: the error names it and the fix, and the process exits (its writer
    thread, started before the port was asked for, used to keep it alive forever)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(hub_cmd("serve", "--db", str(tmp_path / "h.db"), "--port",
                                   str(port)),
                           capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "ready" not in r.stdout
    assert "--port" in r.stderr
    assert "Traceback" not in r.stderr


def test_verify_backup_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.ledger.sql import open_ledger
    from core.model import Action, Cmd, Trans
    from core.schema import load_project
    from hubserver.cli import DEMO_SCHEMA

    db = tmp_path / "hub.db"
    led = open_ledger(db, load_project(DEMO_SCHEMA))
    led.publish(Trans((Action("field.site", "s1", Cmd.NEW, {"name": "A"}),)), "ann")
    lid = led.ledger_id
    led.close()
    assert main(["verify", "--db", str(db)]) == 0
    assert "ok" in capsys.readouterr().out
    backup = tmp_path / "b.sqlite"
    assert main(["backup", str(backup), "--db", str(db)]) == 0
    assert backup.exists() and f"ledger {lid}" in capsys.readouterr().out
    target = tmp_path / "restored.db"
    assert main(["restore", str(backup), "--db", str(target)]) == 0
    assert f"ledger {lid}" in capsys.readouterr().out  # the same ledger
    led = open_ledger(target, load_project(DEMO_SCHEMA))
    try:
        assert led.ledger_id == lid
        assert led.state("field.site", "s1") is not None
        assert led.history("field.site", "s1")[0].usr == "ann"
    finally:
        led.close()


def test_ready_line_is_the_only_stdout_line(tmp_path: Path) -> None:
    proc, _url = start(tmp_path, "--auth", "none")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = reap_sync(proc, 20)
    assert proc.returncode == 0 and out.strip() == ""  # nothing after the ready line


def test_seed_demo_loads_demo_data_once(tmp_path: Path) -> None:
    from core.ledger.sql import open_ledger
    from core.schema import load_project
    from hubserver.cli import DEMO_DATA, DEMO_SCHEMA, seed_demo

    led = open_ledger(tmp_path / "hub.db", load_project(DEMO_SCHEMA))
    try:
        n = seed_demo(led, DEMO_DATA)
        assert n > 0 and led.rev() > 0
        rev = led.rev()
        assert seed_demo(led, DEMO_DATA) == 0 and led.rev() == rev  # not an empty ledger
    finally:
        led.close()


async def test_tls_wss(tmp_path: Path) -> None:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    proc, url = await asyncio.to_thread(start, tmp_path, "--auth", "none", "--tls-cert",
                                        str(cert), "--tls-key", str(key), scheme="wss")
    try:
        assert url.startswith("wss://")
        ctx = ssl.create_default_context(cafile=str(cert))
        async with connect(url, ssl=ctx) as ws:
            assert (await request(ws, "evt.stat"))["res"]["rev"] == "0001-01-01T00:00:00Z"
    finally:
        await asyncio.to_thread(stop, proc)


@pytest.mark.parametrize("name", ["ann\tbob", "ann\nbob", "ann\x00", "ann\u2028"])
def test_user_add_refuses_control_characters(tmp_path: Path, name: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "hub.db")
    assert main(["user", "add", name, "--db", db]) == 2
    err = capsys.readouterr().err
    assert "control character" in err and "letters, digits" in err
    assert main(["user", "list", "--db", db]) == 0
    assert capsys.readouterr().out == ""  # nothing was added


def test_serve_refuses_a_user_with_control_characters(tmp_path: Path) -> None:
    r = subprocess.run(hub_cmd("serve", "--db", str(tmp_path / "hub.db"), "--port", "0",
                               "--auth", "none", "--user", "ann\tbob"),
                       capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "control character U+0009" in r.stderr
    assert not (tmp_path / "hub.db").exists()


def test_tokens_never_start_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hubserver.auth as auth

    made = iter(["-vYk_first", "-second", "third-ok"])
    monkeypatch.setattr(auth.secrets, "token_urlsafe", lambda n: next(made))
    users = auth.Users(tmp_path / "users.db")
    try:
        token = users.add("ann")
        assert token == "third-ok"
        assert users.authenticate(token) == auth.User("ann", "writer")
    finally:
        users.close()


@pytest.mark.parametrize("cmd", [["verify"], ["backup", "b.ledger"]])
def test_ops_refuse_a_db_without_a_ledger(tmp_path: Path, cmd: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    cmd = [c if c != "b.ledger" else str(tmp_path / c) for c in cmd]
    missing = tmp_path / "ops" / "nonexist.db"
    assert main([*cmd, "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "check --db" in err and "nothing was created" in err
    assert not missing.exists() and not missing.parent.exists()
    other = tmp_path / "other.db"  # an SQLite file, but not a ledger
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = other.read_bytes()
    assert main([*cmd, "--db", str(other)]) == 2
    assert "holds no Outpost ledger" in capsys.readouterr().err
    assert other.read_bytes() == before  # not switched to WAL, no tables made
    assert not (tmp_path / "other.db-wal").exists()
    assert not (tmp_path / "b.ledger").exists()


def test_ops_refuse_a_postgres_database_without_a_ledger(
        fresh_pg_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import create_engine, inspect

    from core.ledger.sql import _normalize_url

    assert main(["verify", "--db", fresh_pg_db]) == 2
    assert "holds no Outpost ledger" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "b.ledger"), "--db", fresh_pg_db]) == 2
    assert "check --db" in capsys.readouterr().err
    engine = create_engine(_normalize_url(fresh_pg_db))
    try:
        assert inspect(engine).get_table_names() == []  # nothing was created
    finally:
        engine.dispose()
    assert not (tmp_path / "b.ledger").exists()
