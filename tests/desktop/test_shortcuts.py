"""The window's keyboard shortcuts (docs/desktop.md) from the places a user is in: the records
table, each kind of field editor, right after Ctrl+S, the filter box, the conflicts view.
Real widgets (offscreen), keys sent through Qt's shortcut machinery (QTest)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from core.model import Action, Cmd
from desktop.mainwindow import MainWindow
from tests.desktop.fakes import FakeSatellite
from tests.desktop.test_window_fake import FakeSync

DOCS = Path(__file__).resolve().parents[2] / "docs" / "desktop.md"


def documented() -> list[str]:
    """The key sequences of the "Shortcuts:" paragraph of docs/desktop.md."""
    text = DOCS.read_text(encoding="utf-8")
    para = text[text.index("Shortcuts:"):].split("\n\n")[0]
    keys = re.findall(r"\b(?:Ctrl\+(?:Shift\+)?\w+|F\d+)\b", para)
    assert len(keys) >= 10, para
    return list(dict.fromkeys(keys))


def window(qtbot: Any, sat: FakeSatellite) -> MainWindow:
    """A shown, active window whose undo and redo are both possible, record s1 selected."""
    w = MainWindow(sat, FakeSync(sat))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    assert w.publish([Action("field.site", "s2", Cmd.MOD, {"region": "East"})], "a")
    assert w.publish([Action("field.site", "s2", Cmd.MOD, {"region": "West"})], "b")
    w.undo_stack.undo()
    assert w.undo_action.isEnabled() and w.redo_action.isEnabled()
    assert w.select_key("s1")
    return w


def focus(qtbot: Any, target: QWidget) -> None:
    target.activateWindow()
    qtbot.waitUntil(target.window().isActiveWindow)
    target.setFocus()
    qtbot.waitUntil(target.hasFocus)


def action_of(w: MainWindow, key: str) -> QAction:
    seq = QKeySequence(key)
    found = [a for a in w._shortcut_actions() if seq in a.shortcuts()]
    assert len(found) == 1, (key, found)
    return found[0]


def spy_only(w: MainWindow) -> dict[QAction, int]:
    """Count each shortcut action's triggers, with its effect cut off (so every key can be
    pressed from the same state)."""
    hits: dict[QAction, int] = {}
    for a in w._shortcut_actions():
        a.triggered.disconnect()
        hits[a] = 0
        a.triggered.connect(lambda *_a, a=a: hits.__setitem__(a, hits[a] + 1))
    return hits


def press(key: str) -> None:
    target = QApplication.focusWidget()
    assert target is not None
    QTest.keySequence(target, QKeySequence(key))


def check_all(qtbot: Any, w: MainWindow, target: QWidget, skip: tuple[str, ...] = ()) -> None:
    hits = spy_only(w)
    for key in documented():
        if key in skip:
            continue
        focus(qtbot, target)
        before = dict(hits)
        press(key)
        a = action_of(w, key)
        assert hits[a] == before[a] + 1, f"{key} from {target.objectName() or target}"
        assert sum(hits.values()) == sum(before.values()) + 1, key


def test_every_documented_shortcut_has_its_action() -> None:
    assert documented()[:3] == ["Ctrl+N", "Ctrl+S", "Ctrl+Delete"]


def check_ctrl_delete_is_the_fields(qtbot: Any, w: MainWindow, target: QWidget) -> None:
    """Ctrl+Delete in a text field is the field's "delete the next word" (user review 12: the
    window's Delete took it and deleted the record, the typing with it)."""
    hits = spy_only(w)
    focus(qtbot, target)
    press("Ctrl+Delete")
    assert sum(hits.values()) == 0, target.objectName() or target


def test_every_shortcut_from_the_table_and_each_field_editor(qtbot: Any,
                                                            fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    check_all(qtbot, w, w.table)
    for name in ("name", "notes", "lat"):  # line edit, multi-line text, spin box
        check_all(qtbot, w, w.form.editors[name].widget, skip=("Ctrl+Delete",))
        check_ctrl_delete_is_the_fields(qtbot, w, w.form.editors[name].widget)
    w.select_topic("field.obs")
    assert w.select_key("o1")
    for name in ("site", "condition"):  # ref and enum combos: no text of their own
        check_all(qtbot, w, w.form.editors[name].widget)
    for name in ("count", "observed"):  # int, date-time boxes: text fields
        check_all(qtbot, w, w.form.editors[name].widget, skip=("Ctrl+Delete",))
        check_ctrl_delete_is_the_fields(qtbot, w, w.form.editors[name].widget)


def test_every_shortcut_from_the_filter_box(qtbot: Any, fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    check_all(qtbot, w, w.filter, skip=("Ctrl+Delete",))
    check_ctrl_delete_is_the_fields(qtbot, w, w.filter)


def test_every_shortcut_but_delete_from_the_conflicts_view(qtbot: Any,
                                                          fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    dlg = w.show_conflicts()
    qtbot.waitExposed(dlg)
    check_all(qtbot, w, dlg.table, skip=("Ctrl+Delete",))
    # Ctrl+Delete would delete the record selected in the window, which the view does not show
    hits = spy_only(w)
    focus(qtbot, dlg.table)
    press("Ctrl+Delete")
    assert hits[w.delete_action] == 0


def test_ctrl_s_in_a_field_then_ctrl_z_undoes_the_saved_edit(qtbot: Any,
                                                              fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    for name, typed, value in (("region", "X", "NorthX"), ("notes", "long", "long"),
                               ("lat", "12", 12.0)):
        ed = w.form.editors[name].widget
        focus(qtbot, ed)
        if name != "region":
            ed.selectAll()  # type: ignore[attr-defined]
        QTest.keyClicks(ed, typed)
        press("Ctrl+S")
        rec = fake_sat.record("field.site", "s1")
        assert rec is not None and rec.fields is not None and rec.fields[name] == value
        assert w.table.hasFocus()  # the keys go to the records again
        assert w.current_key() == "s1"
        done = w.undo_stack.index()
        press("Ctrl+Z")
        assert w.undo_stack.index() == done - 1
        rec = fake_sat.record("field.site", "s1")
        assert rec is not None and rec.fields is not None and rec.fields[name] != value
        assert w.form.editors[name].get() == rec.fields[name]  # the form shows it too
        press("Ctrl+Shift+Z")
        rec = fake_sat.record("field.site", "s1")
        assert rec is not None and rec.fields is not None and rec.fields[name] == value
    w.undo_stack.undo()  # redo possible again: every other shortcut from there
    check_all(qtbot, w, QApplication.focusWidget() or w.table)


def test_ctrl_z_in_a_field_undoes_its_typing_first_then_the_last_saved_edit(
        qtbot: Any, fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    ed = w.form.editors["name"].widget
    focus(qtbot, ed)
    QTest.keyClicks(ed, "X")
    done = w.undo_stack.index()
    press("Ctrl+Z")  # the field's own typing
    assert w.form.editors["name"].get() == "Alder Creek"
    assert w.undo_stack.index() == done
    press("Ctrl+Z")  # nothing left in the field: the window's undo ("a": s2 back to North)
    assert w.undo_stack.index() == done - 1
    rec = fake_sat.record("field.site", "s2")
    assert rec is not None and rec.fields is not None and rec.fields["region"] == "South"
    assert ed.hasFocus()


def test_ctrl_s_with_an_invalid_field_keeps_the_focus_there(qtbot: Any,
                                                           fake_sat: FakeSatellite) -> None:
    w = window(qtbot, fake_sat)
    ed = w.form.editors["name"].widget
    focus(qtbot, ed)
    ed.selectAll()  # type: ignore[attr-defined]
    QTest.keyClick(ed, Qt.Key.Key_Delete)  # name is required
    press("Ctrl+S")
    assert "required" in w.form.editors["name"].error.text()
    assert ed.hasFocus()
    w.form.revert()  # else closing the window asks about the unsaved change
