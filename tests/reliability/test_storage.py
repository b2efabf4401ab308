"""Storage faults on the hub and on the satellite: disk full (``PRAGMA max_page_count``) and a
read-only database (``PRAGMA query_only``, since tests run as root and root ignores file modes).

Each must give a clear error (what failed, why, what to do), lose nothing acknowledged, keep
the pending queue, and let work resume once the fault is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from core.errors import HubError, StorageError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import Backoff
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.support.procs import integrity

TOP = "field.site"


class Fault:
    """Switchable SQLite faults on an engine: applied to every new connection."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.pages = 0          # max_page_count; 0: no limit
        self.read_only = False
        event.listen(engine, "connect", self._on_connect)

    def _on_connect(self, dbapi: Any, _rec: Any) -> None:
        if self.pages:
            dbapi.execute(f"PRAGMA max_page_count = {self.pages}")
        if self.read_only:
            dbapi.execute("PRAGMA query_only = ON")

    def page_count(self) -> int:
        with self.engine.connect() as c:
            return int(c.exec_driver_sql("PRAGMA page_count").scalar() or 0)

    def disk_full(self) -> None:
        self.engine.dispose()
        self.pages = self.page_count() + 1
        self.engine.dispose()

    def set_read_only(self) -> None:
        self.read_only = True
        self.engine.dispose()

    def heal(self) -> None:
        self.pages, self.read_only = 0, False
        self.engine.dispose()


def big_site(key: str) -> Action:
    return Action(TOP, key, Cmd.NEW, {"name": key, "notes": "n" * 30_000})


def sync(sat: Satellite, url: str) -> SyncClient:
    return SyncClient(sat, url, timeout=5.0, backoff=Backoff(0.05, 0.3))


@pytest.mark.parametrize("fault", ["disk_full", "read_only"])
async def test_hub_storage_fault(fault: str, tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    f = Fault(led.engine)
    async with Hub(led) as hub:
        sat = Satellite(tmp_path / "s", project)
        try:
            acked = sat.pub([big_site("before")])
            await sync(sat, hub.url).sync_once(20)
            assert sat.receipt(acked).state == ReceiptState.ACCEPTED  # type: ignore[union-attr]
            getattr(f, "disk_full" if fault == "disk_full" else "set_read_only")()
            waiting = [sat.pub([big_site(f"during{i}")]) for i in range(3)]
            with pytest.raises(HubError):
                await sync(sat, hub.url).sync_once(2.0)
            st = sat.status()
            want = "disk is full" if fault == "disk_full" else "read only"
            assert want in st.last_error and "stay pending" in st.last_error, st.last_error
            assert st.pending == 3 and st.conflicts == 0  # kept, not rejected
            assert all(led.uid_rev(u) is None for u in waiting)
            f.heal()
            await sync(sat, hub.url).sync_once(20)
            assert sat.status().pending == 0
            assert all(r.state == ReceiptState.ACCEPTED for r in sat.receipts())
            assert led.uid_rev(acked) is not None and all(led.uid_rev(u) for u in waiting)
            assert sat.replica.read.states(TOP) == led.states(TOP)
        finally:
            sat.close()
    led.close()
    assert integrity(tmp_path / "hub.db") == "ok"


@pytest.mark.parametrize("fault", ["disk_full", "read_only"])
async def test_satellite_storage_fault(fault: str, tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led) as hub:
        sat = Satellite(tmp_path / "s", project)
        other = Satellite(tmp_path / "o", project)
        f = Fault(sat.replica.ledger.engine)
        try:
            kept = sat.pub([big_site("queued-offline")])
            getattr(f, "disk_full" if fault == "disk_full" else "set_read_only")()
            with pytest.raises(StorageError) as ei:
                sat.pub([big_site("too-big")])
            want = "disk is full" if fault == "disk_full" else "read only"
            assert want in str(ei.value) and "satellite.db" in str(ei.value), str(ei.value)
            assert [r.uid for r in sat.receipts()] == [kept]
            # hub data that cannot be stored: sync fails, retries, and nothing is half-stored
            for i in range(3):
                other.pub([big_site(f"from-other{i}")])
            await sync(other, hub.url).sync_once(20)
            with pytest.raises(HubError):
                await sync(sat, hub.url).sync_once(2.0)
            assert want in sat.status().last_error, sat.status().last_error
            f.heal()
            await sync(sat, hub.url).sync_once(20)
            assert sat.receipt(kept).state == ReceiptState.ACCEPTED  # type: ignore[union-attr]
            assert sat.replica.read.states(TOP) == led.states(TOP)
            assert sat.pub([big_site("after")])
        finally:
            sat.close()
            other.close()
    led.close()
    assert integrity(tmp_path / "s" / "satellite.db") == "ok"
