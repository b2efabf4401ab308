"""The window appears before the overlay of a long queue is built (session 14, big replicas 1;
docs/desktop.md, "Desktop, session 14: big replicas"). While the unsynced edits are applied,
the status bar says "Applying N unsynced edits…", a record with one not applied yet is shown
pending with its saved value and says so, and a save over it is refused with the typing kept;
once applied the record shows its edit and the form names a typed field the edit changed.

Real widgets (offscreen), a real satellite (SQLite files). The build's steps are held back by
a gate around our own ``Satellite.build_overlay`` so the state before is seen (no timing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLineEdit

from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.models.records import PENDING_ROLE
from tests.desktop.test_form_review12 import window
from tests.satellite.test_overlay_later14 import _queue

SITE = "field.site"


@pytest.fixture
def gated(tmp_path: Path, project: Project) -> Iterator[tuple[Satellite, list[bool]]]:
    """A satellite opened as the app opens it (``overlay_later``) on 6 pending edits, its
    build held until the list's flag is set."""
    _queue(tmp_path / "sat", project)
    sat = Satellite(tmp_path / "sat", project, overlay_later=True)
    gate = [False]
    real = sat.build_overlay

    def build(budget: float = 0.05, *, whole: bool = False) -> bool:
        return real(budget, whole=whole) if gate[0] or whole else False

    sat.build_overlay = build  # type: ignore[method-assign]
    yield sat, gate
    sat.close()


def text(w: MainWindow, name: str) -> str:
    ed = w.form.editors[name].widget
    assert isinstance(ed, QLineEdit)
    return ed.text()


def test_the_window_shows_what_it_can_and_refuses_a_save_over_an_unapplied_edit(
        qtbot: Any, gated: tuple[Satellite, list[bool]]) -> None:
    sat, gate = gated
    ran: list[str] = []
    # a..e from the hub; the pending new record n shows once applied
    w = window(qtbot, sat, rows=5, key="a")
    w.when_applied(lambda: ran.append("sync"))  # as open_window starts the sync
    assert w.status.applying.isVisible()
    assert w.status.applying.text() == "Applying 6 unsynced edits…"
    row = w.table.currentIndex().row()
    assert w.records.index(row, 0).data(PENDING_ROLE) == "pending"  # never "synced"
    assert "being applied" in w.form.state.text() and "Synced" not in w.form.state.text()
    assert text(w, "name") == "A"
    w.form.set_value("name", "typed")
    w.save_action.trigger()
    # refused, nothing queued, the typing kept and the reason said
    assert sat.status().pending == 6
    assert w.form.dirty and w.form.changes() == {"name": "typed"}
    assert "still being applied" in w.status.currentMessage()
    assert ran == []
    gate[0] = True
    qtbot.waitUntil(lambda: not w.status.applying.isVisible())
    assert ran == ["sync"] and sat.applying() == 0
    # the record now shows its unsynced edits; the typed field one changed is named (the
    # form's check of a change under its typing, session 13: the form stays as loaded), the
    # typing kept; saved now, it is the user's choice made knowing the edit
    qtbot.waitUntil(lambda: "Changed meanwhile" in w.form.state.text())
    assert "Name" in w.form.state.text()
    assert text(w, "name") == "typed" and w.form.changes() == {"name": "typed"}
    rv = sat.record(SITE, "a")
    assert rv is not None and rv.fields is not None and rv.fields["region"] == "West"
    qtbot.waitUntil(lambda: w.records.rowCount() == 5)  # n new, d deleted locally
    w.when_applied(lambda: ran.append("later"))
    assert ran == ["sync", "later"]  # at once once applied


def test_an_export_during_the_build_writes_every_unsynced_edit(
        qtbot: Any, gated: tuple[Satellite, list[bool]], tmp_path: Path) -> None:
    """File → Export CSV before the edits were applied writes the records with them (the
    rest of the build is done at its start), as `outpost export` would."""
    sat, _gate = gated
    w = window(qtbot, sat, rows=5, key="a")
    assert sat.applying() == 6
    done: list[bool] = []
    job = w.export_csv(str(tmp_path / "out.csv"))
    assert job is not None
    job.finished.connect(lambda ok, _t, _x: done.append(ok))
    qtbot.waitUntil(lambda: bool(done))
    assert done == [True] and sat.applying() == 0
    rows = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    by_key = {r.split(",")[0]: r for r in rows[1:]}
    assert "a1" in by_key["a"] and "West" in by_key["a"] and "n" in by_key
    assert "d" not in by_key and "e1" in by_key["e"]
    qtbot.waitUntil(lambda: not w.status.applying.isVisible())
