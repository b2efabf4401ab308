"""Check boxes and choice boxes have a Ctrl+Z of their own (session 13). The refused undo of
an Esc told the user to take out the changes made since "in a text field: Ctrl+Z": in a check
or choice box Ctrl+Z went to the window's undo, refused again, and nothing but Esc (a new
undo step, discarding the reverted choice) changed the box back from "no value". Now Ctrl+Z
in the field is true advice for every kind of field. Real widgets (offscreen), a real
satellite (SQLite files), keys through Qt's shortcut machinery (QTest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import parse_project
from desktop.mainwindow import MainWindow
from tests.desktop.test_form_review12 import CTRL, CTRL_SHIFT, focus, press
from tests.desktop.test_form_review12 import window as review12_window

PLOT = "t.plot"


@pytest.fixture
def sat(tmp_path: Path) -> Iterator[Satellite]:
    project = parse_project({"project": {"name": "choices"},
                             "t": {"plot": {"key": "str", "display": "name",
                                            "fields": {"name": {"type": "str"},
                                                       "done": {"type": "bool"},
                                                       "state": {"type": "enum",
                                                                 "values": ["good", "fair",
                                                                            "poor"]}}}}})
    s = Satellite(tmp_path / "sat", project)
    s.pub([Action(PLOT, "p1", Cmd.NEW, {"name": "One", "state": "good"})])  # done: no value
    yield s
    s.close()


def window(qtbot: Any, sat: Satellite) -> MainWindow:
    return review12_window(qtbot, sat, PLOT, 1, "p1")


def test_ctrl_z_in_a_choice_box_takes_out_its_change_then_undoes_the_esc(
        qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    f = w.form
    box = f.editors["state"].widget
    assert isinstance(box, QComboBox) and box.currentText() == "good"
    focus(qtbot, box)
    press(box, Qt.Key.Key_Down)
    assert f.changes() == {"state": "fair"}
    press(box, Qt.Key.Key_Escape)  # one undo step of the window
    assert not f.has_edits and w.undo_stack.count() == 1
    press(box, Qt.Key.Key_Down)
    press(box, Qt.Key.Key_Down)
    assert f.changes() == {"state": "poor"}
    focus(qtbot, w.table)
    w.undo_action.trigger()  # refused: it would overwrite "poor"; the advice
    msg = w.status.currentMessage()
    assert msg.startswith("cannot bring back the typing reverted in State of"), msg
    assert "(Ctrl+Z in the field)" in msg and "text field" not in msg, msg
    # following it: Ctrl+Z in the box takes out its own changes, one by one
    focus(qtbot, box)
    press(box, Qt.Key.Key_Z, CTRL)
    assert f.changes() == {"state": "fair"} and w.undo_stack.index() == 1
    press(box, Qt.Key.Key_Z, CTRL_SHIFT)  # and redoes them
    assert f.changes() == {"state": "poor"}
    press(box, Qt.Key.Key_Z, CTRL)
    press(box, Qt.Key.Key_Z, CTRL)
    assert not f.has_edits and w.undo_stack.index() == 1
    press(box, Qt.Key.Key_Z, CTRL)  # nothing of its own left: the window's undo of the Esc
    assert f.changes() == {"state": "fair"}
    assert "is back" in w.status.currentMessage()
    assert len(sat.receipts()) == 1  # nothing was published


def test_ctrl_z_in_a_check_box_puts_back_no_value(qtbot: Any, sat: Satellite) -> None:
    """A bool with no value shows partly checked; one click makes it yes or no, and clicking
    never shows "no value" again: Ctrl+Z in the box does."""
    w = window(qtbot, sat)
    f = w.form
    box = f.editors["done"].widget
    assert isinstance(box, QCheckBox)
    assert box.checkState() == Qt.CheckState.PartiallyChecked
    focus(qtbot, box)
    press(box, Qt.Key.Key_Space)
    assert f.changes() == {"done": True}
    press(box, Qt.Key.Key_Escape)
    assert not f.has_edits and box.checkState() == Qt.CheckState.PartiallyChecked
    press(box, Qt.Key.Key_Space)
    press(box, Qt.Key.Key_Space)
    assert f.changes() == {"done": False}
    press(box, Qt.Key.Key_Z, CTRL)
    press(box, Qt.Key.Key_Z, CTRL)
    assert not f.has_edits and box.checkState() == Qt.CheckState.PartiallyChecked
    assert w.undo_stack.index() == 1
    press(box, Qt.Key.Key_Z, CTRL)  # the window's undo: the Esc's change back
    assert f.changes() == {"done": True}
    # a record loaded again: nothing of the box's own to undo (the window's turn)
    f.revert()
    assert not f.has_edits
    assert len(sat.receipts()) == 1
