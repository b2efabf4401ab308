"""Wire review 13, finding 1, in the app: an edit a daql hub applied over a colleague's change
it had taken just before (a conflict after the fact): the conflicts view says so, shows the
value it overwrote as theirs, and words its buttons for what they do (keep mine leaves it,
keep theirs sends theirs back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.desktop.test_conflicts_plain import dialog
from tests.satellite.test_daql_overwrite13 import _raced, _synced
from tests.support.fakedaql import FakeDaql

SITE = "field.site"


async def test_the_conflicts_view_shows_an_overwrite_and_keep_theirs_sends_theirs_back(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, _ = await _raced(tmp_path, project, daql, ["name=mine"], {"name": "colleague"})
        sat = Satellite(d, project)
        try:
            dlg = dialog(qtbot, sat)
            m = dlg.model
            shown = [[m.data(m.index(i, c)) for c in range(m.columnCount())]
                     for i in range(m.rowCount())]
            assert len(shown) == 1 and shown[0][1] == "Name", shown
            assert shown[0][3:5] == ["mine", "colleague"], shown  # mine | theirs
            assert "overwrote a colleague's change" in dlg.intro.text()
            assert "drops" not in dlg.intro.text()
            dlg.select_uids({uid})
            said = dlg.details.text()
            assert "your edit overwrote a colleague's change" in said, said
            assert dlg.keep_mine.text().replace("&", "") == "Leave it (keep mine)"
            assert dlg.keep_theirs.text().replace("&", "") == "Send theirs back (keep theirs)"
            dlg.keep_theirs.click()
            rc = sat.receipt(uid)
            assert rc is not None and rc.state == ReceiptState.RESOLVED
            back = sat.receipt(rc.resolved_by)
            assert back is not None and back.state == ReceiptState.PENDING
            assert back.acts == (Action(SITE, "k", Cmd.MOD, {"name": "colleague"}),)
            assert m.rowCount() == 0
        finally:
            sat.close()


async def test_an_overwrite_rows_theirs_changed_again_keeps_the_overwritten_value(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """Session 15: a colleague's change after the overwrite made the theirs cell read
    "colleague (changed since)", as a usual row whose theirs is the record now; an overwrite
    row's theirs is what the edit overwrote (what keep theirs sends back)."""
    async with FakeDaql(set(project.topics)) as daql:
        d, _, _ = await _raced(tmp_path, project, daql, ["name=mine"], {"name": "colleague"})
        daql.publish([{"top": SITE, "key": "k", "cmd": "mod", "arg": {"name": "third"}}])
        await _synced(d)
        sat = Satellite(d, project)
        try:
            m = dialog(qtbot, sat).model
            [shown] = [[m.data(m.index(i, c)) for c in range(m.columnCount())]
                       for i in range(m.rowCount())]
            assert shown[3:5] == ["mine", "colleague (overwritten; changed again since)"], shown
        finally:
            sat.close()
