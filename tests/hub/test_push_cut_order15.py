"""A push cut under ``max_message`` (session 15) is written whole, part after part, before a
reply or a catch-up that follows it in the send order. Its rest used to go back into the
pending push with a flush queued at the end of the connection's queue, behind the reply: a
daql-style client got its own edit's reply between the parts, then an older pushed value of
the key it had just edited, and its rev went backwards."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from core.ledger import SqlLedger
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_big_values15 import SMALL_MAX, _others

Z = "0001-01-01T00:00:00Z"


async def _frames(s: ClientConnection, last: str) -> list[tuple[str, Any]]:
    """Heads and bodies (the ``res`` of a reply) received up to the frame headed ``last``."""
    got: list[tuple[str, Any]] = []
    for _ in range(40):  # bounded
        text = await asyncio.wait_for(s.recv(), 10)
        assert isinstance(text, str) and len(text.encode()) <= SMALL_MAX
        head, _, body = text.partition("\n")
        b = orjson.loads(body)
        got.append((head, b.get("res", b) if isinstance(b, dict) else b))
        if head == last:
            return got
    raise AssertionError(f"no {last} in {[h for h, _ in got]}")


async def test_a_reply_waits_for_every_part_of_a_cut_push(prod: Project,
                                                          tmp_path: Path) -> None:
    """Another hub (a second writer of the same ledger) published 10 values of 20 KB; the
    subscriber then edits key 5: its commit finds the gap and fans it out before the
    reply, in parts under the client's 64 KiB. Every part (keys 1..10, the older value of
    key 5 among them) comes before the reply, and the revisions only go forward."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    led = SqlLedger(url, prod)
    async with Hub(led, port=0, limits=Limits(max_message=SMALL_MAX),
                   close_ledger=True) as hub, connect(hub.url, max_size=SMALL_MAX) as s:
        assert await request(s, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == {"res": None}
        await asyncio.to_thread(_others, url, prod, 10)
        await s.send("evt.pub#p\n" + orjson.dumps({"acts": [
            {"top": "prod.cat", "key": "5", "cmd": "mod", "arg": {"name": "mine"}}]}).decode())
        got = await _frames(s, "evt.pub#p")
    heads = [h for h, _ in got]
    assert set(heads[:-1]) == {"evt.update"} and len(heads) >= 5, heads
    keys = [e["key"] for _, b in got[:-1] for e in b["evs"]]
    assert keys == [str(i) for i in range(1, 11)]
    revs = [datetime.fromisoformat(b["rev"].replace("Z", "+00:00")) for _, b in got]
    assert revs == sorted(revs) and len(set(revs)) == len(revs), revs


async def test_a_catch_up_waits_for_every_part_of_a_cut_push(prod: Project,
                                                            tmp_path: Path) -> None:
    """The same with an ``evt.sub`` of another topic arriving while the cut push is
    pending: its reply and catch-up come after every part of the push."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    led = SqlLedger(url, prod)
    async with Hub(led, port=0, limits=Limits(max_message=SMALL_MAX),
                   close_ledger=True) as hub, connect(hub.url, max_size=SMALL_MAX) as s:
        assert await request(s, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == {"res": None}
        (conn,) = hub._peers
        await asyncio.to_thread(_others, url, prod, 10)
        evs = await asyncio.to_thread(led.events, hub.service.rev)
        # the cluster's catch-up fans the 10 values out, then the evt.sub is handled, in one
        # turn of the loop (deterministic: as when both arrive together)
        hub._deliver(hub.service.catch_up(evs))
        outs, job = hub.service.handle(conn, "evt.sub#l\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.label"]}).decode())
        assert job is None
        hub._deliver(outs)
        got = await _frames(s, "evt.sub#l")
    heads = [h for h, _ in got]
    assert set(heads[:-1]) == {"evt.update"} and len(heads) >= 5, heads
    keys = [e["key"] for _, b in got[:-1] for e in b["evs"]]
    assert keys == [str(i) for i in range(1, 11)]
