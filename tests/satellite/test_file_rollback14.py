"""A hub rolled back at the file level (a copy of last night's SQLite file, a disk or VM
snapshot: no restore point tells the satellites) after it accepted an edit (worst-day review
14). The replica holds the ack; sync never says "synced" over the loss: it stops and names
``outpost carry --accepted``, and carry without ``--accepted`` names the accepted edits the
hub lacks. Real hubs on 127.0.0.1 over real SQLite files, the file copied as an operator
does; the crash between catch-up batches is a real satellite process killed at
``sat.mid_catchup``; the commands whose words are checked are the CLI."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from core.errors import HubError
from core.ledger.sql import SqlLedger
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.format import sync_problem
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here, uid_counts
from tests.satellite.test_cli import cli
from tests.support.procs import receipts, run

SITE = "field.site"
CRASHED = 137


def nightly(db: Path, to: Path) -> None:
    """What `sqlite3 hub.sqlite ".backup nightly.sqlite"` does: a copy of the file, no
    restore point."""
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(to)) as dst:
        src.backup(dst)


def roll_back(db: Path, copy: Path) -> None:
    """The operator puts last night's copy back (the hub stopped)."""
    for tail in ("-wal", "-shm"):
        Path(f"{db}{tail}").unlink(missing_ok=True)
    shutil.copyfile(copy, db)


def revs(d: Path) -> tuple[int, int]:
    """(replica revision, highest revision the hub acked an edit of it at)."""
    sat = Satellite(d, read_only=True)
    try:
        return sat.rev(), sat.acked_rev()
    finally:
        sat.close()


async def acked_then_cut_short(tmp_path: Path, project: Project, db: Path) -> str:
    """``x`` makes s1 on a hub over ``db``, ``w`` then 12 records; the hub's file is copied to
    ``nightly.db``; ``x`` mods s1 and syncs in a process killed between two catch-up batches
    (3 events each): the hub accepted the mod, ``x`` holds the ack, not its events. The
    mod's uid."""
    x, w = tmp_path / "x", tmp_path / "w"
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            pub_here(x, "s1", "new", name="A")
            await sync_here(x)
            for i in range(12):
                pub_here(w, f"w{i}", "new", project, name=f"W{i}")
            await sync_here(w, hub.url, project)
            nightly(db, tmp_path / "nightly.db")
            uid = pub_here(x, "s1", "mod", notes="after the nightly")
            rc, _, err = await run("sync", str(x), hub.url, "--lim", "3",
                                   crash="sat.mid_catchup")
            assert rc == CRASHED, err
            assert (led.uid_rev(uid) or 0) > 0
    finally:
        led.close()
    rev, acked = revs(x)
    assert 0 < rev < acked  # the ack is stored, the mod's events are not
    return uid


async def test_a_file_rollback_behind_an_accepted_edit_stops_sync_and_names_accepted(
        tmp_path: Path, project: Project) -> None:
    """Before: the rolled-back hub's revision was past the replica's (not its ack's), the
    catch-up said "synced, 0 pending, 0 conflicts" and `show` listed the mod confirmed while
    the hub had none of it."""
    x, db = tmp_path / "x", tmp_path / "hub.db"
    uid = await acked_then_cut_short(tmp_path, project, db)
    roll_back(db, tmp_path / "nightly.db")
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        assert led.uid_rev(uid) is None
        async with Hub(led, port=0) as hub:
            before = (revs(x), receipts(x))
            with pytest.raises(HubError) as err:
                await sync_here(x, hub.url, timeout=20)
            said = str(err.value)
            assert "at which it accepted an edit of this replica" in said, said
            assert "--data NEWDIR --accepted" in said, said
            assert (revs(x), receipts(x)) == before  # nothing sent or stored
            # `outpost connect` (and the app's --hub) refuse the hub the same way
            rc, _, e = await cli(x, "connect", hub.url)
            assert rc == 1 and "the hub accepted an edit of it at" in e, e
            assert f"carry {x} --data DIR --accepted" in e, e
            assert (revs(x), receipts(x)) == before
            assert led.uid_rev(uid) is None
            # the hub publishes again: its revision passes the ack's; the catch-up that
            # would pass the accepted edit without its events stops, nothing of it stored
            w = tmp_path / "w"
            pub_here(w, "w99", "new", project, name="after the rollback")
            await sync_here(w, hub.url, project)
            assert led.rev() > revs(x)[1]
            with pytest.raises(HubError) as err:
                await sync_here(x, hub.url, timeout=20)
            said = str(err.value)
            assert f"without the edit {uid}" in said and "--accepted" in said, said
            assert "stopped" in said, said
            assert revs(x)[0] < revs(x)[1]  # not past the accepted edit
            # session 15: `status` names the edit the hub lacks, `show` marks its record
            rc, out, _ = await cli(x, "status")
            assert [d["uid"] for d in json.loads(out)["lost_by_hub"]] == [uid], out
            rc, out, _ = await cli(x, "show", SITE, "s1")
            assert json.loads(out)["state"] == "lost by hub", out
            # what it says keeps the edit: a new directory, carry --accepted
            new = tmp_path / "new"
            assert (await cli(new, "connect", hub.url))[0] == 0
            await sync_here(new)
            rc, out, err2 = await cli(new, "carry", str(x), "--accepted")
            assert rc == 0 and json.loads(out)["lost"] == 1, err2
            await sync_here(new)
            assert uid_counts(led)[uid] == 1
            s1 = led.state(SITE, "s1")
            assert s1 is not None and s1["notes"] == "after the nightly"
    finally:
        led.close()


async def test_the_behind_advice_and_carry_name_the_accepted_edit_the_hub_lost(
        tmp_path: Path, project: Project) -> None:
    """g1 accepted (its events held), the hub's file rolled back before it, g2 queued.
    Before: the "hub is behind" advice was `outpost carry OLD_DIR --data NEWDIR` (no
    --accepted), and that carry took g2, said nothing of g1 (`lost: 0` in --dry-run
    --json)."""
    g, db = tmp_path / "g", tmp_path / "hub.db"
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0) as hub:
            assert (await cli(g, "connect", hub.url))[0] == 0
            pub_here(g, "g0", "new", name="G0")
            await sync_here(g)
            nightly(db, tmp_path / "nightly.db")
            g1 = pub_here(g, "g1", "new", name="G1 accepted, then lost")
            await sync_here(g)
    finally:
        led.close()
    rev, acked = revs(g)
    assert rev == acked  # fully synced: the hub's revision is behind the replica's
    roll_back(db, tmp_path / "nightly.db")
    g2 = pub_here(g, "g2", "new", name="G2 pending")
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0) as hub:
            sat = Satellite(g)
            client = SyncClient(sat, hub.url, rnd=random.Random(0))
            try:
                with pytest.raises(HubError) as err:
                    await client.sync_once(20)
                app = client.machine.info.last_error  # what the app shows
            finally:
                sat.close()
            said = str(err.value)
            assert "`outpost carry OLD_DIR --data NEWDIR --accepted`" in said, said
            assert "those this hub accepted after its revision" in said, said
            assert "--data NEWDIR --accepted`" in app and "accepted and lost" in app, app
            assert sync_problem(app) == "Hub is behind this replica"
            new = tmp_path / "new"
            assert (await cli(new, "connect", hub.url))[0] == 0
            await sync_here(new)
            # as the advice said before (no --accepted): g1 is named, in --json and in text
            rc, out, e = await cli(new, "carry", str(g), "--dry-run")
            res = json.loads(out)
            assert rc == 0 and res["uids"] == [g2] and res["lost"] == 0, e
            assert res["accepted_left"] == 1 and res["accepted_left_uids"] == [g1], res
            rc, out, e = await cli(new, "carry", str(g), json_out=False)
            assert rc == 0, e
            assert "1 accepted edit this hub does not have: add --accepted" in out, out
            assert g1 in e and "add --accepted" in e, e
            rc, out, e = await cli(new, "carry", str(g), "--accepted")
            res = json.loads(out)
            assert rc == 0 and res["uids"] == [g1] and res["lost"] == 1, e
            assert res["accepted_left"] == 0 and res["already"] == 1, res
            await sync_here(new)
            assert set(led.keys(SITE)) == {"g0", "g1", "g2"}
            # nothing left to name once the hub holds it again
            rc, out, e = await cli(new, "carry", str(g))
            assert rc == 0 and json.loads(out)["accepted_left"] == 0, out
    finally:
        led.close()
