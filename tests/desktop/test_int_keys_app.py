"""The app's Ctrl+N on an int-keyed topic (user review 8, finding 6): the new key is one above
every key the replica knows (a deleted one is not offered again), a key taken while the form
was open is replaced by the next free one at save, and two offline laptops that pick the same
key get a conflict in the Conflicts view. Real satellites on SQLite, a real hub."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.satellite.test_int_keys import ITEM, SCHEMA, items_hub


@pytest.fixture
def int_project() -> Project:
    return parse_project(SCHEMA)


@pytest.fixture
async def hub(int_project: Project) -> AsyncIterator[Hub]:
    async with items_hub(int_project, "2") as h:  # the review's 1, 2, 3 - 2
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def window(qtbot: Any, path: Path, project: Project, hub: Hub) -> MainWindow:
    sat = Satellite(path, project)
    await sync(sat, hub)
    w = MainWindow(sat, None, path.name)
    qtbot.addWidget(w)
    w.select_topic(ITEM)
    return w


def add(w: MainWindow, name: str) -> str:
    w.new_action.trigger()  # Ctrl+N
    offered = w.form.key
    w.form.set_value("name", name)
    w.save_action.trigger()
    assert not w.form.is_new, w.status.currentMessage()  # saved
    return offered


async def test_ctrl_n_offers_a_free_key_each_time(qtbot: Any, tmp_path: Path,
                                                 int_project: Project, hub: Hub) -> None:
    w = await window(qtbot, tmp_path / "a", int_project, hub)
    assert w.records.total() == 2
    assert add(w, "four") == "4"  # total + 1 offered 3, taken: "already exists", every retry
    assert add(w, "five") == "5"  # the pending 4 counts
    assert w.form.key == "5" and w.current_key() == "5"
    w.sat.close()  # type: ignore[attr-defined]


async def test_a_key_taken_while_the_form_is_open_is_replaced_at_save(
        qtbot: Any, tmp_path: Path, int_project: Project, hub: Hub) -> None:
    w = await window(qtbot, tmp_path / "a", int_project, hub)
    bob = Satellite(tmp_path / "b", int_project)
    await sync(bob, hub)
    w.new_action.trigger()
    assert w.form.key == "4"
    w.form.set_value("name", "mine")
    bob.pub([Action(ITEM, "4", Cmd.NEW, {"name": "bob's"})])
    await sync(bob, hub)
    await sync(w.sat, hub)  # type: ignore[arg-type]  # bob's 4 arrives while the form is open
    w.save_action.trigger()
    assert not w.form.is_new and w.form.key == "5"
    assert "4 was taken meanwhile: saved as 5" in w.status.currentMessage()
    rec = w.sat.record(ITEM, "5")
    assert rec is not None and rec.fields == {"name": "mine"}
    await sync(w.sat, hub)  # type: ignore[arg-type]
    assert w.sat.receipts([ReceiptState.REJECTED]) == []
    bob.close()
    w.sat.close()  # type: ignore[attr-defined]


async def test_two_offline_laptops_same_key_is_a_conflict_in_the_view(
        qtbot: Any, tmp_path: Path, int_project: Project, hub: Hub) -> None:
    a = await window(qtbot, tmp_path / "a", int_project, hub)
    b = await window(qtbot, tmp_path / "b", int_project, hub)
    assert add(a, "from A") == "4"
    assert add(b, "from B") == "4"
    await sync(a.sat, hub)  # type: ignore[arg-type]
    await sync(b.sat, hub)  # type: ignore[arg-type]
    assert b.status.conflicts.text() == "Conflicts: 1 (1 new)"
    dlg = b.show_conflicts()
    rows = dlg.model.rows()  # the record's row, then its fields (s8-conf: every field shown)
    assert [(r.key, r.field, r.reason) for r in rows] == [("4", "", "created"),
                                                          ("4", "name", "created")]
    [rej] = b.sat.receipts([ReceiptState.REJECTED])
    assert "key 4 was taken" in rej.err and "use mod" not in rej.err
    assert add(b, "from B again") == "5"  # the next Ctrl+N is past it
    a.sat.close()  # type: ignore[attr-defined]
    b.sat.close()  # type: ignore[attr-defined]


async def test_an_old_replicas_greatest_key_is_read_off_the_ui_thread(
        qtbot: Any, tmp_path: Path, int_project: Project, hub: Hub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica made before session 9 keeps no greatest int key: the first Ctrl+N scanned
    the topic's events on the UI thread (0.3-0.5 s at 1,000,000 events). The window has a
    worker thread read it at once; Ctrl+N then reads nothing."""
    import threading

    from core.satellite.replica import INT_KEYS, Replica

    d = tmp_path / "old"
    sat = Satellite(d, int_project)
    await sync(sat, hub)
    with sat.queue._conn(None) as conn:
        conn.exec_driver_sql("DELETE FROM sat_meta WHERE name = ?", (INT_KEYS,))
    sat.close()
    scans: list[str] = []
    scan = Replica._scan_int_key

    def counted(self: Replica, top: str) -> int:
        scans.append(threading.current_thread().name)
        return scan(self, top)

    monkeypatch.setattr(Replica, "_scan_int_key", counted)
    sat = Satellite(d, int_project)
    assert sat.replica.unknown_int_tops() == [ITEM, "inv.tag"]
    w = MainWindow(sat, None, "old")
    qtbot.addWidget(w)
    assert w.key_scan is not None
    w.key_scan.join(30)
    assert not w.key_scan.is_alive()
    assert scans == ["outpost-int-keys", "outpost-int-keys"]
    assert sat.replica.unknown_int_tops() == []
    w.select_topic(ITEM)
    assert add(w, "four") == "4"  # above 1, 2, 3 (2 deleted), read by the worker
    assert scans == ["outpost-int-keys", "outpost-int-keys"]  # nothing on the UI thread
    # a replica that keeps them starts no thread
    w.close()
    sat.close()
    sat = Satellite(d, int_project)
    w2 = MainWindow(sat, None, "old")
    qtbot.addWidget(w2)
    assert w2.key_scan is None
    w2.close()
    sat.close()
