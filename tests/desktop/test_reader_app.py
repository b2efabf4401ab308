"""Review 10 (user, finding 3): once the hub has said the user may only read, the app shows
every topic read-only (New, Save, Delete and the form's Save disabled, their tooltips saying
why and the fix), and the Sync problem box offers to discard the pending edits the hub will
never take (kept as receipts). Real widgets (offscreen), a real satellite (SQLite in
tmp_path), a real hub with users (websockets on 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import HubError, ValidationError
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.auth import Users
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub
from tests.desktop.test_edits_kept import Answer

SITE = "field.site"


@pytest.fixture
def answers() -> Iterator[list[Answer]]:
    made: list[Answer] = []
    yield made
    for a in made:
        a.stop()


async def test_a_reader_sees_topics_read_only_and_can_discard_its_edits(
        tmp_path: Path, project: Project, qtbot: Any, answers: list[Answer]) -> None:
    users = Users(tmp_path / "users.db")
    rita, ann = users.add("rita", "reader"), users.add("ann", "writer")
    sat = Satellite(tmp_path / "rita", project)
    try:
        async with Hub(open_hub_ledger(str(tmp_path / "hub.sqlite"), project), port=0,
                       users=users, close_ledger=True) as hub:
            w = Satellite(tmp_path / "ann", project)
            w.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
            await SyncClient(w, hub.url, ann, rnd=random.Random(0)).sync_once(10)
            w.close()
            win = MainWindow(sat, None, "t")
            qtbot.addWidget(win)
            win.select_topic(SITE)
            assert win.save_action.isEnabled() and win.new_action.isEnabled()
            uid = sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "rita's"})])
            with pytest.raises(HubError, match="may only read"):
                await SyncClient(sat, hub.url, rita, rnd=random.Random(0)).sync_once(10)
        win.refresh_status()
        for a in (win.new_action, win.save_action, win.delete_action, win.import_action):
            assert not a.isEnabled()
            assert "may only read" in a.toolTip() and "writer token" in a.toolTip()
        assert not win.form.save_button.isEnabled()
        with pytest.raises(ValidationError, match="nothing was queued"):
            sat.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "again"})])
        box = win.show_sync_problem()
        assert win._discard_button.isVisible()
        assert "may only read" in box.informativeText()
        ans = Answer(lambda b: next(x for x in b.buttons() if x.text() == "Discard 1"))
        answers.append(ans)
        win._discard_button.click()
        qtbot.waitUntil(lambda: sat.status().pending == 0)
        assert ans.asked and "Discard your 1 pending edit?" in ans.asked[0]
        rec = sat.receipt(uid)
        assert rec is not None and rec.state == ReceiptState.RESOLVED
        assert rec.resolved_by == "discarded"
        assert sat.record(SITE, "s2") is None  # out of the view
        assert sat.record(SITE, "s1") is not None  # the hub's record arrived
        win._fill_problem(box)
        assert not win._discard_button.isVisible()  # nothing left to discard
        box.close()
    finally:
        sat.close()
        users.close()
