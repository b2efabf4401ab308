"""Undo and redo publish on the base of the edit they undo (user review 8, finding 3): a
colleague's later change of the same field makes them a conflict shown in the Conflicts view,
never a silent overwrite. Real satellites on SQLite, a real hub (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Alder", "region": "North"}),)),
                   "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def two(qtbot: Any, tmp_path: Path, project: Project,
              hub: Hub) -> tuple[MainWindow, Satellite, Satellite]:
    alice, bob = Satellite(tmp_path / "alice", project), Satellite(tmp_path / "bob", project)
    for s in (alice, bob):
        await sync(s, hub)
    w = MainWindow(alice, None, "alice")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    return w, alice, bob


def hub_names(hub: Hub) -> list[Any]:
    return [(e.cmd.value, (e.arg or {}).get("name")) for e in hub.ledger.events(0)]


def save_name(w: MainWindow, name: str) -> None:
    assert w.select_key("s1")
    w.form.set_value("name", name)
    w.save_action.trigger()


async def test_undo_after_a_colleagues_change_is_a_conflict(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, alice, bob = await two(qtbot, tmp_path, project, hub)
    save_name(w, "A edit")
    await sync(alice, hub)
    await sync(bob, hub)
    bob.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B later edit"})])
    await sync(bob, hub)
    await sync(alice, hub)
    assert w.form.editors["name"].get() == "B later edit"  # alice sees bob's value
    w.undo_action.trigger()  # Ctrl+Z
    assert w.status.conflicts.text() == "Conflicts: 1 (1 new)"  # marked at once, before any sync
    await sync(alice, hub)
    assert hub.ledger.state(SITE, "s1")["name"] == "B later edit"  # type: ignore[index]
    assert hub_names(hub) == [("new", "Alder"), ("mod", "A edit"), ("mod", "B later edit")]
    [rej] = alice.receipts([ReceiptState.REJECTED])
    assert [a.arg for a in rej.acts] == [{"name": "Alder"}]  # the undo, shown in the inbox
    assert [c.fields for c in rej.conflicts] == [("name",)]
    alice.close()
    bob.close()


async def test_redo_after_a_colleagues_change_is_a_conflict(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, alice, bob = await two(qtbot, tmp_path, project, hub)
    save_name(w, "A edit")
    await sync(alice, hub)
    w.undo_action.trigger()  # nobody else changed it: the undo goes through
    await sync(alice, hub)
    assert alice.receipts([ReceiptState.REJECTED]) == []
    assert hub.ledger.state(SITE, "s1")["name"] == "Alder"  # type: ignore[index]
    await sync(bob, hub)
    bob.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B later edit"})])
    await sync(bob, hub)
    await sync(alice, hub)
    w.redo_action.trigger()
    await sync(alice, hub)
    assert hub.ledger.state(SITE, "s1")["name"] == "B later edit"  # type: ignore[index]
    assert [r.acts[0].arg for r in alice.receipts([ReceiptState.REJECTED])] == [
        {"name": "A edit"}]
    alice.close()
    bob.close()


async def test_undo_and_redo_of_own_edits_are_no_conflict(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, alice, bob = await two(qtbot, tmp_path, project, hub)
    save_name(w, "A edit")
    await sync(alice, hub)
    # a colleague's change of another field merges: no conflict
    bob.pub([Action(SITE, "s1", Cmd.MOD, {"region": "South"})])
    await sync(bob, hub)
    await sync(alice, hub)
    w.undo_action.trigger()
    w.redo_action.trigger()
    w.undo_action.trigger()
    await sync(alice, hub)
    assert alice.receipts([ReceiptState.REJECTED]) == []
    assert hub.ledger.state(SITE, "s1") == {  # type: ignore[comparison-overlap]
        "name": "Alder", "region": "South", "lat": None, "lon": None, "notes": None}
    alice.close()
    bob.close()
