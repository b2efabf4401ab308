"""A background sync never opens a modal (review a11y 16, finding 3): a colleague's change
that takes the row of the record being edited out of the filtered table kept popping "Save
them before opening another record?" from inside the sync (Save the default: a typed Enter
saved the half-typed value; after Cancel the form edited one record while the table
highlighted another). Real widgets (offscreen), real satellites (SQLite in tmp_path) and a
real hub (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from core.model import Action, Cmd, Trans
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
    ledger.publish(Trans(tuple(
        Action(SITE, f"s{i}", Cmd.NEW, {"name": f"Site {i}", "region": "North"})
        for i in range(1, 4))), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


class Modals:
    """Every modal dialog that opens is noted (its text) and answered with its default
    button, as a user pressing Enter would (Save, in the question of the finding)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        box = QApplication.activeModalWidget()
        if box is None or not box.isVisible():
            return
        self.seen.append(box.text() if isinstance(box, QMessageBox) else type(box).__name__)
        if isinstance(box, QMessageBox) and box.defaultButton() is not None:
            box.defaultButton().click()
        else:
            box.close()


@pytest.fixture
def modals() -> Iterator[Modals]:
    m = Modals()
    yield m
    m.timer.stop()


async def filtered_window(qtbot: Any, tmp_path: Path, project: Project, hub: Hub
                          ) -> tuple[MainWindow, Satellite, Satellite]:
    """A window on satellite A with the table filtered on "north" (the three sites), and a
    colleague's satellite B."""
    a = Satellite(tmp_path / "a", project)
    await sync(a, hub)
    b = Satellite(tmp_path / "b", project)
    await sync(b, hub)
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    w.select_topic(SITE)
    QTest.keyClicks(w.filter, "north")
    qtbot.waitUntil(lambda: w.records.rowCount() == 3)
    return w, a, b


async def test_row_leaving_the_filter_under_the_typing_asks_nothing(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    notes = w.form.editors["notes"].widget
    notes.setFocus()
    QTest.keyClicks(notes, "half-typ")
    assert w.form.key == "s2" and w.form.has_edits
    # the colleague moves s2 out of the filter; A's sync brings it
    b.pub([Action(SITE, "s2", Cmd.MOD, {"region": "South"})])
    await sync(b, hub)
    await sync(a, hub)
    assert a.record(SITE, "s2").fields["region"] == "South"  # type: ignore[union-attr]
    qtbot.wait(100)  # a modal would be noted (and answered Save) by now
    assert modals.seen == []
    # nothing saved, the typing and the record kept in the form, and said
    assert a.record(SITE, "s2").fields.get("notes") is None  # type: ignore[union-attr]
    assert w.form.key == "s2" and w.form.has_edits
    assert notes.toPlainText() == "half-typ"
    assert w.records.rowCount() == 2 and w.records.row_of("s2") < 0
    assert w.current_key() == ""  # no other record shown as selected
    assert "no longer matches the filter" in w.status.currentMessage()
    assert "No longer matches the filter" in w.form.state.text()
    assert QApplication.focusWidget() is notes  # the typing goes on where it was
    # the sync goes on: the colleague's next change arrives, the typing still there
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Site one"})])
    await sync(b, hub)
    await sync(a, hub)
    qtbot.waitUntil(lambda: w.records.data(w.records.index(w.records.row_of("s1"), 0))
                    == "Site one")
    assert modals.seen == [] and w.form.key == "s2" and w.form.has_edits
    # the user saves: the edit goes on the record it was typed for, and to the hub
    QTest.keySequence(notes, "Ctrl+S")
    assert modals.seen == []
    assert a.record(SITE, "s2").fields["notes"] == "half-typ"  # type: ignore[union-attr]
    assert a.record(SITE, "s2").fields["region"] == "South"  # type: ignore[union-attr]
    await sync(a, hub)
    assert a.status().pending == 0 and a.status().conflicts == 0
    w.close()
    a.close()
    b.close()


async def test_row_under_a_new_record_leaving_asks_nothing(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """A new record being filled in: the table's current row (left from before Ctrl+N) is
    taken out by hub data; the view's move to the next row is not an "open another record"."""
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    w.table.setFocus()
    QTest.keySequence(w.table, "Ctrl+N")
    assert w.form.is_new
    name = w.form.editors["name"].widget
    QTest.keyClicks(name, "New north site")
    b.pub([Action(SITE, "s2", Cmd.MOD, {"region": "South"})])
    await sync(b, hub)
    await sync(a, hub)
    qtbot.wait(100)
    assert modals.seen == []
    assert w.form.is_new and w.form.has_edits and name.text() == "New north site"
    assert w.current_key() == ""
    w.form.revert()
    w.close()
    a.close()
    b.close()


async def test_own_save_leaving_the_filter_asks_nothing(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The user's own save takes the row out of the filter: no question, the saved record
    stays in the form (nothing else selected), said."""
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s3")
    region = w.form.editors["region"].widget
    region.setFocus()
    region.selectAll()
    QTest.keyClicks(region, "South")
    QTest.keySequence(region, "Ctrl+S")
    assert modals.seen == []
    assert a.record(SITE, "s3").fields["region"] == "South"  # type: ignore[union-attr]
    assert w.form.key == "s3" and not w.form.has_edits
    assert w.current_key() == "" and w.records.rowCount() == 2
    assert "no longer matches the filter" in w.status.currentMessage()
    w.close()
    a.close()
    b.close()


def test_settle_edits_never_asks_in_a_change_notice(qtbot: Any, tmp_path: Path,
                                                    project: Project) -> None:
    """The last guard: whatever path reaches settle_edits from a change notice (a sync
    callback) gets Cancel's answer, not a modal."""
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Site 1"})])
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    w.select_topic(SITE)
    assert w.select_key("s1")
    w.form.set_value("notes", "typed")
    asked: list[str] = []

    def ask(_form: Any, doing: str) -> QMessageBox.StandardButton:
        asked.append(doing)
        return QMessageBox.StandardButton.Cancel

    w.ask_unsaved = ask  # type: ignore[method-assign]
    assert w.settle_edits(SITE, "testing") is False and asked == ["testing"]
    w._notice += 1  # as inside on_change
    try:
        assert w.settle_edits(SITE, "in a notice") is False
    finally:
        w._notice -= 1
    assert asked == ["testing"] and w.form.has_edits
    w.form.revert()
    w.close()
    sat.close()


async def test_record_read_leaving_the_filter_is_said(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The record shown, not edited, leaves the filter: the next one is shown and selected
    (as for a deleted one), and the status bar says why the record went."""
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    b.pub([Action(SITE, "s2", Cmd.MOD, {"region": "South"})])
    await sync(b, hub)
    await sync(a, hub)
    assert modals.seen == []
    assert w.current_key() == w.form.key != "s2"  # the table and the form agree
    msg = w.status.currentMessage()
    assert msg.startswith("Sites: Site 2 no longer matches the filter \u201cnorth\u201d")
    assert f"showing {w.form.title.text()}" in msg
    w.close()
    a.close()
    b.close()

# -- the record under the keyboard is never swapped (merge review 16b, HIGH): the user opened
# a record and put the cursor in one of its fields, typing nothing yet; a colleague's change
# took its row out of the filtered table (or deleted it) and the form loaded the next row
# under the cursor, so the typing and Ctrl+S went into that other record.


def name_of(sat: Satellite, key: str) -> Any:
    rv = sat.record(SITE, key)
    assert rv is not None and rv.fields is not None
    return rv.fields.get("name")


async def test_record_under_the_keyboard_leaving_the_filter_stays(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    name = w.form.editors["name"].widget
    name.setFocus()  # the cursor in the record's field, nothing typed
    name.end(False)
    assert QApplication.focusWidget() is name and not w.form.dirty
    # the colleague renames s2 and moves it out of the filter; A's sync brings it
    b.pub([Action(SITE, "s2", Cmd.MOD, {"name": "Site two", "region": "South"})])
    await sync(b, hub)
    await sync(a, hub)
    assert w.records.rowCount() == 2 and w.records.row_of("s2") < 0
    # the form keeps s2, as it is now, under the cursor; no other row shown as selected
    assert w.form.key == "s2" and not w.form.dirty
    assert name.text() == "Site two" and QApplication.focusWidget() is name
    assert w.current_key() == ""
    assert w.status.currentMessage() == (
        "Sites: Site two no longer matches the filter \u201cnorth\u201d: it stays in the form")
    # the typing and Ctrl+S go on the record they were typed for (the cursor stayed where
    # it was in the field, review a11y 16: the user moves it to the end)
    name.end(False)
    QTest.keyClicks(name, " (checked)")
    QTest.keySequence(name, "Ctrl+S")
    assert name_of(a, "s2") == "Site two (checked)"
    assert name_of(a, "s1") == "Site 1" and name_of(a, "s3") == "Site 3"
    assert modals.seen == []
    w.close()
    a.close()
    b.close()


async def test_record_read_from_the_table_leaving_is_named_as_it_is_now(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """The keyboard in the table: the next row is shown (the user is not typing into the
    form), and the status bar names the record that left by its title now, not the one
    before the change, and the one shown."""
    w, a, b = await filtered_window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    w.table.setFocus()
    b.pub([Action(SITE, "s2", Cmd.MOD, {"name": "Site two", "region": "South"})])
    await sync(b, hub)
    await sync(a, hub)
    assert w.form.key not in ("", "s2") and w.current_key() == w.form.key
    assert w.status.currentMessage() == (
        "Sites: Site two no longer matches the filter \u201cnorth\u201d; showing "
        f"{w.form.title.text()}")
    assert modals.seen == []
    w.close()
    a.close()
    b.close()


async def window(qtbot: Any, tmp_path: Path, project: Project, hub: Hub
                 ) -> tuple[MainWindow, Satellite, Satellite]:
    """A window on satellite A showing the sites, unfiltered, and a colleague's satellite B."""
    a = Satellite(tmp_path / "a", project)
    await sync(a, hub)
    b = Satellite(tmp_path / "b", project)
    await sync(b, hub)
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 3)
    return w, a, b


async def delete_under_the_keyboard(qtbot: Any, tmp_path: Path, project: Project, hub: Hub
                                    ) -> tuple[MainWindow, Satellite, Satellite]:
    """The cursor in site s2's Name field, nothing typed; the colleague deletes s2."""
    w, a, b = await window(qtbot, tmp_path, project, hub)
    assert w.select_key("s2")
    name = w.form.editors["name"].widget
    name.setFocus()
    name.end(False)
    assert QApplication.focusWidget() is name and not w.form.dirty
    b.pub([Action(SITE, "s2", Cmd.DEL, None)])
    await sync(b, hub)
    await sync(a, hub)
    assert a.record(SITE, "s2") is None or a.record(SITE, "s2").fields is None  # type: ignore[union-attr]
    return w, a, b


async def test_record_under_the_keyboard_deleted_stays(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """No filter; a colleague deletes the record whose field has the cursor: the form keeps
    it, says it was deleted (Re-create / Discard), and the typing re-creates that record
    instead of going into the next site."""
    w, a, b = await delete_under_the_keyboard(qtbot, tmp_path, project, hub)
    name = w.form.editors["name"].widget
    assert w.records.row_of("s2") < 0 and w.current_key() == ""
    assert w.form.key == "s2" and w.form.deleted_by is not None
    assert name.text() == "Site 2" and QApplication.focusWidget() is name
    assert w.form.save_button.text() == "Re-create"
    assert w.form.state.text().startswith("\u26a0 This record was deleted by ")
    assert "Your unsaved changes" not in w.form.state.text()  # none were typed
    msg = w.status.currentMessage()
    assert msg.startswith("Sites: Site 2 was deleted by ") and "showing" not in msg
    QTest.keyClicks(name, " (corrected)")
    QTest.keySequence(name, "Ctrl+S")
    assert name_of(a, "s2") == "Site 2 (corrected)"  # re-created, the typing in it
    assert name_of(a, "s1") == "Site 1" and name_of(a, "s3") == "Site 3"
    assert modals.seen == []
    w.close()
    a.close()
    b.close()


async def test_record_deleted_under_the_keyboard_untyped_asks_nothing_to_leave(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """Kept in the form with nothing typed: opening another record asks nothing (the
    question's default, Save, would re-create the record the colleague deleted) and shows
    it; nothing re-created. Typing into it makes it something to lose again."""
    w, a, b = await delete_under_the_keyboard(qtbot, tmp_path, project, hub)
    assert w.form.key == "s2" and w.form.deleted_by is not None
    assert w.select_key("s3")
    assert modals.seen == [] and w.form.key == "s3" and w.form.deleted_by is None
    assert a.record(SITE, "s2") is None or a.record(SITE, "s2").fields is None  # type: ignore[union-attr]
    assert w.drafts_path is None or not w.drafts_path.exists()
    w.close()
    a.close()
    b.close()


async def test_record_deleted_under_the_keyboard_typed_since_is_kept(
        modals: Modals, qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """Typing after the delete: that typing is something to lose, as for a record deleted
    under unsaved edits (the question asked, Cancel keeps it)."""
    w, a, b = await delete_under_the_keyboard(qtbot, tmp_path, project, hub)
    name = w.form.editors["name"].widget
    QTest.keyClicks(name, "!")
    assert w.form.has_edits
    asked: list[str] = []

    def ask(_form: Any, doing: str) -> QMessageBox.StandardButton:
        asked.append(doing)
        return QMessageBox.StandardButton.Cancel

    w.ask_unsaved = ask  # type: ignore[method-assign]
    w.table.selectRow(w.records.row_of("s3"))
    assert asked == ["opening another record"]
    assert w.form.key == "s2" and name.text() == "Site 2!"
    w.form.revert()  # Discard: the deleted record's form goes
    assert not w.form.has_edits
    w.close()
    a.close()
    b.close()
