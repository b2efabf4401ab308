"""A catch-up over a slow link finishes (safety review 10, finding 4): the hub's pong waited
behind a big reply, so the client's keepalive (and its request timeout) closed the
connection while the reply was still arriving, and a catch-up never finished. Real hub on
127.0.0.1, a real TCP proxy that throttles hub -> satellite bytes, real SQLite. The
keepalive and timeout are scaled down (0.2 s) and the link (100 KB/s) with them; every loop
here is bounded."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite import client as client_mod
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub

RATE = 100_000  # bytes/s hub -> satellite


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, rate: float) -> None:
    try:
        for _ in range(100_000):  # bounded: far more than the test sends
            data = await r.read(4096)
            if not data:
                break
            w.write(data)
            await w.drain()
            if rate:
                await asyncio.sleep(len(data) / rate)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()


async def test_a_catch_up_slower_than_the_keepalive_finishes(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    led = MemLedger(project)
    note = "n" * 150
    for t in range(8):  # ~2,400 events of ~250 bytes: ~600 KB, ~6 s at RATE
        led.publish(Trans(tuple(Action("field.site", f"k{t}-{i}", Cmd.NEW,
                                       {"name": f"site {t}-{i}", "notes": note})
                                for i in range(300))), "office")
    monkeypatch.setattr(client_mod, "PING_INTERVAL", 0.2)
    monkeypatch.setattr(client_mod, "PING_TIMEOUT", 0.2)
    tasks: set[asyncio.Task[None]] = set()
    # the hub's keepalive scaled down too: its pings queue behind its own reply
    async with Hub(led, port=0, limits=Limits(ping_interval=0.2, ping_timeout=0.2)) as hub:
        port = int(hub.url.rsplit(":", 1)[1].split("/")[0])

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            hr, hw = await asyncio.open_connection("127.0.0.1", port)
            tasks.update({asyncio.ensure_future(_pipe(r, hw, 0)),
                          asyncio.ensure_future(_pipe(hr, w, RATE))})

        proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
        pport = proxy.sockets[0].getsockname()[1]
        sat = Satellite(tmp_path / "s", project)
        try:
            c = SyncClient(sat, f"ws://127.0.0.1:{pport}", rnd=random.Random(0),
                           timeout=0.5)
            await c.sync_once(60)
            assert sat.count("field.site") == 2400
            assert "timed out" not in sat.status().last_error
        finally:
            sat.close()
            proxy.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await proxy.wait_closed()
