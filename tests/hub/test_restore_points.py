"""The hub serves its ledger's restore points in ``evt.stat`` (Outpost extension,
``docs/protocol.md``): the latest as ``restored``/``restore_id`` (session 7's fields) and
the last :data:`core.wire.MAX_RESTORES` of every point, oldest first, as ``restores``, with
``restores_omitted`` counting those left out. A real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.client import connect

from core.ledger.sql import SqlLedger
from core.revision import format_rev
from core.schema import Project
from core.wire import MAX_RESTORES
from hubserver.server import Hub
from tests.hub.conftest import request


async def test_evt_stat_serves_the_last_restore_points(tmp_path: Path,
                                                        project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    before = [(1000 * (i + 1), f"{i:032x}") for i in range(MAX_RESTORES + 5)]
    with led.begin() as conn:
        led.set_restored(1000 * (len(before) + 1), conn, before)
    points = led.restores
    assert len(points) == MAX_RESTORES + 6 and points[:-1] == tuple(before)
    async with Hub(led, port=0) as hub, connect(hub.url) as ws:
        res = (await request(ws, "evt.stat"))["res"]
    led.close()
    assert res["restored"] == format_rev(points[-1][0]) and res["restore_id"] == points[-1][1]
    assert res["restores"] == [{"rev": format_rev(r), "id": i}
                               for r, i in points[-MAX_RESTORES:]]
    assert res["restores_omitted"] == 6


async def test_one_restore_serves_one_point_and_none_omitted(tmp_path: Path,
                                                             project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    with led.begin() as conn:
        led.set_restored(5000, conn)
    async with Hub(led, port=0) as hub, connect(hub.url) as ws:
        res = (await request(ws, "evt.stat"))["res"]
    rid = led.restored[1]
    led.close()
    assert res["restores"] == [{"rev": format_rev(5000), "id": rid}]
    assert res["restore_id"] == rid and "restores_omitted" not in res
