"""Session 13, task csv, in the app (File → Import CSV): a sheet from a laptop that synced
later keeps this laptop's own unsynced edit; skipped repeats are named, with a button that
makes them anyway; a row of a record not received yet is skipped, said. Real widgets
(offscreen), real satellites (SQLite), a real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QPushButton

from core.model import Action, Cmd
from core.revision import format_rev
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, hub, sync, two  # noqa: F401
from tests.desktop.test_csv_app import finish, sat, window, write

__all__ = ["sat"]  # the fixture


def _window(qtbot: Any, s: Any) -> MainWindow:
    w = MainWindow(s, None, "t")
    qtbot.addWidget(w)
    w.select_topic(SITE)
    return w


async def test_a_sheet_from_a_laptop_further_on_keeps_ones_unsynced_edit(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    try:
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "B: bridge washed out"})])  # offline
        a.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 44.4})])
        await sync(a, hub)
        src = write(tmp_path / "a.csv", ["key,name,region,lat,lon,notes,_rev",
                                         f"s1,Alder Creek (A),North,44.4,,old notes,"
                                         f"{format_rev(a.rev())}"])
        w = _window(qtbot, b)
        ok, _, text = finish(qtbot, w, w.import_csv(src))
        assert ok, text
        assert ("1 row had the value from before a change of yours not synced yet (the file "
                "comes from a laptop that did not have it): your change was kept: s1 (notes)"
                ) in text, text
        rv = b.record(SITE, "s1")
        assert rv is not None and rv.fields is not None
        assert rv.fields["notes"] == "B: bridge washed out"
        assert rv.fields["name"] == "Alder Creek (A)"
    finally:
        a.close()
        b.close()


def test_repeats_are_named_and_made_anyway_from_the_box(qtbot: Any, sat: Satellite,
                                                        tmp_path: Path) -> None:
    """A row equal on the file's columns only (s1..s3 have a region) is new; a row equal
    to a whole record is skipped, named by line and record, and the box's Make them anyway
    makes only it, not the file's other keyless rows again."""
    w = window(qtbot, sat)
    src = write(tmp_path / "partial.csv", ["name", "Site 1", "Site 9"])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 2 rows (2 new, 0 changed)"), text
    assert w.csv_box is not None and w.csv_box.findChild(QPushButton, "make_anyway") is None
    write(tmp_path / "partial.csv", ["name", "Site 7", "Site 9"])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 1 row (1 new, 0 changed)"), text
    made = {k for k in sat.keys(SITE) if k not in ("s1", "s2", "s3")}
    nine = [k for k in made if (sat.record(SITE, k).fields or {}).get("name") == "Site 9"]
    assert len(nine) == 1
    assert ("1 row without a key was skipped: it equals a record that exists in every field "
            "(made by an earlier import of the file?), so that importing a sheet again does "
            f"not make its new rows again: line 3 (= {nine[0]}). To make them anyway, click "
            "Make them anyway") in text, text
    assert "--again" not in text
    box = w.csv_box
    assert box is not None
    make = box.findChild(QPushButton, "make_anyway")
    assert make is not None and make.isVisible()
    make.click()
    job = w.csv_job
    ok, _, text = finish(qtbot, w, job)
    assert ok and text.startswith("imported 1 row (1 new, 0 changed)"), text
    names = sorted(str((v.fields or {}).get("name")) for v in sat.records(SITE))
    assert names == ["Site 1", "Site 1", "Site 2", "Site 3", "Site 7", "Site 9", "Site 9"]
    assert w.csv_box is not None and w.csv_box.findChild(QPushButton, "make_anyway") is None


def test_make_them_anyway_of_a_file_changed_since_imports_nothing(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    w = window(qtbot, sat)
    src = write(tmp_path / "p.csv", ["name", "Site 9"])
    assert finish(qtbot, w, w.import_csv(src))[0]
    assert finish(qtbot, w, w.import_csv(src))[0]
    box = w.csv_box
    assert box is not None
    write(tmp_path / "p.csv", ["name", "Other", "Site 9", "More"])
    pending = sat.status().pending
    make = box.findChild(QPushButton, "make_anyway")
    assert make is not None
    make.click()
    ok, _, text = finish(qtbot, w, w.csv_job)
    assert not ok and "p.csv changed since it was imported" in text, text
    assert sat.status().pending == pending


async def test_a_row_of_a_record_not_received_yet_is_skipped_naming_sync_now(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    try:
        a.pub([Action(SITE, "s5", Cmd.NEW, {"name": "Site 5", "region": "South"})])
        await sync(a, hub)  # b has not synced since
        rev = format_rev(a.rev())
        src = write(tmp_path / "a.csv", ["key,name,region,_rev",
                                         f"s1,Alder Creek,North,{rev}",
                                         f"s5,Site 5,South,{rev}"])
        pending = b.status().pending
        w = _window(qtbot, b)
        ok, _, text = finish(qtbot, w, w.import_csv(src))
        assert ok, text
        assert b.record(SITE, "s5") is None and b.status().pending == pending
        assert ("1 row named records this laptop has not received yet (the file comes from "
                "a laptop that synced later): skipped, not made as new records: s5. Sync now "
                "(F5), then import the file again") in text, text
        assert "not in the export" not in text
    finally:
        a.close()
        b.close()


async def test_a_sheet_further_on_with_another_value_keeps_ones_unsynced_edit(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    """Review muser13: a cell with neither this laptop's unsynced edit nor the value before
    it (a change not received yet, or the sheet's own) was sent over the edit: kept, said."""
    a, b = await two(tmp_path, project, hub)
    try:
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "B: bridge washed out"})])  # offline
        a.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "A: ford is fine"})])
        await sync(a, hub)
        src = write(tmp_path / "a.csv", ["key,name,region,lat,lon,notes,_rev",
                                         f"s1,Alder Creek (A),North,,,A: ford is fine,"
                                         f"{format_rev(a.rev())}"])
        w = _window(qtbot, b)
        ok, _, text = finish(qtbot, w, w.import_csv(src))
        assert ok, text
        assert ("1 row had another value in a field you changed and have not synced yet (the "
                "file comes from a laptop that synced later: the value may be a change this "
                "laptop has not received, or the file's own): your change was kept: s1 "
                "(notes: the file has 'A: ford is fine'). Sync now") in text, text
        rv = b.record(SITE, "s1")
        assert rv is not None and rv.fields is not None
        assert rv.fields["notes"] == "B: bridge washed out"
        assert rv.fields["name"] == "Alder Creek (A)"
    finally:
        a.close()
        b.close()
