"""User review 13, the form beside changes of its record (docs/desktop.md, "Editing"): the
fields the user did not type in follow the record; the typing stays; only a change to a field
the user typed in is called a change "meanwhile".

Real widgets (offscreen), a real satellite (SQLite files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLineEdit

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.desktop.test_e2e import hub, sync, synced_window  # noqa: F401 (hub: a fixture)
from tests.desktop.test_form_review12 import window

SITE = "field.site"


@pytest.fixture
def sat(tmp_path: Path, project: Project) -> Iterator[Satellite]:
    s = Satellite(tmp_path / "sat", project)
    s.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Site 1", "region": "North"}),
           Action(SITE, "s2", Cmd.NEW, {"name": "Site 2", "region": "South"})])
    yield s
    s.close()


def text(w: MainWindow, name: str) -> str:
    ed = w.form.editors[name].widget
    assert isinstance(ed, QLineEdit)
    return ed.text()


def test_undo_from_the_table_shows_the_undone_value_and_keeps_the_typing(
        qtbot: Any, sat: Satellite) -> None:
    """The refused undo's advice (undo from the records table) made the form keep showing
    the undone name with a false "Changed meanwhile"; Ctrl+S then saved only the region and
    the form flipped."""
    w = window(qtbot, sat)
    w.form.set_value("name", "Site One")
    w.save_action.trigger()
    assert sat.record(SITE, "s1").fields["name"] == "Site One"  # type: ignore[union-attr,index]
    w.form.set_value("region", "West")  # typing, unsaved
    w.table.setFocus()
    w.undo_action.trigger()  # the save of the name, undone from the table
    assert sat.record(SITE, "s1").fields["name"] == "Site 1"  # type: ignore[union-attr,index]
    assert text(w, "name") == "Site 1"  # follows the record
    assert text(w, "region") == "West"  # the typing stays
    assert "Changed meanwhile" not in w.form.state.text()
    assert w.form.dirty and w.form.changes() == {"region": "West"}
    assert "Site 1" in w.form.title.text()
    w.save_action.trigger()
    rv = sat.record(SITE, "s1")
    assert rv is not None and rv.fields is not None
    assert (rv.fields["name"], rv.fields["region"]) == ("Site 1", "West")
    assert text(w, "name") == "Site 1" and text(w, "region") == "West"


def test_a_change_to_the_typed_field_is_said_by_name(qtbot: Any, sat: Satellite) -> None:
    """A change of the very field the user types in is said, naming it; the typing stays;
    the form stays as loaded, on its base (saving makes the conflict it announces)."""
    w = window(qtbot, sat)
    base = w.form.base
    w.form.set_value("region", "West")  # typing, unsaved
    # another edit of the record (as a pushed change would be): name and region
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Site Uno", "region": "East"})])
    qtbot.waitUntil(lambda: "Changed meanwhile" in w.form.state.text())
    assert text(w, "region") == "West" and text(w, "name") == "Site 1"
    state = w.form.state.text()
    assert "Changed meanwhile: Region" in state and "Name" not in state
    assert w.form.changes() == {"region": "West"} and w.form.base == base


async def test_a_field_that_followed_then_edited_is_no_conflict(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    """b types in Notes; a colleague's new Name arrives and b's form shows it; b corrects
    that name and saves: no conflict, b edited what it was shown (merge review 13: the
    save kept the form's first base, so it was a conflict holding b's notes too)."""
    a = await synced_window(qtbot, tmp_path, "a", project, hub)
    b = await synced_window(qtbot, tmp_path, "b", project, hub)
    assert b.select_key("s1")
    b.form.set_value("notes", "seen a heron")  # unsaved
    assert a.select_key("s1")
    a.form.set_value("name", "Alder A")
    a.save_action.trigger()
    await sync(a.sat, hub)  # type: ignore[arg-type]
    await sync(b.sat, hub)  # type: ignore[arg-type]
    assert text(b, "name") == "Alder A" and "Changed meanwhile" not in b.form.state.text()
    b.form.set_value("name", "Alder A.")
    b.save_action.trigger()
    assert b.sat.status().conflicts == 0
    await sync(b.sat, hub)  # type: ignore[arg-type]
    assert b.sat.status().conflicts == 0
    state = hub.ledger.state(SITE, "s1")  # type: ignore[attr-defined]
    assert (state["name"], state["notes"]) == ("Alder A.", "seen a heron")
