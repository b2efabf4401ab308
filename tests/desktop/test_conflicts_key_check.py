"""The conflicts view checks Keep both's key as it is typed and shows its errors itself
(field-team review 10, item 2): a key ``abc`` for an int-keyed topic, a taken key, and a
failed resolution showed only in the main window's status bar, behind the dialog, and Keep
both stayed enabled. Real widgets (offscreen), real satellites (SQLite), a real hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.schema import Project, parse_project
from desktop.widgets.conflicts import ConflictsDialog
from hubserver.server import Hub
from tests.desktop.test_conflicts_keep_both import clash, state
from tests.desktop.test_conflicts_plain import SITE, dialog, hub, sync
from tests.desktop.test_edits_kept import answers
from tests.desktop.test_int_keys_app import add, window
from tests.satellite.test_int_keys import SCHEMA, items_hub

__all__ = ["answers", "hub"]  # the fixtures, used by name


def refused(dlg: ConflictsDialog, typed: str) -> str:
    dlg.new_key.setText(typed)
    assert not dlg.keep_both.isEnabled() and not dlg.both_action.isEnabled()
    assert not dlg.key_error.isHidden()
    return dlg.key_error.text()


async def test_a_typed_key_is_checked_as_typed(qtbot: Any, tmp_path: Path, project: Project,
                                               hub: Hub, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    a, b = await clash(tmp_path, project, hub)
    dlg = dialog(qtbot, b)
    offered = dlg.new_key.text()
    assert dlg.keep_both.isEnabled() and dlg.key_error.isHidden()
    assert "is taken: a record field.site s1 exists" in refused(dlg, "s1")
    assert "is empty" in refused(dlg, "  ")
    assert "a key this edit uses itself" in refused(dlg, "camp")
    dlg.keep_both.click()  # disabled: nothing happens
    assert len(b.receipts([ReceiptState.REJECTED])) == 1
    dlg.new_key.setText(offered)
    assert dlg.keep_both.isEnabled() and dlg.key_error.isHidden()
    # a key taken after it was typed (a record saved meanwhile): checked again
    dlg.new_key.setText("camp-b")
    assert dlg.keep_both.isEnabled()
    b.pub([Action(SITE, "camp-b", Cmd.NEW, {"name": "other"})])
    assert not dlg.keep_both.isEnabled() and "is taken" in dlg.key_error.text()
    # a resolution that fails says why in the dialog, not only behind it (the satellite's
    # refusal made to happen here: every check the dialog knows of passes)
    dlg.new_key.setText("camp-x")
    real = b.resolve

    def refuse(*_a: Any, **_k: Any) -> str:
        raise ValidationError("the hub's schema changed: sync first")

    monkeypatch.setattr(b, "resolve", refuse)
    dlg.keep_both.click()
    assert not dlg.error.isHidden()
    assert dlg.error.text() == "Cannot resolve: the hub's schema changed: sync first"
    assert len(b.receipts([ReceiptState.REJECTED])) == 1  # nothing changed
    monkeypatch.setattr(b, "resolve", real)
    dlg.new_key.setText("camp-c")
    dlg.keep_both.click()
    assert dlg.error.isHidden() and b.receipts([ReceiptState.REJECTED]) == []
    await sync(b, hub)
    assert state(hub, SITE, "camp-c") == {"name": "B camp"}
    a.close()
    b.close()


async def test_an_int_keyed_topic_refuses_a_key_that_is_no_integer(
        qtbot: Any, tmp_path: Path) -> None:
    project = parse_project(SCHEMA)
    async with items_hub(project, "2") as h:
        wa = await window(qtbot, tmp_path / "a", project, h)
        wb = await window(qtbot, tmp_path / "b", project, h)
        assert add(wa, "from A") == "4" and add(wb, "from B") == "4"
        await sync(wa.sat, h)  # type: ignore[arg-type]
        await sync(wb.sat, h)  # type: ignore[arg-type]
        dlg = wb.show_conflicts()
        assert dlg.new_key.text() == "5" and dlg.keep_both.isEnabled()
        assert "is not an integer" in refused(dlg, "abc")
        assert "is taken: a record inv.item 1 exists" in refused(dlg, "1")
        dlg.new_key.setText("604")
        assert dlg.keep_both.isEnabled() and dlg.key_error.isHidden()
        dlg.keep_both.click()
        assert wb.sat.receipts([ReceiptState.REJECTED]) == []
        rec = wb.sat.record("inv.item", "604")
        assert rec is not None and rec.fields == {"name": "from B"}
        wa.sat.close()  # type: ignore[attr-defined]
        wb.sat.close()  # type: ignore[attr-defined]
