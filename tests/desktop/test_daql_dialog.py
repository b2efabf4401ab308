"""Session 11: the app's connection dialog had no way to give the schema of a daql hub (it
answers evt.stat but not dom.project; `outpost connect URL --schema FILE` and `outpost app
--hub URL --schema FILE` did). Now the start, on such a hub, opens the connection dialog
again with the error and a "Schema file" row, checked as --schema FILE is (the same error
texts as the CLI). A real daql-like hub on 127.0.0.1 (tests/support/fakedaql.py), real
widgets (offscreen), the CLI in a child process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.schema import Project
from desktop import launch as L
from desktop.app import close_windows
from desktop.mainwindow import MainWindow
from desktop.widgets.connect import ConnectDialog
from tests.desktop.test_status import qsettings, until  # noqa: F401 (a fixture)
from tests.support.fakedaql import FakeDaql
from tests.support.procs import _communicate

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo-schema.toml"
SITE = "field.site"


async def _cli_error(tmp_path: Path, schema: Path) -> str:
    """What `outpost connect URL --schema FILE` says of ``schema`` (on stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rc, _, err = await _communicate(
        [sys.executable, "-m", "desktop.headless", "connect", "ws://127.0.0.1:9", "--data",
         str(tmp_path / "cli"), "--schema", str(schema)], env, 60)
    assert rc == 1, err
    assert not (tmp_path / "cli").exists()
    return err.strip().removeprefix("outpost: ")


async def test_the_schema_row_checks_the_file_as_the_cli_does(qtbot: Any,
                                                              tmp_path: Path) -> None:
    plain = ConnectDialog(L.Profile("p", "ws://host:8765", "", str(tmp_path / "d")))
    qtbot.addWidget(plain)
    assert not plain.asks_schema and plain.schema_file.isHidden()
    bad = tmp_path / "bad.toml"
    bad.write_text("[project]\nname = 1\n[field.site]\n", encoding="utf-8")
    dlg = ConnectDialog(L.Profile("p", "ws://host:8765", "", str(tmp_path / "d")),
                        schema_error="the hub at ws://host:8765 answered evt.stat but not "
                        "dom.project")
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.schema_file.isVisible() and "but not dom.project" in dlg.error.text()
    for f in (bad, tmp_path / "missing.toml"):
        dlg.schema_file.setText(str(f))
        dlg._accept()
        assert dlg.result() != 1  # kept open
        assert dlg.error.text() == await _cli_error(tmp_path, f)
    dlg.schema_file.setText(str(DEMO))
    dlg._accept()
    assert dlg.result() == 1 and dlg.schema() == DEMO


async def test_a_daql_hub_at_start_asks_for_its_schema_in_the_dialog(
        qtbot: Any, tmp_path: Path, project: Project, qsettings: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Callable[[], Awaitable[list[MainWindow]]]] = []
    monkeypatch.setattr(L, "run_app", lambda start: started.append(start) or 0)
    asked: list[str] = []
    bad = tmp_path / "notes.json"
    bad.write_text("[1, 2]", encoding="utf-8")

    def exec_(dlg: ConnectDialog) -> int:  # the user: a wrong file first, then the right one
        asked.append(dlg.error.text())
        assert dlg.asks_schema and dlg.schema_file.text() == ""
        dlg.schema_file.setText(str(bad))
        dlg._accept()
        assert dlg.result() != 1 and "holds no valid schema" in dlg.error.text()
        dlg.schema_file.setText(str(DEMO))
        dlg._accept()
        return int(dlg.result())

    monkeypatch.setattr(ConnectDialog, "exec", exec_)
    d = tmp_path / "sat"
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "theirs", "cmd": "new", "arg": {"name": "T"}}])
        assert L.launch(data=d, hub=daql.url) == 0
        wins = await started[0]()
        try:
            assert len(asked) == 1
            assert f"the hub at {daql.url} answered evt.stat but not dom.project" in asked[0]
            assert "choose its schema file below" in asked[0]
            [w] = wins
            qtbot.addWidget(w)
            assert w.sat.project.version == project.version  # type: ignore[attr-defined]
            await until(lambda: w.sat.record(SITE, "theirs") is not None,  # type: ignore
                        "the daql hub's record synced")
        finally:
            await close_windows(wins)
            for w in wins:
                w.close()
    assert (d / "schema.json").is_file()


async def test_cancelling_the_schema_question_makes_nothing(
        tmp_path: Path, project: Project, qsettings: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Callable[[], Awaitable[list[MainWindow]]]] = []
    monkeypatch.setattr(L, "run_app", lambda start: started.append(start) or 0)
    monkeypatch.setattr(ConnectDialog, "exec", lambda dlg: 0)
    d = tmp_path / "sat"
    async with FakeDaql(set(project.topics)) as daql:
        assert L.launch(data=d, hub=daql.url) == 0
        assert await started[0]() == []
    assert not d.exists()
    assert not qsettings.exists() or daql.url not in qsettings.read_text()


async def test_connection_settings_of_a_running_window_have_the_schema_row(
        qtbot: Any, tmp_path: Path, project: Project, qsettings: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Session 12: File → Connection settings of a running window had no schema file row
    (only the start dialog had one). Now it has, checked as the start dialog (and --schema
    FILE) checks it; the profile keeps the file, and the next start on a daql hub with a new
    data directory takes it without asking."""
    from PySide6.QtGui import QAction

    from core.satellite.satellite import Satellite
    from tests.satellite.test_daql import daql_dir

    bad = tmp_path / "notes.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    shown: list[tuple[bool, str]] = []

    def exec_(dlg: ConnectDialog) -> int:  # the user: a wrong file first, then the right one
        dlg.show()
        shown.append((dlg.schema_file.isVisible(), dlg.schema_file.text()))
        dlg.data_dir.setText(str(tmp_path / "new"))
        dlg.schema_file.setText(str(bad))
        dlg._accept()
        assert dlg.result() != 1  # kept open, with the CLI's words
        shown.append((True, dlg.error.text()))
        dlg.schema_file.setText(str(DEMO))
        dlg._accept()
        return int(dlg.result())

    monkeypatch.setattr(ConnectDialog, "exec", exec_)
    monkeypatch.setattr(L, "QTimer", type("T", (), {"singleShot": staticmethod(
        lambda *_a: None)}))  # the "Saved" box
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "theirs", "cmd": "new", "arg": {"name": "T"}}])
        old = daql_dir(tmp_path / "old", project, daql.url)
        current = L.Profile("p", daql.url, "", str(old))
        L.save_profile(current)
        sat = Satellite(old, project)
        try:
            w = MainWindow(sat, None, "t", on_settings=lambda: L._settings(w, current))
            qtbot.addWidget(w)
            [act] = [a for a in w.findChildren(QAction)
                     if a.text().replace("&", "") == "Connection settings…"]
            act.trigger()
            for _ in range(300):  # bounded: 300 × 50 ms (the hub asked: no dom.project)
                if not L._settings_jobs:
                    break
                await asyncio.sleep(0.05)
            assert not L._settings_jobs
        finally:
            sat.close()
        assert shown[0] == (True, "")  # the row is there, empty
        assert shown[1][1] == await _cli_error(tmp_path, bad)  # refused as --schema FILE is
        kept = L.load_profile("p")
        assert kept is not None and kept.schema == str(DEMO)
        assert kept.path == tmp_path / "new"

        # the next start: the new directory, the daql hub, no --schema: not asked again
        started: list[Callable[[], Awaitable[list[MainWindow]]]] = []
        monkeypatch.setattr(L, "run_app", lambda start: started.append(start) or 0)
        monkeypatch.setattr(ConnectDialog, "exec", lambda dlg: pytest.fail("asked again"))
        assert L.launch() == 0
        wins = await started[0]()
        try:
            [w2] = wins
            qtbot.addWidget(w2)
            assert w2.sat.project.version == project.version  # type: ignore[attr-defined]
            await until(lambda: w2.sat.record(SITE, "theirs") is not None,  # type: ignore
                        "the daql hub's record synced")
        finally:
            await close_windows(wins)
            for w in wins:
                w.close()
    assert (tmp_path / "new" / "schema.json").is_file()
