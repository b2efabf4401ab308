"""User review 13 F4 in the app's conflicts view: a field both sides set to the same value is
shown as identical, with no choice. Real widgets, real satellites (SQLite in tmp_path), a real
hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.satellite.api import Keep
from core.schema import Project
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, cells, dialog, hub, sync, two

__all__ = ["hub"]  # the fixture


async def test_a_field_both_set_alike_is_identical_and_no_choice(
        qtbot: Any, qtmodeltester: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Same", "region": "B region"})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Same", "region": "A region"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    qtmodeltester.check(dlg.model)
    assert [r[1:5] for r in cells(dlg)] == [
        ["Name (identical)", "Alder Creek", "Same", "Same"],
        ["Region", "North", "A region", "B region"]]
    assert [r.choosable for r in dlg.model.rows()] == [False, True]
    assert "you both set Name to “Same”: identical, no choice needed" in dlg.details.text()
    uid = dlg.model.uids()[0]
    assert dlg.model.picks(uid) == {f"{SITE} s1": {"name": Keep.MINE, "region": Keep.MINE}}
    a.close()
    b.close()


async def test_an_edit_settled_by_itself_is_said_in_the_view(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    b.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 9.9})])
    await sync(b, hub)
    a.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 9.9, "notes": "mine"})])
    await sync(a, hub)
    dlg = dialog(qtbot, a)
    assert dlg.model.rowCount() == 0  # nothing to choose
    text = dlg.intro.text()
    assert "No conflicts" in text
    assert ("<i>Settled by themselves (same values on both sides):</i> Sites: Alder Creek "
            "(Latitude): your other changes were sent") in text
    a.close()
    b.close()
