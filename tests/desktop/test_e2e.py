"""The desktop app with the real satellite (SQLite in tmp_path) and a real hub (websockets on
127.0.0.1 port 0, SQLite ledger): the issue's scenarios, driven through the widgets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex

from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.models import (
    PENDING_ROLE,
    ConflictsModel,
    HistoryModel,
    RecordTableModel,
    TopicListModel,
)
from desktop.sync import ClientSync
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((
        Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek", "region": "North"}),
        Action(SITE, "s2", Cmd.NEW, {"name": "Birch Hill", "region": "South"}),
        Action("field.obs", "o1", Cmd.NEW, {"site": "s1", "species": "Heron", "count": 3}),
    )), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def synced_window(qtbot: Any, tmp_path: Path, name: str, project: Project,
                        hub: Hub) -> MainWindow:
    sat = Satellite(tmp_path / name, project)
    await sync(sat, hub)
    w = MainWindow(sat, None, name)
    qtbot.addWidget(w)
    return w


def marks(w: MainWindow) -> dict[str, str]:
    m = w.records
    return {m.key_at(r): m.data(m.index(r, 0), PENDING_ROLE) for r in range(m.rowCount())}


async def test_offline_create_edit_delete_then_online_clears_marks(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w = await synced_window(qtbot, tmp_path, "a", project, hub)
    sat = w.sat
    assert isinstance(sat, Satellite)
    assert w.records.total() == 2
    # offline: no client runs. edit s1
    assert w.select_key("s1")
    w.form.set_value("region", "West")
    w.save_action.trigger()
    # create
    w.new_action.trigger()
    new_key = w.form.key
    w.form.set_value("name", "Cedar Flats")
    w.form.set_value("lat", 47.25)
    w.save_action.trigger()
    # delete s2
    assert w.select_key("s2")
    w.delete_action.trigger()
    assert marks(w) == {"s1": "pending", new_key: "pending"}
    assert w.status.pending.text() == "Pending: 3"
    for m in (w.records, w.topics, w.history.model):
        qtmodeltester.check(m)
    # online
    await sync(sat, hub)
    assert marks(w) == {"s1": "", new_key: ""}
    assert w.status.pending.text() == "Pending: 0"
    assert hub.ledger.state(SITE, "s1")["region"] == "West"  # type: ignore[index]
    assert hub.ledger.state(SITE, new_key)["name"] == "Cedar Flats"  # type: ignore[index]
    assert hub.ledger.state(SITE, "s2") is None
    # only the changed field went into the mod
    mods = [e for e in hub.ledger.events(0) if e.key == "s1" and e.cmd == Cmd.MOD]
    assert [dict(e.arg or {}) for e in mods] == [{"region": "West"}]
    sat.close()


async def test_same_field_conflict_resolved_in_dialog(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a = await synced_window(qtbot, tmp_path, "a", project, hub)
    b = await synced_window(qtbot, tmp_path, "b", project, hub)
    for w, name in ((a, "Alder A"), (b, "Alder B")):  # both offline, same field
        assert w.select_key("s1")
        w.form.set_value("name", name)
        w.save_action.trigger()
    await sync(a.sat, hub)  # type: ignore[arg-type]
    await sync(b.sat, hub)  # type: ignore[arg-type]
    assert b.status.conflicts.text() == "Conflicts: 1 (1 new)"
    assert marks(b)["s1"] == "conflict"
    b.status.conflicts.click()  # opens the conflicts view
    dlg = b.conflicts_dialog
    assert dlg is not None and dlg.isVisible()
    qtmodeltester.check(dlg.model)
    rows = dlg.model.rows()
    assert [(r.field, r.base, r.mine, r.theirs, r.usr) for r in rows] == [
        ("name", "Alder Creek", "Alder B", "Alder A", "office")]
    dlg.keep_mine.click()
    assert b.status.conflicts.text() == "Conflicts: 0"  # at once, before any sync
    assert dlg.model.rowCount() == 0
    await sync(b.sat, hub)  # type: ignore[arg-type]
    await sync(a.sat, hub)  # type: ignore[arg-type]
    assert hub.ledger.state(SITE, "s1")["name"] == "Alder B"  # type: ignore[index]
    a.select_key("s1")
    assert a.form.editors["name"].get() == "Alder B"
    assert marks(b)["s1"] == ""
    a.sat.close()  # type: ignore[attr-defined]
    b.sat.close()  # type: ignore[attr-defined]


async def test_history_shows_versions_and_restores_one(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w = await synced_window(qtbot, tmp_path, "a", project, hub)
    for region in ("East", "Coast"):
        w.select_key("s1")
        w.form.set_value("region", region)
        w.save_action.trigger()
        await sync(w.sat, hub)  # type: ignore[arg-type]
    w.select_key("s1")
    h = w.history
    assert h.model.rowCount() == 3
    assert [h.model.data(h.model.index(r, 2)) for r in range(3)] == [
        "modified", "modified", "created"]
    # the hub sends each revision's audit to satellites (the audits extension): the user shows
    assert [h.model.data(h.model.index(r, 1)) for r in range(3)] == ["office"] * 3
    h.select_row(2)  # the first version: time travel
    shown = {h.state.item(r, 0).text(): h.state.item(r, 1).text()
             for r in range(h.state.rowCount())}
    assert shown["Region"] == "North"
    h.select_row(1)
    assert {h.state.item(r, 0).text(): h.state.item(r, 1).text()
            for r in range(h.state.rowCount())}["Region"] == "East"
    h.select_row(2)
    assert h.restore.isEnabled()
    h.restore.click()
    assert w.status.pending.text() == "Pending: 1"
    await sync(w.sat, hub)  # type: ignore[arg-type]
    assert hub.ledger.state(SITE, "s1")["region"] == "North"  # type: ignore[index]
    assert h.model.rowCount() == 4
    w.sat.close()  # type: ignore[attr-defined]


async def test_models_pass_modeltester_on_real_satellite(
        qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    sat = Satellite(tmp_path / "a", project)
    await sync(sat, hub)
    for m in (RecordTableModel(sat, SITE), RecordTableModel(sat, "field.obs"),
              TopicListModel(sat), ConflictsModel(sat)):
        qtmodeltester.check(m)
    hm = HistoryModel(sat)
    hm.set_record(SITE, "s1")
    qtmodeltester.check(hm)
    sat.close()


async def test_client_sync_work_offline_and_sync_now(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    sat = Satellite(tmp_path / "a", project)
    sat.config = sat.config.with_hub(hub.url)
    errors: list[str] = []
    ctl = ClientSync(SyncClient(sat, hub.url, rnd=random.Random(0)), errors.append)
    w = MainWindow(sat, ctl)
    qtbot.addWidget(w)
    ctl.start()
    for _ in range(100):  # bounded: 100 × 50 ms
        if sat.status().online and w.records.total() == 2:
            break
        await asyncio.sleep(0.05)
    assert w.records.total() == 2
    assert w.status.conn.text().startswith("Online")
    w.status.offline.click()  # work offline
    for _ in range(100):
        if not sat.status().online:
            break
        await asyncio.sleep(0.05)
    assert w.status.conn.text().startswith("Working offline")
    w.select_key("s2")
    w.form.set_value("region", "Hills")
    w.save_action.trigger()
    await asyncio.sleep(0.2)
    assert hub.ledger.state(SITE, "s2")["region"] == "South"  # type: ignore[index]
    w.status.offline.click()  # back online: the pending edit goes out
    for _ in range(100):
        if sat.status().pending == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.ledger.state(SITE, "s2")["region"] == "Hills"  # type: ignore[index]
    w.sync_action.trigger()  # restart; must stay healthy
    await asyncio.sleep(0.2)
    await ctl.stop()
    assert errors == []
    sat.close()


async def test_work_offline_shows_at_once_when_the_hub_is_already_out_of_reach(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """The hub cannot be reached (the status says "Offline"): ticking "Work offline" changes
    no sync state, so no status notice comes; the status bar must still say so at once."""
    from core.satellite.machine import Backoff

    sat = Satellite(tmp_path / "a", project)
    sat.config = sat.config.with_hub("ws://127.0.0.1:9")
    ctl = ClientSync(SyncClient(sat, "ws://127.0.0.1:9", rnd=random.Random(0),
                                backoff=Backoff(0.05, 0.2), open_timeout=1), lambda _e: None)
    w = MainWindow(sat, ctl)
    qtbot.addWidget(w)
    ctl.start()
    for _ in range(100):  # bounded: 100 × 50 ms
        if sat.status().last_error:
            break
        await asyncio.sleep(0.05)
    assert w.status.conn.text().startswith("Offline")
    w.offline_action.trigger()  # Ctrl+Shift+O
    assert w.status.conn.text().startswith("Working offline")
    w.offline_action.trigger()
    assert not w.status.conn.text().startswith("Working offline")
    await ctl.stop()
    sat.close()


async def test_edit_in_progress_when_the_same_field_changes_becomes_a_conflict(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a = await synced_window(qtbot, tmp_path, "a", project, hub)
    b = await synced_window(qtbot, tmp_path, "b", project, hub)
    assert b.select_key("s1")
    b.form.set_value("region", "East")  # b is editing s1: unsaved
    assert a.select_key("s1")
    a.form.set_value("region", "West")
    a.save_action.trigger()
    await sync(a.sat, hub)  # type: ignore[arg-type]
    await sync(b.sat, hub)  # type: ignore[arg-type]  # a's change arrives meanwhile
    assert b.form.dirty and "Changed meanwhile" in b.form.state.text()
    b.save_action.trigger()
    st = b.sat.status()
    assert st.conflicts == 1  # visible at once, before the hub is asked
    rv = b.sat.record(SITE, "s1")
    assert rv is not None and rv.is_conflict and rv.fields["region"] == "West"  # type: ignore[index]
    assert "conflict" in b.form.state.text()
    await sync(b.sat, hub)  # type: ignore[arg-type]
    assert hub.ledger.state(SITE, "s1")["region"] == "West"  # type: ignore[attr-defined,index]
    assert b.sat.status().conflicts == 1


async def test_catch_up_in_big_batches_leaves_rows_marks_counts_and_status_right(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """A catch-up whose batches are over RESET_OVER keys takes the coalesced path (no row
    updates, one reload once the satellite is idle): afterwards the table, the marks, the
    sidebar count and the status bar must show what the satellite holds."""
    a = await synced_window(qtbot, tmp_path, "a", project, hub)
    b = await synced_window(qtbot, tmp_path, "b", project, hub)
    assert b.select_key("s1")  # b edits s1's name offline ...
    b.form.set_value("name", "Alder B")
    b.save_action.trigger()
    b.new_action.trigger()  # ... and creates a record
    new_key = b.form.key
    b.form.set_value("name", "Dogwood")
    b.save_action.trigger()
    assert a.select_key("s1")  # a changes the same field and 1,800 new records reach the hub
    a.form.set_value("name", "Alder A")
    a.save_action.trigger()
    await sync(a.sat, hub)  # type: ignore[arg-type]
    c = Satellite(tmp_path / "c", project)
    for start in range(0, 1800, 600):
        c.pub([Action(SITE, f"z{i:05d}", Cmd.NEW, {"name": f"Site {i}"})
               for i in range(start, start + 600)])
    await sync(c, hub)
    assert c.status().pending == 0 and c.count(SITE) == 1802
    c.close()
    b.records.fetchMore(QModelIndex())  # rows shown before the catch-up: a reset must drop them
    reloads: list[int] = []
    b.records.modelReset.connect(lambda: reloads.append(b.records.total()))
    sat = b.sat
    assert isinstance(sat, Satellite)
    # batches of 700 events: every notice is over RESET_OVER (500) keys
    await SyncClient(sat, hub.url, rnd=random.Random(0), lim=700).sync_once(30)
    total = 2 + 1 + 1800
    label = b.topics.index(b.topics.row_of(SITE), 0)
    # the reload and the recount are coalesced on Qt timers: let Qt run them
    qtbot.waitUntil(lambda: bool(reloads) and b.topics.data(label) == f"Sites  ({total:,})",
                    timeout=10_000)
    assert reloads == [total]  # one reload, after the catch-up
    assert b.topics.data(label) == f"Sites  ({total:,})"
    got = marks(b)
    assert got["s1"] == "conflict" and got[new_key] == "" and got["s2"] == ""
    assert b.records.rowCount() <= b.records.total()
    while b.records.canFetchMore(QModelIndex()):
        b.records.fetchMore(QModelIndex())
    keys = [b.records.key_at(r) for r in range(b.records.rowCount())]
    assert keys == sorted(sat.keys(SITE)) and len(keys) == total
    assert b.records.data(b.records.index(keys.index("z01799"), 0)) == "Site 1799"
    assert b.records.data(b.records.index(keys.index("s1"), 0)) == "Alder A"  # hub's: rejected
    assert b.status.pending.text() == "Pending: 0"
    assert b.status.conflicts.text() == "Conflicts: 1 (1 new)"
    qtmodeltester.check(b.records)
    a.sat.close()  # type: ignore[attr-defined]
    sat.close()


class _Client:
    """A sync client that records whether it ran (SyncClient's interface as ClientSync uses
    it): ``run_until`` clears a stop asked before it began, as SyncClient.run_until does."""

    def __init__(self, sat: Any) -> None:
        self.sat = sat
        self.ran = 0
        self.refused, self.refused_code = "", 0
        self._stop = asyncio.Event()

    async def run_until(self, done: Any, timeout: float | None) -> None:
        self.ran += 1
        self._stop.clear()
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


async def test_client_sync_stopped_before_its_task_began_never_runs_the_client(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "a", project)
    try:
        client = _Client(sat)
        ctl = ClientSync(client)
        ctl.start()
        await ctl.stop()  # at once: the window was closed (or failed) as it opened
        assert not ctl.running and client.ran == 0
        ctl.start()  # a later start runs it, and a stop after it began ends it
        await asyncio.sleep(0)
        assert ctl.running and client.ran == 1
        await ctl.stop()
        assert not ctl.running
    finally:
        sat.close()
