"""Session 14: every path of the conflicts view that may send a put-aside edit again (sent to
a daql hub, its answer lost: perhaps on the hub already) asks first, as Keep mine / Keep
theirs on several do since session 13: Apply choices on a selection mixing them, and the
"sets your values on their record" question (a key taken meanwhile). Real satellites
(SQLite in tmp_path), a real hub on 127.0.0.1, real Qt widgets (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from core.model import Action, Cmd
from core.revision import ZERO_REV
from core.satellite.api import Keep, ReceiptState, put_aside_err
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import Reject, SatRes
from hubserver.server import Hub
from tests.desktop.test_conflicts_scale13 import (  # noqa: F401 (fixture)
    KEYS,
    SITE,
    conflicts,
    dialog,
    hub,
    sync,
)


def put_aside(a: Satellite, keys: list[str]) -> list[str]:
    uids = [a.pub([Action(SITE, k, Cmd.MOD, {"notes": f"aside {k}"})]) for k in keys]
    a.apply_sat(SatRes(ZERO_REV, (), (), tuple(
        Reject(u, put_aside_err("the connection to the hub was lost")) for u in uids)))
    return uids


def answering(monkeypatch: pytest.MonkeyPatch, pick: str) -> list[tuple[str, str, list[str]]]:
    """QMessageBox.exec answered with the button whose text starts with ``pick``; the boxes
    asked (text, informative text, buttons)."""
    boxes: list[tuple[str, str, list[str]]] = []

    def exec_(box: QMessageBox) -> int:
        names = [bt.text() for bt in box.buttons()]
        boxes.append((box.text(), box.informativeText(), names))
        next(bt for bt in box.buttons() if bt.text().startswith(pick)).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return boxes


async def test_apply_choices_on_a_selection_with_put_aside_edits_asks(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await conflicts(tmp_path, project, hub, 2)
    try:
        aside = put_aside(a, KEYS[10:11])
        _w, dlg = dialog(qtbot, a)
        qtbot.waitUntil(lambda: len(dlg.model.uids()) == 3, timeout=5000)
        boxes = answering(monkeypatch, "Apply choices for 2, leave 1 put aside out")
        dlg.select_uids(dlg.model.uids())
        dlg.resolve_selected(None)
        [(text, info, names)] = boxes  # session 13: no question, the put-aside one sent
        assert text.startswith("1 of the 3 selected edits was put aside") and "s11" in text
        assert "Apply choices sends them again whole" in info
        assert "Apply choices for all 3" in names
        assert set(dlg.model.uids()) == set(aside)  # left out, still listed
        assert {r.uid for r in a.receipts([ReceiptState.REJECTED])} == set(aside)
        assert dlg.later.text().startswith("Left out 1 put-aside edit")
        assert [r.uid for r in a.receipts([ReceiptState.PENDING])
                if any(x.arg == {"notes": "aside s11"} for x in r.acts)] == []
    finally:
        a.close()
        b.close()


async def test_keep_mine_over_their_record_asks_about_put_aside_edits_too(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await conflicts(tmp_path, project, hub, 1)
    try:
        # a key both created: keep mine sets a's values on b's record (asked first)
        a.pub([Action(SITE, "k9", Cmd.NEW, {"name": "mine k9"})])
        b.pub([Action(SITE, "k9", Cmd.NEW, {"name": "theirs k9"})])
        await sync(b, hub)
        await sync(a, hub)
        aside = put_aside(a, KEYS[10:11])
        _w, dlg = dialog(qtbot, a)
        qtbot.waitUntil(lambda: len(dlg.model.uids()) == 3, timeout=5000)
        boxes = answering(monkeypatch, "Keep mine for 2, leave 1 put aside out")
        dlg.select_uids(dlg.model.uids())
        dlg.resolve_selected(Keep.MINE)
        box = dlg.confirm_box
        assert box is not None and boxes == []
        next(bt for bt in box.buttons() if bt.text() == "Set my values on their record").click()
        [(text, _info, _names)] = boxes  # session 13: the put-aside one sent again unasked
        assert text.startswith("1 of the 3 selected edits was put aside")
        assert set(dlg.model.uids()) == set(aside)
        assert {r.uid for r in a.receipts([ReceiptState.REJECTED])} == set(aside)
        await sync(a, hub)
        assert hub.ledger.state(SITE, "k9")["name"] == "mine k9"  # type: ignore[attr-defined,index]
        assert hub.ledger.state(SITE, KEYS[10])["notes"] == "old"  # type: ignore[attr-defined,index]
    finally:
        a.close()
        b.close()
