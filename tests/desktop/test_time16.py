"""Review 16 "time and place", in the app (real Qt widgets offscreen on a real satellite):
the table sorted by a date-time column orders instants, not the texts kept as written."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from core.model import Action, Cmd, Event
from core.revision import format_rev, now_rev, parse_rev
from core.satellite.api import SatStatus
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.models import HistoryModel, RecordTableModel
from desktop.widgets.statusbar import SyncStatusBar
from tests.desktop.test_csv_app import SITE, finish, sat, window

__all__ = ["sat"]  # the fixture

TOP = "field.obs"


@pytest.fixture(autouse=True)
def _boxes_closed(qtbot: Any) -> Any:
    """The CSV result boxes these tests open are closed after each (a later test counts
    the visible top-level widgets)."""
    yield
    for tw in QApplication.topLevelWidgets():
        if isinstance(tw, QMessageBox) and tw.isVisible():
            tw.close()


def _rows(qtbot: Any, m: RecordTableModel, col: int, n: int) -> list[str]:
    def shown() -> bool:
        while m.canFetchMore(QModelIndex()):
            m.fetchMore(QModelIndex())
        return m.rowCount() == n
    qtbot.waitUntil(shown, timeout=10_000)
    qtbot.wait(50)  # a sort read off the UI thread lands through the event loop
    qtbot.waitUntil(lambda: m.rowCount() == n, timeout=10_000)
    return [m.data(m.index(r, col)) for r in range(m.rowCount())]


def test_table_sorted_by_a_datetime_lists_instants_in_time_order(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "sat", project)
    try:
        rev = now_rev() - 1000
        stored = {"tokyo": "2026-05-02T01:00:00+09:00",     # 16:00 UTC
                  "utc": "2026-05-01T20:00:00Z",            # 20:00 UTC
                  "chicago": "2026-05-01T18:00:00-05:00"}   # 23:00 UTC
        sat.replica.apply(rev, [Event(i + 1, rev, TOP, k, Cmd.NEW,
                                      {"species": k, "observed": t})
                                for i, (k, t) in enumerate(stored.items())])
        # a pending edit placed among them by Python's key (the same rule as SQLite's)
        sat.pub([Action(TOP, "nepal", Cmd.NEW, {"species": "nepal",
                                                "observed": "2026-05-02T00:45:00+05:45"})])
        m = RecordTableModel(sat, TOP)
        names = [f.name for f in m.model_def.fields]
        col, sp = names.index("observed"), names.index("species")
        m.sort(col, Qt.SortOrder.AscendingOrder)
        assert _rows(qtbot, m, sp, 4) == ["tokyo", "nepal", "utc", "chicago"]
        assert _rows(qtbot, m, col, 4) == [
            "2026-05-01 16:00:00 UTC", "2026-05-01 19:00:00 UTC", "2026-05-01 20:00:00 UTC",
            "2026-05-01 23:00:00 UTC"]
        m.sort(col, Qt.SortOrder.DescendingOrder)
        qtbot.waitUntil(lambda: m.data(m.index(0, sp)) == "chicago", timeout=10_000)
        assert _rows(qtbot, m, sp, 4) == ["chicago", "utc", "nepal", "tokyo"]
    finally:
        sat.close()


def test_import_csv_names_an_unclosed_quote_in_the_last_column(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    """File → Import CSV: the rows after it were swallowed into one note without a word."""
    w = window(qtbot, sat)
    src = tmp_path / "sites.csv"
    src.write_bytes(b'name,lat,notes\nRidge,46.1,"Gate locked, ask the farmer\n'
                    b'Lake,46.2,shore path\nPass,46.3,\n')
    ok, _, text = finish(qtbot, w, w.import_csv(str(src)))
    assert not ok and ("line 2: a value opens a quote (\") that is not closed, so lines 2-4 "
                       "were read as one row") in text, text
    assert sat.status().pending == 1 and len(sat.keys(SITE)) == 3  # the fixture's, only


def test_export_csv_for_a_spreadsheet_writes_a_byte_order_mark(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    """File → Export CSV for a spreadsheet…: Excel reads the file as UTF-8 only with it."""
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Zürich"})])
    w = window(qtbot, sat)
    ok, _, text = finish(qtbot, w, w.export_csv(str(tmp_path / "sheet.csv"), sheet=True))
    assert ok, text
    data = (tmp_path / "sheet.csv").read_bytes()
    assert data.startswith(b'\xef\xbb\xbf"key",') and "Zürich".encode() in data
    ok, _, text = finish(qtbot, w, w.export_csv(str(tmp_path / "plain.csv")))
    assert ok and (tmp_path / "plain.csv").read_bytes().startswith(b"key,")
    ok, _, text = finish(qtbot, w, w.import_csv(str(tmp_path / "sheet.csv"), sheet=True))
    assert ok and text.startswith("imported 0 rows"), text


@pytest.fixture
def kathmandu(monkeypatch: Any) -> Any:
    """The laptop's zone: UTC+05:45 (a whole-hour zone would hide a wrong minute)."""
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_history_and_status_bar_show_utc_and_say_so(
        qtbot: Any, tmp_path: Path, project: Project, kathmandu: Any) -> None:
    """Review 16: they showed the laptop's zone without a label while the form, the table
    and the command line show UTC (a change of zone, or a DST fall-back, made a newer change
    read earlier)."""
    sat = Satellite(tmp_path / "sat", project)
    try:
        rev = parse_rev("2026-05-01T20:00:00.123Z")
        sat.replica.apply(rev, [Event(1, rev, TOP, "o1", Cmd.NEW, {"species": "heron"})])
        h = HistoryModel(sat)
        h.set_record(TOP, "o1")
        assert h.rowCount() == 1
        cells = [h.data(h.index(0, c)) for c in range(h.columnCount())]
        assert "2026-05-01 20:00:00.123 UTC" in cells, cells
        bar = SyncStatusBar()
        qtbot.addWidget(bar)
        today = now_rev()
        bar.show_status(SatStatus(since=rev, hub_rev=rev, last_sync=today, hub="ws://h:1"))
        assert bar.conn.text() == "Offline since 2026-05-01 20:00 UTC"
        assert bar.conn.toolTip() == "Offline since 2026-05-01 20:00:00 UTC"
        assert bar.hub_rev.text() == "Hub rev 2026-05-01 20:00 UTC"
        assert bar.last_sync.text() == f"Synced {format_rev(today)[11:16]} UTC"
        assert bar.last_sync.toolTip().endswith(f"{format_rev(today)[11:19]} UTC")
        assert bar.hub_rev.toolTip().endswith("2026-05-01 20:00:00 UTC")
    finally:
        sat.close()


def test_import_csv_says_date_times_without_an_offset_were_read_as_utc(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    w = window(qtbot, sat)
    w.select_topic(TOP)
    src = tmp_path / "obs.csv"
    src.write_text("species,observed\nHeron,2026-05-01 09:30\nEgret,2026-05-01 09:30 +02:00\n",
                   encoding="utf-8")
    ok, _, text = finish(qtbot, w, w.import_csv(str(src)))
    assert ok and text.startswith("imported 2 rows (2 new, 0 changed)"), text
    assert ("1 date-time without an offset was read as UTC (e.g. line 2, column observed: "
            "'2026-05-01 09:30' is 2026-05-01T09:30:00Z)") in text, text
