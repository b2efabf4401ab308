"""Floats are shown as their shortest exact text everywhere (user review 11, finding 3): the
conflicts view showed Mine 46.5085 and Theirs 46.5085 for 46.50851 vs 46.50849 (``%g``, six
significant digits), the table and the history too, and the filter matched the rounded
text. Real widgets, real satellites (SQLite in tmp_path) and a real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, cells, dialog, hub, sync, two

__all__ = ["hub"]  # the fixture, used by name


async def test_close_floats_read_apart_in_the_conflicts_view_table_history_and_filter(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 46.50849})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 46.50851})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    rows = cells(dlg)
    assert [r[1:5] for r in rows] == [["Latitude", "(empty)", "46.50851", "46.50849"]]
    w = dlg.parent()
    assert isinstance(w, MainWindow)
    w.select_topic(SITE)
    m = w.records
    qtbot.waitUntil(lambda: m.rowCount() == 1)
    lat = m.key_column + 1 + [f.name for f in m.model_def.fields].index("lat")
    assert m.data(m.index(0, lat)) == "46.50849"  # the hub's (mine was rejected)
    # the history shows the hub's version (bob's) whole
    assert w.select_key("s1")
    h = w.history
    assert h.model.rowCount() == 2
    lats = []
    for row in range(h.model.rowCount()):
        h.select_row(row)
        lats += [h.state.item(i, 1).text() for i in range(h.state.rowCount())
                 if h.state.item(i, 0).text() == "Latitude"]
    assert sorted(lats) == ["", "46.50849"]
    # the filter matches the text shown, not a rounded one ("%g" showed 46.5085)
    for text, rows in (("46.50850", 0), ("46.50849", 1), ("46.508", 1), ("46.50851", 0),
                       ("0849", 1)):
        w.filter.setText(text)
        qtbot.waitUntil(lambda rows=rows: m.rowCount() == rows and not m.busy)
    a.close()
    b.close()
