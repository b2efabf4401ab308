"""One field saved several times offline, rejected for the same change, is one conflict (the
last save's), not one per save (session 9's note): `Queue.fold_into` resolves each earlier
rejected save whose actions are all `mod` of records and fields the later one changes too,
rejected for the same change. What is not safe to fold (an earlier save with a field the
later one lacks) stays its own conflict. Real satellites (SQLite in tmp_path), a real hub on
127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite import queue as queue_mod
from core.satellite.api import Keep, ReceiptState
from core.satellite.conflicts import conflict_fields
from core.satellite.queue import Queue
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_stale_theirs import SITE, hub_notes, sync


async def offline_saves(tmp_path: Path, project: Project, hub: Hub,
                        saves: list[dict[str, str]]) -> tuple[Satellite, list[str]]:
    """A saves each of ``saves`` on r1 offline while B sets notes=X; A syncs."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig", "region": "N"})])
        await sync(a, hub)
        await sync(b, hub)
        uids = [a.pub([Action(SITE, "r1", Cmd.MOD, arg)]) for arg in saves]
        b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)
    finally:
        b.close()
    return a, uids


async def test_saves_of_one_field_rejected_for_one_change_are_one_conflict(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, uids = await offline_saves(tmp_path, project, hub,
                                  [{"notes": "a"}, {"notes": "b"}, {"notes": "c"}])
    try:
        [rc] = a.receipts([ReceiptState.REJECTED])  # was: three conflicts, one per save
        assert rc.uid == uids[-1]
        assert [(f.field, f.mine, f.theirs) for f in conflict_fields(a, rc)] == [
            ("notes", "c", "X")]
        assert a.status().conflicts == 1
        for u in uids[:-1]:
            r = a.receipt(u)  # each points to the last save, holding the conflict (session
            # 12: to the next save, itself folded); the message names the last
            assert r is not None and r.state == ReceiptState.RESOLVED and r.resolved_by == rc.uid
            with pytest.raises(ValidationError, match=f"folded into your later edit {rc.uid}"
                               ".*: resolve that one"):
                a.resolve(u, Keep.MINE)
        fix = a.resolve(rc.uid, Keep.MINE)
        assert fix
        for u in uids[:-1]:  # once that one is resolved, the message says how, not "resolve"
            with pytest.raises(ValidationError) as err:
                a.resolve(u, Keep.MINE)
            assert f"folded into your later edit {rc.uid}" in str(err.value)
            assert f"it was resolved by transaction {fix}" in str(err.value)
            assert "resolve that one" not in str(err.value)
        await sync(a, hub)
        assert hub_notes(hub) == "c"  # the last save, as if no conflict had been
        assert not a.receipts([ReceiptState.REJECTED, ReceiptState.PENDING])
    finally:
        a.close()


async def test_an_earlier_save_with_another_field_is_not_folded(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """Folding it would drop its region change: it stays a conflict of its own."""
    a, uids = await offline_saves(tmp_path, project, hub,
                                  [{"notes": "a", "region": "S"}, {"notes": "b"}])
    try:
        got = {r.uid for r in a.receipts([ReceiptState.REJECTED])}
        assert got == set(uids)
        assert a.resolve(uids[1], Keep.THEIRS) == ""
        [left] = a.receipts([ReceiptState.REJECTED])
        assert left.uid == uids[0]
    finally:
        a.close()


async def test_cli_conflicts_lists_one_conflict_for_the_saves(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, uids = await offline_saves(tmp_path, project, hub, [{"notes": "a"}, {"notes": "b"}])
    a.close()
    code, out, err = await cli(tmp_path / "a", "conflicts")
    assert code == 0, err
    assert [r["uid"] for r in json.loads(out)] == [uids[-1]]
    code, _, err = await cli(tmp_path / "a", "resolve", uids[0], "--keep", "mine")
    assert code != 0 and f"folded into your later edit {uids[-1]}" in err


@pytest.mark.parametrize("with_json", [True, False])
async def test_saves_far_apart_are_one_conflict_too(
        tmp_path: Path, project: Project, hub: Hub, monkeypatch: pytest.MonkeyPatch,
        with_json: bool) -> None:
    """Review "scale" (session 13): only the latest 50 rejected edits were looked at, so a
    record saved again after 60 other conflicting saves stayed two conflicts (1,092 for 400
    records). One conflict per record, the last save's, however far apart; by the index of
    the rejected ones' keys, or (an SQLite without JSON) by every rejected one's text."""
    if not with_json:
        monkeypatch.setattr(Queue, "_json", lambda self, c: False)
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    others = [f"o{i:02d}" for i in range(60)]
    try:
        a.pub([Action(SITE, k, Cmd.NEW, {"name": k, "notes": "orig"})
               for k in ["r1", *others]])
        await sync(a, hub)
        await sync(b, hub)
        first = a.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "first"})])
        for k in others:
            a.pub([Action(SITE, k, Cmd.MOD, {"notes": "mine"})])
        last = a.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "last", "region": "W"})])
        b.pub([Action(SITE, k, Cmd.MOD, {"notes": "theirs"}) for k in ["r1", *others]])
        await sync(b, hub)
        await sync(a, hub)
        rejected = {r.uid: r for r in a.receipts([ReceiptState.REJECTED])}
        assert len(rejected) == 61 and first not in rejected  # was 62: r1 twice
        assert [(f.field, f.mine) for f in conflict_fields(a, rejected[last])] == [
            ("notes", "last"), ("region", "W")]
        r = a.receipt(first)
        assert r is not None and r.state == ReceiptState.RESOLVED and r.resolved_by == last
    finally:
        a.close()
        b.close()


def test_an_older_queue_gets_the_fold_index_and_the_fold_reads_it(
        tmp_path: Path, project: Project) -> None:
    """The index by the rejected receipts' first key is made at the first writable open of
    a queue made before it; the fold's lookup is a search of it, not a scan."""
    sat = Satellite(tmp_path / "a", project)
    with sat.queue._conn(None) as c:
        c.exec_driver_sql("DROP INDEX ix_sat_receipt_rejected_key")
    sat.close()
    sat = Satellite(tmp_path / "a", project)
    try:
        with sat.queue._read() as c:
            assert c.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = "
                "'ix_sat_receipt_rejected_key'").scalar() == 1
            plan = " ".join(str(r[-1]) for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT uid FROM sat_receipt WHERE state = 'rejected' AND "
                f"{queue_mod._FOLD_KEY} IN (?, ?) AND seq < ? ORDER BY seq", ("a", "b", 9)))
        assert "USING INDEX ix_sat_receipt_rejected_key" in plan, plan
    finally:
        sat.close()
