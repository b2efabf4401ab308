"""The app on a daql hub (tests/support/fakedaql.py: daql's wire behaviour on 127.0.0.1, no
dom.project, no acks): the schema is given (`outpost app --schema FILE`), edits made in the
app reach the hub once and are not shown as conflicts with themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
        await until(lambda: w.sat.status().pending == 0, "the live edit synced")
        assert daql.state[(SITE, "a")] == {"name": "a2"}
        assert sorted(daql.news(SITE)) == ["a", "b", "theirs"]  # nothing sent twice
        rec = w.sat.record(SITE, "a")
        assert rec is not None and rec.fields is not None and not rec.conflict
        assert rec.fields["name"] == "a2" and not rec.pending
        await close_window(w)
        w.close()
