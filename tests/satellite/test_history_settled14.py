"""Session 14: a record's history says what `outpost conflicts` says of an edit settled by
itself (both sides set the same values), and a keep mine the user chose is the user's
resolution, not "settled". Real satellites (SQLite in tmp_path), a real hub on 127.0.0.1
(SQLite ledger), the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.revision import format_rev
from core.satellite import conflicts
from core.satellite.api import Keep, ReceiptState
from core.satellite.conflicts import SETTLED, latest_settled
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_review13_same import hub, sync, two  # noqa: F401 (fixture)

SITE = "field.site"


async def test_history_marks_an_edit_settled_by_itself(
        tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "Alpine"})])
    await sync(a, hub)
    sheet = b.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "Alpine",
                                                 "notes": "from sheet"})])
    await sync(b, hub)
    await sync(b, hub)
    rc = b.receipt(sheet)
    assert rc is not None and rc.state == ReceiptState.RESOLVED
    fix = b.receipt(rc.resolved_by)
    assert fix is not None and fix.settled and fix.state == ReceiptState.ACCEPTED
    [c] = rc.conflicts
    theirs = c.rev
    a.close()
    b.close()
    rc_, out, err = await cli(tmp_path / "b", "history", SITE, "s3", json_out=False)
    assert rc_ == 0, err
    lines = {ln.split("\t")[0]: ln for ln in out.splitlines()}
    assert lines[format_rev(theirs)].endswith(
        f"\thad your values already (lat, region): your edit {sheet} settled by itself "
        "(same values on both sides)")
    assert lines[format_rev(fix.rev)].endswith(
        f"\tyour other changes of edit {sheet}, sent when it settled by itself (same values "
        "on both sides)")
    rows = json.loads((await cli(tmp_path / "b", "history", SITE, "s3"))[1])
    notes = {r["rev"]: r["note"] for r in rows}
    assert notes[format_rev(theirs)].startswith("had your values already (lat, region)")
    assert notes[format_rev(fix.rev)].startswith(f"your other changes of edit {sheet}")
    assert sum(n is None for n in notes.values()) == len(rows) - 2  # the creation: nothing


async def test_a_keep_mine_the_user_chose_is_theirs_not_settled(
        tmp_path: Path, project: Project, hub: Hub,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the same value on both sides, but not settled here (e.g. the field changed again
    # before it could be: Satellite._settle_same leaves it to the user): the user keeps mine
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 9.9})])
    await sync(a, hub)
    monkeypatch.setattr(Satellite, "_settle_same", lambda self, uids: [])
    lon = b.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 9.9})])
    await sync(b, hub)
    [rc] = b.receipts([ReceiptState.REJECTED])
    assert rc.uid == lon
    a.close()
    b.close()
    rc_, out, err = await cli(tmp_path / "b", "resolve", lon, "--keep", "mine",
                              json_out=False)
    assert rc_ == 0, err
    # session 13 said "(kept theirs)" and stored it so
    assert out.strip() == (f"resolved {lon}: kept yours (the hub has your values already: "
                           "nothing sent)")
    b = Satellite(tmp_path / "b", project)
    done = b.receipt(lon)
    assert done is not None and done.state == ReceiptState.RESOLVED
    assert done.resolved_by == "mine"  # KEPT_MINE
    assert latest_settled(b) == []  # session 13 listed it "settled: same values …"
    assert conflicts.history_notes(b, SITE, "s3", b.history(SITE, "s3")) == {}
    b.close()
    rc_, out, err = await cli(tmp_path / "b", "conflicts", json_out=False)
    assert rc_ == 0, err
    assert out.strip() == "no conflicts" and SETTLED not in out
    rc_, out, err = await cli(tmp_path / "b", "resolve", lon, "--keep", "mine",
                              json_out=False)
    assert rc_ != 0 and "by keeping yours" in err


async def test_history_names_the_users_own_resolution(
        tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 8.8})])
    await sync(a, hub)
    lon = b.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 9.9})])
    await sync(b, hub)
    new = b.resolve(lon, Keep.MINE)
    await sync(b, hub)
    fix = b.receipt(new)
    assert fix is not None and fix.state == ReceiptState.ACCEPTED and not fix.settled
    a.close()
    b.close()
    rows = json.loads((await cli(tmp_path / "b", "history", SITE, "s3"))[1])
    assert {r["rev"]: r["note"] for r in rows if r["note"]} == {
        format_rev(fix.rev): f"you resolved conflict {lon} with this change"}
