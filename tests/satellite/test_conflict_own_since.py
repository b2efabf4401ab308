"""The conflict inbox says "changed since" only of other users' changes after the conflict;
the user's own later accepted edits of the record are said as theirs ("you changed it
since"), as `Satellite.resolve` (which does not refuse for them) counts them (session 10's
note: the inbox said "changed since" of the user's own later edits too). Real satellites
(SQLite in tmp_path), a real hub on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.conflicts import conflict_fields, since_sentences
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_stale_theirs import SITE, hub_notes, sync


async def conflict_then_own(tmp_path: Path, project: Project, hub: Hub,
                            own: Action) -> tuple[Satellite, Satellite, str]:
    """A edits notes offline; B sets notes=X; A syncs: a conflict. Then A itself makes
    ``own`` (accepted by the hub); nobody else touches the record."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig"})])
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "mine"})])
    b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "X"})])
    await sync(b, hub)
    await sync(a, hub)
    [rc] = a.receipts([ReceiptState.REJECTED])
    a.pub([own])
    await sync(a, hub)
    assert not a.receipts([ReceiptState.PENDING])
    return a, b, rc.uid


async def test_own_later_edit_is_not_changed_since(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, uid = await conflict_then_own(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"notes": "A-later"}))
    try:
        rc = a.receipt(uid)
        assert rc is not None
        [f] = conflict_fields(a, rc)
        assert f.theirs == "A-later"
        assert f.since == "" and f.since_usr == "" and not f.since_rev  # no one else's
        assert f.own_since == "changed" and f.own_since_rev > f.rev
        [said] = since_sentences([f])
        assert "you changed it yourself" in said and "it was changed again" not in said
        assert a.resolve(uid, Keep.MINE)  # as the inbox says: not refused
        await sync(a, hub)
        assert hub_notes(hub) == "mine"
    finally:
        a.close()
        b.close()


async def test_own_and_others_later_edits_are_told_apart(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """A colleague's change after the user's own: "changed since" by the colleague (and the
    resolution refused), the user's own said as theirs beside it."""
    a, b, uid = await conflict_then_own(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"notes": "A-later"}))
    try:
        await sync(b, hub)
        b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "B-later"})])
        await sync(b, hub)
        await sync(a, hub)
        rc = a.receipt(uid)
        assert rc is not None
        [f] = conflict_fields(a, rc)
        assert f.theirs == "B-later" and f.since == "changed" and f.own_since == "changed"
        assert f.since_rev > f.own_since_rev
        [said] = since_sentences([f])
        assert "changed again" in said and "yourself" not in said
    finally:
        a.close()
        b.close()


async def test_cli_conflicts_says_own_later_edit(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, uid = await conflict_then_own(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"notes": "A-later"}))
    a.close()
    b.close()
    rc, out, err = await cli(tmp_path / "a", "conflicts")
    assert rc == 0, err
    [row] = json.loads(out)
    [f] = row["fields"]
    assert f["theirs"] == "A-later" and f["since"] is None and f["since_rev"] is None
    assert f["since_own"] == "changed" and f["since_own_rev"]
    assert any("you changed it yourself" in t for t in row["explain"])
    rc, text, err = await cli(tmp_path / "a", "conflicts", json_out=False)
    assert rc == 0, err
    assert "you changed it since, at " + f["since_own_rev"] in text
    assert "changed since, by" not in text
    rc, out, err = await cli(tmp_path / "a", "resolve", uid, "--keep", "mine")
    assert rc == 0, err


async def test_a_colleagues_change_is_said_though_an_own_one_comes_first(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """The user changed one field of the record after the conflict, a colleague another: the
    colleague's change is said (one sentence per record), whatever the rows' order."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig", "region": "N"})])
        await sync(a, hub)
        await sync(b, hub)
        a.pub([Action(SITE, "r1", Cmd.MOD, {"region": "S", "notes": "mine"})])
        b.pub([Action(SITE, "r1", Cmd.MOD, {"region": "X", "notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)
        [rc] = a.receipts([ReceiptState.REJECTED])
        a.pub([Action(SITE, "r1", Cmd.MOD, {"region": "A-later"})])
        await sync(a, hub)
        await sync(b, hub)
        b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "B-later"})])
        await sync(b, hub)
        await sync(a, hub)
        rows = conflict_fields(a, rc)
        got = {f.field: (f.since, f.own_since) for f in rows}
        assert got == {"region": ("", "changed"), "notes": ("changed", "")}
        for order in (rows, rows[::-1]):
            [said] = since_sentences(order)
            assert "changed again" in said and "yourself" not in said
    finally:
        a.close()
        b.close()
