"""The main window against the fake satellite: editing, undo/redo, validation, conflicts."""

from __future__ import annotations

from typing import Any

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from desktop.mainwindow import MainWindow
from tests.desktop.fakes import FakeSatellite


class FakeSync:
    def __init__(self, sat: FakeSatellite):
        self.sat = sat
        self.offline = False

    def set_offline(self, offline: bool) -> None:
        self.offline = offline

    def sync_now(self) -> None:
        if not self.offline:
            self.sat.sync()


def test_edit_new_delete_undo(qtbot: Any, fake_sat: FakeSatellite) -> None:
    w = MainWindow(fake_sat, FakeSync(fake_sat))
    qtbot.addWidget(w)
    assert w.topic == "field.site"
    assert w.select_key("s1")
    assert w.form.editors["name"].get() == "Alder Creek"
    w.form.set_value("region", "West")
    w.save_action.trigger()
    rc = fake_sat.receipts([ReceiptState.PENDING])
    assert len(rc) == 1 and rc[0].acts[0].arg == {"region": "West"}  # only changed fields
    assert w.status.pending.text() == "Pending: 1"
    w.undo_action.trigger()
    rec = fake_sat.record("field.site", "s1")
    assert rec is not None and rec.fields is not None and rec.fields["region"] == "North"
    w.redo_action.trigger()
    rec = fake_sat.record("field.site", "s1")
    assert rec is not None and rec.fields is not None and rec.fields["region"] == "West"
    w.new_action.trigger()
    w.form.save_button.click()  # name is required
    assert "required" in w.form.editors["name"].error.text()
    w.form.set_value("name", "Cedar Flats")
    w.form.set_value("lat", 47.5)
    w.save_action.trigger()
    assert w.records.total() == 3
    assert w.form.editors["name"].get() == "Cedar Flats"
    assert w.select_key("s2")
    w.delete_action.trigger()
    assert w.records.total() == 2
    w.sync_action.trigger()
    assert w.status.pending.text() == "Pending: 0"
    assert fake_sat.hub is not None and fake_sat.hub.state("field.site", "s2") is None


def test_undo_and_redo_answer_every_documented_shortcut(qtbot: Any,
                                                       fake_sat: FakeSatellite) -> None:
    """docs/desktop.md: Ctrl+Z / Ctrl+Shift+Z undo / redo (Ctrl+Y too where the platform
    has it): each key reaches the window's actions."""
    from PySide6.QtGui import QKeySequence

    w = MainWindow(fake_sat, FakeSync(fake_sat))
    qtbot.addWidget(w)
    assert QKeySequence("Ctrl+Z") in w.undo_action.shortcuts()
    redo = w.redo_action.shortcuts()
    assert QKeySequence("Ctrl+Shift+Z") in redo
    assert set(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)) <= set(redo)


def test_conflict_dialog_keep_theirs(qtbot: Any, hub: MemLedger,
                                     fake_sat: FakeSatellite) -> None:
    w = MainWindow(fake_sat, FakeSync(fake_sat))
    qtbot.addWidget(w)
    w.select_key("s1")
    w.form.set_value("name", "Mine")
    w.save_action.trigger()
    hub.publish(Trans((Action("field.site", "s1", Cmd.MOD, {"name": "Theirs"}),),
                      base=hub.rev()), "bob")
    w.sync_action.trigger()
    assert w.status.conflicts.text() == "Conflicts: 1 (1 new)"
    dlg = w.show_conflicts()
    assert dlg.model.rowCount() == 1
    dlg.keep_theirs.click()
    assert w.status.conflicts.text() == "Conflicts: 0"
    assert dlg.model.rowCount() == 0


def test_sidebar_count_of_the_shown_topic_comes_from_its_table(
        qtbot: Any, fake_sat: FakeSatellite, monkeypatch: Any) -> None:
    # counting reads every key of the topic (seconds at a million records): the table that
    # shows the topic already knows its count, after an edit and after a coalesced reload
    w = MainWindow(fake_sat, FakeSync(fake_sat))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.topics.data(w.topics.index(1, 0)).endswith("(1)"))  # field.obs
    counted: list[str] = []
    count = fake_sat.count
    monkeypatch.setattr(fake_sat, "count", lambda top: counted.append(top) or count(top))
    label = w.topics.index(w.topics.row_of("field.site"), 0)
    w.new_action.trigger()
    w.form.set_value("name", "Cedar Flats")
    w.save_action.trigger()
    assert w.topics.data(label) == "Sites  (3)"
    fake_sat.pub([Action("field.site", f"k{i:03d}", Cmd.NEW, {"name": f"Site {i}"})
                  for i in range(600)])  # over RESET_OVER: the table reloads later
    qtbot.waitUntil(lambda: w.topics.data(label) == "Sites  (603)")
    assert w.records.total() == 603
    fake_sat.pub([Action("field.obs", "o2", Cmd.NEW, {"site": "s1", "species": "Owl"})])
    assert w.topics.data(w.topics.index(w.topics.row_of("field.obs"), 0)).endswith("(2)")
    assert counted == ["field.obs"]  # no table shows field.obs
