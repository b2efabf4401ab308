"""Faults during an ``evt.sub``/``evt.mon`` catch-up read by the connection's sender (found in
review): an unexpected error closes with 1011 instead of silencing the connection, and a
catch-up whose reply is an error leaves nothing of its topics (notes of its monitor) to push
after that reply."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.ledger import MemLedger
from core.model import Event
from core.revision import Rev
from core.schema import Project
from hubserver.limits import CLOSE_INTERNAL, Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json, request
from tests.hub.test_catchup_order import Z, frame, new

OLD = "2000-01-01T00:00:00Z"


class Corrupt(MemLedger):
    """Bounded reads (the sender's catch-up reads) fail as a corrupt row would."""

    fail = False

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0) -> list[Event]:
        if self.fail and limit:
            raise ValueError("corrupt row")
        return super().events(rev, tops, limit)


@pytest.mark.parametrize("req", [
    ("evt.sub", {"rev": Z, "tops": ["prod.cat"]}),
    ("evt.mon", {"rev": OLD, "watch": [{"top": "prod.cat", "keys": ["new"]}]}),
])
async def test_unexpected_error_reading_a_catch_up_closes_1011(
        prod: Project, req: tuple[str, Any]) -> None:
    led = Corrupt(prod)
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        for i in range(1, 21):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
        led.fail = True
        await sub.send(frame(req[0] + "#1", req[1]))
        await sub.send("evt.stat#2")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(sub)
        assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_INTERNAL
        # the hub goes on serving the others
        assert (await request(pub, "evt.stat"))["res"]["rev"] != Z
