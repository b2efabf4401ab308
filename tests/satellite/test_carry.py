"""`outpost carry OLD --data NEW`: a satellite stuck for good (its hub restored from an older
backup, another schema) hands its edits not synced yet to a new data directory, each
exactly once, conflicts visible, OLD unchanged. Real SQLite data directories, real hubs on
127.0.0.1, the CLI as subprocesses (`outpost-hub backup/restore` too)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ValidationError
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.carry import CarryPlan, plan_carry
from core.satellite.client import Backoff, SyncClient
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

# The scenarios here start `outpost`/`outpost-hub` processes (70 call sites in this
# file; ~0.3 s of CPU each, nearly all imports) around real hubs: at load 20 on 2 cores one
# took past the 120 s default bound (session 13: 51-75 s alone at that load). The bound is a
# hang guard, not a timing: 300 s here (tests/hub/test_fuzz.py does the same).
pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
SITE = "field.site"


async def hub_cli(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubserver.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await reap(proc, 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def unchanged(before: dict[str, str], d: Path) -> None:
    """Every file of ``d`` is as it was; a reader of a WAL database may only have left an
    empty ``-wal`` and the ``-shm`` index (docs/satellite.md, "Readers need no lock")."""
    after = hashes(d)
    for name, h in before.items():
        assert after.get(name) == h, name
    for name in set(after) - set(before):
        assert name.endswith("-shm") or (name.endswith("-wal") and
                                         (d / name).stat().st_size == 0), name


async def pub(data: Path, key: str, cmd: str, *fields: str) -> str:
    rc, out, err = await cli(data, "pub", SITE, key, cmd, *fields)
    assert rc == 0, err
    return str(json.loads(out)["uid"])


def pub_here(data: Path, key: str, cmd: str, project: Project | None = None,
             **fields: Any) -> str:
    """What `outpost pub SITE KEY CMD FIELD=VALUE...` does (:meth:`Satellite.pub` on the
    directory, its lock held), without a process: a scenario's set-up edits. Each CLI process
    costs ~0.3 s of CPU, nearly all imports: at load 12-19 on 2 cores a scenario of 40 of
    them passed the 120 s test timeout (session 12). The steps a test is about stay CLI."""
    sat = Satellite(data, project)
    try:
        return sat.pub([Action(SITE, key, Cmd(cmd), fields)])
    finally:
        sat.close()


async def sync_here(data: Path, url: str | None = None, project: Project | None = None,
                    timeout: float = 60) -> None:
    """What `outpost sync --once` does (:meth:`SyncClient.sync_once` with the directory's hub
    and token, or ``url``: a directory never connected, made with ``project``), without a
    process; raises what makes that command fail (HubError)."""
    dd = DataDir(data)
    cfg = dd.load_config()
    sat = Satellite(dd, project)
    try:
        await SyncClient(sat, url or cfg.hub, cfg.token,
                         rnd=random.Random(0)).sync_once(timeout)
    finally:
        sat.close()


def uid_counts(led: SqlLedger) -> Counter[str]:
    return Counter(a.uid for a in led.audits(0, led.rev()) if a.uid)


async def lost_by_restore(tmp_path: Path, project: Project, old: Path,
                          *edits: tuple[str, ...]) -> list[str]:
    """``old`` makes s1 (name=A) on a hub over ``hub1.db``, which is backed up to
    ``b.ledger``; then ``edits`` (``pub``'s KEY CMD FIELD=VALUE...) are accepted by that hub
    after the backup: a restore of it loses them. Their uids."""
    from core.ledger import ops

    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=0) as hub1:
            assert (await cli(old, "connect", hub1.url))[0] == 0
            await pub(old, "s1", "new", "name=A")
            assert (await cli(old, "sync", "--once"))[0] == 0
            ops.backup(led1, tmp_path / "b.ledger")
            uids = [await pub(old, *e) for e in edits]
            assert (await cli(old, "sync", "--once"))[0] == 0
    finally:
        led1.close()
    return uids


@contextlib.asynccontextmanager
async def restored(tmp_path: Path, project: Project, new: Path) -> AsyncIterator[SqlLedger]:
    """``b.ledger`` (:func:`lost_by_restore`) restored into ``hub2.db`` and served; ``new``
    connected to that hub and synced."""
    from core.ledger import ops

    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", project)
    try:
        async with Hub(led2, port=0) as hub2:
            assert (await cli(new, "connect", hub2.url))[0] == 0
            assert (await cli(new, "sync", "--once"))[0] == 0
            yield led2
    finally:
        led2.close()


async def plan_on_another_ledger(tmp_path: Path, project: Project, url: str,
                                 *theirs: Action) -> tuple[Satellite, CarryPlan]:
    """A satellite ``w`` publishes ``theirs`` (one transaction each) on the hub at ``url``
    (not the one of ``tmp_path/old``); ``new`` syncs with that hub. ``new`` (open) and the
    plan of carrying ``old`` into it."""
    w = Satellite(tmp_path / "w", project)
    for a in theirs:
        w.pub([a])
    await SyncClient(w, url, rnd=random.Random(0)).sync_once(10)
    w.close()
    new = Satellite(tmp_path / "new", project)
    await SyncClient(new, url, rnd=random.Random(0)).sync_once(10)
    ro = Satellite(tmp_path / "old", read_only=True)
    try:
        return new, plan_carry(ro, new)
    finally:
        ro.close()


async def test_carry_after_the_hub_was_restored_from_an_older_backup(
        tmp_path: Path, project: Project) -> None:
    """The set-up (edits, syncs, backup, restore, another satellite's edit) runs in this
    process (:func:`pub_here`, :func:`sync_here`, ``ops``); every command whose answer is
    checked (connect, carry, conflicts, resolve) is the CLI: 15 processes, not 38."""
    from core.ledger import ops

    old, new, other = tmp_path / "old", tmp_path / "new", tmp_path / "other"
    db1, db2, bak = tmp_path / "hub1.db", tmp_path / "hub2.db", tmp_path / "b.ledger"
    led1 = SqlLedger(f"sqlite:///{db1}", project)
    async with Hub(led1, port=0) as hub1:
        assert (await cli(old, "connect", hub1.url))[0] == 0
        pub_here(old, "s1", "new", name="A")
        pub_here(old, "s2", "new", name="B", lat=1.5)
        await sync_here(old)
        ops.backup(led1, bak)
        # accepted after the backup: the restore loses them on the hub
        pub_here(old, "s3", "new", name="C")
        pub_here(old, "s1", "mod", lat=9.5)
        await sync_here(old)
    led1.close()
    # offline edits, never synced
    p_mod = pub_here(old, "s2", "mod", name="B2")        # the hub's s2 changes meanwhile
    p_new = pub_here(old, "s4", "new", name="D")
    p_lost = pub_here(old, "s3", "mod", name="C2")       # s3 is gone from the restored hub
    p_note = pub_here(old, "s1", "mod", notes="checked")  # s1 lost lat, not notes
    p_del = pub_here(old, "s2", "mod", region="north")    # lat/name of s2 differ, not region

    led2 = ops.restore(bak, f"sqlite:///{db2}", project)
    async with Hub(led2, port=0) as hub2:
        # stuck: the hub was restored before the replica's revision; the message names carry
        rc, _, err = await cli(old, "connect", hub2.url)
        assert rc == 1 and "restored from a backup" in err and "outpost carry" in err, err
        await sync_here(other, hub2.url, project)
        pub_here(other, "s2", "mod", project, name="Theirs")
        await sync_here(other, hub2.url, project)

        assert (await cli(new, "carry", str(old)))[0] == 1  # not connected yet
        assert (await cli(new, "connect", hub2.url))[0] == 0
        rc, _, err = await cli(new, "carry", str(old))
        assert rc == 1 and "sync --once" in err, err  # connected, never synced
        await sync_here(new)
        before = hashes(old)

        rc, out, err = await cli(new, "carry", str(old), "--dry-run")
        assert rc == 0, err
        dry = json.loads(out)
        assert dry["dry_run"] and dry["carried"] == 5
        ro = Satellite(new, read_only=True)
        try:
            assert ro.status().pending == 0  # a dry run queues nothing
        finally:
            ro.close()

        rc, out, err = await cli(new, "carry", str(old))
        assert rc == 0, err
        res = json.loads(out)
        assert res["carried"] == 5 and res["already"] == 0 and res["invalid"] == 0, res
        # s3 is gone from the hub: its history differs from the old replica's, so the edit is
        # compared with the hub's record now, a conflict. s2's history up to the edit's base is
        # the old replica's: the base is kept and the hub judges the change made since
        assert res["conflict_uids"] == [p_lost], res
        assert res["pending"] == 4 and res["rebased"] == 1  # s1: the lat the hub lost
        rc, out, _ = await cli(new, "conflicts")
        shown = {c["uid"]: c for c in json.loads(out)}
        assert set(shown) == {p_mod, p_lost}  # p_mod: marked by the replica's rebase at once
        assert shown[p_lost]["conflicts"][0]["reason"] == "deleted"
        assert shown[p_mod]["state"] == "pending" and shown[p_lost]["state"] == "rejected"
        await sync_here(new)
        rc, out, _ = await cli(new, "conflicts")
        shown = {c["uid"]: c for c in json.loads(out)}
        assert set(shown) == {p_mod, p_lost} and shown[p_mod]["state"] == "rejected"
        assert shown[p_mod]["conflicts"][0]["fields"] == ["name"]

        # text output and a second run: nothing twice
        rc, out, err = await cli(new, "carry", str(old), json_out=False)
        assert rc == 0 and "carried 0 transactions" in out and "5 already" in out, out
        rc, out, _ = await cli(new, "resolve", p_lost, "--keep", "mine")
        assert rc == 0
        assert (await cli(new, "resolve", p_mod, "--keep", "theirs"))[0] == 0
        await sync_here(new)
        rc, out, _ = await cli(new, "carry", str(old))
        assert json.loads(out)["carried"] == 0 and json.loads(out)["already"] == 5

        # a third directory synced before new sent them: it carries them too, and the
        # hub's uid check answers them as accepted, never applied twice
        late = tmp_path / "late"
        assert (await cli(late, "connect", hub2.url))[0] == 0
        await sync_here(late)
        rc, out, _ = await cli(late, "carry", str(old))
        res = json.loads(out)
        assert res["already"] == 3 and res["carried"] == 2, res  # not on the hub: again
        await sync_here(late)

        counts = uid_counts(led2)
        for u in (p_new, p_note, p_del):
            assert counts[u] == 1, (u, counts)
        assert counts[p_mod] == 0 and counts[p_lost] == 0  # conflicts: never sent
        assert max(counts.values()) == 1
        s1, s2, s3, s4 = (led2.state(SITE, k) for k in ("s1", "s2", "s3", "s4"))
        assert s1 is not None and s1["notes"] == "checked" and s1["lat"] is None
        assert s2 is not None and s2["name"] == "Theirs" and s2["region"] == "north"
        assert s3 is not None and s3["name"] == "C2"  # kept mine: made again
        assert s4 is not None and s4["name"] == "D"
        unchanged(before, old)
    led2.close()


async def test_a_kept_base_lets_the_hub_detect_conflicts(tmp_path: Path,
                                                         project: Project) -> None:
    """Same ledger, same history of the records: the base is kept, so a change made on the
    hub after it is a conflict the hub reports, and one of another field merges."""
    async with Hub(MemLedger(project), port=0) as hub:
        old = Satellite(tmp_path / "old", project)
        old.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 1.0})])
        await SyncClient(old, hub.url, rnd=random.Random(0), backoff=Backoff(0.05, 0.2)
                         ).sync_once(10)
        mine = old.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Mine"})])
        merged = old.pub([Action(SITE, "s1", Cmd.MOD, {"region": "r"})])
        other = Satellite(tmp_path / "other", project)
        await SyncClient(other, hub.url, rnd=random.Random(0)).sync_once(10)
        other.pub([Action(SITE, "s1", Cmd.MOD, {"name": "Theirs", "lat": 2.0})])
        await SyncClient(other, hub.url, rnd=random.Random(0)).sync_once(10)
        new = Satellite(tmp_path / "new", project)
        await SyncClient(new, hub.url, rnd=random.Random(0)).sync_once(10)
        old.close()
        old = Satellite(tmp_path / "old", read_only=True)
        plan = plan_carry(old, new)
        old.close()
        assert [(i.trans.uid, i.kind, i.kept_base) for i in plan.items] == [
            (mine, "pending", True), (merged, "pending", True)]
        new.carry_in([(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items])
        assert {r.uid for r in new.receipts()} == {mine, merged}
        await SyncClient(new, hub.url, rnd=random.Random(0)).sync_once(10)
        by_uid = {r.uid: r for r in new.receipts()}
        assert by_uid[mine].state == "rejected" and by_uid[mine].conflicts
        assert by_uid[merged].state == "accepted"
        assert hub.ledger.state(SITE, "s1") == {
            "name": "Theirs", "lat": 2.0, "region": "r", "lon": None, "notes": None}
        new.close()
        other.close()


async def test_another_schema_invalid_actions_are_reported_or_their_fields_dropped(
        tmp_path: Path, project: Project) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    async with Hub(MemLedger(project), port=0) as hub:
        assert (await cli(old, "connect", hub.url))[0] == 0
        assert (await cli(old, "sync", "--once"))[0] == 0
    bad = await pub(old, "s1", "new", "name=A", "lat=1.5")
    only = await pub(old, "s1", "mod", "lat=2.5")
    ok = await pub(old, "s2", "new", "name=B")
    # the new schema has no lat
    smaller = parse_project({"project": {"name": "outpost-demo"}, "field": {"site": {
        "display": "name", "fields": {"name": {"type": "str", "required": True},
                                      "region": {"type": "str"}}}}})
    async with Hub(MemLedger(smaller), port=0) as hub:
        rc, _, err = await cli(old, "connect", hub.url)
        assert rc == 1 and "schema version" in err and "outpost carry" in err, err
        assert (await cli(new, "connect", hub.url))[0] == 0
        assert (await cli(new, "sync", "--once"))[0] == 0
        before = hashes(old)
        rc, out, err = await cli(new, "carry", str(old))
        assert rc == 1 and "nothing was carried" in err and "--drop-invalid-fields" in err
        res = json.loads(out)
        assert [(i["uid"], i["topic"], i["key"]) for i in res["invalid_actions"]] == [
            (bad, SITE, "s1"), (only, SITE, "s1")]
        assert "lat" in res["invalid_actions"][0]["reason"]
        rc, out, _ = await cli(new, "status")
        assert json.loads(out)["pending"] == 0
        rc, out, err = await cli(new, "carry", str(old), "--drop-invalid-fields")
        assert rc == 0, err
        res = json.loads(out)
        # the mod set only lat: nothing is left of it
        assert res["carried"] == 2 and res["uids"] == [bad, ok], res
        assert res["invalid"] == 0 and res["emptied_uids"] == [only]
        assert res["dropped"] == [f"{SITE} s1 lat"]  # of the carried ones
        assert (await cli(new, "sync", "--once"))[0] == 0
        assert hub.ledger.state(SITE, "s1") == {"name": "A", "region": None}
        unchanged(before, old)


async def test_rejected_transactions_are_carried_on_request(tmp_path: Path,
                                                            project: Project) -> None:
    old, new, other = tmp_path / "old", tmp_path / "new", tmp_path / "other"
    async with Hub(MemLedger(project), port=0) as hub:
        for d in (old, other):
            assert (await cli(d, "connect", hub.url))[0] == 0
        await pub(old, "s1", "new", "name=A")
        assert (await cli(old, "sync", "--once"))[0] == 0
        assert (await cli(other, "sync", "--once"))[0] == 0
        await pub(other, "s1", "mod", "name=Theirs")
        lost = await pub(old, "s1", "mod", "name=Mine")
        assert (await cli(other, "sync", "--once"))[0] == 0
        assert (await cli(old, "sync", "--once"))[0] == 0  # rejected: a conflict
        assert (await cli(new, "connect", hub.url))[0] == 0
        assert (await cli(new, "sync", "--once"))[0] == 0
        rc, out, _ = await cli(new, "carry", str(old))
        assert rc == 0 and json.loads(out)["carried"] == 0
        rc, out, _ = await cli(new, "carry", str(old), "--rejected")
        res = json.loads(out)
        assert rc == 0
        assert res["carried"] == 1 and res["rejected"] == 1 and res["uids"] == [lost], res
        out = (await cli(new, "conflicts"))[1]
        assert [c["uid"] for c in json.loads(out)] == [lost]
        assert (await cli(new, "resolve", lost, "--keep", "mine"))[0] == 0
        assert (await cli(new, "sync", "--once"))[0] == 0
        assert hub.ledger.state(SITE, "s1")["name"] == "Mine"  # type: ignore[index]


async def test_carry_refuses_its_own_directory(tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        assert (await cli(a, "sync", "--once"))[0] == 0
    rc, out, err = await cli(a, "carry", str(a))
    assert rc == 1 and "another one" in err and out == ""
    rc, out, err = await cli(a, "carry", str(tmp_path / "missing"))
    assert rc == 1 and "there is no data directory" in err


async def test_accepted_edits_a_restore_lost_are_carried_on_request(
        tmp_path: Path, project: Project) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    lost_new, lost_mod = await lost_by_restore(tmp_path, project, old, ("s2", "new", "name=B"),
                                               ("s1", "mod", "lat=2.5"))
    pending = await pub(old, "s3", "new", "name=C")
    async with restored(tmp_path, project, new) as led2:
        before = hashes(old)
        rc, out, err = await cli(new, "carry", str(old))
        assert rc == 0 and json.loads(out)["uids"] == [pending], err
        rc, out, err = await cli(new, "carry", str(old), "--accepted")
        res = json.loads(out)
        assert rc == 0 and res["uids"] == [lost_new, lost_mod] and res["lost"] == 2, res
        assert res["already"] == 1 and res["conflicts"] == 0 and res["rebased"] == 0, res
        rc, out, _ = await cli(new, "carry", str(old), "--accepted")  # again, before a sync
        res = json.loads(out)
        # the carried lost edits are pending here now: counted as here (safety review 11)
        assert rc == 0 and res["carried"] == 0 and res["already"] == 3, res
        assert (await cli(new, "sync", "--once"))[0] == 0
        rc, out, _ = await cli(new, "carry", str(old), "--accepted")
        assert json.loads(out)["carried"] == 0
        counts = uid_counts(led2)
        assert [counts[u] for u in (pending, lost_new, lost_mod)] == [1, 1, 1]
        assert led2.state(SITE, "s1")["lat"] == 2.5  # type: ignore[index]
        assert led2.state(SITE, "s2") is not None and led2.state(SITE, "s3") is not None
        unchanged(before, old)


async def test_another_ledger_edits_are_compared_with_the_hubs_records(
        tmp_path: Path, project: Project) -> None:
    """Another ledger (same schema): the histories differ, so each edit's base is the new
    replica's revision and each action is compared with the hub's record: a field the hub
    holds another value of than the old replica had is a conflict, an equal one is not. A
    run is stored whole or not at all."""
    async with Hub(MemLedger(project), port=0) as a, Hub(MemLedger(project), port=0) as b:
        old = Satellite(tmp_path / "old", project)
        old.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 1.0})])
        await SyncClient(old, a.url, rnd=random.Random(0)).sync_once(10)
        lat = old.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 2.0})])
        name = old.pub([Action(SITE, "s1", Cmd.MOD, {"name": "X"})])
        old.close()
        new, plan = await plan_on_another_ledger(
            tmp_path, project, b.url, Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 5.0}))
        assert [(i.trans.uid, i.kind, i.kept_base, i.trans.base) for i in plan.items] == [
            (lat, "conflict", False, new.rev()), (name, "pending", False, new.rev())]
        c = plan.items[0].conflicts
        assert [(x.reason, x.fields, x.theirs) for x in c] == [
            ("field changed", ("lat",), {"lat": 5.0})]
        rows = [(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items]
        with pytest.raises(ValidationError, match="already queued"):
            new.carry_in([*rows, rows[0]])
        assert new.receipts() == []  # nothing of the run was stored
        new.carry_in(rows)
        assert [(r.uid, r.state) for r in new.receipts()] == [
            (lat, "rejected"), (name, "pending")]
        await SyncClient(new, b.url, rnd=random.Random(0)).sync_once(10)
        assert b.ledger.state(SITE, "s1") == {
            "name": "X", "lat": 5.0, "region": None, "lon": None, "notes": None}
        new.close()


def test_accepted_edits_of_another_ledger_are_refused(tmp_path: Path, project: Project) -> None:
    """With ledger ids stored (sat_meta 'ledger', once the sync stores the hub's), --accepted
    between replicas of different ledgers is refused: it would republish the other's
    history."""
    from core.errors import ConfigError

    old = Satellite(tmp_path / "old", project)
    old.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A"})])
    old.queue.set_meta("ledger", "one")
    old.close()
    new = Satellite(tmp_path / "new", project)
    new.queue.set_meta("ledger", "two")
    ro = Satellite(tmp_path / "old", read_only=True)
    try:
        assert len(plan_carry(ro, new).items) == 1  # pending edits: the base rule decides
        with pytest.raises(ConfigError, match="another ledger"):
            plan_carry(ro, new, accepted=True)
    finally:
        ro.close()
        new.close()


async def test_lost_accepted_edits_then_pending_edits_of_the_same_records_do_not_conflict(
        tmp_path: Path, project: Project) -> None:
    """With --accepted, an edit the restored hub lost and a later pending edit of the same
    record: the pending one is compared with the hub's record after the lost one is carried
    back, so it is not a conflict (it was: "deleted" for a mod of a record the lost edit
    made, "field changed" for a mod of a field the lost edit set), and the hub ends with the
    newer values."""
    old, new = tmp_path / "old", tmp_path / "new"
    lost_new, lost_mod = await lost_by_restore(tmp_path, project, old, ("s2", "new", "name=B"),
                                               ("s1", "mod", "lat=2.5"))
    p1 = await pub(old, "s2", "mod", "name=B2")
    p2 = await pub(old, "s1", "mod", "lat=3.5")
    async with restored(tmp_path, project, new) as led2:
        rc, out, err = await cli(new, "carry", str(old), "--accepted")
        res = json.loads(out)
        assert rc == 0 and res["uids"] == [lost_new, lost_mod, p1, p2], err
        assert res["conflicts"] == 0 and res["pending"] == 4 and res["lost"] == 2, res
        assert json.loads((await cli(new, "conflicts"))[1]) == []
        assert (await cli(new, "sync", "--once"))[0] == 0
        counts = uid_counts(led2)
        assert [counts[u] for u in (lost_new, lost_mod, p1, p2)] == [1, 1, 1, 1]
        assert led2.state(SITE, "s1")["lat"] == 3.5  # type: ignore[index]
        assert led2.state(SITE, "s2")["name"] == "B2"  # type: ignore[index]


async def test_keep_mine_on_a_carried_mod_of_a_deleted_record_recreates_it_as_seen(
        tmp_path: Path, project: Project) -> None:
    """A pending mod of a record the restored hub lost is carried as a conflict ("deleted")
    whose action is a new of the record as the user saw it with the mod's fields: "keep mine"
    recreates the whole record (it recreated only the mod's fields: lat and notes were
    lost)."""
    old, new = tmp_path / "old", tmp_path / "new"
    await lost_by_restore(tmp_path, project, old,
                          ("s3", "new", "name=C", "lat=7.5", "notes=important"))
    p = await pub(old, "s3", "mod", "name=C2")
    async with restored(tmp_path, project, new) as led2:
        rc, out, err = await cli(new, "carry", str(old))
        assert rc == 0 and json.loads(out)["conflict_uids"] == [p], err
        rc, out, err = await cli(new, "resolve", p, "--keep", "mine")
        assert rc == 0, err
        assert (await cli(new, "sync", "--once"))[0] == 0
        assert led2.state(SITE, "s3") == {
            "name": "C2", "region": None, "lat": 7.5, "lon": None, "notes": "important"}


async def test_carried_edits_of_one_record_are_compared_after_the_earlier_ones(
        tmp_path: Path, project: Project) -> None:
    """Another ledger: two pending edits of one field. The second is compared with what the
    user saw (the first applied) and the hub's record after the first is carried: no conflict
    when the hub's record is the old one's; when the hub changed the field, the first is a
    conflict (held until resolved) and so is the second (else it would overwrite the hub's
    value once the first is resolved "theirs"). A mod of a record the hub has not is carried
    as a new of the whole record as the user saw it."""
    async with Hub(MemLedger(project), port=0) as a, Hub(MemLedger(project), port=0) as b:
        old = Satellite(tmp_path / "old", project)
        old.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 1.0})])
        old.pub([Action(SITE, "s2", Cmd.NEW, {"name": "B", "lat": 1.0})])
        old.pub([Action(SITE, "s3", Cmd.NEW, {"name": "C", "notes": "n"})])
        await SyncClient(old, a.url, rnd=random.Random(0)).sync_once(10)
        u = [old.pub([Action(SITE, k, Cmd.MOD, {"lat": v})])
             for k, v in (("s1", 2.0), ("s1", 3.0), ("s2", 2.0), ("s2", 3.0), ("s3", 4.0))]
        old.close()
        new, plan = await plan_on_another_ledger(
            tmp_path, project, b.url, Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 1.0}),
            Action(SITE, "s2", Cmd.NEW, {"name": "B", "lat": 5.0}))
        assert [(i.trans.uid, i.kind) for i in plan.items] == [
            (u[0], "pending"), (u[1], "pending"), (u[2], "conflict"), (u[3], "conflict"),
            (u[4], "conflict")]
        assert [(x.reason, x.fields, x.theirs) for x in plan.items[3].conflicts] == [
            ("field changed", ("lat",), {"lat": 5.0})]
        assert plan.items[4].trans.acts == (
            Action(SITE, "s3", Cmd.NEW, {"name": "C", "notes": "n", "lat": 4.0}),)
        assert [x.reason for x in plan.items[4].conflicts] == ["deleted"]
        new.close()


@pytest.mark.parametrize("tuesday_synced", [False, True])
async def test_a_carried_edit_never_overwrites_a_newer_one_made_in_the_new_directory(
        tmp_path: Path, project: Project, tuesday_synced: bool) -> None:
    """Safety review 10, finding 2: the old directory's notes="Monday" (never synced) was
    carried after the new directory's notes="Tuesday" (pending or synced); the sync counted
    Tuesday as the satellite's own earlier edit and Monday overwrote it, no conflict. Now it
    is a conflict in the inbox; a carried edit of another field still merges."""
    async with Hub(MemLedger(project), port=0) as hub:
        async def sync(sat: Satellite) -> None:
            await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)

        old = Satellite(tmp_path / "old", project)
        old.pub([Action(SITE, "c1", Cmd.NEW, {"name": "C1", "notes": "base"})])
        await sync(old)
        monday = old.pub([Action(SITE, "c1", Cmd.MOD, {"notes": "Monday"})])
        lat = old.pub([Action(SITE, "c1", Cmd.MOD, {"lat": 1.5})])
        old.close()
        new = Satellite(tmp_path / "new", project)
        try:
            await sync(new)
            new.pub([Action(SITE, "c1", Cmd.MOD, {"notes": "Tuesday", "name": "C1 new"})])
            if tuesday_synced:
                await sync(new)
            ro = Satellite(tmp_path / "old", read_only=True)
            try:
                plan = plan_carry(ro, new)
            finally:
                ro.close()
            kinds = {i.trans.uid: i.kind for i in plan.items}
            assert kinds == {monday: "conflict", lat: "pending"}
            [c] = next(i.conflicts for i in plan.items if i.trans.uid == monday)
            assert c.fields == ("notes",) and c.theirs == {"notes": "Tuesday"}
            new.carry_in([(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items])
            for _ in range(2):
                await sync(new)
            st = hub.ledger.state(SITE, "c1")  # type: ignore[attr-defined]
            assert st is not None and st["notes"] == "Tuesday" and st["lat"] == 1.5
            [rc] = new.receipts([ReceiptState.REJECTED])
            assert rc.uid == monday
            # shown in the inbox, Tuesday as theirs; keep mine then sends Monday, knowingly
            from core.satellite.conflicts import conflict_fields
            [f] = conflict_fields(new, rc)
            assert (f.field, f.mine, f.theirs) == ("notes", "Monday", "Tuesday")
            new.resolve(monday, Keep.MINE)
            await sync(new)
            st = hub.ledger.state(SITE, "c1")  # type: ignore[attr-defined]
            assert st is not None and st["notes"] == "Monday"
        finally:
            new.close()


async def test_a_carried_conflict_names_each_fields_own_last_change(
        tmp_path: Path, project: Project) -> None:
    """Session 14: a conflict a carry finds names, per field, the change that last set it on
    the hub (as a hub's conflict does since session 13), not the record's last change for
    every field."""
    async with Hub(MemLedger(project), port=0) as a, Hub(MemLedger(project), port=0) as b:
        old = Satellite(tmp_path / "old", project)
        old.pub([Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 1.0})])
        await SyncClient(old, a.url, rnd=random.Random(0)).sync_once(10)
        both = old.pub([Action(SITE, "s1", Cmd.MOD, {"lat": 2.0, "name": "X"})])
        old.close()
        new, plan = await plan_on_another_ledger(
            tmp_path, project, b.url, Action(SITE, "s1", Cmd.NEW, {"name": "A", "lat": 5.0}),
            Action(SITE, "s1", Cmd.MOD, {"name": "Y"}))
        made, renamed = (h.rev for h in new.history(SITE, "s1"))
        [item] = plan.items
        assert (item.trans.uid, item.kind) == (both, "conflict")
        [c] = item.conflicts
        assert (c.fields, c.rev) == (("lat", "name"), renamed)
        assert c.by is not None and {f: r for f, (r, _u) in c.by.items()} == {
            "lat": made, "name": renamed}
        new.carry_in([(i.trans, i.resolves, i.err, i.conflicts) for i in plan.items])
        [rc] = new.receipts([ReceiptState.REJECTED])
        assert rc.conflicts[0].of("lat")[0] == made  # stored as it was found
        new.close()
