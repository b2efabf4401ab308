"""Keyboard-only use (review a11y 16): the conflicts view resolved without a mouse (finding
1: Tab walked its table cell by cell and wrapped; Keep mine / Keep theirs / Apply choices /
Close had no key), Tab out of the records and History tables, Enter in the records table into
the form, Ctrl+H into the history (finding 2), mnemonics (finding 4). Real widgets
(offscreen), real satellites (SQLite in tmp_path), a real hub (websockets on 127.0.0.1);
keys sent through QTest."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QToolBar, QToolButton, QWidget

from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.models.conflicts import COL_KEEP
from desktop.widgets.conflicts import ConflictsDialog
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"
ALT = Qt.KeyboardModifier.AltModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


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


def press(key: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A key to the widget with the keyboard focus, as a keyboard delivers it."""
    target = QApplication.focusWidget()
    assert target is not None
    QTest.keyClick(target, key, mod)


def shown(qtbot: Any, w: QWidget) -> None:
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)


async def three_conflicts(tmp_path: Path, project: Project, hub: Hub) -> Satellite:
    """A changed the three sites' names while B did: the hub rejects A's three edits."""
    b = Satellite(tmp_path / "b", project)
    await sync(b, hub)
    a = Satellite(tmp_path / "a", project)
    await sync(a, hub)
    for i in range(1, 4):
        b.pub([Action(SITE, f"s{i}", Cmd.MOD, {"name": f"B {i}"})])
    await sync(b, hub)
    b.close()
    for i in range(1, 4):
        a.pub([Action(SITE, f"s{i}", Cmd.MOD, {"name": f"A {i}"})])
    await sync(a, hub)
    assert a.status().conflicts == 3
    return a


async def test_conflicts_view_resolved_by_keyboard(qtbot: Any, tmp_path: Path,
                                                   project: Project, hub: Hub) -> None:
    a = await three_conflicts(tmp_path, project, hub)
    w = MainWindow(a, None, "t")
    qtbot.addWidget(w)
    shown(qtbot, w)
    QTest.keyClick(w.focusWidget() or w, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | SHIFT)
    dlg = w.conflicts_dialog
    assert isinstance(dlg, ConflictsDialog) and dlg.isVisible()
    qtbot.waitUntil(dlg.isActiveWindow)
    dlg.table.setFocus()
    qtbot.waitUntil(dlg.table.hasFocus)
    # Tab leaves the table: the conflict in words (read from the keyboard), then the buttons
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is dlg.details
    assert dlg.details.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByKeyboard
    seen = []
    for _ in range(7):
        press(Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    assert dlg.keep_mine in seen and dlg.keep_theirs in seen and dlg.close_button in seen
    assert seen.index(dlg.keep_mine) < seen.index(dlg.keep_theirs) < seen.index(
        dlg.close_button)
    assert seen[seen.index(dlg.close_button) + 1] is dlg.table  # round the view
    dlg.table.setFocus()
    press(Qt.Key.Key_Backtab, SHIFT)
    assert QApplication.focusWidget() is not dlg.table
    # a field's choice by keys: the arrows to its Keep tick, Space unticks it (theirs)
    dlg.table.setFocus()
    dlg.table.setCurrentIndex(dlg.model.index(0, 0))
    for _ in range(COL_KEEP):
        press(Qt.Key.Key_Right)
    assert dlg.table.currentIndex().column() == COL_KEEP
    assert dlg.model.rows()[0].keep_mine
    press(Qt.Key.Key_Space)
    assert not dlg.model.rows()[0].keep_mine
    press(Qt.Key.Key_Space)
    assert dlg.model.rows()[0].keep_mine
    dlg.select_first()
    # each choice has its key: Alt+T keep theirs, Alt+K keep mine, Alt+A apply, Alt+C close
    first = dlg.selected_uids()
    assert len(first) == 1
    dlg.table.setFocus()
    press(Qt.Key.Key_T, ALT)  # a mnemonic "animates" the click: it lands a moment later
    qtbot.waitUntil(lambda: a.status().conflicts == 2)
    assert first[0] not in dlg.model.uids()
    dlg.select_first()
    press(Qt.Key.Key_K, ALT)
    qtbot.waitUntil(lambda: a.status().conflicts == 1)
    dlg.select_first()
    press(Qt.Key.Key_A, ALT)
    qtbot.waitUntil(lambda: a.status().conflicts == 0)
    assert dlg.isVisible()
    press(Qt.Key.Key_C, ALT)
    qtbot.waitUntil(lambda: not dlg.isVisible())
    await sync(a, hub)
    assert a.status().pending == 0
    w.close()
    a.close()


async def sites_window(qtbot: Any, tmp_path: Path, project: Project, hub: Hub
                       ) -> tuple[MainWindow, Satellite]:
    """A shown, active window on the hub's three sites (s1 changed once since: two
    versions), s1 selected, the keyboard in the records table."""
    sat = Satellite(tmp_path / "a", project)
    await sync(sat, hub)
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"region": "South"})])
    await sync(sat, hub)
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    shown(qtbot, w)
    w.select_topic(SITE)
    qtbot.waitUntil(lambda: w.records.rowCount() == 3)
    assert w.select_key("s1")
    w.table.setFocus()
    qtbot.waitUntil(w.table.hasFocus)
    return w, sat


async def test_tab_leaves_the_records_table_for_the_form(qtbot: Any, tmp_path: Path,
                                                         project: Project, hub: Hub) -> None:
    w, sat = await sites_window(qtbot, tmp_path, project, hub)
    first = w.form.editors["name"].widget
    press(Qt.Key.Key_Tab)
    # the form's state line (read by a screen reader: review a11y 16), then its first field
    assert QApplication.focusWidget() is w.form.state
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is first  # the form's first field, s1 still shown
    assert w.form.key == "s1" and w.current_key() == "s1"
    seen = [QApplication.focusWidget()]
    for _ in range(30):  # the fields, Revert/Save (disabled: skipped), the tabs, ...
        press(Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
        if seen[-1] is w.topic_view:
            break
    assert w.form.key == "s1" and w.current_key() == "s1"  # no record opened on the way
    assert w.side.tabBar() in seen and seen[-1] is w.topic_view  # round the window
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is w.filter
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is w.table
    press(Qt.Key.Key_Backtab, SHIFT)
    assert QApplication.focusWidget() is w.filter
    press(Qt.Key.Key_Backtab, SHIFT)
    assert QApplication.focusWidget() is w.topic_view
    w.close()
    sat.close()


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_F2],
                         ids=["Return", "Enter", "F2"])
async def test_enter_in_the_records_table_edits_the_record(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub, key: Qt.Key) -> None:
    w, sat = await sites_window(qtbot, tmp_path, project, hub)
    press(Qt.Key.Key_Down)  # s2
    assert w.form.key == "s2"
    w.show_history()
    w.table.setFocus()
    press(key)
    name = w.form.editors["name"].widget
    assert QApplication.focusWidget() is name and w.side.currentWidget() is w.form_stack
    QTest.keyClicks(name, " edited")
    QTest.keySequence(name, "Ctrl+S")
    assert sat.record(SITE, "s2").fields["name"] == "Site 2 edited"  # type: ignore[union-attr]
    w.close()
    sat.close()


async def test_ctrl_h_puts_the_keyboard_in_the_history_and_restore_is_reached(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    w, sat = await sites_window(qtbot, tmp_path, project, hub)
    press(Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    h = w.history
    assert w.side.currentWidget() is h and QApplication.focusWidget() is h.table
    assert h.model.rowCount() == 2
    for _ in range(h.model.rowCount()):  # to the version before the change
        press(Qt.Key.Key_Down)
        if h.restore.isEnabled():
            break
    assert h.restore.isEnabled()
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is h.state  # the version's fields
    press(Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is h.restore
    seen = []
    for _ in range(10):  # on round the window (the status bar's buttons), not the history
        press(Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
        if seen[-1] is w.topic_view:
            break
    assert seen[-1] is w.topic_view and h.table not in seen
    press(Qt.Key.Key_Backtab, SHIFT)
    while QApplication.focusWidget() is not h.restore and seen:  # back, as many
        seen.pop()
        press(Qt.Key.Key_Backtab, SHIFT)
    assert QApplication.focusWidget() is h.restore
    press(Qt.Key.Key_Space)
    assert sat.record(SITE, "s1").fields["region"] == "North"  # type: ignore[union-attr]
    w.close()
    sat.close()


def test_menus_and_form_labels_have_alt_letters(qtbot: Any, tmp_path: Path,
                                                 project: Project) -> None:
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Site 1", "region": "North"})])
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    shown(qtbot, w)
    w.select_topic(SITE)
    assert w.select_key("s1")
    # every item of every menu has its Alt+letter, none twice in a menu
    for m in w.menus:
        letters = []
        for a in m.actions():
            if a.isSeparator():
                continue
            text = a.text().replace("&&", "")
            assert "&" in text, (m.title(), a.text())
            letters.append(text[text.index("&") + 1].lower())
        assert len(letters) == len(set(letters)), (m.title(), letters)
    menu_letters = {m.title()[m.title().index("&") + 1].lower() for m in w.menus}
    # each field's label: an Alt+letter of its own, not a menu's, moves the keyboard there
    form = w.form
    labels = [x for x in form.findChildren(QLabel) if x.buddy() is not None]
    assert len(labels) == len(form.editors)
    used = set()
    for label in labels:
        text = label.text()
        assert "&" in text, text
        letter = text[text.index("&") + 1]
        assert letter.lower() not in menu_letters and letter.lower() not in used
        used.add(letter.lower())
        w.table.setFocus()
        qtbot.waitUntil(w.table.hasFocus)
        press(getattr(Qt.Key, f"Key_{letter.upper()}"), ALT)
        assert QApplication.focusWidget() is label.buddy(), text
    w.close()
    sat.close()


def test_the_undo_button_stays_short(qtbot: Any, tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Site 1", "region": "North"})])
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    shown(qtbot, w)
    w.select_topic(SITE)
    assert w.select_key("s1")
    bar = w.findChild(QToolBar, "main_toolbar")
    button = bar.widgetForAction(w.undo_action)
    assert isinstance(button, QToolButton)
    region = w.form.editors["region"].widget
    region.setFocus()
    region.selectAll()
    QTest.keyClicks(region, "A region with a long name, typed in full")
    QTest.keySequence(region, "Ctrl+S")
    assert "Region" in w.undo_action.text()  # the Edit menu names the step
    assert button.text() == "Undo"  # the toolbar does not grow with it
    assert "Undo edit Region of Sites: Site 1" in w.undo_action.toolTip()
    assert "Ctrl+Z" in w.undo_action.toolTip()
    w.close()
    sat.close()


def test_a_change_of_the_record_on_screen_keeps_the_cursor(qtbot: Any, tmp_path: Path,
                                                           project: Project) -> None:
    """A change to the record on screen (clean form) arrives: the text cursor stays where it
    was in the field being read."""
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Site 1", "region": "North"})])
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w)
    shown(qtbot, w)
    w.select_topic(SITE)
    assert w.select_key("s1")
    region = w.form.editors["region"].widget
    name = w.form.editors["name"].widget
    name.setFocus()
    name.setCursorPosition(3)
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"region": "South"})])
    assert region.text() == "South"  # shown again
    assert QApplication.focusWidget() is name and name.cursorPosition() == 3
    notes = w.form.editors["notes"].widget
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "line one\nline two"})])
    notes.setFocus()
    cur = notes.textCursor()
    cur.setPosition(5)
    notes.setTextCursor(cur)
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"region": "West"})])
    assert notes.textCursor().position() == 5
    w.close()
    sat.close()
