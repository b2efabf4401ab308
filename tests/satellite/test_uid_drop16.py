"""Data format 2 (session 16): a satellite's replica stores no ``evt_uid`` rows; the applied
transaction uids are read from its audits (``evt_audit``), which hold the same. A replica of
format 1 (session 15) is upgraded at its first writable open, in one commit (a kill mid-way
leaves it whole); a hub's ledger keeps ``evt_uid`` (its exactly-once). Real SQLite files, a
real hub on 127.0.0.1, a real process killed at the crash point."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from core.ledger.sql import SqlLedger
from core.model import Action, Audit, Cmd, Event
from core.satellite import dataformat
from core.satellite.carry import plan_carry
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub

ROOT = Path(__file__).resolve().parents[2]
SITE = "field.site"


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as c:
        return list(c.execute(sql))


def _version(db: Path) -> int:
    return int(_rows(db, "PRAGMA user_version")[0][0])  # type: ignore[call-overload]


def _as_session15(db: Path) -> list[tuple[object, ...]]:
    """Make the replica file ``db`` what session 15's Outpost wrote: data format 1 and an
    ``evt_uid`` row per applied uid (the first revision of each uid of its audits, as
    ``replicate`` recorded them). Those rows."""
    with closing(sqlite3.connect(db)) as c:
        c.execute("INSERT INTO evt_uid (uid, rev) SELECT uid, min(rev) FROM evt_audit "
                  "WHERE uid != '' GROUP BY uid")
        c.execute("PRAGMA user_version = 1")
        c.commit()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return list(c.execute("SELECT uid, rev FROM evt_uid ORDER BY uid"))


async def _synced(data: Path, url: str, project: Project, *keys: str,
                  pending: str = "") -> list[str]:
    """``data`` makes a record per key and syncs them with the hub at ``url`` (accepted);
    then, offline, ``pending`` (a key) made and not synced. The accepted uids."""
    sat = Satellite(data, project)
    try:
        uids = [sat.pub([Action(SITE, k, Cmd.NEW, {"name": k})]) for k in keys]
        await SyncClient(sat, url, rnd=random.Random(0)).sync_once(30)
        if pending:
            sat.pub([Action(SITE, pending, Cmd.NEW, {"name": pending})])
        return uids
    finally:
        sat.close()


async def test_a_replica_stores_no_evt_uid_rows_and_reads_the_uids_from_its_audits(
        tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            uids = await _synced(tmp_path / "a", hub.url, project, "s1", "s2", "s3")
        db = DataDir(tmp_path / "a").db_file
        assert _version(db) == dataformat.FORMAT == 2
        assert _rows(db, "SELECT count(*) FROM evt_uid") == [(0,)]
        assert sorted(_rows(db, "SELECT uid FROM evt_audit")) == sorted((u,) for u in uids)
        # the hub keeps its exactly-once table
        assert {u: led.uid_rev(u) for u in uids} == dict(
            _rows(tmp_path / "hub.db", "SELECT uid, rev FROM evt_uid"))  # type: ignore[arg-type]
        for ro in (False, True):
            sat = Satellite(tmp_path / "a", read_only=ro)
            try:
                r = sat.replica.ledger
                assert [r.uid_rev(u) for u in uids] == [led.uid_rev(u) for u in uids]
                assert r.uid_rev("not-applied") is None
                assert r.applied_uids([*uids, "x"]) == {u: led.uid_rev(u) for u in uids}
            finally:
                sat.close()
    finally:
        led.close()


def test_applied_uids_from_audits_are_the_first_revision_of_each(tmp_path: Path,
                                                                   project: Project) -> None:
    """Many uids (past one query's 500), a uid at two revisions (its first counts, as
    ``evt_uid``'s first row did), audits without a uid, a uid with a NUL and quotes."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'r.db'}", project, layout="by-id")
    led.uid_table, led.uids_in_audits = False, True
    try:
        n = 1200
        odd = 'a"b\x00c\'d'
        uid = [f"u{i}" for i in range(n)]
        uid[7], uid[900], uid[901], uid[1000] = "", "u3", odd, ""  # u3 again at 901
        evs = [Event(i + 1, 100 + i, SITE, f"k{i}", Cmd.NEW, {"name": "x"}) for i in range(n)]
        led.replicate(100 + n - 1, evs, [Audit(100 + i, 1, 1, "bob", None, u)
                                         for i, u in enumerate(uid)])
        assert _rows(tmp_path / "r.db", "SELECT count(*) FROM evt_uid") == [(0,)]
        want = {u: 100 + i for i, u in reversed(list(enumerate(uid))) if u}
        assert want["u3"] == 103 and want[odd] == 1001
        assert led.applied_uids([*want, "nope", "u7"]) == want
        assert led.uid_rev("u3") == 103 and led.uid_rev("") is None
        assert led.applied_uids([]) == {}
    finally:
        led.close()


async def test_a_session15_replica_is_upgraded_at_its_first_writable_open(
        tmp_path: Path, project: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            uids = await _synced(tmp_path / "a", hub.url, project, "s1", "s2")
            db = DataDir(tmp_path / "a").db_file
            old = _as_session15(db)
            assert len(old) == 2
            # a reader changes nothing (and reads the uids all the same)
            ro = Satellite(tmp_path / "a", read_only=True)
            try:
                assert [ro.replica.ledger.uid_rev(u) for u in uids] == [led.uid_rev(u)
                                                                        for u in uids]
            finally:
                ro.close()
            assert _version(db) == 1
            assert _rows(db, "SELECT uid, rev FROM evt_uid ORDER BY uid") == old
            sat = Satellite(tmp_path / "a")
            try:
                assert _version(db) == 2
                assert _rows(db, "SELECT count(*) FROM evt_uid") == [(0,)]
                assert [sat.replica.ledger.uid_rev(u) for u in uids] == [led.uid_rev(u)
                                                                         for u in uids]
                more = sat.pub([Action(SITE, "s3", Cmd.NEW, {"name": "C"})])
                await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(30)
                assert sat.replica.ledger.uid_rev(more) == led.uid_rev(more) is not None
            finally:
                sat.close()
            assert _rows(db, "SELECT count(*) FROM evt_uid") == [(0,)]
            assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    finally:
        led.close()


def test_a_kill_during_the_upgrade_leaves_the_session15_file_whole(
        tmp_path: Path, project: Project) -> None:
    d = tmp_path / "a"
    sat = Satellite(d, project)
    try:
        evs = [Event(i + 1, 100 + i, SITE, f"k{i}", Cmd.NEW, {"name": "x"}) for i in range(50)]
        sat.replica.apply(149, evs, audits=[Audit(100 + i, 1, 1, "bob", None, f"u{i}")
                                            for i in range(50)])
    finally:
        sat.close()
    db = DataDir(d).db_file
    old = _as_session15(db)
    assert len(old) == 50
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OUTPOST_CRASH_AT": "sat.mid_format_upgrade"}
    code = ("import sys; from pathlib import Path; from core.satellite.satellite import "
            "Satellite; Satellite(Path(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(d)], env=env, cwd=ROOT,
                          capture_output=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    # the file as session 15 left it: its format, its evt_uid rows, whole
    assert _version(db) == 1
    assert _rows(db, "SELECT uid, rev FROM evt_uid ORDER BY uid") == old
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    sat = Satellite(d)
    try:
        assert _version(db) == 2 and sat.replica.ledger.uid_rev("u7") == 107
    finally:
        sat.close()
    assert _rows(db, "SELECT count(*) FROM evt_uid") == [(0,)]


async def test_carry_finds_the_accepted_edits_in_an_upgraded_replica(
        tmp_path: Path, project: Project) -> None:
    """``outpost carry`` (with and without ``--accepted``) into a replica upgraded from
    format 1: the edits the hub holds are found in its audits, not taken as lost."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            acc = await _synced(tmp_path / "old", hub.url, project, "s1", "s2", pending="s9")
            await _synced(tmp_path / "new", hub.url, project)
        _as_session15(DataDir(tmp_path / "new").db_file)
    finally:
        led.close()
    new = Satellite(tmp_path / "new", project)
    ro = Satellite(tmp_path / "old", read_only=True)
    try:
        assert _rows(DataDir(tmp_path / "new").db_file, "SELECT count(*) FROM evt_uid") == [(0,)]
        plain = plan_carry(ro, new)
        assert plain.accepted_left == [] and len(plain.items) == 1
        # --accepted carries no accepted edit: the new replica holds them all
        both = plan_carry(ro, new, accepted=True)
        assert [i.trans.uid for i in both.items] == [i.trans.uid for i in plain.items]
        assert not set(acc) & {i.trans.uid for i in both.items}
    finally:
        ro.close()
        new.close()


async def test_a_backup_of_a_format2_replica_restores_with_its_uids(
        tmp_path: Path, project: Project) -> None:
    """``core.ledger.ops`` on a replica of format 2 (no ``evt_uid`` rows): verify finds
    nothing, and a backup restored as a ledger gets its applied uids back from the audits
    (the restored ledger's exactly-once table is whole)."""
    from core.ledger import ops
    from core.ledger.sql import open_ledger

    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            uids = await _synced(tmp_path / "a", hub.url, project, "s1", "s2")
        want = {u: led.uid_rev(u) for u in uids}
    finally:
        led.close()
    rep = open_ledger(DataDir(tmp_path / "a").db_file, project, create=False)
    try:
        assert ops.verify(rep) == []
        info = ops.backup(rep, tmp_path / "b.ledger")
        assert info.audits == 2 and info.uids == 0
    finally:
        rep.close()
    back = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'r.db'}", project)
    try:
        assert not back.uids_in_audits and {u: back.uid_rev(u) for u in uids} == want
        assert dict(_rows(tmp_path / "r.db", "SELECT uid, rev FROM evt_uid")) == want
    finally:
        back.close()


async def test_carry_dry_run_leaves_a_session15_target_as_it_is(
        tmp_path: Path, project: Project) -> None:
    """``outpost carry --dry-run`` reads NEW_DIR only: it does not upgrade its data format,
    which session 15's Outpost would then refuse (merge review 16a)."""
    from tests.support.procs import cli

    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            await _synced(tmp_path / "old", hub.url, project, "s1", pending="s9")
            for args in (("connect", hub.url), ("pub", SITE, "s2", "new", "name=B"),
                         ("sync", "--once")):
                rc, _, err = await cli(tmp_path / "new", *args)
                assert rc == 0, err
    finally:
        led.close()
    db = DataDir(tmp_path / "new").db_file
    old_rows = _as_session15(db)
    rc, out, err = await cli(tmp_path / "new", "carry", str(tmp_path / "old"), "--dry-run")
    assert rc == 0, err
    assert out["dry_run"] and out["carried"] == 1, out
    assert _version(db) == 1
    assert _rows(db, "SELECT uid, rev FROM evt_uid ORDER BY uid") == old_rows
