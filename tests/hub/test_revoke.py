"""A removed user's open connections are closed (the token is checked at the handshake, and
then again whenever the users file changes): two hubs sharing one users file, real websockets,
the real ``outpost-hub user remove`` process."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.ledger import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_cli import ENV, hub_cmd

PUB = {"acts": [{"top": "prod.cat", "key": "1", "cmd": "new", "arg": {"name": "a"}}]}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_removed_user_is_disconnected_on_every_hub(prod: Project, tmp_path: Path) -> None:
    path = tmp_path / "hub-users.db"
    admin = Users(path)
    dave, ann = admin.add("dave"), admin.add("ann")
    u1, u2 = Users(path), Users(path)
    led = MemLedger(prod)
    try:
        async with Hub(led, users=u1, users_check=0.05) as h1, \
                Hub(led, users=u2, users_check=0.05) as h2, \
                connect(h1.url, additional_headers=_auth(dave)) as d1, \
                connect(h2.url, additional_headers=_auth(dave)) as d2, \
                connect(h1.url, additional_headers=_auth(ann)) as a1:
            assert "res" in await request(d1, "evt.pub", PUB)
            assert "res" in await request(d2, "evt.stat")
            r = await asyncio.to_thread(subprocess.run, hub_cmd("user", "remove", "dave",
                                                                "--users", str(path)),
                                        capture_output=True, text=True, env=ENV, timeout=60)
            assert r.returncode == 0, r.stderr
            for ws in (d1, d2):
                with pytest.raises(ConnectionClosed) as ei:
                    for _ in range(100):  # until the hub closes it (bounded by the test timeout)
                        await request(ws, "evt.stat", timeout=30)
                        await asyncio.sleep(0.05)
                assert ei.value.rcvd is not None and ei.value.rcvd.code == 1008
                assert "revoked" in ei.value.rcvd.reason
            assert "res" in await request(a1, "evt.stat")  # other users keep their connection
            with pytest.raises(InvalidStatus) as e401:
                async with connect(h1.url, additional_headers=_auth(dave)):
                    pass
            assert e401.value.response.status_code == 401
            # a replaced token: the connection made with the old one is closed too
            async with connect(h2.url, additional_headers=_auth(ann)) as a2:
                admin.add("ann")
                with pytest.raises(ConnectionClosed):
                    for _ in range(100):
                        await request(a2, "evt.stat", timeout=30)
                        await asyncio.sleep(0.05)
    finally:
        for u in (admin, u1, u2):
            u.close()
    assert len(led.events(0)) == 1  # nothing published by dave after the removal
