"""Session 12: an ``evt.sat`` that errors (refused, or its publish failed) changes nothing of
the connection's subscription, so its pending ``evt.sub`` catch-up goes on: it was dropped
when the request arrived, and the client, still subscribed, never got the events between its
``evt.sub`` rev and the hub's revision. Real hub, real websockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from core.errors import StorageError
from core.ledger import MemLedger
from core.ledger.protocols import PubResult
from core.model import Trans
from core.revision import Rev
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json
from tests.hub.test_sat_offloop import Z, fill, sat

FUTURE = "9999-01-01T00:00:00Z"
N = 60


class FailingPublish(MemLedger):
    """Every publish fails (the disk is gone): an evt.sat carrying edits gets an error reply."""

    def publish_many(self, trans: Sequence[tuple[Trans, str]],
                     now: Rev | None = None) -> list[PubResult | Exception]:
        raise StorageError("writing hub.db failed: disk I/O error")


@pytest.mark.parametrize("case", ["future rev", "publish failed"])
async def test_an_evt_sat_that_errors_keeps_the_evt_sub_catch_up(prod: Project,
                                                                 case: str) -> None:
    led = FailingPublish(prod) if case == "publish failed" else MemLedger(prod)
    fill(led, N)  # on the ledger itself: publish_many is not used
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as ws:
        # in one write: the evt.sat is handled while the catch-up (6 batches) is pending
        ws.protocol.send_text(b"evt.sub#s\n" + orjson.dumps({"rev": Z, "tops": ["prod.cat"]}))
        ws.protocol.send_text((sat("x", FUTURE) if case == "future rev"
                               else sat("x", Z, keys=("k1",))).encode())
        ws.send_data()
        keys: list[str] = []
        heads: list[str] = []
        sat_reply: Any = None
        for _ in range(100):  # bounded: 100 frames, each within 5 s
            if len(keys) >= N and sat_reply is not None:
                break
            try:
                head, body = await recv_json(ws)
            except TimeoutError:
                break  # nothing more comes
            heads.append(head)
            if head == "evt.sat#x":
                sat_reply = body
                continue
            b = body.get("res") if head == "evt.sub#s" else body
            keys += [e["key"] for e in (b or {}).get("evs") or ()]
        assert sat_reply is not None and "err" in sat_reply, (heads, sat_reply)
        if case == "future rev":
            assert "is in the future of the ledger" in sat_reply["err"]
        else:
            assert "could not store the transactions" in sat_reply["err"]
        # every event of the catch-up, once and in order (before: the first batch only)
        assert keys == [str(i) for i in range(1, N + 1)], (len(keys), heads)
