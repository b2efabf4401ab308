"""``GET /metrics`` of session 15: refusals before a commit counted by reason, and the pushes
pending read through ``HubService.push_counts`` (real hubs on 127.0.0.1, real HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.ledger import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import HubService
from tests.hub.conftest import Clock, request
from tests.hub.test_metrics14 import _get, parse

Z = "0001-01-01T00:00:00Z"
TOKEN = "t" * 24


def new(key: str, name: str) -> dict[str, Any]:
    return {"acts": [{"top": "prod.cat", "key": key, "cmd": "new", "arg": {"name": name}}]}


def refused(m: dict[str, float]) -> dict[str, float]:
    pre = 'outpost_hub_refused_total{reason="'
    return {k[len(pre):-2]: v for k, v in m.items() if k.startswith(pre)}


async def test_refusals_before_a_commit_are_counted_by_reason(
        prod: Project, tmp_path: Path) -> None:
    users = Users(tmp_path / "hub-users.db")
    ann = users.add("ann")
    rita = users.add("rita", "reader")
    limits = Limits(max_acts=2)
    async with Hub(MemLedger(prod), port=0, users=users, limits=limits,
                   metrics_token=TOKEN) as hub:
        status, _ct, body = await asyncio.to_thread(_get, hub.url, TOKEN)
        assert status == 200
        m0 = refused(parse(body))
        assert set(m0) >= {"auth", "frame", "invalid", "read_only", "rate"}
        assert not any(m0.values()), m0
        with pytest.raises(InvalidStatus):  # an unknown token: refused at the handshake
            async with connect(hub.url, additional_headers={"Authorization": "Bearer nope"}):
                pass
        async with connect(hub.url, additional_headers={"Authorization": f"Bearer {ann}"}) \
                as a, connect(hub.url, additional_headers={"Authorization": f"Bearer {rita}"}) \
                as r:
            # a bad message: a value of the wrong type in the request
            assert "err" in await request(a, "evt.pub", {"acts": "not a list"})
            assert "err" in await request(a, "evt.sub", {"rev": 5, "tops": ["prod.cat"]})
            # over --max-acts: refused before the commit
            three = {"acts": new("1", "a")["acts"] * 3}
            assert "err" in await request(a, "evt.pub", three)
            # a reader's edit
            assert "err" in await request(r, "evt.pub", new("2", "b"))
            # what reaches the ledger is not a refusal
            assert "res" in await request(a, "evt.pub", new("3", "c"))
            # not a frame at all: closed
            await a.send("")
            with pytest.raises(ConnectionClosed):
                for _ in range(10):
                    await asyncio.wait_for(a.recv(), 5)
        status, _ct, body = await asyncio.to_thread(_get, hub.url, TOKEN)
        m = parse(body)
    got = refused(m)
    assert got["auth"] == 1
    assert got["invalid"] == 3
    assert got["read_only"] == 1
    assert got["frame"] == 1
    assert got["rate"] == 0
    assert m['outpost_hub_transactions_total{outcome="accepted"}'] == 1


def test_push_counts_say_what_is_still_to_send(prod: Project, clock: Clock) -> None:
    svc = HubService(MemLedger(prod), clock)
    for c in ("A", "B", "C"):
        svc.connect(c, f"user{c}")
    assert svc.push_counts() == (0, 0, 0)
    for c in ("B", "C"):
        svc.handle_sync(c, "evt.sub\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.cat"]}).decode())
    svc.handle_sync("A", "evt.pub\n" + orjson.dumps(new("1", "Ridge")).decode())
    svc.handle_sync("A", "evt.pub\n" + orjson.dumps(new("2", "Ford")).decode())
    assert svc.push_counts() == (2, 4, 0)
    assert svc.take_push("B") is not None
    assert svc.push_counts() == (1, 2, 0)
