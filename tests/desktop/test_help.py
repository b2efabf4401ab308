"""The Help menu and the filter box's keys (field-team review 10, item 3): the app had no
Help menu and no list of its shortcuts; Down in the filter box did not reach the results and
Esc did not clear it. Real widgets (offscreen), keys through Qt (QTest); About on a real
satellite (SQLite in tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.widgets.help import version
from tests.desktop.fakes import FakeSatellite
from tests.desktop.test_shortcuts import documented, focus, window

NATIVE = QKeySequence.SequenceFormat.NativeText


def test_f1_lists_every_shortcut_of_the_window(qtbot: Any, fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    assert [a.text() for a in w.menuBar().actions()][-1] == "&Help"
    assert [a.text().replace("&", "") for a in w.menus[-1].actions()] == [
        "Keyboard shortcuts", "About Outpost"]
    focus(qtbot, w.table)
    QTest.keyClick(w.table, Qt.Key.Key_F1)
    dlg = w.shortcuts_dialog
    assert dlg is not None and dlg.isVisible()
    rows = dict(dlg.rows())
    assert rows["Save"] == "Ctrl+S" and rows["Keyboard shortcuts"] == "F1"
    # the platform's Quit key when it has one, Ctrl+Q where it has none (the offscreen
    # platform; session 14): what works
    quit_keys = QKeySequence(QKeySequence.StandardKey.Quit).toString(NATIVE) or "Ctrl+Q"
    assert rows.get("Quit", "") == quit_keys
    # the main key and the Ctrl ones, not the platform's legacy and dedicated keys (session
    # 14: "Ctrl+Z or Alt+Backspace or Undo")
    assert rows["Undo"] == "Ctrl+Z" and rows["Redo"] == "Ctrl+Y or Ctrl+Shift+Z"
    assert rows["New"] == "Ctrl+N" and rows["Delete"] == "Ctrl+Del"
    assert rows["Records table: delete the selected record (as Ctrl+Del)"] == "Del"
    assert rows["Keep both (conflicts view)"] == "Ctrl+B"
    assert "Filter box: move into the results" in next(k for k, v in rows.items()
                                                       if v == "Down")
    # every documented key is listed, and nothing is listed twice
    listed = {k for v in rows.values() for k in v.split(" or ")}
    assert {QKeySequence(k).toString(NATIVE) for k in documented()} <= listed
    assert len(dlg.rows()) == len(rows)
    # made from the actions, not a hand list: an action added later is listed
    extra = QAction("Something new", w)
    extra.setShortcut(QKeySequence("Ctrl+Alt+J"))
    w.addAction(extra)
    assert ("Something new", "Ctrl+Alt+J") in w.show_shortcuts().rows()


def test_about_names_version_data_directory_and_hub(qtbot: Any, tmp_path: Path,
                                                    project: Project) -> None:
    sat = Satellite(tmp_path / "sat", project)
    w = MainWindow(sat, None, "sat")
    qtbot.addWidget(w)
    w.about_action.trigger()
    box = w.about_box
    assert box is not None and box.isVisible()
    text = box.text()
    assert f"Outpost {version()}" in text and version() != "unknown"
    assert f"Data directory: {tmp_path / 'sat'}" in text
    assert "Hub: (none set: File → Connection settings)" in text
    box.close()
    sat.close()


def test_down_from_the_filter_box_into_the_results_and_esc_clears_it(
        qtbot: Any, fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    w.table.clearSelection()
    focus(qtbot, w.filter)
    QTest.keyClicks(w.filter, "s")
    assert w.filter.text() == "s"
    QTest.keyClick(w.filter, Qt.Key.Key_Down)
    assert QApplication.focusWidget() is w.table
    assert w.current_key() == w.records.key_at(0)
    QTest.keyClick(w.table, Qt.Key.Key_Down)  # the arrows move on in the table
    assert w.current_key() == w.records.key_at(1)
    focus(qtbot, w.filter)
    QTest.keyClick(w.filter, Qt.Key.Key_Down)  # onto the selected row, not the first
    assert QApplication.focusWidget() is w.table and w.current_key() == w.records.key_at(1)
    focus(qtbot, w.filter)
    QTest.keyClick(w.filter, Qt.Key.Key_Escape)
    assert w.filter.text() == "" and w.records.filter_text == ""
    assert QApplication.focusWidget() is w.filter
