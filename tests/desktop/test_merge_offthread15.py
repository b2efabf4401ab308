"""The records table reads the records of pending edits and places them among the rows off the
UI thread (session 15: the end of a 50,000-row import read and placed them there, about 0.8 s
of CPU): the worker's read does it, the rows equal the UI thread's read in every order, and a
record a pending edit changed while the worker read is placed as a live change. Real
satellite (SQLite files), real model; the worker held by a gate around our own
``Satellite.records_of`` (no timing)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.model import Action, Cmd
from core.satellite.api import Change
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.models import records as records_model
from desktop.models.records import RecordTableModel
from tests.satellite.test_reads13 import _hub_change

SITE = "field.site"


def test_the_worker_places_the_pending_records_as_the_ui_thread_does(
        qtbot: Any, tmp_path: Path, project: Project,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sat = Satellite(tmp_path, project)
    try:
        for i in range(60):
            _hub_change(sat, 1000 + i, i + 1, f"k{i:03d}", Cmd.NEW,
                        {"name": f"N{(i * 7) % 13}", "lat": float(i % 5)})
        sat.pub([Action(SITE, f"k{i:03d}", Cmd.MOD, {"name": f"M{i % 4}"})
                 for i in range(0, 60, 3)])
        sat.pub([Action(SITE, f"n{i}", Cmd.NEW, {"name": f"A{i}"}) for i in range(5)])
        m = RecordTableModel(sat, SITE)
        cols = {m.headerData(c, Qt.Orientation.Horizontal): c for c in range(m.columnCount())}
        ui = threading.get_ident()
        where: list[int] = []
        real = sat.records_of

        def records_of(top: str, keys: Any) -> Any:
            where.append(threading.get_ident())
            return real(top, keys)

        monkeypatch.setattr(sat, "records_of", records_of)
        for col in (-1, cols["Name"]):
            for how in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
                m.sort(col, how)
                m.reload()  # on the UI thread (a small topic)
                here = list(m._keys)
                where.clear()
                m._start(threaded=True)
                qtbot.waitUntil(lambda: not m.busy)
                assert list(m._keys) == here and len(here) == 65
                assert where and ui not in where  # read on the worker only
    finally:
        sat.close()


def test_a_record_edited_while_the_worker_reads_is_placed(
        qtbot: Any, tmp_path: Path, project: Project,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sat = Satellite(tmp_path, project)
    try:
        for i in range(30):
            _hub_change(sat, 1000 + i, i + 1, f"k{i:03d}", Cmd.NEW, {"name": f"N{i:02d}"})
        sat.pub([Action(SITE, "k005", Cmd.MOD, {"name": "zz"})])
        m = RecordTableModel(sat, SITE)
        cols = {m.headerData(c, Qt.Orientation.Horizontal): c for c in range(m.columnCount())}
        m.sort(cols["Name"], Qt.SortOrder.AscendingOrder)
        m.reload()
        gate = threading.Event()
        real = sat.records_of
        ui = threading.get_ident()

        def records_of(top: str, keys: Any) -> Any:
            if threading.get_ident() != ui:
                assert gate.wait(10)
            return real(top, keys)

        monkeypatch.setattr(sat, "records_of", records_of)
        m._start(threaded=True)
        assert m.busy
        sat.pub([Action(SITE, "k010", Cmd.MOD, {"name": "A first"})])  # during the read
        gate.set()
        qtbot.waitUntil(lambda: not m.busy)
        keys = list(m._keys)
        assert keys[0] == "k010" and keys[-1] == "k005" and len(keys) == 30
        assert keys.count("k010") == 1
        assert m.index(0, cols["Name"]).data() == "A first"
    finally:
        sat.close()


def test_the_threaded_read_still_walks_many(
        qtbot: Any, tmp_path: Path, project: Project,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Over :data:`MERGE_WALK` records, the walk (on the worker now) gives the same rows."""
    monkeypatch.setattr(records_model, "MERGE_WALK", 0)
    sat = Satellite(tmp_path, project)
    try:
        for i in range(40):
            _hub_change(sat, 1000 + i, i + 1, f"k{i:03d}", Cmd.NEW, {"name": f"N{i % 9}"})
        sat.pub([Action(SITE, f"k{i:03d}", Cmd.MOD, {"name": f"N{i % 3}x"})
                 for i in range(0, 40, 2)])
        m = RecordTableModel(sat, SITE)
        cols = {m.headerData(c, Qt.Orientation.Horizontal): c for c in range(m.columnCount())}
        m.sort(cols["Name"], Qt.SortOrder.DescendingOrder)
        m.reload()
        here = list(m._keys)
        m._start(threaded=True)
        qtbot.waitUntil(lambda: not m.busy)
        assert list(m._keys) == here and len(here) == 40
    finally:
        sat.close()


def test_a_big_change_during_the_read_is_left_to_the_reload(
        qtbot: Any, tmp_path: Path, project: Project,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An import committed while the worker reads (over 500 records: the reload timer
    starts): its records are not read and placed on the UI thread when the read ends (the
    stall the worker avoids); the reload after it shows them all."""
    sat = Satellite(tmp_path, project)
    try:
        for i in range(20):
            _hub_change(sat, 1000 + i, i + 1, f"k{i:03d}", Cmd.NEW, {"name": f"N{i:02d}"})
        m = RecordTableModel(sat, SITE)
        m.reload()
        gate = threading.Event()
        real = sat.records_of
        ui = threading.get_ident()
        on_ui: list[int] = []

        def records_of(top: str, keys: Any) -> Any:
            keys = list(keys)
            if threading.get_ident() != ui:
                assert gate.wait(10)
            elif len(keys) > 100:
                on_ui.append(len(keys))
            return real(top, keys)

        monkeypatch.setattr(sat, "records_of", records_of)
        m._start(threaded=True)
        sat.pub_many(([Action(SITE, f"b{i:04d}", Cmd.NEW, {"name": f"B{i}"})], None)
                     for i in range(600))
        m.on_change(Change(records={SITE: frozenset(f"b{i:04d}" for i in range(600))}))
        gate.set()
        qtbot.waitUntil(lambda: not m.busy)
        assert on_ui == []
        qtbot.waitUntil(lambda: not m.reloading and m.total() == 620, timeout=10_000)
    finally:
        sat.close()
