"""`outpost resolve UID UID ... --keep mine|theirs` and `outpost resolve --all --keep ...`:
many conflicts in one run (review "scale", session 13: 1,092 conflicts were 1,092 runs of
`outpost resolve`). Real satellites (SQLite in tmp_path), a real hub on 127.0.0.1, the real
CLI in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import headless
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_stale_theirs import SITE, sync


async def four_conflicts(tmp_path: Path, project: Project, hub: Hub) -> list[str]:
    """A changes the notes of r1..r4 offline, B too, first: A's four edits are rejected."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, f"r{i}", Cmd.NEW, {"name": f"R{i}", "notes": "orig"})
               for i in range(1, 5)])
        await sync(a, hub)
        await sync(b, hub)
        uids = [a.pub([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"mine {i}"})])
                for i in range(1, 5)]
        for i in range(1, 5):
            b.pub([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"theirs {i}"})])
        await sync(b, hub)
        await sync(a, hub)
        assert {r.uid for r in a.receipts([ReceiptState.REJECTED])} == set(uids)
    finally:
        a.close()
        b.close()
    return uids


async def test_resolve_several_uids_then_all_in_one_run(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    uids = await four_conflicts(tmp_path, project, hub)
    data = tmp_path / "a"
    code, out, err = await cli(data, "resolve", uids[0], uids[1], "--keep", "theirs")
    assert code == 0, err
    assert json.loads(out) == {"resolved": [{"uid": uids[0], "resolved_by": "theirs"},
                                            {"uid": uids[1], "resolved_by": "theirs"}]}
    code, out, err = await cli(data, "resolve", "--all", "--keep", "mine", json_out=False)
    assert code == 0, err
    lines = out.splitlines()
    assert [ln.split()[1] for ln in lines] == uids[2:] and all(" by " in ln for ln in lines)
    code, out, err = await cli(data, "resolve", "--all", "--keep", "mine", json_out=False)
    assert code == 0 and out.strip() == "nothing to resolve: no edit is rejected", err
    sat = Satellite(data)
    try:
        assert not sat.receipts([ReceiptState.REJECTED])
        assert len(sat.receipts([ReceiptState.PENDING])) == 2  # the two kept as mine
    finally:
        sat.close()


async def test_resolve_many_refuses_what_it_cannot_do_and_names_what_it_did(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    uids = await four_conflicts(tmp_path, project, hub)
    data = tmp_path / "a"
    for args in (("resolve", uids[0], uids[1], "--keep", "both"),
                 ("resolve", uids[0], uids[1], "--field", "notes=mine"),
                 ("resolve", "--all"), ("resolve", "--keep", "mine"),
                 ("resolve", uids[0], "--all", "--keep", "mine")):
        code, _, err = await cli(data, *args)
        assert code != 0 and "nothing to resolve" not in err, args
        assert "--keep" in err or "--all" in err, (args, err)
    code, _, err = await cli(data, "resolve", uids[1], "--keep", "theirs")
    assert code == 0, err
    # the second is resolved already: named, and none is resolved (session 14: all or
    # nothing, one commit; session 13 kept the first resolved)
    code, _, err = await cli(data, "resolve", uids[0], uids[1], uids[2], "--keep", "mine")
    assert code != 0
    assert f"transaction {uids[1]} was already resolved" in err
    assert "none of the 3 edits was resolved" in err
    sat = Satellite(data)
    try:
        assert [r.uid for r in sat.receipts([ReceiptState.REJECTED])] == [
            uids[0], *uids[2:]]
        assert not sat.receipts([ReceiptState.PENDING])
    finally:
        sat.close()


async def test_outpost_conflicts_reads_the_records_at_once(
        tmp_path: Path, project: Project, hub: Hub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`outpost conflicts` read each conflict's record, its state at the base and its
    history one read each (as the app's view did): now one read per topic for them all."""
    uids = await four_conflicts(tmp_path, project, hub)
    one: list[str] = []
    for name in ("record", "state_at", "history"):
        real = getattr(Satellite, name)

        def counted(self: Satellite, *a: Any, _real: Any = real, _n: str = name) -> Any:
            one.append(_n)
            return _real(self, *a)

        monkeypatch.setattr(Satellite, name, counted)
    assert headless.main(["conflicts", "--data", str(tmp_path / "a"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["uid"] for r in rows) == sorted(uids)
    assert {(f["key"], f["mine"], f["theirs"], f["base"]) for r in rows for f in r["fields"]
            } == {(f"r{i}", f"mine {i}", f"theirs {i}", "orig") for i in range(1, 5)}
    assert one == []  # was 3 per conflict at least


async def conflicts_and_put_aside(tmp_path: Path, project: Project, hub: Hub
                                  ) -> tuple[list[str], list[str]]:
    """A's edits of r1..r2 refused (B changed them first) and of r3..r4 put aside (sent to a
    daql hub, the answer lost): (refused uids, put-aside uids)."""
    from core.revision import ZERO_REV
    from core.satellite.api import put_aside_err
    from core.wire import Reject, SatRes

    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, f"r{i}", Cmd.NEW, {"name": f"R{i}", "notes": "orig"})
               for i in range(1, 5)])
        await sync(a, hub)
        await sync(b, hub)
        refused = [a.pub([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"mine {i}"})])
                   for i in (1, 2)]
        for i in (1, 2):
            b.pub([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"theirs {i}"})])
        await sync(b, hub)
        await sync(a, hub)
        aside = [a.pub([Action(SITE, f"r{i}", Cmd.MOD, {"notes": f"aside {i}"})])
                 for i in (3, 4)]
        a.apply_sat(SatRes(ZERO_REV, (), (), tuple(
            Reject(u, put_aside_err("the connection to the hub was lost")) for u in aside)))
        assert {r.uid for r in a.receipts([ReceiptState.REJECTED])} == {*refused, *aside}
    finally:
        a.close()
        b.close()
    return refused, aside


async def test_resolve_all_leaves_put_aside_edits_out_unless_asked(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """Review muser 13: --all --keep theirs dropped put-aside edits (maybe on the hub
    already) without a word; they are left out and named, --include-put-aside takes them
    and words them as `resolve UID` does."""
    refused, aside = await conflicts_and_put_aside(tmp_path, project, hub)
    data = tmp_path / "a"
    code, out, err = await cli(data, "resolve", "--all", "--keep", "theirs")
    assert code == 0, err
    assert json.loads(out) == {
        "resolved": [{"uid": u, "resolved_by": "theirs"} for u in refused],
        "put_aside_left_out": aside}
    code, out, err = await cli(data, "resolve", "--all", "--keep", "theirs", json_out=False)
    assert code == 0, err
    assert out.strip().startswith("left out 2 put-aside edits") and all(u in out for u in aside)
    assert "--include-put-aside" in out
    sat = Satellite(data)
    try:
        assert {r.uid for r in sat.receipts([ReceiptState.REJECTED])} == set(aside)
    finally:
        sat.close()
    code, out, err = await cli(data, "resolve", aside[0], "--keep", "theirs",
                               "--include-put-aside", json_out=False)
    assert code == 0 and out.strip() == f"resolved {aside[0]}: dropped", (out, err)
    code, out, err = await cli(data, "resolve", "--all", "--keep", "mine",
                               "--include-put-aside")
    assert code == 0, err
    [d] = json.loads(out)["resolved"]
    assert d["uid"] == aside[1] and d["put_aside"] is True
    assert d["sent_again"] is (d["resolved_by"] != "theirs")
    assert "put_aside_left_out" not in json.loads(out)
