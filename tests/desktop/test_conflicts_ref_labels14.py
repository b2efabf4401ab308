"""The conflicts view follows the labels of the records its ref values name (session 14, big
replicas 5): a referenced record renamed kept its old label in the sentences under the table
(built with the rows) until the view was opened again: the view rebuilds only for changes of
the records it shows (session 13), and the referenced ones were not among them (the table's
cells read the label as they are painted). Real satellites and hub, real widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.schema import Project
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import cells, dialog, hub, sync, two  # noqa: F401
from tests.satellite.test_reads13 import _hub_change

SITE, OBS = "field.site", "field.obs"


async def test_a_renamed_referenced_record_shows_its_new_label(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    try:
        b.pub([Action(SITE, "s2", Cmd.NEW, {"name": "Birch"}),
               Action(SITE, "s3", Cmd.NEW, {"name": "Cedar"}),
               Action(OBS, "o1", Cmd.NEW, {"site": "s1", "species": "Lynx"})])
        await sync(b, hub)
        await sync(a, hub)
        b.pub([Action(OBS, "o1", Cmd.MOD, {"site": "s2"})])
        a.pub([Action(OBS, "o1", Cmd.MOD, {"site": "s3"})])
        await sync(b, hub)
        await sync(a, hub)  # a's edit rejected: the site is a conflict
        dlg = dialog(qtbot, a)
        row = next(r for r in cells(dlg) if "Site" in r[1])
        assert "Cedar" in row and "Birch" in row
        # the sentence under the table (built with the rows) names the site too
        assert any("“Birch”" in t for t in dlg.model.explain())
        # renamed by a colleague, pushed to a (one event, as the hub pushes it)
        _hub_change(a, a.rev() + 1000, 10_000, "s2", Cmd.MOD, {"name": "Birch Hill"})
        qtbot.waitUntil(lambda: any("“Birch Hill”" in t for t in dlg.model.explain()),
                        timeout=5000)
        assert any("Birch Hill" in r for r in cells(dlg))
        assert not any("“Birch”" in t for t in dlg.model.explain())
    finally:
        a.close()
        b.close()
