"""User review 12, the form: typing is never dropped unasked (docs/desktop.md).

Real widgets (offscreen), a real satellite (SQLite files), keys through Qt's shortcut
machinery (QTest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox, QPlainTextEdit, QWidget

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from tests.desktop.test_edits_kept import Answer, std

SITE = "field.site"


@pytest.fixture
def sat(tmp_path: Path, project: Project) -> Iterator[Satellite]:
    s = Satellite(tmp_path / "sat", project)
    s.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek", "region": "North",
                                        "lat": 46.5}),
           Action(SITE, "s2", Cmd.NEW, {"name": "Birch Hill", "region": "South"})])
    yield s
    s.close()


@pytest.fixture
def answers() -> Iterator[list[Answer]]:
    """Answer objects stopped at the end of the test (failed or not)."""
    made: list[Answer] = []
    yield made
    QApplication.processEvents()
    for a in made:
        a.stop()


def window(qtbot: Any, sat: Satellite, top: str = SITE, rows: int = 2,
           key: str = "s1") -> MainWindow:
    """The window, active, showing ``key`` of ``top`` (a topic of ``rows`` records)."""
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    w.select_topic(top)
    qtbot.waitUntil(lambda: w.records.rowCount() == rows)
    assert w.select_key(key)
    return w


def focus(qtbot: Any, widget: QWidget) -> None:
    widget.activateWindow()  # again after a question
    qtbot.waitUntil(widget.window().isActiveWindow)
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus)


def deleted(sat: Satellite, key: str) -> bool:
    rv = sat.record(SITE, key)
    return rv is None or rv.fields is None


def test_ctrl_delete_in_a_text_field_deletes_the_next_word_not_the_record(
        qtbot: Any, sat: Satellite) -> None:
    """Ctrl+Delete is "delete the next word" in every text field; the window's Delete took it
    and deleted the record with the typing (the draft went too, and Ctrl+Z brought the record
    back without it)."""
    w = window(qtbot, sat)
    f = w.form
    name = f.editors["name"].widget
    assert isinstance(name, QLineEdit)
    focus(qtbot, name)
    name.selectAll()
    QTest.keyClicks(name, "Alpha Beta Gamma")
    name.setCursorPosition(6)
    QTest.keyClick(name, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert not deleted(sat, "s1")
    assert name.text() == "Alpha Gamma"
    assert f.key == "s1" and f.changes() == {"name": "Alpha Gamma"}
    notes = f.editors["notes"].widget
    assert isinstance(notes, QPlainTextEdit)
    focus(qtbot, notes)
    QTest.keyClicks(notes, "one two three")
    c = notes.textCursor()
    c.setPosition(4)
    notes.setTextCursor(c)
    QTest.keyClick(notes, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert not deleted(sat, "s1")
    assert notes.toPlainText() == "one three"
    lat = f.editors["lat"].widget  # a number box's text
    focus(qtbot, lat)
    QTest.keyClick(lat, Qt.Key.Key_Home)
    QTest.keyClick(lat, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert not deleted(sat, "s1")
    assert f.changes() == {"name": "Alpha Gamma", "notes": "one three", "lat": 0.5}
    focus(qtbot, w.filter)  # the filter box is a text field too
    QTest.keyClicks(w.filter, "ab cd")
    w.filter.setCursorPosition(0)
    QTest.keyClick(w.filter, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert w.filter.text() == "cd" and not deleted(sat, "s1")
    assert w.undo_stack.count() == 0  # nothing was published


def test_deleting_a_record_with_unsaved_typing_asks_first(
        qtbot: Any, sat: Satellite, answers: list[Answer]) -> None:
    """The toolbar's Delete (or Ctrl+Delete from the table) with typing in the form: Cancel
    keeps the record and the typing (its draft too); Delete deletes both; without typing it
    asks nothing."""
    w = window(qtbot, sat)
    f = w.form
    notes = f.editors["notes"].widget
    assert isinstance(notes, QPlainTextEdit)
    focus(qtbot, notes)
    notes.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(notes, "Long field note typed for ten minutes")
    assert w.write_drafts() and w.drafts_path is not None and w.drafts_path.exists()
    ask = Answer(std(QMessageBox.StandardButton.Cancel))
    answers.append(ask)
    w.delete_action.trigger()  # the toolbar's button
    assert len(ask.asked) == 1 and "unsaved changes" in ask.asked[0]
    assert "Alder Creek" in ask.asked[0] and ask.defaults == ["Cancel"]
    assert not deleted(sat, "s1")
    assert f.key == "s1" and f.changes() == {"notes": "Long field note typed for ten minutes"}
    assert w.drafts_path.exists() and "ten minutes" in w.drafts_path.read_text()
    assert w.current_key() == "s1"
    # Ctrl+Delete from the table asks the same; Delete deletes
    focus(qtbot, w.table)
    ask.pick = lambda box: next(b for b in box.buttons() if b.text() == "Delete")
    QTest.keyClick(w.table, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier)
    assert len(ask.asked) == 2 and deleted(sat, "s1")
    assert not f.has_edits and not w.drafts_path.exists()  # the user said so
    # no typing: no question (a field user deletes in a row; Ctrl+Z undoes it)
    assert w.select_key("s2")
    w.delete_action.trigger()
    assert len(ask.asked) == 2 and deleted(sat, "s2")


def press(widget: QWidget, key: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
          ) -> None:
    QTest.keyClick(widget, key, mods)


CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def type_at_end(qtbot: Any, widget: QWidget, text: str) -> None:
    focus(qtbot, widget)
    QTest.keyClick(widget, Qt.Key.Key_End)
    QTest.keyClicks(widget, text)


def test_esc_in_a_field_is_one_undo_step(qtbot: Any, sat: Satellite) -> None:
    """Esc put back the field's value as loaded and threw the typing away for good: no undo
    step, no word, and the draft lost it a second later. Now it is one undo step, as Ctrl+R:
    Ctrl+Z in the field brings the typing back (the rest of the form as it was),
    Ctrl+Shift+Z reverts it again; text not valid yet comes back as typed."""
    w = window(qtbot, sat)
    f = w.form
    name, notes, lat = (f.editors[n].widget for n in ("name", "notes", "lat"))
    type_at_end(qtbot, name, " 2")
    type_at_end(qtbot, notes, "Ten minutes of field notes.")
    press(notes, Qt.Key.Key_Escape)
    assert f.changes() == {"name": "Alder Creek 2"}
    assert w.status.currentMessage() == ("Ctrl+Z brings back the typing — reverted Notes of "
                                         "Sites: Alder Creek")
    press(notes, Qt.Key.Key_Z, CTRL)  # the field has nothing of its own: the window's undo
    assert f.changes() == {"name": "Alder Creek 2", "notes": "Ten minutes of field notes."}
    assert "is back" in w.status.currentMessage()
    assert w.write_drafts() and w.drafts_path is not None
    assert "Ten minutes" in w.drafts_path.read_text()  # the draft has it again
    press(notes, Qt.Key.Key_Z, CTRL_SHIFT)  # redo: reverted again
    assert f.changes() == {"name": "Alder Creek 2"}
    press(notes, Qt.Key.Key_Z, CTRL)
    assert f.changes()["notes"] == "Ten minutes of field notes."
    # text not valid yet comes back as typed
    type_at_end(qtbot, lat, "x")
    assert f.invalid_texts() == {"lat": "46.5x"}
    press(lat, Qt.Key.Key_Escape)
    assert f.invalid_texts() == {} and f.editors["lat"].get() == 46.5
    press(lat, Qt.Key.Key_Z, CTRL)
    assert f.invalid_texts() == {"lat": "46.5x"}
    assert len(sat.receipts()) == 1  # nothing was published
    # an Esc undone after the user went on to another record: the record shown again
    focus(qtbot, lat)
    press(lat, Qt.Key.Key_Escape)
    press(notes, Qt.Key.Key_Escape)
    press(name, Qt.Key.Key_Escape)
    assert not f.has_edits
    assert w.select_key("s2") and f.key == "s2"
    focus(qtbot, w.table)
    press(w.table, Qt.Key.Key_Z, CTRL)  # the Esc of Name
    assert f.key == "s1" and w.current_key() == "s1"
    assert f.changes() == {"name": "Alder Creek 2"}


def test_ctrl_z_in_a_form_with_typing_never_undoes_another_records_save(
        qtbot: Any, sat: Satellite) -> None:
    """Save on record A, type on B, Esc, Ctrl+Z: the Ctrl+Z undid A's save (published, no
    word) instead of bringing B's typing back. Now it brings the typing back, and a further
    Ctrl+Z from the form, which would change A, is refused and said; from the records table
    it undoes A's save, says so, and the form stays on B with its typing."""
    w = window(qtbot, sat)
    f = w.form
    assert w.select_key("s2")
    region = f.editors["region"].widget
    type_at_end(qtbot, region, " saved earlier")
    press(region, Qt.Key.Key_S, CTRL)
    assert sat.record(SITE, "s2").fields["region"] == "South saved earlier"  # type: ignore[union-attr]
    assert w.select_key("s1")
    notes = f.editors["notes"].widget
    type_at_end(qtbot, notes, "Notes typed on B. ")
    press(notes, Qt.Key.Key_Escape)
    press(notes, Qt.Key.Key_Z, CTRL)
    assert f.key == "s1" and f.changes() == {"notes": "Notes typed on B. "}
    assert sat.record(SITE, "s2").fields["region"] == "South saved earlier"  # type: ignore[union-attr]
    press(notes, Qt.Key.Key_Z, CTRL)  # nothing of the field's: it would undo A's save
    assert sat.record(SITE, "s2").fields["region"] == "South saved earlier"  # type: ignore[union-attr]
    msg = w.status.currentMessage()
    assert msg.startswith("Not done") and "Region of Sites: Birch Hill" in msg, msg
    assert f.key == "s1" and f.changes() == {"notes": "Notes typed on B. "}
    focus(qtbot, w.table)  # from the records table: done, and said
    press(w.table, Qt.Key.Key_Z, CTRL)
    assert sat.record(SITE, "s2").fields["region"] == "South"  # type: ignore[union-attr]
    assert w.status.currentMessage() == "Undone: edit Region of Sites: Birch Hill"
    assert f.key == "s1" and w.current_key() == "s1"
    assert f.changes() == {"notes": "Notes typed on B. "}
