"""Session 12: the app's words for edits sent to a daql hub. The status bar counts edits put
aside (sent, their answer lost) apart from the conflicts (real widgets, offscreen)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.satellite.api import SatStatus
from core.schema import Project
from desktop.widgets.statusbar import SyncStatusBar


def test_the_status_bar_counts_edits_put_aside_apart_from_conflicts(qtbot: Any) -> None:
    """"Conflicts: 1, 2 put aside", not "Conflicts: 3"; a new one put aside is noticed as
    new (the inbox lists it), and with only edits put aside the count is not "Conflicts: 2"."""
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    arrived: list[int] = []
    bar.conflicts_arrived.connect(arrived.append)
    bar.show_status(SatStatus(conflicts=0, put_aside=2))  # at start: nothing new
    assert bar.conflicts.text() == "Conflicts: 0, 2 put aside"
    assert bar.conflict_count == 2  # the inbox's edits: "Open conflicts" is offered
    assert not bar.conflicts.icon().isNull()
    bar.show_status(SatStatus(conflicts=1, put_aside=2))
    assert bar.conflicts.text() == "Conflicts: 1, 2 put aside (1 new)"
    bar.show_status(SatStatus(conflicts=1, put_aside=3))
    assert bar.conflicts.text() == "Conflicts: 1, 3 put aside (2 new)"
    assert arrived == [1, 2]
    bar.conflicts_seen()
    assert bar.conflicts.text() == "Conflicts: 1, 3 put aside"
    bar.show_status(SatStatus(conflicts=1))
    assert bar.conflicts.text() == "Conflicts: 1"


async def test_an_edit_refused_here_reads_not_sent_in_the_status_bar_and_conflicts_view(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """A clash found before sending to a daql hub: the status line read "1 edit rejected by
    the hub" and the conflicts view "the hub rejected the whole transaction", though it was
    never sent (session 11). Real satellite, real window, FakeDaql on 127.0.0.1."""
    from core.model import Action, Cmd
    from core.satellite.satellite import Satellite
    from desktop.format import sync_problem
    from tests.desktop.test_conflicts_plain import dialog
    from tests.satellite.test_cli import cli
    from tests.satellite.test_daql import SITE, daql_dir
    from tests.support.fakedaql import FakeDaql

    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "r", "cmd": "new", "arg": {"name": "v0"}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        assert (await cli(d, "sync", "--once", "--timeout", "10"))[0] == 0
        sat = Satellite(d, project)
        try:
            uid = sat.pub([Action(SITE, "r", Cmd.MOD, {"name": "mine"}),
                           Action(SITE, "z", Cmd.NEW, {"name": "zz"})])
        finally:
            sat.close()
        daql.publish([{"top": SITE, "key": "r", "cmd": "mod", "arg": {"name": "colleague"}}])
        assert (await cli(d, "sync", "--once", "--timeout", "10"))[0] == 0
        sat = Satellite(d, project)
        try:
            st = sat.status()
            assert st.conflicts == 1 and st.put_aside == 0
            # the status line as the window's bar shows it: the error the sync left
            err = json.loads((await cli(d, "status"))[1])["last_error"]
            bar = SyncStatusBar()
            qtbot.addWidget(bar)
            bar.show_status(replace(st, last_error=err))
            assert bar.error.text() == sync_problem(err, rejected=1) == (
                "1 edit not sent: it conflicts with a newer change; see Conflicts "
                "(Ctrl+Shift+C)")
            dlg = dialog(qtbot, sat)
            intro = dlg.intro.text()
            assert "found here, not sent: this hub (a daql hub)" in intro, intro
            assert "rejected" not in intro, intro
            dlg.select_uids({uid})
            said = dlg.details.text()
            assert "Not sent: this hub (a daql hub)" in said, said
            assert "held back with the rest of the edit (not sent)" in said, said
            assert "rejected" not in said, said
        finally:
            sat.close()
