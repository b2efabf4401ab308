"""No false alarm from ``evt.sat``'s ``last`` (ours, session 15) on a cluster: a satellite
syncing through one hub, then another of the same PostgreSQL ledger (one that fanned out the
other's events, one just started whose recent events are empty: read through the revision
index), syncs on; nor from the once-per-replica probes at the accepted edits' revisions (session
16). Real hubs on 127.0.0.1, real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ledger.sql import SqlLedger
from core.revision import ZERO_REV
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.cluster import ClusterListener
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here
from tests.scaleout.conftest import cluster

pytestmark = [pytest.mark.pg, pytest.mark.timeout(120)]


def state(d: Path) -> tuple[int, set[str]]:
    sat = Satellite(d, read_only=True)
    try:
        return sat.rev(), set(sat.keys("field.site"))
    finally:
        sat.close()


async def test_a_satellite_moving_between_hubs_of_a_cluster_syncs_on(
        fresh_pg_db: str, project: Project, tmp_path: Path) -> None:
    x, w = tmp_path / "x", tmp_path / "w"
    async with cluster(fresh_pg_db, project, 2) as (a, b):
        pub_here(x, "s1", "new", project, name="A")
        await sync_here(x, a.hub.url, project)
        for i in range(3):
            pub_here(w, f"w{i}", "new", project, name=f"W{i}")
        await sync_here(w, b.hub.url, project)
        pub_here(x, "s2", "new", project, name="B")
        await sync_here(x, b.hub.url, project)  # b published w0..w2 itself
        pub_here(w, "w3", "new", project, name="W3")
        await sync_here(w, b.hub.url, project)
        await sync_here(x, a.hub.url, project)  # a fanned them out from b's commits
        led = a.ledger
        assert state(x) == (led.rev(), set(led.keys("field.site")))
        # PostgreSQL reads through the revision index
        last = led.last_event_at(led.rev())
        assert last[0] == led.last_id() and last[1] == led.rev()
        assert led.last_event_at(ZERO_REV) == (0, ZERO_REV)
        # replicas made before session 16: the edits the hub accepted from them (through a
        # and b) are asked about once (session 16), here through a third hub
        for d in (x, w):
            sat = Satellite(d, project)
            try:
                sat.queue.set_meta("own_checked", None)
                assert len(sat.own_unchecked(sat.rev()) or []) >= 2
            finally:
                sat.close()
        # a hub of the cluster just started (nothing fanned out yet: the ledger is read)
        c_led = SqlLedger(fresh_pg_db, project)
        async with Hub(c_led, port=0) as c:
            lis = ClusterListener(fresh_pg_db, c.request_catch_up)
            await lis.start(timeout=10)
            try:
                pub_here(x, "s3", "new", project, name="C")
                await sync_here(x, c.url, project)
                await sync_here(w, c.url, project)
            finally:
                await lis.stop()
        c_led.close()
        assert state(x) == (led.rev(), set(led.keys("field.site")))
        assert {"s1", "s2", "s3", "w3"} <= state(x)[1]
        for d in (x, w):  # asked, passed: not again; nothing marked lost
            sat = Satellite(d, project)
            try:
                assert sat.own_unchecked(sat.rev()) is None and sat.lost_by_hub() == []
            finally:
                sat.close()
