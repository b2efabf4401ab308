"""A daql client more than ``max_batch`` events behind gets the rest of its ``evt.sat``
catch-up as pushes and then live pushes (wire review 12, session 12: it got the first batch
with ``more``, which daql clients ignore, and then nothing, not even a colleague's publish).
A real hub, websockets on 127.0.0.1; both ways a reply is built: from the hub's recent
events (on the loop) and read from the ledger (events older than the hub's start)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json, request

Z = "0001-01-01T00:00:00Z"
TOP = "prod.label"
N = 130  # events behind, with max_batch 50: a reply and more than one batch left


async def _until(ws: ClientConnection, keys: list[str], want: int) -> list[str]:
    """Pushes received until ``want`` keys in all (bounded: at most 100 frames, 5 s each)."""
    for _ in range(100):
        if len(keys) >= want:
            break
        head, body = await recv_json(ws)
        assert head == "evt.update", (head, body)
        keys.extend(e["key"] for e in body.get("evs", ()))
    return keys


async def _daql_client(hub: Hub, sat: dict[str, Any]) -> None:
    async with connect(hub.url, max_size=None) as d:
        r = await request(d, "evt.sat", sat)
        res = r["res"]
        # cut at max_batch, the rest pushed: no "more" (a client that follows it would
        # ask again for what is pushed)
        assert "more" not in res and "total_max" not in res and len(res["evs"]) == 50
        keys = await _until(d, [e["key"] for e in res["evs"]], N)
        assert keys == [str(i) for i in range(N)]  # every one, in order, once
        async with connect(hub.url) as w:  # a colleague's publish: a live push
            assert "res" in await request(w, "evt.pub", {"acts": [
                {"top": TOP, "key": "9999", "cmd": "new", "arg": {"name": "x"}}]})
        assert await _until(d, keys, N + 1) == [*map(str, range(N)), "9999"]


async def _publish(hub: Hub, n: int) -> None:
    """Publish records "0" … ``n - 1`` of TOP, one transaction each."""
    async with connect(hub.url) as w:
        for i in range(n):
            await request(w, "evt.pub", {"acts": [{"top": TOP, "key": str(i), "cmd": "new",
                                                   "arg": {"name": "n"}}]})


def _daql_sat() -> dict[str, Any]:
    return {"rev": Z, "trans": None, "tops": [TOP]}  # wshub.Client's: no Outpost fields


async def test_daql_client_far_behind_gets_the_rest_as_pushes(prod: Project) -> None:
    async with Hub(MemLedger(prod), limits=Limits(max_batch=50)) as hub:
        await _publish(hub, N)
        await _daql_client(hub, _daql_sat())


async def test_daql_client_far_behind_read_from_the_ledger(prod: Project) -> None:
    led = MemLedger(prod)
    for i in range(N):  # before the hub starts: older than its recent events
        led.publish(Trans((Action(TOP, str(i), Cmd.NEW, {"name": "n"}),)), "seed")
    async with Hub(led, limits=Limits(max_batch=50)) as hub:
        await _daql_client(hub, _daql_sat())


@pytest.mark.parametrize("ours", [{"audits": True}, {"lim": 50}])
async def test_an_outpost_satellite_asks_again_itself(prod: Project, ours: dict[str, Any]
                                                      ) -> None:
    """An Outpost satellite (audits, lim or cont) asks for the next batch itself: nothing
    is pushed before it does (as before)."""
    async with Hub(MemLedger(prod), limits=Limits(max_batch=50)) as hub:
        await _publish(hub, N)
        async with connect(hub.url, max_size=None) as d:
            res = (await request(d, "evt.sat", {**_daql_sat(), **ours}))["res"]
            assert res["more"] is True
            # the next frame is the reply to its next request, not a push
            await d.send("evt.stat#77")
            head, _ = await recv_json(d)
            assert head == "evt.stat#77"


async def _ask(d: ClientConnection, tok: int) -> None:
    """Send a daql client's ``evt.sat`` from rev 0 with token ``tok`` (no reading)."""
    await d.send(f"evt.sat#{tok}\n" + orjson.dumps(_daql_sat()).decode())


async def _reply_keys(d: ClientConnection, tok: int) -> list[str]:
    """The event keys of the reply with token ``tok``, skipping pushes (bounded: 200)."""
    for _ in range(200):
        head, body = await recv_json(d)
        if head == f"evt.sat#{tok}":
            return [e["key"] for e in body["res"].get("evs", ())]
    raise AssertionError("no reply")


@pytest.mark.parametrize("back_to_back", [False, True])
async def test_a_daql_client_asking_again_from_the_same_rev_gets_every_event(
        prod: Project, back_to_back: bool) -> None:
    """A daql client sends ``evt.sat`` from rev 0 again on one connection (the reference
    capture's client D; a reload, or a retry after a timeout before the first reply came):
    the second reply holds every event again, as daql's hub answers (merge review 13: a
    reply "continued" where the first ended came back empty, and a client that dropped the
    late first reply never got those records)."""
    async with Hub(MemLedger(prod)) as hub:
        await _publish(hub, 3)
        async with connect(hub.url) as d:
            await _ask(d, 1)
            if back_to_back:
                await _ask(d, 2)
                first = await _reply_keys(d, 1)
            else:
                first = await _reply_keys(d, 1)
                await _ask(d, 2)
            assert (first, await _reply_keys(d, 2)) == (["0", "1", "2"], ["0", "1", "2"])


async def test_a_daql_client_far_behind_asking_again_from_rev_0_gets_it_all(
        prod: Project) -> None:
    """Asked again from rev 0 after the reply and the pushed rest of a big catch-up: the new
    reply starts at rev 0 again (its first batch), not empty at the catch-up's end."""
    async with Hub(MemLedger(prod), limits=Limits(max_batch=50)) as hub:
        await _publish(hub, N)
        async with connect(hub.url, max_size=None) as d:
            r = await request(d, "evt.sat", _daql_sat())
            keys = await _until(d, [e["key"] for e in r["res"]["evs"]], N)
            assert keys == [str(i) for i in range(N)]
            await _ask(d, 7)
            assert await _reply_keys(d, 7) == [str(i) for i in range(50)]
