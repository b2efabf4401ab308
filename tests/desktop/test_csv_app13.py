"""Session 13, task csv, in the app (File → Import CSV): a sheet from a laptop that synced
later keeps this laptop's own unsynced edit; skipped repeats are named, with a button that
makes them anyway; a row of a record not received yet is skipped, said. Real widgets
(offscreen), real satellites (SQLite), a real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.revision import format_rev
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, hub, sync, two  # noqa: F401
from tests.desktop.test_csv_app import finish, write


def _window(qtbot: Any, sat: Any) -> MainWindow:
    w = MainWindow(sat, None, "t")
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
