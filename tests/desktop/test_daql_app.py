"""The app on a daql hub (tests/support/fakedaql.py: daql's wire behaviour on 127.0.0.1, no
dom.project, no acks): the schema is given (`outpost app --schema FILE`), edits made in the
app reach the hub once and are not shown as conflicts with themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.errors import HubError
from core.model import Action, Cmd
from core.schema import Project
from tests.desktop.test_status import qsettings, until  # noqa: F401 (a fixture)
from tests.support.fakedaql import FakeDaql

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo-schema.toml"
SITE = "field.site"


async def test_the_app_on_a_daql_hub_takes_the_schema_given_and_syncs_edits_once(
        qtbot: Any, tmp_path: Path, project: Project, qsettings: Path) -> None:  # noqa: F811
    from desktop.app import WindowSpec, close_window, open_satellite, open_window

    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "theirs", "cmd": "new", "arg": {"name": "T"}}])
        d = tmp_path / "sat"
        with pytest.raises(HubError) as err:
            await open_satellite(WindowSpec(d, daql.url))
        assert "may be a daql hub" in str(err.value)
        assert f"outpost app --hub {daql.url} --schema FILE" in str(err.value)
        assert not d.exists()

        spec = WindowSpec(d, daql.url, schema=DEMO)
        sat = await open_satellite(spec)
        assert sat.project.version == project.version
        sat.pub([Action(SITE, "a", Cmd.NEW, {"name": "a"})])
        sat.pub([Action(SITE, "b", Cmd.NEW, {"name": "b"})])
        w = open_window(sat, spec)
        qtbot.addWidget(w)
        await until(lambda: w.sat.status().online and w.sat.status().pending == 0,
                    "edits synced")
        st = w.sat.status()
        assert st.conflicts == 0 and st.pending == 0 and st.hub_confirms is False
        w.status.show_status(st)
        assert w.status.hub.text().endswith("(daql)")
        assert "does not confirm edits" in w.status.hub.toolTip()
        assert sorted(daql.news(SITE)) == ["a", "b", "theirs"]
        w.sat.pub([Action(SITE, "a", Cmd.MOD, {"name": "a2"})])
        # the receipt is stored on the sync's worker thread (status() reads it) and the
        # record's view moves on the loop a moment after (Satellite.written): wait for both,
        # else a loaded machine reads the record between the two (seen under pytest-xdist)
        await until(lambda: w.sat.status().pending == 0
                    and not getattr(w.sat.record(SITE, "a"), "pending", True),
                    "the live edit synced")
        assert daql.state[(SITE, "a")] == {"name": "a2"}
        assert sorted(daql.news(SITE)) == ["a", "b", "theirs"]  # nothing sent twice
        rec = w.sat.record(SITE, "a")
        assert rec is not None and rec.fields is not None and not rec.conflict
        assert rec.fields["name"] == "a2" and not rec.pending
        await close_window(w)
        w.close()


async def test_the_conflicts_view_shows_an_edit_put_aside_as_sent_with_its_answer_lost(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """A new record put aside (its answer lost, the hub holding it): the conflicts view shows
    the edit's values and the hub's (not a "(whole record)" row holding the reason), says it
    was sent and the hub has it, words the buttons send again / drop, and offers neither keep
    both (no one else's record: review 11 made two "Birch" records) nor per-field choices."""
    from core.satellite.api import ReceiptState
    from core.satellite.satellite import Satellite
    from desktop.models.conflicts import COL_KEEP
    from tests.desktop.test_conflicts_plain import dialog
    from tests.satellite.test_cli import cli
    from tests.satellite.test_daql import _aside, daql_dir

    async with FakeDaql(set(project.topics)) as daql:
        d = daql_dir(tmp_path / "sat", project, daql.url)
        uid, key, _ = await _aside(d, daql, "-", "new", "name=Birch")
        assert (await cli(d, "sync", "--once", "--timeout", "10"))[0] == 0
        sat = Satellite(d, project)
        try:
            dlg = dialog(qtbot, sat)
            m = dlg.model
            shown = [[m.data(m.index(i, c)) for c in range(m.columnCount())]
                     for i in range(m.rowCount())]
            assert len(shown) == 1 and shown[0][1] == "Name", shown
            assert shown[0][3:5] == ["Birch", "Birch"] and shown[0][COL_KEEP] == "whole edit"
            assert not m.flags(m.index(0, COL_KEEP)) & Qt.ItemFlag.ItemIsUserCheckable
            assert "sent to the hub, but the answer was lost" in dlg.intro.text()
            dlg.select_uids({uid})
            said = dlg.details.text()
            assert "sent to the hub, but its answer was lost" in said, said
            assert "The hub has it: drop it (Keep theirs) to finish" in said, said
            for word in ("rejected", "outpost ", "someone else", "Keep both"):
                assert word not in said, said
            assert not dlg.keep_both.isEnabled() and not dlg.both_text.isVisible()
            assert not dlg.apply.isEnabled()
            assert dlg.keep_mine.text().replace("&", "") == "Send it again (keep mine)"
            assert dlg.keep_theirs.text().replace("&", "") == "Drop it (keep theirs)"
            dlg.keep_theirs.click()
            assert dlg.confirm_box is None
            rc = sat.receipt(uid)
            assert rc is not None and rc.state == ReceiptState.RESOLVED
            assert m.rowCount() == 0
        finally:
            sat.close()
        assert daql.news(SITE) == [key]
