"""A hub rolled back at the file level to before events a replica holds, which then runs with
its clock *behind* the lost revisions (a VM snapshot reverted with its guest clock, the file
moved to a host whose clock lags): its new events get revisions between the rollback point
and the lost ones, and once its revision passes the replica's no revision check sees it
(review "lost" 14, open HIGH). The satellite sends its last event at or before its revision
in its first ``evt.sat`` (``last``, ours); the hub refuses the request when its own differs:
nothing published, nothing stored, sync stops naming ``outpost carry --accepted``. Real hubs
on 127.0.0.1 over real SQLite files copied back as an operator does; the hub's clock is the
injected revision clock of :class:`hubserver.server.Hub`. And no false alarm: a hub that
published more, a catch-up cut between batches (a satellite process killed at
``sat.mid_catchup``), a transaction larger than ``lim``, a replica with nothing yet."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ConfigError, HubError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.revision import Rev, now_rev
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.format import sync_problem
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here, uid_counts
from tests.satellite.test_cli import cli
from tests.satellite.test_file_rollback14 import CRASHED, nightly, revs, roll_back
from tests.support.procs import receipts, run

SITE = "field.site"


class Clock:
    """The hub's revision clock, set by the test (the ledger makes each revision strictly
    greater than the last: a clock behind it gives last + 1 ms)."""

    def __init__(self) -> None:
        self.t: Rev = now_rev()

    def __call__(self) -> Rev:
        return self.t


def keys(d: Path) -> set[str]:
    sat = Satellite(d, read_only=True)
    try:
        return set(sat.keys(SITE))
    finally:
        sat.close()


def own_unchecked(d: Path, clear: bool = True) -> list[tuple[str, Rev]] | None:
    """What ``d``'s once-per-replica check of its accepted edits asks about (session 16),
    ``clear``: after forgetting it was asked (a replica made before session 16); asserts
    nothing is marked lost by the hub."""
    sat = Satellite(d)
    try:
        if clear:
            sat.queue.set_meta("own_checked", None)
        assert sat.lost_by_hub() == []
        return sat.own_unchecked(sat.rev())
    finally:
        sat.close()


async def lagging_rollback(tmp_path: Path, project: Project) -> tuple[SqlLedger, Clock, str]:
    """``x`` makes s1 and syncs; the hub's file is copied; ``x`` mods s1 one second later and
    syncs (accepted, its events held); the file is put back and the hub started again with
    its clock at the rollback point: ``w`` publishes w0 and w1 (revisions between the
    rollback point and ``x``'s), then, the clock past ``x``'s revision, w2. The hub's
    revision is past ``x``'s, its ids past ``x``'s last. The (open) ledger and the mod's uid."""
    x, w, db = tmp_path / "x", tmp_path / "w", tmp_path / "hub.db"
    clock = Clock()
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0, clock=clock) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            pub_here(x, "s1", "new", name="A")
            await sync_here(x)
            nightly(db, tmp_path / "nightly.db")
            point = led.rev()
            clock.t = point + 1000
            uid = pub_here(x, "s1", "mod", notes="after the nightly")
            await sync_here(x)
    finally:
        led.close()
    mine, acked = revs(x)
    assert mine == acked > point  # accepted, its events held: fully synced
    roll_back(db, tmp_path / "nightly.db")
    clock.t = point  # the snapshot's clock: behind the revisions it lost
    led = SqlLedger(f"sqlite:///{db}", project)
    assert led.rev() == point and led.uid_rev(uid) is None
    async with Hub(led, port=0, clock=clock) as hub:
        pub_here(w, "w0", "new", project, name="W0")
        pub_here(w, "w1", "new", project, name="W1")
        await sync_here(w, hub.url, project)
        assert point < led.rev() < mine  # between the rollback point and x's revision
        clock.t = mine + 1000
        pub_here(w, "w2", "new", project, name="W2")
        await sync_here(w, hub.url, project)
    assert led.rev() > mine and led.last_id() > 2  # past x's revision and its last event id
    return led, clock, uid


async def test_a_rolled_back_hub_whose_clock_lags_stops_sync_and_names_accepted(
        tmp_path: Path, project: Project) -> None:
    """Before: the catch-up from x's revision skipped w0 and w1 as "already held" and said
    "synced"; x kept the lost mod as confirmed, and never got w0 and w1: diverged for good."""
    x = tmp_path / "x"
    led, clock, uid = await lagging_rollback(tmp_path, project)
    try:
        p = pub_here(x, "x1", "new", name="pending")  # must not reach the hub
        async with Hub(led, port=0, clock=clock) as hub:
            before = (revs(x), receipts(x), keys(x))
            sat = Satellite(x)
            client = SyncClient(sat, hub.url, rnd=random.Random(0))
            try:
                with pytest.raises(HubError) as err:
                    await client.sync_once(20)
                app = client.machine.info.last_error  # what the app shows
                phase = client.machine.phase.value
            finally:
                sat.close()
            said = str(err.value)
            assert "history up to this replica's revision" in said, said
            assert "the hub lost or reused revisions this replica holds" in said, said
            assert "`outpost carry OLD_DIR --data NEWDIR --accepted`" in said, said
            assert phase == "stopped"
            assert sync_problem(app) == "Sync stopped: the hub lost revisions this replica holds"
            # nothing stored here, nothing published there
            assert (revs(x), receipts(x), keys(x)) == before
            assert led.uid_rev(p) is None and led.state(SITE, "x1") is None
            # the edit the hub lost is named (it showed confirmed, with nothing to say so)
            rc, out, e = await cli(x, "status")
            lost = json.loads(out)["lost_by_hub"]
            assert rc == 0 and lost == [{"uid": uid, "records": [f"{SITE} s1"]}], out
            rc, out, e = await cli(x, "status", json_out=False)
            assert f"1 edit the hub accepted and lacks (its file was rolled back): {uid}" \
                in out and "--accepted" in out, out
            rc, out, e = await cli(x, "show", SITE)
            states = {r["key"]: r["state"] for r in json.loads(out)}
            assert states == {"s1": "lost by hub", "x1": "pending"}, states
            # `outpost connect` (and the app's --hub, its connection settings) refuse it
            rc, _, e = await cli(x, "connect", hub.url)
            assert rc == 1 and "the hub lost or reused revisions" in e, e
            assert f"carry {x} --data DIR --accepted" in e, e
            assert DataDir(x).load_config().hub != hub.url
            from desktop.app import WindowSpec, check_other_hub  # the app's settings' check
            with pytest.raises(ConfigError) as cerr:
                await check_other_hub(DataDir(x), WindowSpec(x, hub.url, ""), "ws://old:1")
            assert "the hub lost or reused revisions" in str(cerr.value), cerr.value
            assert (revs(x), receipts(x), keys(x)) == before
            # `outpost sync --once` says the same and exits 1 (the hub back at its address)
            dd = DataDir(x)
            dd.save_config(replace(dd.load_config(), hub=hub.url))
            rc, _, e = await cli(x, "sync", "--once", "--timeout", "20")
            assert rc == 1 and "the hub lost or reused" in e, e
            assert led.uid_rev(p) is None
            # what it says keeps the edits: a new directory, carry --accepted
            new = tmp_path / "new"
            assert (await cli(new, "connect", hub.url))[0] == 0
            await sync_here(new)
            rc, out, e = await cli(new, "carry", str(x), "--accepted")
            res = json.loads(out)
            assert rc == 0 and res["lost"] == 1 and p in res["uids"], e
            await sync_here(new)
            rc, out, e = await cli(new, "status")
            assert json.loads(out)["lost_by_hub"] == [], out
            assert uid_counts(led)[uid] == 1 and uid_counts(led)[p] == 1
            s1 = led.state(SITE, "s1")
            assert s1 is not None and s1["notes"] == "after the nightly"
            assert keys(new) == {"s1", "w0", "w1", "w2", "x1"}
    finally:
        led.close()


async def test_no_false_alarm_when_the_hub_published_more_or_a_catch_up_was_cut(
        tmp_path: Path, project: Project) -> None:
    """The check compares the last event at or before the replica's revision: a hub that
    published more since, a replica left between two catch-up batches (killed), a revision
    of more events than ``lim`` (never cut), all sync on."""
    x, w, db = tmp_path / "x", tmp_path / "w", tmp_path / "hub.db"
    led = SqlLedger(f"sqlite:///{db}", project)
    try:
        async with Hub(led, port=0) as hub:
            assert (await cli(x, "connect", hub.url))[0] == 0
            pub_here(x, "s1", "new", name="A")
            await sync_here(x)
            # more published since (x's revision is the hub's last event's)
            for i in range(4):
                pub_here(w, f"a{i}", "new", project, name=f"A{i}")
            await sync_here(w, hub.url, project)
            await sync_here(x)
            assert keys(x) >= {"a0", "a3"}
            # a transaction of 5 actions (one revision), then 6 single ones; x is cut
            # between two batches of 3 (killed): its revision is a batch's last
            sat = Satellite(w, project)
            try:
                sat.pub([Action(SITE, f"b{i}", Cmd.NEW, {"name": f"B{i}"}) for i in range(5)])
            finally:
                sat.close()
            for i in range(6):
                pub_here(w, f"c{i}", "new", project, name=f"C{i}")
            await sync_here(w, hub.url, project)
            pub_here(x, "x1", "new", name="pending")
            rc, _, err = await run("sync", str(x), hub.url, "--lim", "3",
                                   crash="sat.mid_catchup")
            assert rc == CRASHED, err
            mine = revs(x)[0]
            assert 0 < mine < led.rev()
            # replicas made before session 16 are asked once about the revisions of their
            # accepted edits (session 16): x cut between two batches, w's 5-action one
            for d in (x, w):
                assert own_unchecked(d)
            # the next sync goes on from there (by a process too, with the same small lim)
            rc, _, err = await run("sync", str(x), hub.url, "--lim", "3")
            assert rc == 0, err
            await sync_here(w, hub.url, project)
            for d in (x, w):
                assert own_unchecked(d, clear=False) is None
            assert revs(x)[0] == led.rev()
            assert keys(x) == set(led.keys(SITE))
            assert [s for _, s, _, _ in receipts(x)] == ["accepted", "accepted"]
            # a replica with nothing yet
            await sync_here(tmp_path / "y", hub.url, project)
            assert keys(tmp_path / "y") == set(led.keys(SITE))
    finally:
        led.close()
