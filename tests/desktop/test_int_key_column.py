"""The app shows an int-keyed topic's keys and orders them by number (field-team review 10,
item 1): the table had no key anywhere and rows in text order (1, 10, 100, 1000, 2), so
"yours is now field.plot 604" (Keep both) named a record nobody could find. Real satellite
on SQLite synced from a real hub, real Qt widgets (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.model import Action, Cmd
from core.schema import Project, parse_project
from desktop.mainwindow import MainWindow
from tests.satellite.test_int_key_order import NUMERIC, synced
from tests.satellite.test_int_keys import ITEM, SCHEMA

H = Qt.Orientation.Horizontal


def rows(w: MainWindow) -> list[str]:
    m = w.records
    return [m.data(m.index(r, 0)) for r in range(m.rowCount())]


async def window(qtbot: Any, path: Path, project: Project) -> MainWindow:
    sat = await synced(path, project)
    w = MainWindow(sat, None, path.name)
    qtbot.addWidget(w)
    w.select_topic(ITEM)
    return w


async def test_int_keys_show_in_a_key_column_in_number_order(qtbot: Any, qtmodeltester: Any,
                                                             tmp_path: Path) -> None:
    w = await window(qtbot, tmp_path / "a", parse_project(SCHEMA))
    m = w.records
    assert [m.headerData(c, H) for c in range(m.columnCount())] == ["Key", "Name"]
    assert rows(w) == NUMERIC  # the Key column, in number order
    assert m.data(m.index(1, 1)) == "item 1"
    assert m.headerData(0, Qt.Orientation.Vertical) == "1"  # row numbers as before
    qtmodeltester.check(m)
    # a record saved here lands in its place by number
    w.new_action.trigger()
    assert w.form.title.text() == "New record in Items, key 1002"
    w.form.set_value("name", "new")
    w.save_action.trigger()
    assert rows(w)[-1] == "1002" and w.current_key() == "1002"
    w.sat.pub([Action(ITEM, "4", Cmd.NEW, {"name": "four"})])  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: "4" in rows(w))
    assert rows(w)[:6] == ["-5", "1", "2", "3", "4", "9"]
    # the form's title names the key
    assert w.select_key("100")
    assert w.form.title.text() == "Items 100: item 100"
    # the Key column sorts by key, both ways; the header shows it
    header = w.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        0, Qt.SortOrder.AscendingOrder)
    m.sort(0, Qt.SortOrder.DescendingOrder)
    assert rows(w)[:3] == ["1002", "1001", "1000"]
    m.sort(1, Qt.SortOrder.AscendingOrder)  # by name
    assert m.sort_order == (1, Qt.SortOrder.AscendingOrder)
    assert rows(w)[:2] == ["4", "-5"]  # "four", "item -5"
    m.sort(0, Qt.SortOrder.AscendingOrder)
    # a filter keeps number order
    w.filter.setText("item 1")
    assert rows(w) == ["1", "10", "11", "100", "1000", "1001"]
    w.filter.setText("")
    assert rows(w)[:3] == ["-5", "1", "2"]
    w.sat.close()  # type: ignore[attr-defined]


async def test_a_uuid_keyed_topic_has_no_key_column(qtbot: Any, tmp_path: Path) -> None:
    from core.satellite.satellite import Satellite

    project = parse_project('[project]\nname = "t"\n[a.site]\n[a.site.fields]\nname = "str"\n')
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action("a.site", sat.new_key("a.site"), Cmd.NEW, {"name": "x"})])
    w = MainWindow(sat, None, "a")
    qtbot.addWidget(w)
    w.select_topic("a.site")
    m = w.records
    assert [m.headerData(c, H) for c in range(m.columnCount())] == ["Name"]
    assert m.data(m.index(0, 0)) == "x" and m.key_column == -1
    assert w.select_key(m.key_at(0)) and w.form.title.text() == "Site: x"
    sat.close()


async def test_a_big_int_keyed_topic_says_loading_then_sorting(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key order shows as the Key column's indicator: opening a big int-keyed topic still
    says "Loading", and the Key column's descending order "Sorting"."""
    from desktop.models import records as records_mod
    from tests.desktop.test_big_topic import Gate

    monkeypatch.setattr(records_mod, "SYNC_UNDER", 0)  # every topic is "big"
    sat = await synced(tmp_path / "a", parse_project(SCHEMA))
    w = MainWindow(sat, None, "a")
    qtbot.addWidget(w)
    keys = Gate(monkeypatch, sat, "confirmed_keys", hold=(1, 2, 3))
    w.select_topic(ITEM)
    assert w.records.busy and w.loading.text() == "Loading Items…"
    keys.open(1)
    qtbot.waitUntil(lambda: not w.records.busy)
    w.records.sort(0, Qt.SortOrder.DescendingOrder)
    assert w.records.busy and w.loading.text() == "Sorting Items…"
    keys.open(2)
    qtbot.waitUntil(lambda: not w.records.busy)
    assert rows(w)[0] == "1001"
    w.records.sort(0, Qt.SortOrder.AscendingOrder)
    w.records.reload()  # e.g. after a catch-up: in key order, a load, not a sort
    assert w.records.busy and w.loading.text() == "Loading Items…"
    keys.open(3)
    qtbot.waitUntil(lambda: not w.records.busy)
    assert rows(w)[0] == "-5"
    sat.close()
