"""The app's form refuses a json value nested past the limit (session 12, reviewer "wire"):
before, it took it and the hub stored it (or, past 255 levels, the satellite failed to encode
it). Real widgets (pytest-qt), a real satellite on SQLite and a real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLineEdit

from core.satellite.api import ReceiptState
from core.schema import MAX_NESTING, Project
from hubserver.server import Hub
from tests.desktop.test_form_values import hub, odd_project, window  # noqa: F401 (fixtures)


async def test_the_form_refuses_json_nested_past_the_limit(
        qtbot: Any, tmp_path: Path, odd_project: Project, hub: Hub) -> None:  # noqa: F811
    w = await window(qtbot, tmp_path, odd_project, hub)
    assert w.select_key("r1")
    ed = w.form.editors["data"]
    box = ed.widget
    assert isinstance(box, QLineEdit)
    for n in (MAX_NESTING + 1, 300, 5000):  # 5000: past the stdlib's json (RecursionError)
        box.setText("[" * n + "1" + "]" * n)
        assert w.form.validated_changes() is None  # Save says what to fix; nothing saved
        assert ed.error.text() == ("nested more than 100 levels deep (lists and objects): "
                                   "flatten it")
    box.setText("[" * MAX_NESTING + "1" + "]" * MAX_NESTING)  # at the limit: taken
    ch = w.form.validated_changes()
    assert ch is not None and "data" in ch
    assert w.sat.receipts([ReceiptState.PENDING]) == []  # type: ignore[attr-defined]
    w.form.revert()
    w.sat.close()  # type: ignore[attr-defined]
