"""Review "disk" (session 16): the data directory deleted or moved away while the app has it
open is said, naming the folder and the fix, and no save is reported done that could not be
stored (SQLite kept writing to the deleted file: every save "worked" and was lost at quit);
a failed save's error is taken back once a save works again; a full disk is said in the
app's words. Real widgets (offscreen), real satellites (SQLite files in tmp_path)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from sqlalchemy.exc import SQLAlchemyError

from core.ledger import sql as sql_mod
from core.ledger.memory import MemLedger
from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.app import close_window
from hubserver.server import Hub
from tests.desktop.test_csv_app import SITE, sat, window
from tests.desktop.test_launch14 import user_dirs  # noqa: F401
from tests.desktop.test_launch15 import _start
from tests.desktop.test_status import until

__all__ = ["sat"]  # the fixture


def _new(w: Any, key: str, notes: str = "") -> bool:
    return bool(w.publish([Action(SITE, key, Cmd.NEW, {"name": key, "notes": notes})],
                          f"new {key}"))


def test_a_deleted_directory_refuses_saves_and_says_so(qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    d = sat.data.path
    before = sat.status().pending
    shutil.rmtree(d)
    assert not _new(w, "after-delete")  # refused, not "saved" into the deleted file
    msg = w.status.currentMessage()
    assert f"the data directory {d} is gone" in msg and "nothing can be stored" in msg, msg
    assert f"Put the folder back at {d}" in msg, msg
    st = sat.status()
    assert st.pending == before and "is gone" in st.last_error
    # the typing kept as a draft cannot be written either: said as the same cause, not as
    # "No such file or directory"
    key = w.records.key_at(0)
    w.select_key(key)
    w.form.set_value("name", "typed after the delete")
    assert not w.write_drafts()
    msg = w.status.currentMessage()
    assert "is gone" in msg and "No such file" not in msg, msg
    w.form.revert()  # closes without asking


def test_a_directory_moved_away_is_said_and_works_again_once_back(
        qtbot: Any, sat: Satellite) -> None:
    w = window(qtbot, sat)
    d = sat.data.path
    moved = d.with_name(d.name + "-moved")
    os.rename(d, moved)
    held = []
    try:
        with pytest.raises(SQLAlchemyError):  # a new connection of the pool cannot open it
            held.append(sat.queue.engine.connect())
            held.append(sat.queue.engine.connect())
        w.refresh_status()
        msg = w.status.currentMessage()
        assert f"the data directory {d} is gone" in msg, msg
        assert "sqlalche.me" not in msg and "OperationalError" not in msg, msg
        assert not _new(w, "while-moved")
        assert "is gone" in w.status.currentMessage()
    finally:
        for c in held:
            c.close()
    os.rename(moved, d)  # put back: saves work again, and the error is taken back
    assert _new(w, "back-again")
    assert w.status.currentMessage() == ""
    assert sat.status().last_error == "" and sat.record(SITE, "back-again") is not None


def test_a_failed_saves_error_goes_once_a_save_works(qtbot: Any, sat: Satellite,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    w = window(qtbot, sat)
    monkeypatch.setattr(sql_mod, "disk_free", lambda _p: 4096)  # the disk, as it is full
    with sat.queue.engine.connect() as c:  # the pool keeps this connection
        pages = int(c.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        c.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    assert not _new(w, "big-1", "x" * 20_000)  # needs pages: refused as the disk full
    msg = w.status.currentMessage()
    assert "is full (4,096 bytes free)" in msg, msg
    # the app's words: its data directory, not the hub operator's "ledger"
    assert "move the whole data directory" in msg and "ledger" not in msg, msg
    with sat.queue.engine.connect() as c:
        c.exec_driver_sql("PRAGMA max_page_count = 1073741823")
    assert _new(w, "big-2", "y" * 20_000)  # space back: saved, and the error no longer shown
    assert w.status.currentMessage() == ""


async def test_a_profiles_missing_directory_is_said_not_made_again(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """missing_dir_recreated.sh: a profile's directory on a USB stick not plugged in; a
    plain `outpost` made a new, empty one there (parents too) and synced it, saying
    nothing. Now it is said and nothing is made; a first start still makes it."""
    async with Hub(MemLedger(project), port=0, anon_user="office") as hub:
        stick = tmp_path / "stick"
        d = stick / "outpost"
        [w] = await _start(monkeypatch, data=d, hub=hub.url, profile="field")  # first start
        qtbot.addWidget(w)
        await until(lambda: w.sat.status().online, "online")
        assert _new(w, "on-the-stick")
        await until(lambda: w.sat.rev() > 0, "the edit accepted")
        await close_window(w)
        w.close()
        assert d.is_dir()
        os.rename(stick, tmp_path / "unplugged")
        said: list[str] = []
        answers: list[tuple[str, Callable[[], object]]] = []

        def answer() -> None:
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox) or not answers:
                return
            said.append(box.text())
            name, before = answers.pop(0)
            before()
            next(b for b in box.buttons() if b.text() == name).click()

        poll = QTimer()
        poll.timeout.connect(answer)
        poll.start(50)
        try:
            answers.append(("Quit", lambda: None))
            assert await _start(monkeypatch) == []
            assert not stick.exists()  # nothing made, not even the parent
            assert len(said) == 1 and f"{d}, is missing" in said[0], said
            assert "profile 'field'" in said[0] and "Try again" in said[0]
            # plugged in again, then Try again: the directory opens, its replica as it was
            answers.append(("Try again", lambda: os.rename(tmp_path / "unplugged", stick)))
            [w] = await _start(monkeypatch)
            qtbot.addWidget(w)
            assert w.sat.data.path == d and w.sat.record(SITE, "on-the-stick") is not None
            await until(lambda: w.topics.count_of(SITE) is not None, "counted")
            await close_window(w)
            w.close()
            # still missing, the user starts a new one there: made, as a first start does
            os.rename(stick, tmp_path / "unplugged")
            answers.append(("Start a new one here", lambda: None))
            [w] = await _start(monkeypatch)
            qtbot.addWidget(w)
            assert d.is_dir() and w.sat.data.path == d and len(said) == 3
            await until(lambda: w.topics.count_of(SITE) is not None, "counted")
            await close_window(w)
            w.close()
        finally:
            poll.stop()
