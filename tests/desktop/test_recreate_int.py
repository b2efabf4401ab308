"""Final reread 9 (HIGH): "Re-create" of a record deleted on the hub under unsaved edits, on
an int-keyed topic, saved it under a new key (new_key is above every key known, the deleted
one too): another record, refs to the old key pointing nowhere, and "1 was taken meanwhile"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtTest import QTest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.desktop.test_int_keys_app import ITEM, hub, int_project, sync, window

__all__ = ["hub", "int_project"]  # fixtures


async def test_re_create_keeps_the_deleted_records_int_key(
        qtbot: Any, tmp_path: Path, int_project: Project, hub: Hub) -> None:
    w = await window(qtbot, tmp_path / "a", int_project, hub)
    bob = Satellite(tmp_path / "b", int_project)
    try:
        await sync(bob, hub)
        assert w.select_key("1")
        ed = w.form.editors["name"].widget
        ed.setFocus()
        QTest.keyClicks(ed, " typed")
        assert w.form.dirty
        bob.pub([Action(ITEM, "1", Cmd.DEL)])
        await sync(bob, hub)
        await sync(w.sat, hub)
        qtbot.waitUntil(lambda: w.form.deleted_by is not None)
        assert w.form.save_button.text() == "Re-create"
        w.form.save_button.click()
        assert w.form.key == "1" and "taken meanwhile" not in w.status.message.text()
        rv = w.sat.record(ITEM, "1")
        assert rv is not None and rv.fields is not None and rv.fields["name"].endswith(" typed")
        assert w.sat.record(ITEM, "4") is None
    finally:
        bob.close()
        w.close()
        w.sat.close()
