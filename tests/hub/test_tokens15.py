"""Several named tokens per user (session 15): a lost laptop's token is revoked alone (there
was one token per user, so revoking it cut all of the user's devices). The real
``outpost-hub user token add|list|revoke`` processes, a hub on 127.0.0.1 with real
websockets; the audit still records the user."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.ledger import MemLedger
from core.revision import ZERO_REV
from core.schema import Project
from hubserver.auth import Users, hash_token
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import ENV, hub_cmd


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _pub(key: str) -> dict[str, object]:
    return {"acts": [{"top": "prod.cat", "key": key, "cmd": "new", "arg": {"name": key}}]}


async def _hub(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, hub_cmd("user", *args), capture_output=True,
                                   text=True, env=ENV, timeout=60)


async def _closed(ws: ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as ei:
        for _ in range(100):  # until the hub closes it (bounded: 100 × (reply + 50 ms))
            await request(ws, "evt.stat", timeout=30)
            await asyncio.sleep(0.05)
    return ei.value


async def test_a_named_token_is_revoked_alone(prod: Project, tmp_path: Path) -> None:
    path = tmp_path / "hub-users.db"
    admin = Users(path)
    first = admin.add("ann")
    users = Users(path)
    led = MemLedger(prod)
    try:
        add = await _hub("token", "add", "ann", "--name", "laptop2", "--users", str(path))
        assert add.returncode == 0, add.stderr
        assert "token laptop2 of user ann added" in add.stdout
        second = add.stdout.strip().splitlines()[-1]
        assert second != first
        raw = path.read_bytes()
        assert second.encode() not in raw and hash_token(second).encode() in raw  # hashed
        async with Hub(led, users=users, users_check=0.05) as hub, \
                connect(hub.url, additional_headers=_auth(first)) as a1, \
                connect(hub.url, additional_headers=_auth(second)) as a2:
            assert "res" in await request(a1, "evt.pub", _pub("1"))
            assert "res" in await request(a2, "evt.pub", _pub("2"))
            ls = await _hub("token", "list", "ann", "--users", str(path))
            assert ls.returncode == 0, ls.stderr
            assert [ln.split("\t")[0] for ln in ls.stdout.splitlines()] == ["first", "laptop2"]
            assert first not in ls.stdout and second not in ls.stdout
            rev = await _hub("token", "revoke", "ann", "laptop2", "--users", str(path))
            assert rev.returncode == 0, rev.stderr
            assert "the user's other tokens keep working" in rev.stdout
            closed = await _closed(a2)
            assert closed.rcvd is not None and closed.rcvd.code == 1008
            assert "revoked" in closed.rcvd.reason
            assert "res" in await request(a1, "evt.pub", _pub("3"))  # the other device
            with pytest.raises(InvalidStatus) as e401:
                async with connect(hub.url, additional_headers=_auth(second)):
                    pass
            assert e401.value.response.status_code == 401
            # the first token revoked alone too: a third device keeps working
            add3 = await _hub("token", "add", "ann", "--name", "phone", "--users", str(path))
            third = add3.stdout.strip().splitlines()[-1]
            async with connect(hub.url, additional_headers=_auth(third)) as a3:
                rev1 = await _hub("token", "revoke", "ann", "first", "--users", str(path))
                assert rev1.returncode == 0, rev1.stderr
                await _closed(a1)
                assert "res" in await request(a3, "evt.pub", _pub("4"))
            ls = await _hub("token", "list", "ann", "--users", str(path))
            lines = [ln.split("\t") for ln in ls.stdout.splitlines()]
            assert [ln[0] for ln in lines] == ["first", "phone"] and lines[0][-1] == "revoked"
            assert (await _hub("list", "--users", str(path))).stdout == "ann\twriter\n"
    finally:
        admin.close()
        users.close()
    # the audit names the user, whichever token (device) the edit came with
    assert [a.usr for a in led.audits(ZERO_REV, led.rev())] == ["ann"] * 4


async def test_token_commands_refuse_by_name(tmp_path: Path) -> None:
    path = tmp_path / "hub-users.db"
    Users(path).add("ann")
    u = str(path)
    for args, said in (
            (("token", "add", "bob", "--name", "x"), "no user named 'bob'"),
            (("token", "add", "ann", "--name", "first"), "choose another --name"),
            (("token", "list", "bob"), "no user named 'bob'"),
            (("token", "revoke", "ann", "laptop9"),
             "user 'ann' has no token named 'laptop9'")):
        r = await _hub(*args, "--users", u)
        assert r.returncode == 1 and said in r.stderr, (args, r.stderr)
    ok = await _hub("token", "add", "ann", "--name", "x", "--users", u)
    assert ok.returncode == 0, ok.stderr
    again = await _hub("token", "add", "ann", "--name", "x", "--users", u)
    assert again.returncode == 1 and "already has a token named 'x'" in again.stderr
    assert "revoke it first" in again.stderr
    # removing the user removes its tokens: a user of that name added later has none
    assert (await _hub("remove", "ann", "--users", u)).returncode == 0
    users = Users(path)
    try:
        users.add("ann")
        tokens = users.tokens("ann")
        assert tokens is not None and [t.name for t in tokens] == ["first"]
    finally:
        users.close()


OLD_SCHEMA = """CREATE TABLE hub_user (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('reader', 'writer')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
)"""


async def test_a_users_file_from_before_named_tokens(prod: Project, tmp_path: Path) -> None:
    """A users file written before session 15 (no hub_token table), opened by a hub, and one
    renamed over a hub's users file while it serves: its tokens work, and named tokens can
    be added to it."""
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    with con:
        con.execute(OLD_SCHEMA)
        con.execute("INSERT INTO hub_user VALUES ('ann', 'writer', ?, 0)", (hash_token("A"),))
        con.execute("INSERT INTO hub_user VALUES ('bob', 'reader', ?, 0)", (hash_token("B"),))
    con.close()
    path = tmp_path / "hub-users.db"
    Users(path).add("carol")
    users = Users(path)
    try:
        async with Hub(MemLedger(prod), users=users, users_check=0.05) as hub:
            old.rename(path)  # the old file replaces the served one (a restore, rsync)
            for _ in range(100):  # bounded: the hub follows the path within users_check
                try:
                    async with connect(hub.url, additional_headers=_auth("A")) as ws:
                        assert "res" in await request(ws, "evt.stat")
                        break
                except InvalidStatus:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the old file's token never accepted")
            add = await _hub("token", "add", "ann", "--name", "laptop2", "--users", str(path))
            assert add.returncode == 0, add.stderr
            tok = add.stdout.strip().splitlines()[-1]
            async with connect(hub.url, additional_headers=_auth(tok)) as ws:
                assert "res" in await request(ws, "evt.pub", _pub("1"))
    finally:
        users.close()
