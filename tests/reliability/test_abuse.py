"""Abuse and authorization against a real hub on 127.0.0.1 (SQLite ledger, token auth): each
attack is rejected as documented (docs/reliability.md, hubserver/limits.py), the hub stays up,
and honest clients keep working during a message flood (their p99 latency is printed)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.ledger.sql import SqlLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub

TOP = "field.site"


async def request(ws: ClientConnection, subj: str, body: Any = None, tok: str = "1") -> Any:
    await ws.send(f"{subj}#{tok}" + ("" if body is None else "\n" + orjson.dumps(body).decode()))
    async with asyncio.timeout(10):
        while True:
            text = await ws.recv()
            head, _, rest = str(text).partition("\n")
            if head == f"{subj}#{tok}":
                return orjson.loads(rest)


def trans(key: str, **kw: Any) -> dict[str, Any]:
    return {"base": "0001-01-01T00:00:00Z",
            "acts": [{"top": TOP, "key": key, "cmd": "new", "arg": {"name": key}}], **kw}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def users(tmp_path: Path) -> AsyncIterator[Users]:
    u = Users(tmp_path / "users.db")
    yield u  # type: ignore[misc]
    u.close()


async def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as ei:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    assert ei.value.rcvd is not None, "the hub dropped the connection without a close frame"
    return ei.value.rcvd.code


async def test_tokens_roles_spoofing_and_replay(tmp_path: Path, project: Project,
                                                users: Users) -> None:
    ann, rita = users.add("ann", "writer"), users.add("rita", "reader")
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led, users=users, close_ledger=True) as hub:
        for headers in ({}, auth("forged-" + ann[7:]), auth(""), {"Authorization": ann}):
            with pytest.raises(InvalidStatus) as ei:
                async with connect(hub.url, additional_headers=headers):
                    pass
            assert ei.value.response.status_code == 401
        async with connect(hub.url, additional_headers=auth(rita)) as r:
            res = await request(r, "evt.pub", trans("r1"))
            assert "reader and cannot publish" in res["err"]
            res = await request(r, "evt.sat", {"rev": "0001-01-01T00:00:00Z", "tops": [TOP],
                                               "trans": [trans("r2", uid="u-r2")]})
            # one error for the request, not a reject: the edit stays pending on the satellite
            assert "res" not in res and "may only read" in res["err"]
            assert "stored none of these edits" in res["err"]
        async with connect(hub.url, additional_headers=auth(ann)) as a:
            # a spoofed usr is ignored: the audit names the token's user
            first = await request(a, "evt.pub", trans("k1", usr="mallory", uid="u-k1"))
            hist = await request(a, "evt.hist", {"top": TOP, "key": "k1"})
            assert [h["usr"] for h in hist["res"]] == ["ann"]
            # replays, by evt.pub and by evt.sat, change nothing and answer the original rev
            again = await request(a, "evt.pub", trans("k1", uid="u-k1"), tok="2")
            assert again["res"]["rev"] == first["res"]["rev"]
            sat = await request(a, "evt.sat", {"rev": "0001-01-01T00:00:00Z", "tops": [TOP],
                                               "trans": [trans("k1", uid="u-k1")] * 3}, tok="3")
            assert {x["rev"] for x in sat["res"]["acks"]} == {first["res"]["rev"]}
        assert led.uid_rev("u-k1") is not None and len(led.history(TOP, "k1")) == 1
        assert led.uid_rev("u-r1") is None and led.uid_rev("u-r2") is None


async def test_frame_limit_deflate_bomb_origin_cap(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    lim = Limits(max_message=64 * 1024, compression=True, max_connections=3)
    async with Hub(led, limits=lim, origins=["https://office.example"],
                   close_ledger=True) as hub:
        ok = {"origin": "https://office.example"}
        # a frame over the limit: 1009
        async with connect(hub.url, max_size=None, **ok) as ws:  # type: ignore[arg-type]
            await ws.send("evt.pub#1\n" + "x" * (lim.max_message + 1))
            assert await close_code(ws) == 1009
        # a deflate bomb: 32 MB of zeros compress to ~32 kB; the limit counts inflated bytes
        async with connect(hub.url, max_size=None, compression="deflate",
                           **ok) as ws:  # type: ignore[arg-type]
            assert ws.protocol.extensions, "compression was not negotiated"
            await ws.send("evt.pub#1\n" + "\0" * (32 * 1024 * 1024))
            assert await close_code(ws) == 1009
        # a bad Origin: 403; none at all (a satellite, any non-browser client): accepted
        # (session 8: before, --allow-origin locked every satellite out)
        with pytest.raises(InvalidStatus) as ei:
            async with connect(hub.url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert ei.value.response.status_code == 403
        async with connect(hub.url) as ws:
            assert "res" in await request(ws, "evt.stat")
        # one connection over the cap: 503, and the others keep working
        conns = [await connect(hub.url, **ok) for _ in range(3)]  # type: ignore[arg-type]
        try:
            with pytest.raises(InvalidStatus) as ei:
                async with connect(hub.url, **ok):  # type: ignore[arg-type]
                    pass
            assert ei.value.response.status_code == 503
            for c in conns:
                assert "res" in await request(c, "evt.stat")
        finally:
            for c in conns:
                await c.close()


async def test_header_flood_and_slow_handshake(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led, limits=Limits(handshake_timeout=1.0), close_ledger=True) as hub:
        port = hub.port
        # header flood: 10,000 headers; the hub answers with an error or closes, never hangs
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        try:
            for i in range(10_000):
                w.write(f"X-Flood-{i}: {'a' * 50}\r\n".encode())
                if i % 500 == 0:
                    await w.drain()
            w.write(b"\r\n")
            await w.drain()
        except ConnectionError:
            pass  # the hub already hung up: that is a rejection too
        async with asyncio.timeout(5):
            reply = await r.read(200)
        assert reply == b"" or not reply.startswith(b"HTTP/1.1 101"), reply
        w.close()
        # slow handshake: half a request line, then silence: closed after handshake_timeout
        t0 = time.monotonic()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTT")
        await w.drain()
        async with asyncio.timeout(10):
            rest = await r.read()
        waited = time.monotonic() - t0
        assert not rest.startswith(b"HTTP/1.1 101")
        assert 0.5 < waited < 5, f"the slow handshake was dropped after {waited:.1f} s"
        w.close()
        async with connect(hub.url) as ws:  # still up
            assert "res" in await request(ws, "evt.stat")


async def test_message_flood_closed_honest_clients_keep_working(tmp_path: Path,
                                                                project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led, limits=Limits(rate=200, burst=400), close_ledger=True) as hub:
        latencies: list[float] = []

        async def honest(n: int) -> None:
            async with connect(hub.url) as ws:
                for i in range(40):
                    t0 = time.perf_counter()
                    res = await request(ws, "evt.pub", trans(f"h{n}-{i}"), tok=str(i))
                    latencies.append(time.perf_counter() - t0)
                    assert "res" in res, res
                    await asyncio.sleep(0.01)

        async def flood() -> int:
            async with connect(hub.url) as ws:
                try:
                    for i in range(20_000):
                        await ws.send(f"evt.stat#{i}")
                except ConnectionClosed:
                    pass
                return await close_code(ws)

        code, *_ = await asyncio.gather(flood(), *(honest(n) for n in range(3)))
        assert code == 1008
        assert len(latencies) == 120
        xs = sorted(latencies)
        p99 = xs[int(len(xs) * 0.99) - 1]
        print(f"ABUSE flood: flooder closed with {code}; honest evt.pub latency p50 "
              f"{statistics.median(xs) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {xs[-1] * 1000:.1f} ms over {len(xs)} publishes")
