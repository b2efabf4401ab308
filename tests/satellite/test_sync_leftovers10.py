"""Session 9's sync leftovers, fixed in session 10: ``last_sync`` only once the reply is
stored; ``sync --once --progress`` when the hub goes away mid catch-up; "of N" counting the
requested topics only; a 403 stops continuous sync."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from core.errors import HubError
from core.ledger.sql import SqlLedger
from core.satellite.config import sat_clock
from core.satellite.holder import STATUS_FILE, read_status
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.reliability.test_storage import Fault, big_site, sync


async def test_last_sync_is_not_moved_by_a_reply_that_could_not_be_stored(
        tmp_path: Path, project: Project) -> None:
    """A full disk: the reply is received but not stored, so the replica did not sync; a
    fresh ``last_sync`` (in the status and in status.json) would say it had."""
    ticks = itertools.count(sat_clock(), 1000)  # every reading of the clock differs
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led) as hub:
        sat = Satellite(tmp_path / "s", project, clock=lambda: next(ticks))
        other = Satellite(tmp_path / "o", project)
        f = Fault(sat.replica.ledger.engine)
        try:
            await sync(sat, hub.url).sync_once(20)
            synced = sat.status().last_sync
            assert synced
            for i in range(3):
                other.pub([big_site(f"from-other{i}")])
            await sync(other, hub.url).sync_once(20)
            f.disk_full()
            with pytest.raises(HubError):
                await sync(sat, hub.url).sync_once(2.0)
            st = sat.status()
            assert "disk is full" in st.last_error, st.last_error
            assert st.last_sync == synced
            held = read_status(tmp_path / "s" / STATUS_FILE)
            assert held is not None and held.status.last_sync == synced
            f.heal()
            await sync(sat, hub.url).sync_once(20)
            assert sat.status().last_sync > synced  # stored now: synced
        finally:
            sat.close()
            other.close()
    led.close()

