"""One user's token cannot take every connection slot (wire review 12, session 12: 1,000
idle authenticated connections of a reader filled ``--max-connections``, everyone else got
503, and ``--idle-timeout`` did not help: the client answers pings). A real hub, websockets
on 127.0.0.1, a real users file."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.ledger import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import stop
from tests.hub.test_ops_review10 import _add, _env, _run, _serve


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_one_user_cannot_take_every_connection(tmp_path: Path, prod: Project,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    users = Users(tmp_path / "users.db")
    rita = users.add("rita", "reader")
    ann = users.add("ann", "writer")
    lim = Limits(max_connections=8, max_connections_per_user=3)
    async with Hub(MemLedger(prod), users=users, limits=lim) as hub, AsyncExitStack() as st:
        held = [await st.enter_async_context(connect(hub.url, additional_headers=_auth(rita)))
                for _ in range(3)]
        for _ in range(5):  # the fourth and later: refused, naming the user and the option
            with pytest.raises(InvalidStatus) as exc:
                async with connect(hub.url, additional_headers=_auth(rita)):
                    pass
            assert exc.value.response.status_code == 503
            body = exc.value.response.body.decode()
            assert "too many connections for user 'rita' (limit 3 per user)" in body
            assert "--max-connections-per-user" in body
        # everyone else still gets in
        async with connect(hub.url, additional_headers=_auth(ann)) as ws:
            assert "res" in await request(ws, "evt.stat")
        # a closed connection frees its slot (a bounded wait for the hub to see the close)
        await held[0].close()
        for _ in range(250):
            if hub.connections == 2:
                break
            await asyncio.sleep(0.02)
        assert hub.connections == 2
        async with connect(hub.url, additional_headers=_auth(rita)) as ws:
            assert "res" in await request(ws, "evt.stat")
    said = [r.getMessage() for r in caplog.records
            if "limit per user" in r.getMessage()]
    # repeat-limited: the first refusal logged, the other four counted at stop
    assert said[0].startswith("connection refused from 127.0.0.1:") and "'rita'" in said[0]
    assert len(said) == 2 and "(4 more like it" in said[1], said


async def test_without_a_users_file_every_connection_is_one_user_and_uncapped(
        prod: Project) -> None:
    """--auth none (loopback): every connection is the same user, bounded by
    max_connections only."""
    lim = Limits(max_connections=8, max_connections_per_user=2)
    async with Hub(MemLedger(prod), limits=lim) as hub, AsyncExitStack() as st:
        for _ in range(4):
            ws = await st.enter_async_context(connect(hub.url))
            assert "res" in await request(ws, "evt.stat")


async def _count_accepted(url: str, token: str, n: int) -> int:
    async with AsyncExitStack() as st:
        for i in range(n):
            try:
                await st.enter_async_context(connect(url, additional_headers=_auth(token)))
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                return i
    return n


def test_serve_caps_a_user_at_a_tenth_of_max_connections(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    db = str(tmp_path / "hub.db")
    token = _add(env, "rita", "--db", db)
    r = _run(env, "serve", "--port", "0", "--db", db, "--max-connections-per-user", "-1")
    assert r.returncode != 0 and "--max-connections-per-user -1: 0 or more" in r.stderr
    proc, url, _ = _serve(env, "--db", db, "--max-connections", "30")
    try:
        assert asyncio.run(_count_accepted(url, token, 5)) == 3
    finally:
        rc, log = stop(proc)
    assert rc == 0, log
    assert "user 'rita' has 3 connections, the limit per user" in log, log


async def test_simultaneous_handshakes_never_pass_either_limit(tmp_path: Path,
                                                               prod: Project) -> None:
    """Session 12's note feared that handshakes arriving together could each pass the count
    before any became a connection. They cannot (websockets 17): ``_process_request``'s count
    and ``_handler``'s registration run with no await between them (the 101 is written
    without waiting; a send waits only on a closing or write-paused transport). Pinned: 80
    handshakes of 4 users started at once, each limit exactly reached, the rest 503."""
    users = Users(tmp_path / "users.db")
    tokens = [users.add(f"u{i}", "writer") for i in range(4)]
    lim = Limits(max_connections=6, max_connections_per_user=2)
    async with Hub(MemLedger(prod), users=users, limits=lim) as hub:

        async def one(token: str) -> object:
            try:
                return await connect(hub.url, open_timeout=60,
                                     additional_headers=_auth(token))
            except InvalidStatus as exc:
                return exc.response.status_code

        got = await asyncio.wait_for(
            asyncio.gather(*(one(tokens[i % 4]) for i in range(80))), 120)
        opened = [ws for ws in got if not isinstance(ws, int)]
        try:
            assert sorted(set(ws for ws in got if isinstance(ws, int))) == [503]
            assert len(opened) == 6 and hub.connections == 6
            assert sorted(hub._per_user.values()) == [1, 1, 2, 2]
        finally:
            for ws in opened:
                await ws.close()
