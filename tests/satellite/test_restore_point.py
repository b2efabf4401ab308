"""A hub restored from an older backup is visible to satellites (Outpost extension of
evt.stat: ``restored``/``restore_id``). A replica that synced past the backup never syncs with
the restored hub, even once that hub has published past the replica's revision (revisions
are wall-clock times); one at or before the backup point syncs and adopts the restore point.
Real hubs on 127.0.0.1 with SQLite ledgers, `outpost-hub backup/restore` and `outpost` as
subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.ledger.sql import SqlLedger
from core.revision import format_rev
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_carry import hub_cli, pub, pub_here, sync_here
from tests.satellite.test_cli import cli
from tests.satellite.test_ledger_identity import refused_and_kept

# The scenarios here start `outpost`/`outpost-hub` processes (43 call sites in this
# file; ~0.3 s of CPU each, nearly all imports) around real hubs: at load 20 on 2 cores one
# took past the 120 s default bound (session 13: 51-75 s alone at that load). The bound is a
# hang guard, not a timing: 300 s here (tests/hub/test_fuzz.py does the same).
pytestmark = pytest.mark.timeout(300)

SITE = "field.site"


def point_of(d: Path) -> tuple[int, str]:
    sat = Satellite(d, read_only=True)
    try:
        return sat.restore_point()
    finally:
        sat.close()


def rev_of(d: Path) -> int:
    sat = Satellite(d, read_only=True)
    try:
        return sat.rev()
    finally:
        sat.close()


async def test_a_replica_past_the_restore_point_never_syncs_with_the_restored_hub(
        tmp_path: Path, project: Project) -> None:
    """The set-up edits and syncs run in this process (:func:`pub_here`, :func:`sync_here`:
    the processes' imports passed the 120 s timeout at load 12-19); `outpost-hub backup` and
    `restore`, the refused and the accepted `outpost connect` and carry are processes."""
    a, early, b = tmp_path / "a", tmp_path / "early", tmp_path / "b"
    db1, db2, bak = tmp_path / "hub1.db", tmp_path / "hub2.db", tmp_path / "b.ledger"
    led1 = SqlLedger(f"sqlite:///{db1}", project)
    async with Hub(led1, port=0) as hub1:
        for d in (a, early):
            assert (await cli(d, "connect", hub1.url))[0] == 0
        pub_here(a, "s1", "new", name="A")
        await sync_here(a)
        await sync_here(early)  # at the backup point
        rc, _, err = await hub_cli("backup", str(bak), "--db", str(db1))
        assert rc == 0, err
        backup_rev = led1.rev()
        pub_here(a, "s2", "new", name="B")  # accepted after the backup: lost by the restore
        await sync_here(a)
    led1.close()
    mine = rev_of(a)
    assert mine > backup_rev and point_of(a) == (0, "")
    rc, _, err = await hub_cli("restore", str(bak), "--db", str(db2))
    assert rc == 0, err
    led2 = SqlLedger(f"sqlite:///{db2}", project)
    assert led2.restored[0] == backup_rev and len(led2.restored[1]) == 32
    async with Hub(led2, port=0) as hub2:
        # another satellite publishes on the restored hub: its revision passes the replica's
        # (the case that slipped: "hub behind the replica" no longer holds)
        await sync_here(b, hub2.url, project)
        pub_here(b, "s3", "new", project, name="C")
        await sync_here(b, hub2.url, project)
        assert led2.rev() > mine and point_of(b) == led2.restored
        keys = led2.keys(SITE)
        assert keys == ["s1", "s3"]
        pub_here(a, "s4", "new", name="D")  # pending in the stuck replica
        # connect refused, naming the restore point, the replica's rev and carry; sync too
        await refused_and_kept(
            a, hub2.url, (f"restored from a backup at revision {format_rev(backup_rev)}",
                          f"up to {format_rev(mine)}", "--accepted"),
            ("restored from a backup", "outpost carry"))
        assert led2.keys(SITE) == keys  # the pending edit never went out
        # a replica at the backup point is a prefix of the restored ledger: it syncs and
        # adopts the restore point
        rc, _, err = await cli(early, "connect", hub2.url)
        assert rc == 0, err
        await sync_here(early)
        assert point_of(early) == led2.restored and rev_of(early) == led2.rev()
        # and carry --accepted moves the stuck replica's edits to a new directory
        new = tmp_path / "new"
        assert (await cli(new, "connect", hub2.url))[0] == 0
        await sync_here(new)
        rc, _, err = await cli(new, "carry", str(a), "--accepted")
        assert rc == 0, err
        await sync_here(new)
        assert led2.keys(SITE) == ["s1", "s2", "s3", "s4"]
    led2.close()


async def test_a_second_restore_replaces_the_restore_point(
        tmp_path: Path, project: Project) -> None:
    """Restoring the same backup again makes a new restore id: a replica that synced past
    the first restore's point is stopped by the second."""
    a = tmp_path / "a"
    db1, db2, db3 = (tmp_path / f"hub{i}.db" for i in (1, 2, 3))
    bak = tmp_path / "b.ledger"
    led1 = SqlLedger(f"sqlite:///{db1}", project)
    led1.close()
    assert (await hub_cli("backup", str(bak), "--db", str(db1)))[0] == 0
    assert (await hub_cli("restore", str(bak), "--db", str(db2)))[0] == 0
    led2 = SqlLedger(f"sqlite:///{db2}", project)
    async with Hub(led2, port=0) as hub2:
        assert (await cli(a, "connect", hub2.url))[0] == 0
        await pub(a, "s1", "new", "name=A")
        rc, out, err = await cli(a, "sync", "--once")
        assert rc == 0 and json.loads(out)["pending"] == 0, err
        assert point_of(a) == led2.restored
    led2.close()
    assert (await hub_cli("restore", str(bak), "--db", str(db3)))[0] == 0
    led3 = SqlLedger(f"sqlite:///{db3}", project)
    assert led3.restored[0] == led2.restored[0] and led3.restored[1] != led2.restored[1]
    async with Hub(led3, port=0) as hub3:
        dd = DataDir(a)
        dd.save_config(dd.load_config().with_hub(hub3.url, None))
        rc, _, err = await cli(a, "sync", "--once", "--timeout", "300")
        assert rc == 1 and "restored from a backup" in err, err
    led3.close()


async def test_two_restores_in_a_row_a_replica_past_the_first_point_stops(
        tmp_path: Path, project: Project) -> None:
    """Review of session 7 (only the latest restore point was kept and served): restored
    from B1 at p1, the hub publishes, then restored from B2 at p2, after the revision of a
    replica that synced past p1 before the first restore and not since. The second point
    alone let that replica through: it adopted p2, then failed on every retry (the hub's
    new events reuse the ids of those it lost). Every point is kept, carried by the backup
    and served: it stops, naming p1. A replica that adopted p1 syncs and adopts p2."""
    a, c, b = tmp_path / "a", tmp_path / "c", tmp_path / "b"
    db1, db2, db3 = (tmp_path / f"hub{i}.db" for i in (1, 2, 3))
    bak1, bak2 = tmp_path / "b1.ledger", tmp_path / "b2.ledger"
    led1 = SqlLedger(f"sqlite:///{db1}", project)
    async with Hub(led1, port=0) as hub1:
        assert (await cli(a, "connect", hub1.url))[0] == 0
        await pub(a, "s1", "new", "name=A")
        assert (await cli(a, "sync", "--once"))[0] == 0
        assert (await hub_cli("backup", str(bak1), "--db", str(db1)))[0] == 0
        p1 = led1.rev()
        await pub(a, "s2", "new", "name=B")  # accepted after B1: lost by the first restore
        assert (await cli(a, "sync", "--once"))[0] == 0
    led1.close()
    mine = rev_of(a)
    assert mine > p1
    assert (await hub_cli("restore", str(bak1), "--db", str(db2)))[0] == 0
    led2 = SqlLedger(f"sqlite:///{db2}", project)
    first = led2.restored
    async with Hub(led2, port=0) as hub2:
        assert (await cli(b, "connect", hub2.url))[0] == 0
        await pub(b, "s3", "new", "name=C")  # the restored hub publishes past a's revision
        assert (await cli(b, "sync", "--once"))[0] == 0
        assert (await cli(c, "connect", hub2.url))[0] == 0
        assert (await cli(c, "sync", "--once"))[0] == 0
        assert point_of(c) == first
        assert (await hub_cli("backup", str(bak2), "--db", str(db2)))[0] == 0
        p2 = led2.rev()
    led2.close()
    assert p2 > mine
    assert (await hub_cli("restore", str(bak2), "--db", str(db3)))[0] == 0
    led3 = SqlLedger(f"sqlite:///{db3}", project)
    assert led3.restored[0] == p2
    async with Hub(led3, port=0) as hub3:
        keys = led3.keys(SITE)
        assert keys == ["s1", "s3"]
        await pub(a, "s4", "new", "name=D")  # pending in the stuck replica
        # refused by connect and sync alike, naming the first restore point: nothing changed
        await refused_and_kept(
            a, hub3.url, (f"restored from a backup at revision {format_rev(p1)}",
                          f"up to {format_rev(mine)}", "--accepted"),
            (f"restored from a backup at revision {format_rev(p1)}", "outpost carry"))
        _, _, err = await cli(a, "sync", "--once", "--timeout", "300")
        assert "UNIQUE" not in err, err
        assert point_of(a) == (0, "")
        assert led3.keys(SITE) == keys  # the pending edit never went out
        # c adopted p1 and is before p2: it syncs and adopts p2
        dd = DataDir(c)
        dd.save_config(dd.load_config().with_hub(hub3.url, None))
        rc, _, err = await cli(c, "sync", "--once")
        assert rc == 0, err
        assert point_of(c) == led3.restored and rev_of(c) == led3.rev()
        assert led3.restores == (first, led3.restored)
    led3.close()


def points_of(d: Path) -> tuple[tuple[int, str], ...]:
    sat = Satellite(d, read_only=True)
    try:
        return sat.restore_points()
    finally:
        sat.close()


async def test_the_same_backup_restored_again_keeps_a_replica_within_it(
        tmp_path: Path, project: Project) -> None:
    """Review of session 8: the ledger restored once (r0); backup B carries [r0]; restoring
    B gives [r0, r1]; a replica within B adopts that; B is restored again: [r0, r2]. Its r1
    is not served, and every point was checked: past r0, it was stopped for good though it
    holds a prefix of the new hub's data. Only r2 (made since) is checked: connect and sync
    pass, and the replica stores the new list."""
    x, s = tmp_path / "x", tmp_path / "s"
    db1, db2, db3, db4 = (tmp_path / f"hub{i}.db" for i in (1, 2, 3, 4))
    bak0, bak = tmp_path / "b0.ledger", tmp_path / "b.ledger"
    SqlLedger(f"sqlite:///{db1}", project).close()
    assert (await hub_cli("backup", str(bak0), "--db", str(db1)))[0] == 0
    assert (await hub_cli("restore", str(bak0), "--db", str(db2)))[0] == 0
    led2 = SqlLedger(f"sqlite:///{db2}", project)
    r0 = led2.restored
    async with Hub(led2, port=0) as hub2:
        assert (await cli(x, "connect", hub2.url))[0] == 0
        await pub(x, "s1", "new", "name=A")
        assert (await cli(x, "sync", "--once"))[0] == 0
        assert (await hub_cli("backup", str(bak), "--db", str(db2)))[0] == 0
        p_b = led2.rev()
    led2.close()
    assert p_b > r0[0]
    assert (await hub_cli("restore", str(bak), "--db", str(db3)))[0] == 0
    led3 = SqlLedger(f"sqlite:///{db3}", project)
    r1 = led3.restored
    async with Hub(led3, port=0) as hub3:
        assert (await cli(s, "connect", hub3.url))[0] == 0
        rc, _, err = await cli(s, "sync", "--once")
        assert rc == 0, err
        assert points_of(s) == (r0, r1) and rev_of(s) == p_b > r0[0]
    led3.close()
    assert (await hub_cli("restore", str(bak), "--db", str(db4)))[0] == 0
    led4 = SqlLedger(f"sqlite:///{db4}", project)
    r2 = led4.restored
    assert led4.restores == (r0, r2) and r2[0] == p_b and r2[1] != r1[1]
    async with Hub(led4, port=0) as hub4:
        # connect (the rehome check) and sync both pass: the replica lost nothing
        rc, _, err = await cli(s, "connect", hub4.url)
        assert rc == 0, err
        await pub(s, "s2", "new", "name=B")
        rc, out, err = await cli(s, "sync", "--once")
        assert rc == 0 and json.loads(out)["pending"] == 0, err
        assert points_of(s) == (r0, r2) and point_of(s) == r2
        assert led4.keys(SITE) == ["s1", "s2"]
    led4.close()


def test_a_replica_that_stored_one_point_reads_it_as_a_list_of_one(
        tmp_path: Path, project: Project) -> None:
    """A replica of session 7 stored the latest point only (``restored``): read as a list
    of one; adopting stores the whole list and keeps ``restored`` (the latest) for an
    older Outpost opening the directory."""
    d = tmp_path / "sat"
    sat = Satellite(d, project)
    try:
        assert sat.restore_points() == () and sat.restore_point() == (0, "")
        sat.queue.set_meta("restored", [2000, "1" * 32])
    finally:
        sat.close()
    sat = Satellite(d, project)
    try:
        assert sat.restore_points() == ((2000, "1" * 32),)
        sat.adopt_restore_points(((2000, "1" * 32), (4000, "2" * 32)))
    finally:
        sat.close()
    sat = Satellite(d, project)
    try:
        assert sat.restore_points() == ((2000, "1" * 32), (4000, "2" * 32))
        assert sat.restore_point() == (4000, "2" * 32)
        assert sat.queue.get_meta("restored") == [4000, "2" * 32]
    finally:
        sat.close()
