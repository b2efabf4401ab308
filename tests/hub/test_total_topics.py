"""``total_max`` of a catch-up of some topics (session 10): the events of the requested
topics, not of every topic (a satellite syncing some topics never reached its "of N").
Over real websockets on 127.0.0.1; the count read from the ledger (SQLite and
PostgreSQL) and from the hub's recent events; evt.sat and evt.sub."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import connect

from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_total import Z

ALL = ["prod.cat", "prod.prod", "prod.label"]


def _acts(t: int) -> list[Action]:
    """50 events: 30 of prod.cat, 20 of prod.label, interleaved in one transaction."""
    return [Action("prod.cat" if i % 5 < 3 else "prod.label", str(t * 100 + i), Cmd.NEW,
                   {"name": "c"}) for i in range(50)]


async def _chain(url: str, subj: str, tops: list[str]) -> list[Any]:
    out = []
    async with connect(url) as ws:
        rev = Z
        for _ in range(20):  # bounded: 250 events in batches of 100
            body = {"rev": rev, "trans": [], "tops": tops, "audits": True, "cont": True}
            res = (await request(ws, subj, body))["res"]
            out.append(res)
            rev = res["rev"]
            if not res.get("more"):
                return out
    raise AssertionError("the catch-up did not end")


async def test_the_count_is_of_the_requested_topics(prod: Project, sql_url: str) -> None:
    led = SqlLedger(sql_url, prod)
    for t in range(5):  # before the hub started: read from the ledger
        led.publish(Trans(tuple(_acts(t))), "office")
    async with Hub(led, port=0, limits=Limits(max_batch=100)) as hub:
        cat = await _chain(hub.url, "evt.sat", ["prod.cat"])
        assert sum(len(r.get("evs", ())) for r in cat) == 150
        assert cat[0]["more"] and cat[0]["total_max"] == 150  # before session 10: 250
        two = await _chain(hub.url, "evt.sat", ["prod.prod", "prod.cat"])  # one of them empty
        assert two[0]["total_max"] == 150
        label = await _chain(hub.url, "evt.sat", ["prod.label"])
        assert len(label) == 1 and len(label[0]["evs"]) == 100  # one reply: no count
        every = await _chain(hub.url, "evt.sat", ALL)  # every topic: as before
        assert every[0]["total_max"] == 250
        async with connect(hub.url) as ws:
            res = (await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}))["res"]
            assert len(res["evs"]) < 150 and res["total_max"] == 150
    led.close()


async def test_from_the_recent_events_too(prod: Project, sql_url: str) -> None:
    led = SqlLedger(sql_url, prod)
    async with Hub(led, port=0, limits=Limits(max_batch=100)) as hub:
        async with connect(hub.url) as ws:
            for t in range(5):  # published through the hub: in its recent events
                acts = [{"top": a.top, "key": a.key, "cmd": "new"} for a in _acts(t)]
                assert "res" in await request(ws, "evt.pub", {"acts": acts})
        cat = await _chain(hub.url, "evt.sat", ["prod.cat"])
        assert sum(len(r.get("evs", ())) for r in cat) == 150
        assert cat[0]["total_max"] == 150
        assert (await _chain(hub.url, "evt.sat", ALL))[0]["total_max"] == 250
    led.close()
