"""Unsaved typing is never dropped unasked, and the conflicts view acts only on what is
selected (user review 9, desktop findings 1, 2, 3, 5, 6). Real widgets (offscreen), real
satellites (SQLite in tmp_path) and a real hub (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox, QPlainTextEdit

from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.widgets.conflicts import ConflictsDialog
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans(tuple(
        Action(SITE, f"s{i}", Cmd.NEW, {"name": f"Site {i}", "region": "North",
                                        "notes": f"notes {i}"}) for i in range(1, 4))),
        "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def sat_of(tmp_path: Path, project: Project, hub: Hub, name: str) -> Satellite:
    sat = Satellite(tmp_path / name, project)
    await sync(sat, hub)
    return sat


def window(qtbot: Any, sat: Satellite) -> MainWindow:
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 3)
    return w


def hub_state(hub: Hub, key: str) -> dict[str, Any] | None:
    st = hub.ledger.state(SITE, key)  # type: ignore[attr-defined]
    return None if st is None else {k: v for k, v in st.items() if v is not None}


class Answer:
    """Answers the next message boxes: ``pick(box)`` gives the button to click. Records
    each box's text (an empty list: no question was asked)."""

    def __init__(self, pick: Callable[[QMessageBox], QAbstractButton | None]):
        self.pick = pick
        self.asked: list[str] = []
        self.defaults: list[str] = []  # the default button's text
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible():
            self.asked.append(box.text())
            d = box.defaultButton()
            self.defaults.append(d.text().replace("&", "") if d is not None else "")
            b = self.pick(box) or box.escapeButton()
            if b is not None:
                b.click()
            else:  # a box without the button asked for (the code before the fix): close it
                box.done(0)

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture
def answers() -> Iterator[list[Answer]]:
    """The Answer objects of a test, stopped at its end (failed or not): a box of the next
    test is not answered by this one's. Requested before ``qtbot``, so the windows pytest-qt
    closes at the end of a failed test, still edited, do not wait for an answer: Discard."""
    made: list[Answer] = []
    yield made
    for a in made:
        a.pick = std(QMessageBox.StandardButton.Discard)
    QApplication.processEvents()
    for a in made:
        a.stop()


def answer(made: list[Answer], which: QMessageBox.StandardButton) -> Answer:
    a = Answer(std(which))
    made.append(a)
    return a


def std(which: QMessageBox.StandardButton) -> Callable[[QMessageBox], QAbstractButton | None]:
    return lambda box: box.button(which)


def role(r: QMessageBox.ButtonRole) -> Callable[[QMessageBox], QAbstractButton | None]:
    return lambda box: next((b for b in box.buttons() if box.buttonRole(b) == r), None)


def type_into(w: MainWindow, field: str, text: str) -> None:
    ed = w.form.editors[field].widget
    ed.setFocus()
    if isinstance(ed, QPlainTextEdit):
        ed.moveCursor(QTextCursor.MoveOperation.End)  # typed at the end, as in a line edit
    QTest.keyClicks(ed, text)


# -- 1, 5: the conflicts view -------------------------------------------------------------------


async def three_conflicts(tmp_path: Path, project: Project, hub: Hub,
                          n: int = 3) -> Satellite:
    """A changed ``n`` sites' names and regions (one edit each) while B changed their names:
    the hub rejects A's ``n`` edits (sites past the hub's three are created first)."""
    b = await sat_of(tmp_path, project, hub, "b")
    if n > 3:
        b.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"Site {i}", "region": "North"})
               for i in range(4, n + 1)])
        await sync(b, hub)
    a = await sat_of(tmp_path, project, hub, "a")
    for i in range(1, n + 1):
        b.pub([Action(SITE, f"s{i}", Cmd.MOD, {"name": f"B {i}"})])
    await sync(b, hub)
    b.close()
    for i in range(1, n + 1):
        a.pub([Action(SITE, f"s{i}", Cmd.MOD, {"name": f"A {i}", "region": f"A region {i}"})])
    await sync(a, hub)
    assert a.status().conflicts == n
    return a


async def test_conflict_buttons_act_only_on_the_selected_edits(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """One click on Keep theirs with nothing selected dropped every conflicting edit (all
    when nothing is selected; the view opened with row 0 framed, not selected)."""
    a = await three_conflicts(tmp_path, project, hub)
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    dlg = w.show_conflicts()
    uids = dlg.model.uids()
    assert len(uids) == 3 and dlg.model.rowCount() == 6  # name and region of each
    # the first edit is selected (both its rows: the buttons act on whole edits)
    assert dlg.selected_uids() == uids[:1]
    assert sorted(i.row() for i in dlg.table.selectionModel().selectedRows()) == [0, 1]
    assert "A 1" in dlg.details.text() and "A 2" not in dlg.details.text()
    assert dlg.keep_theirs.isEnabled()
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    dlg.keep_theirs.click()  # one edit: no question
    assert ask.asked == []
    assert [r.uid for r in a.receipts()] and a.status().conflicts == 2
    assert a.record(SITE, "s2") is not None
    # the rest are not picked for the user: nothing selected, the buttons disabled
    assert dlg.selected_uids() == []
    assert not dlg.keep_theirs.isEnabled() and not dlg.keep_mine.isEnabled()
    assert not dlg.apply.isEnabled()
    assert dlg.resolve_selected(None) == [] and a.status().conflicts == 2
    assert "Select an edit" in dlg.details.text()
    # one row of an edit selects the whole edit
    dlg.table.selectRow(3)
    assert sorted(i.row() for i in dlg.table.selectionModel().selectedRows()) == [2, 3]
    assert dlg.selected_uids() == uids[2:3]
    # all of them (Ctrl+A): keep theirs asks first, naming the count; Cancel is the default
    dlg.table.setFocus()
    QTest.keySequence(dlg.table, "Ctrl+A")
    assert dlg.selected_uids() == uids[1:]
    dlg.keep_theirs.click()
    assert ask.asked == ["Drop your 2 edits?"]
    assert ask.defaults == ["Cancel"]
    assert a.status().conflicts == 2  # cancelled: nothing dropped
    dlg.keep_mine.click()
    assert ask.asked[1] == "Send your 2 edits again?" and a.status().conflicts == 2
    ask.pick = role(QMessageBox.ButtonRole.DestructiveRole)
    dlg.keep_theirs.click()
    assert ask.asked[2] == "Drop your 2 edits?"
    assert a.status().conflicts == 0
    await sync(a, hub)
    assert hub_state(hub, "s2") == {"name": "B 2", "region": "North", "notes": "notes 2"}
    w.close()
    a.close()


async def test_conflicts_table_keeps_its_height_with_long_details(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """The details label under the table grew with every selected conflict and squeezed
    the table to one row (clipped text) at the dialog's size."""
    a = await three_conflicts(tmp_path, project, hub, 27)  # the review's 27
    dlg = ConflictsDialog(a)
    qtbot.addWidget(dlg)
    for size in ((1000, 524), (1100, 600), (1000, 420)):
        dlg.resize(*size)
        dlg.show()
        qtbot.waitExposed(dlg)
        dlg.table.selectAll()  # every edit's details in words under the table
        QApplication.processEvents()
        assert dlg.details.text().count("•") == 27
        row = dlg.table.verticalHeader().defaultSectionSize()
        # six rows at least show whole; the details scroll instead
        assert dlg.table.viewport().height() >= 6 * row, size
        assert dlg.details.visibleRegion().boundingRect().height() >= 40, size
    dlg.detach()
    dlg.close()
    a.close()


# -- 2: the record deleted on the hub under unsaved edits -----------------------------------


async def test_unsaved_edits_of_a_record_deleted_on_the_hub_are_kept(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """A colleague deleted the record being edited: the removed row moved the selection and
    the form loaded the next record, dropping the typing unasked."""
    a = await sat_of(tmp_path, project, hub, "a")
    b = await sat_of(tmp_path, project, hub, "b")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s2")
    type_into(w, "notes", " and half an hour of field notes")
    assert w.form.dirty and w.form.key == "s2"
    b.pub([Action(SITE, "s2", Cmd.DEL)])
    await sync(b, hub)
    await sync(a, hub)  # the delete reaches A's window
    assert a.record(SITE, "s2") is None
    qtbot.waitUntil(lambda: w.records.rowCount() == 2)
    form = w.form
    assert form.key == "s2" and form.dirty and form.deleted_by == "office"
    assert form.editors["notes"].get() == "notes 2 and half an hour of field notes"
    assert form.editors["name"].get() == "Site 2"
    assert "deleted by office on the hub" in form.state.text()
    assert w.current_key() == ""  # no other record is shown as the one edited
    assert ask.asked == []  # no question popped up for a colleague's change
    # clicking another record now asks; Cancel keeps the deleted record's values
    assert w.select_key("s3")
    assert len(ask.asked) == 1 and form.key == "s2" and w.current_key() == ""
    # re-create: every value, the same key
    assert form.save_button.text() == "Re-create"
    form.save_button.click()
    rv = a.record(SITE, "s2")
    assert rv is not None and rv.fields is not None
    assert rv.fields["notes"] == "notes 2 and half an hour of field notes"
    assert not form.dirty and form.deleted_by is None and w.current_key() == "s2"
    await sync(a, hub)
    assert a.status().conflicts == 0
    assert hub_state(hub, "s2") == {"name": "Site 2", "region": "North",
                                    "notes": "notes 2 and half an hour of field notes"}
    w.close()
    a.close()
    b.close()


async def test_discard_drops_the_values_of_a_deleted_record(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    a = await sat_of(tmp_path, project, hub, "a")
    b = await sat_of(tmp_path, project, hub, "b")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s1")
    type_into(w, "region", " typed")
    b.pub([Action(SITE, "s1", Cmd.DEL)])
    await sync(b, hub)
    await sync(a, hub)
    assert w.form.deleted_by == "office" and w.form.revert_button.text() == "Discard"
    w.form.revert_button.click()
    assert w.form.key == "" and not w.form.dirty and not w.form.has_edits
    assert w.select_key("s3") and w.form.key == "s3"
    await sync(a, hub)
    assert hub_state(hub, "s1") is None
    assert ask.asked == []
    w.close()
    a.close()
    b.close()


# -- 3: other ways to lose typing: another row, another topic, closing ----------------------


async def test_another_row_asks_save_discard_cancel(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """Clicking another row dropped a dirty form unasked."""
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s1")
    type_into(w, "name", " typed")
    assert w.select_key("s2") and w.current_key() == "s1"  # Cancel: still on s1
    assert ask.asked == ["The record has unsaved changes. Save them before opening another "
                         "record?"]
    assert ask.defaults == ["Save"]
    assert w.form.key == "s1" and w.form.editors["name"].get() == "Site 1 typed"
    ask.pick = std(QMessageBox.StandardButton.Save)
    assert w.select_key("s2")
    assert w.form.key == "s2" and w.current_key() == "s2" and not w.form.dirty
    rv = a.record(SITE, "s1")
    assert rv is not None and rv.fields is not None and rv.fields["name"] == "Site 1 typed"
    type_into(w, "name", " dropped")
    ask.pick = std(QMessageBox.StandardButton.Discard)
    assert w.select_key("s3") and w.form.key == "s3"
    rv = a.record(SITE, "s2")
    assert rv is not None and rv.fields is not None and rv.fields["name"] == "Site 2"
    assert len(ask.asked) == 3
    # a form without changes asks nothing
    assert w.select_key("s1") and len(ask.asked) == 3
    w.close()
    a.close()


async def test_switching_topic_asks_and_cancel_stays(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s1")
    type_into(w, "notes", " typed")
    w.select_topic("field.obs")
    assert len(ask.asked) == 1 and "switching topic" in ask.asked[0]
    assert w.topic == SITE and w.topics.topic_at(w.topic_view.currentIndex().row()) == SITE
    assert w.form.key == "s1" and w.form.editors["notes"].get() == "notes 1 typed"
    assert w.current_key() == "s1"
    ask.pick = std(QMessageBox.StandardButton.Save)
    w.select_topic("field.obs")
    assert w.topic == "field.obs"
    rv = a.record(SITE, "s1")
    assert rv is not None and rv.fields is not None and rv.fields["notes"] == "notes 1 typed"
    w.close()
    a.close()


async def test_closing_with_a_filled_in_new_record_asks(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """Close asked only for existing records: a new record typed in was dropped."""
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    w.show()
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    w.new_action.trigger()
    assert w.form.is_new and w.form.title.text() == "New record in Sites"
    assert not w.form.has_edits  # nothing typed: nothing to lose
    type_into(w, "name", "Brand new site")
    assert w.form.has_edits
    assert not w.close()  # Cancel: the window stays, the values too
    assert len(ask.asked) == 1 and ask.asked[0].startswith("The new record has unsaved")
    assert w.isVisible() and w.form.editors["name"].get() == "Brand new site"
    ask.pick = std(QMessageBox.StandardButton.Save)
    assert w.close()
    names = [rv.fields["name"] for rv in a.records(SITE) if rv.fields]
    assert "Brand new site" in names
    a.close()


async def test_a_new_form_untouched_closes_without_asking(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    w.show()
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    w.new_action.trigger()
    assert w.close() and ask.asked == []
    a.close()


# -- 6: the state line says the form has unsaved changes ------------------------------------


async def test_a_dirty_form_says_unsaved_changes(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s1")
    assert w.form.state.text() == "Synced with the hub."
    type_into(w, "name", "!")
    assert w.form.state.text().startswith("Unsaved changes")
    w.form.revert_button.click()
    assert w.form.state.text() == "Synced with the hub."
    assert ask.asked == []
    w.close()
    a.close()


# -- 4: the status bar's rejection summary counts the inbox -----------------------------------


async def test_rejection_summary_counts_every_conflict_waiting(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """"Conflicts: 2 | 1 edit rejected by the hub": the summary counted only the last
    reply's rejections (an older one still waited in the inbox)."""
    a = await sat_of(tmp_path, project, hub, "a")
    b = await sat_of(tmp_path, project, hub, "b")
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "B1"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "A1"})])
    await sync(a, hub)  # the older rejection, left for later
    b.pub([Action(SITE, "s2", Cmd.MOD, {"name": "B2"})])
    await sync(b, hub)
    new = a.pub([Action(SITE, "s2", Cmd.MOD, {"name": "A2"})])
    await sync(a, hub)
    st = a.status()
    assert st.conflicts == 2 and new in st.last_error  # the error names the last reply's
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    assert w.status.conflicts.text().startswith("Conflicts: 2")
    assert w.status.error.text() == (
        "2 edits rejected by the hub: see Conflicts (Ctrl+Shift+C)")
    w.close()
    a.close()
    b.close()


async def test_ctrl_n_asks_before_dropping_an_edited_record(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    a = await sat_of(tmp_path, project, hub, "a")
    w = window(qtbot, a)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    assert w.select_key("s3")
    type_into(w, "region", " typed")
    w.new_action.trigger()
    assert len(ask.asked) == 1 and "starting a new record" in ask.asked[0]
    assert not w.form.is_new and w.form.editors["region"].get() == "North typed"
    ask.pick = std(QMessageBox.StandardButton.Discard)
    w.new_action.trigger()
    assert w.form.is_new and len(ask.asked) == 2
    rv = a.record(SITE, "s3")
    assert rv is not None and rv.fields is not None and rv.fields["region"] == "North"
    w.close()
    a.close()


async def test_enter_in_the_conflicts_view_resolves_nothing(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """Keep mine was the view's default button: a stray Enter sent the selected edit again
    (session 10). No button is the default; Enter anywhere in the view resolves nothing."""
    a = await three_conflicts(tmp_path, project, hub, n=1)
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    dlg = w.show_conflicts()
    qtbot.waitExposed(dlg)
    dlg.activateWindow()
    qtbot.waitUntil(dlg.isActiveWindow)
    assert dlg.selected_uids() and dlg.keep_mine.isEnabled()
    buttons = (dlg.keep_mine, dlg.keep_theirs, dlg.keep_both, dlg.apply, dlg.close_button)
    assert not any(b.isDefault() or b.autoDefault() for b in buttons)
    ask = answer(answers, QMessageBox.StandardButton.Cancel)
    for target in (dlg.table, dlg):
        target.setFocus()
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            QTest.keyClick(target, key)
    assert ask.asked == []
    assert a.status().conflicts == 1 and dlg.isVisible()
    dlg.keep_mine.setFocus()  # a focused button takes Space, as any button
    QTest.keyClick(dlg.keep_mine, Qt.Key.Key_Space)
    assert a.status().conflicts == 0
    w.close()
    a.close()


async def test_a_record_deleted_on_the_hub_while_shown_unedited_is_said(
        answers: list[Answer], qtbot: Any, tmp_path: Path, project: Project,
        hub: Hub) -> None:
    """A colleague deleted the record shown (no unsaved edits): the removed row moved the
    selection to its neighbour without a word (session 10: the status bar says it)."""
    a = await sat_of(tmp_path, project, hub, "a")
    b = await sat_of(tmp_path, project, hub, "b")
    w = window(qtbot, a)
    assert w.select_key("s2")
    assert not w.form.dirty
    b.pub([Action(SITE, "s2", Cmd.DEL)])
    await sync(b, hub)
    await sync(a, hub)
    qtbot.waitUntil(lambda: w.records.rowCount() == 2)
    assert w.form.key != "s2"
    assert w.status.currentMessage().startswith(
        "Sites: Site 2 was deleted by office on the hub")
    # one's own delete is not announced as the hub's
    w.status.clearMessage()
    assert w.select_key("s3")
    w.delete_record()
    assert "deleted by" not in w.status.currentMessage()
    w.close()
    a.close()
    b.close()
