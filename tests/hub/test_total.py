"""``total_max`` (ours, session 9): the first reply of a catch-up cut into batches says at
most how many events follow the request's ``rev``, so a client can show "12,000 of
100,000". Over real websockets on 127.0.0.1, with the reply read from the ledger (a gap
older than the hub's recent events) and from the recent events; evt.sat and evt.sub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request

Z = "0001-01-01T00:00:00Z"
TOPS = ["prod.cat", "prod.prod", "prod.label"]


def _fill(led: Any, n: int) -> None:
    for t in range(n // 50):
        led.publish(Trans(tuple(Action("prod.cat", str(t * 50 + i), Cmd.NEW, {"name": "c"})
                                for i in range(50))), "office")


@pytest.fixture
async def old_hub(prod: Project, tmp_path: Path) -> AsyncIterator[Hub]:
    """250 events from before the hub started: catch-ups read them from the ledger."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    _fill(led, 250)
    async with Hub(led, port=0, limits=Limits(max_batch=100)) as h:
        yield h


def sat(rev: str) -> dict[str, Any]:
    return {"rev": rev, "trans": [], "tops": TOPS, "audits": True, "cont": True}


async def _chain(url: str) -> list[Any]:
    """An Outpost satellite's catch-up: evt.sat again from each reply's rev while more."""
    out = []
    async with connect(url) as ws:
        rev = Z
        while True:
            res = (await request(ws, "evt.sat", sat(rev)))["res"]
            out.append(res)
            rev = res["rev"]
            if not res.get("more"):
                return out


async def test_a_catch_ups_first_reply_says_how_many_events_follow(old_hub: Hub) -> None:
    replies = await _chain(old_hub.url)
    assert len(replies) == 3 and replies[0]["more"]
    assert replies[0]["total_max"] == 250  # before session 9: not said
    assert all("total_max" not in r for r in replies[1:])  # the batches after it
    assert sum(len(r.get("evs", ())) for r in replies) == 250


async def test_from_the_recent_events_too_and_not_for_one_reply(prod: Project,
                                                                tmp_path: Path) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    async with Hub(led, port=0, limits=Limits(max_batch=100)) as hub:
        async with connect(hub.url) as ws:
            for t in range(5):  # published through the hub: in its recent events
                acts = [{"top": "prod.cat", "key": str(t * 50 + i), "cmd": "new"}
                        for i in range(50)]
                assert "res" in await request(ws, "evt.pub", {"acts": acts})
        replies = await _chain(hub.url)
        assert replies[0]["total_max"] == 250
        async with connect(hub.url) as ws:
            mid = replies[1]["rev"]  # 50 events left: one reply holds them, no count
            res = (await request(ws, "evt.sat", sat(mid)))["res"]
            assert len(res["evs"]) == 50 and "more" not in res and "total_max" not in res


async def test_an_evt_sub_catch_up_reply_says_it_too(old_hub: Hub) -> None:
    async with connect(old_hub.url) as ws:
        res = (await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}))["res"]
        assert len(res["evs"]) == 100 and res["total_max"] == 250
        # a subscription whose reply holds everything says nothing more than daql's
        res = (await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.label"]}))
        assert res["res"] is None
