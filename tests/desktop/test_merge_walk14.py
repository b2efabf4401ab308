"""The records table places many records of pending edits among the rows it read in one walk
(session 14, big replicas 4: one binary search each took 0.76 s of the 1.45 s the window
stalled after a 50,000-row import): the rows are the same as placed one by one, in key order
and sorted by a text or a number field, ascending and descending, with equal and empty values.
Real satellite (SQLite files), real model."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.models import records as records_model
from desktop.models.records import RecordTableModel
from tests.satellite.test_reads13 import _hub_change

SITE = "field.site"


def test_the_walk_places_the_pending_records_as_the_binary_searches(
        qtbot: Any, tmp_path: Path, project: Project,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(14)
    names = ["Alder", "alder", "Birch", "", "Élan", "zeta", "10", "9"]
    sat = Satellite(tmp_path, project)
    try:
        for i in range(120):
            _hub_change(sat, 1000 + i, i + 1, f"k{i:03d}",
                        Cmd.NEW, {"name": rnd.choice(names) or "x", "lat":
                                  rnd.choice([None, 1.5, -2.0, float(i % 7)])})
        for i in range(0, 120, 2):  # 60 records changed, 30 new ones
            sat.pub([Action(SITE, f"k{i:03d}", Cmd.MOD, {
                "name": rnd.choice(names) or "y", "lat": rnd.choice([None, 3.25, float(i % 5)])})])
        sat.pub([Action(SITE, f"n{i:02d}", Cmd.NEW, {"name": rnd.choice(names) or "z",
                                                     "lat": rnd.choice([None, 0.5])})
                 for i in range(30)])
        m = RecordTableModel(sat, SITE)
        cols = {m.headerData(c, Qt.Orientation.Horizontal): c for c in range(m.columnCount())}
        shown = []
        for walk in (10**9, 0):  # one by one, then in one walk
            monkeypatch.setattr(records_model, "MERGE_WALK", walk)
            rows = []
            for col in (-1, cols["Name"], cols["Latitude"]):
                for how in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
                    m.sort(col, how)
                    m.reload()
                    rows.append(list(m._keys))
            shown.append(rows)
        assert shown[0] == shown[1]
        assert all(len(r) == 150 for r in shown[0])
        assert len({tuple(r) for r in shown[0]}) == 6  # six different orders
    finally:
        sat.close()
