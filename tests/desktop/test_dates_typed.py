"""Dates and date-times typed into the form (user review 11, finding 2): Qt's pickers, with
year 100 as "no value", turned "2026-11-27 10:30:00.000 UTC" typed into a new record's
empty Observed into " 0261127 10:30:00.000 UTC", saved as no value without a word; a set
optional date could not be cleared (the old value came back); the calendar opened on
0100-01-01. Typed text is now taken, or refused with a message naming the format; blank is
no value (a required field says it is required); the calendar opens on today. Real widgets
(offscreen), a real satellite (SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtTest import QTest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from desktop.mainwindow import MainWindow

OBS = "field.obs"


@pytest.fixture
def sat(tmp_path: Path, project: Project) -> Iterator[Satellite]:
    s = Satellite(tmp_path / "sat", project)
    s.pub([Action("field.site", "s1", Cmd.NEW, {"name": "Alder Creek"}),
           Action(OBS, "o1", Cmd.NEW, {"site": "s1", "species": "Heron",
                                       "observed": "2026-05-20T04:39:00Z"})])
    yield s
    s.close()


def window(qtbot: Any, sat: Satellite, top: str = OBS) -> MainWindow:
    w = MainWindow(sat, None, "t")
    qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
    w.show()
    qtbot.waitExposed(w)
    w.select_topic(top)
    qtbot.waitUntil(lambda: w.records.rowCount() >= 1)
    return w


def box(w: MainWindow, name: str) -> Any:
    """The field's box (desktop.widgets.form.DateBox; not imported: the test ran on the
    pickers before it, to see it fail)."""
    return w.form.editors[name].widget


def type_in(b: Any, text: str) -> None:
    b.setFocus()
    b.selectAll()
    QTest.keyClick(b, Qt.Key.Key_Delete)
    QTest.keyClicks(b, text)
    QTest.keyClick(b, Qt.Key.Key_Tab)


@pytest.mark.parametrize("typed, value", [
    ("2026-11-27 10:30:00.000 UTC", "2026-11-27T10:30:00Z"),
    ("2026-11-27 10:30", "2026-11-27T10:30:00Z"),
    ("2026-11-27T10:30:05.25Z", "2026-11-27T10:30:05.25Z"),
    ("2026-11-27 12:30:00+02:00", "2026-11-27T10:30:00Z"),
    ("2026-11-27", "2026-11-27T00:00:00Z"),
    # an offset written as the app writes UTC (merge review 11: refused, naming no offset)
    ("2026-11-27 12:30 +02:00", "2026-11-27T10:30:00Z"),
    ("2026-11-27 12:30:00 +0200", "2026-11-27T10:30:00Z"),
])
def test_a_date_time_typed_into_a_new_record_is_saved(qtbot: Any, sat: Satellite,
                                                      typed: str, value: str) -> None:
    w = window(qtbot, sat)
    w.new_action.trigger()
    ob = box(w, "observed")
    assert ob.text() == ""
    type_in(ob, typed)
    assert ob.text() == typed  # as typed, nothing mangled
    assert w.form.changes().get("observed") == value
    type_in(w.form.editors["species"].widget, "Test bird")  # type: ignore[arg-type]
    w.save_action.trigger()
    rv = sat.record(OBS, w.form.key)
    assert rv is not None and rv.fields is not None and rv.fields["observed"] == value
    # the calendar opens on today, not on 0100-01-01
    w.new_action.trigger()
    assert box(w, "observed").open_calendar().selectedDate() == QDate.currentDate()
    box(w, "observed").calendarWidget().hide()


def test_a_date_time_that_is_not_one_is_refused_naming_the_format_and_kept(
        qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    w.new_action.trigger()
    key = w.form.key
    ob = box(w, "observed")
    type_in(w.form.editors["species"].widget, "Test bird")  # type: ignore[arg-type]
    for typed in ("27/11/2026 10:30", "2026-13-01 10:30", "2026-11-27 25:00", "tomorrow"):
        type_in(ob, typed)
        w.save_action.trigger()
        err = w.form.editors["observed"].error.text()
        assert "YYYY-MM-DD HH:MM" in err and not w.form.editors["observed"].error.isHidden(), \
            typed
        assert sat.record(OBS, key) is None  # not saved, with no value either
        assert ob.text() == typed  # the typing stays
        assert w.form.invalid_texts() == {"observed": typed}  # a draft keeps it as typed
    type_in(ob, "2026-11-27 10:30")
    assert w.form.editors["observed"].error.text() == ""
    w.save_action.trigger()
    rv = sat.record(OBS, key)
    assert rv is not None and rv.fields is not None
    assert rv.fields["observed"] == "2026-11-27T10:30:00Z"


def test_an_optional_date_time_is_cleared_with_delete(qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    assert w.select_key("o1")
    ob = box(w, "observed")
    assert ob.text() == "2026-05-20 04:39:00.000 UTC"
    ob.setFocus()
    QTest.keyClick(ob, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(ob, Qt.Key.Key_Delete)
    QTest.keyClick(ob, Qt.Key.Key_Tab)  # focus out: the old value does not come back
    assert ob.text() == ""
    assert w.form.changes() == {"observed": None} and w.save_action.isEnabled()
    w.save_action.trigger()
    rv = sat.record(OBS, "o1")
    assert rv is not None and rv.fields is not None and rv.fields.get("observed") is None
    # the calendar opens on the date shown
    assert w.select_key("o1")
    type_in(ob, "2026-02-03 08:09")
    cal = ob.open_calendar()
    assert cal.selectedDate() == QDate(2026, 2, 3)
    cal.hide()
    QTest.keyClick(ob, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)  # from the keyboard
    assert cal.isVisible() and cal.selectedDate() == QDate(2026, 2, 3)
    QTest.keyClick(cal, Qt.Key.Key_Escape)
    assert cal.isHidden() and ob.text() == "2026-02-03 08:09"  # Esc picks nothing
    cal = ob.open_calendar()
    ob.pick(QDate(2026, 2, 10))  # a date picked keeps the time typed
    assert ob.text() == "2026-02-10 08:09:00.000 UTC" and cal.isHidden()
    assert w.form.changes() == {"observed": "2026-02-10T08:09:00Z"}
    w.form.revert()


REQ = """
[project]
name = "req"

[t.visit]
key = "str"
display = "name"

[t.visit.fields]
name = "str"
day = { type = "date", required = true }
when = "date"
"""


def test_a_required_date_says_so_when_cleared_and_an_optional_one_clears(
        qtbot: Any, tmp_path: Path) -> None:
    s = Satellite(tmp_path / "req", parse_project(REQ))
    try:
        s.pub([Action("t.visit", "v1", Cmd.NEW, {"name": "V", "day": "2026-01-31",
                                                 "when": "2026-02-01"})])
        w = window(qtbot, s, "t.visit")
        assert w.select_key("v1")
        day, when = box(w, "day"), box(w, "when")
        assert (day.text(), when.text()) == ("2026-01-31", "2026-02-01")
        type_in(day, "")
        w.save_action.trigger()
        assert "required" in w.form.editors["day"].error.text()
        type_in(day, "2026-2-30")
        w.save_action.trigger()
        assert "YYYY-MM-DD" in w.form.editors["day"].error.text()
        type_in(day, "2026-2-28")
        type_in(when, "")
        w.save_action.trigger()
        rv = s.record("t.visit", "v1")
        assert rv is not None and rv.fields is not None
        assert (rv.fields["day"], rv.fields.get("when")) == ("2026-02-28", None)
    finally:
        s.close()


def test_the_calendar_on_a_date_time_with_an_offset(qtbot: Any, sat: Satellite) -> None:
    """Merge review 11 (app, 4): with "2026-03-05T23:30:00+02:00" typed (accepted) the
    calendar opened on today and a date picked made it "… 00:00:00.000 UTC" (the time and
    the offset lost); an offset was refused with a message that never named offsets."""
    w = window(qtbot, sat)
    assert w.select_key("o1")
    ob = box(w, "observed")
    type_in(ob, "2026-03-05T23:30:00+02:00")
    assert w.form.changes() == {"observed": "2026-03-05T21:30:00Z"}
    cal = ob.open_calendar()
    assert cal.selectedDate() == QDate(2026, 3, 5)  # the date as typed
    ob.pick(QDate(2026, 3, 6))
    assert ob.text() == "2026-03-06 23:30:00.000 +02:00"  # time and offset kept
    assert w.form.changes() == {"observed": "2026-03-06T21:30:00Z"}
    type_in(ob, "2026-11-27 10:30 CET")
    assert "+02:00" in w.form.editors["observed"].error.text()  # offsets named
    w.form.revert()


def test_the_date_box_takes_a_date_as_csv_import_reads_it(qtbot: Any, tmp_path: Path) -> None:
    """Session 12's note: a CSV cell ``21.11.2026`` was read, the app's date box refused it
    (its own pattern). Now one parser: the box saves it, and its calendar opens on it."""
    s = Satellite(tmp_path / "req", parse_project(REQ))
    try:
        s.pub([Action("t.visit", "v1", Cmd.NEW, {"name": "V", "day": "2026-01-31"})])
        w = window(qtbot, s, "t.visit")
        assert w.select_key("v1")
        day, when = box(w, "day"), box(w, "when")
        type_in(day, "21.11.2026")
        type_in(when, "2026-11-22 00:00:00")
        cal = day.open_calendar()
        assert cal.selectedDate() == QDate(2026, 11, 21)
        cal.hide()
        w.save_action.trigger()
        assert w.form.editors["day"].error.text() == ""
        rv = s.record("t.visit", "v1")
        assert rv is not None and rv.fields is not None
        assert (rv.fields["day"], rv.fields["when"]) == ("2026-11-21", "2026-11-22")
    finally:
        s.close()
