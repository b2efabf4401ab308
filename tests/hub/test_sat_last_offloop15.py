"""``evt.sat``'s ``last`` checked against the ledger (a hub just started: its recent events
do not reach back to the request's ``rev``) is read off the event loop (review of session
15: read on the loop, a paused PostgreSQL or a silently dropped connection froze the whole
hub, no /healthz, no pings, no handshakes, for as long as the database hung). While the
lookup waits, the hub serves the other connections; the request's connection waits (its
next request is answered after it); the request is then answered, or refused whole
(nothing published), as before."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.revision import Rev, format_rev
from core.schema import Project
from hubserver.server import Hub
from tests.hub.conftest import Clock, recv_json, request


class Hung(MemLedger):
    """``last_event_at`` waits for the test (a database that does not answer); bounded, so a
    hub that reads it on its loop (and so stops the test's loop too) is seen, not hung."""

    def __init__(self, project: Project):
        super().__init__(project)
        self.started = threading.Event()
        self.gate = threading.Event()
        self.waiting = False

    def last_event_at(self, rev: Rev) -> tuple[int, Rev]:
        self.waiting = True
        self.started.set()
        try:
            self.gate.wait(10)
        finally:
            self.waiting = False
        return super().last_event_at(rev)


def _sat(rev: Rev, last: tuple[int, Rev]) -> str:
    return "evt.sat#S\n" + orjson.dumps({
        "rev": format_rev(rev), "tops": ["prod.cat"], "audits": True,
        "last": {"id": last[0], "rev": format_rev(last[1])},
        "trans": [{"uid": "u1", "base": format_rev(rev), "acts": [
            {"top": "prod.cat", "key": "9", "cmd": "new", "arg": {"name": "x"}}]}]}).decode()


@pytest.mark.parametrize("same", [True, False], ids=["same", "diverged"])
async def test_last_read_from_the_ledger_does_not_stop_the_hub(prod: Project, clock: Clock,
                                                                same: bool) -> None:
    ledger = Hung(prod)
    revs = [ledger.publish(Trans((Action("prod.cat", str(i), Cmd.NEW, {"name": f"c{i}"}),)),
                           "ann", clock()).rev for i in range(3)]
    n = ledger.rev()
    last = (2, revs[1]) if same else (2, revs[0])
    async with Hub(ledger, port=0, clock=clock) as hub, connect(hub.url) as sat, \
            connect(hub.url) as other:
        await sat.send(_sat(revs[1], last))
        await sat.send("evt.stat#T")  # waits for the evt.sat's reply
        assert await asyncio.to_thread(ledger.started.wait, 10)
        # the lookup waits: the hub still answers another connection
        stat = await request(other, "evt.stat")
        assert ledger.waiting and not ledger.gate.is_set(), "answered after the lookup"
        assert "err" not in stat and ledger.rev() == n
        ledger.gate.set()
        frames: list[tuple[str, Any]] = []
        for _ in range(10):
            frames.append(await recv_json(sat))
            if frames[-1][0] == "evt.stat#T":
                break
    heads = [h for h, _ in frames]
    assert heads == ["evt.sat#S", "evt.stat#T"], heads
    body = frames[0][1]
    if same:
        assert "err" not in body, body
        assert [a["uid"] for a in body["res"]["acks"]] == ["u1"], body
        assert ledger.rev() > n and ledger.uid_rev("u1") is not None
    else:
        assert body.get("code") == "diverged", body
        assert body["last"] == {"id": 2, "rev": format_rev(revs[1])}, body
        assert ledger.rev() == n and ledger.uid_rev("u1") is None
