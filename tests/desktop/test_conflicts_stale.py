"""The conflicts view shows theirs as the hub has it now, refreshed live, and says when it
changed after the conflict; keep mine resolves on what the view shows (safety review 10,
finding 1: it showed theirs as of the rejection, and keep mine overwrote a later change it
never showed). Real widgets, real satellites, a real hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.schema import Project
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import (  # noqa: F401
    SITE,
    cells,
    dialog,
    hub,
    set_fields,
    sync,
    two,
)


async def test_the_view_shows_a_later_change_and_keep_mine_resolves_on_it(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    try:
        a.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "mine"})])  # A offline
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)  # a conflict: theirs X
        dlg = dialog(qtbot, a)
        assert any(c == "X" for r in cells(dlg) for c in r)
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "Y-newer"})])
        await sync(b, hub)
        await sync(a, hub)  # the open view refreshes: the hub's value now, said changed
        # (on the next turn of the event loop, with any other change by then: session 13)
        qtbot.waitUntil(lambda: dlg.model.seen == a.rev(), timeout=5000)
        rows = cells(dlg)
        assert any(c == "Y-newer (changed since)" for r in rows for c in r), rows
        assert not any(c == "X" for r in rows for c in r)
        assert dlg.model.seen == a.rev()
        assert any("since the conflict" in t for t in dlg.model.explain())
        dlg.select_first()
        dlg.keep_mine.click()  # on what it shows: done, knowingly
        assert not a.receipts([ReceiptState.REJECTED])
        await sync(a, hub)
        assert set_fields(hub)["notes"] == "mine"
    finally:
        a.close()
        b.close()


async def test_keep_mine_on_a_view_older_than_the_replica_is_refused(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    """A change stored before the view heard of it (the sync stores replies on a worker
    thread, the view refreshes when told): keep mine is refused, nothing resolved."""
    a, b = await two(tmp_path, project, hub)
    try:
        a.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "mine"})])
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)
        dlg = dialog(qtbot, a)
        dlg.detach()  # the view hears of nothing more: as if the notice had not come yet
        b.pub([Action(SITE, "s1", Cmd.DEL)])
        await sync(b, hub)
        await sync(a, hub)
        dlg.select_first()
        dlg.keep_mine.click()
        assert "look at the conflict again" in dlg.error.text().lower()
        assert len(a.receipts([ReceiptState.REJECTED])) == 1
        await sync(a, hub)
        assert hub.ledger.state(SITE, "s1") is None  # type: ignore[attr-defined]
    finally:
        a.close()
        b.close()


async def test_the_view_says_the_users_own_later_edit_as_theirs(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    """The user's own accepted edit after the conflict is "you changed it since", not
    "changed since" (which keep mine is refused for): session 10's note."""
    a, b = await two(tmp_path, project, hub)
    try:
        a.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "mine"})])
        b.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)  # a conflict: theirs X
        a.pub([Action(SITE, "s1", Cmd.MOD, {"notes": "A-later"})])  # the user's own, later
        await sync(a, hub)
        dlg = dialog(qtbot, a)
        rows = cells(dlg)
        assert any(c == "A-later (you changed it since)" for r in rows for c in r), rows
        assert not any("(changed since)" in c for r in rows for c in r)
        assert any("you changed it yourself" in t for t in dlg.model.explain())
        dlg.select_first()
        dlg.keep_mine.click()  # not refused: nobody else changed it
        assert not a.receipts([ReceiptState.REJECTED])
        await sync(a, hub)
        assert set_fields(hub)["notes"] == "mine"
    finally:
        a.close()
        b.close()
