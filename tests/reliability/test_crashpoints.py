"""Crash points: a real satellite or hub process is killed (exit 137, like ``kill -9``) at
each named point of :mod:`core.crashpoints`; after a restart nothing is lost or doubled, the
replica equals the hub and ``PRAGMA integrity_check`` is ok.

Fast tier: 3 runs per point; soak (``OUTPOST_SOAK=1``): 20 runs per point.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.crashpoints import POINTS
from core.ledger.sql import SqlLedger
from core.satellite.api import ReceiptState
from core.schema import Project
from tests.reliability.conftest import SOAK
from tests.reliability.satdriver import TOP, open_sat
from tests.support.procs import HubProc, integrity, ledger_uids, run, sat_db

RUNS = 20 if SOAK else 3
CRASHED = 137


def check_sat(data: Path, hub_db: Path, project: Project) -> dict[str, int]:
    """After a clean sync: every receipt accepted exactly once at the hub's rev for its uid,
    the replica equals the hub. Returns {uid: rev}."""
    assert integrity(sat_db(data)) == "ok"
    counts = ledger_uids(hub_db)
    sat = open_sat(str(data))
    hub = SqlLedger(f"sqlite:///{hub_db}", project)
    try:
        recs = sat.receipts()
        assert recs, "the run queued nothing"
        out = {}
        for r in recs:
            assert r.state == ReceiptState.ACCEPTED, (r.uid, r.state, r.err)
            assert counts.get(r.uid) == 1, f"{r.uid} is {counts.get(r.uid, 0)} times in the hub"
            assert hub.uid_rev(r.uid) == r.rev
            out[r.uid] = r.rev
        assert sat.replica.rev() == hub.rev()
        assert sat.replica.read.states(TOP) == hub.states(TOP)
        return out
    finally:
        sat.close()
        hub.close()


async def crash_run(point: str, hub: HubProc, data: Path, project: Project) -> str:
    """One run of one crash point; returns a note for the report."""
    url = hub.url
    if point in ("sat.before_local_commit", "sat.after_local_commit"):
        rc, _, err = await run("pub", str(data), "1", crash=point)
        assert rc == CRASHED, err
        assert integrity(sat_db(data)) == "ok"
        sat = open_sat(str(data))
        try:
            pending = sat.status().pending
        finally:
            sat.close()
        # before the commit nothing is queued; after it the edit is durable though the
        # process died before pub() returned
        assert pending == (0 if point == "sat.before_local_commit" else 1)
        rc, _, err = await run("pub", str(data), "1")
        assert rc == 0, err
    elif point == "hub.after_append_before_ack":
        rc, _, err = await run("pub", str(data), "2")
        assert rc == 0, err
        await hub.stop()
        await hub.start(crash=point)
        rc, _, err = await run("sync", str(data), url, "--timeout", "2")
        assert rc == 1, "the sync should fail: the hub died before acking"
        assert await hub.wait() == CRASHED
        assert integrity(hub.db) == "ok"
        sat = open_sat(str(data))
        try:
            assert sat.status().pending == 2, "an unacked transaction left the queue"
        finally:
            sat.close()
        await hub.start()
    else:
        lim = "3" if point == "sat.mid_catchup" else "5000"
        rc, _, err = await run("sync", str(data), url, "--lim", lim, "--pub", "2", crash=point)
        assert rc == CRASHED, err
        assert integrity(sat_db(data)) == "ok"
        if point == "sat.after_ack_before_record":
            sat = open_sat(str(data))
            try:
                assert sat.status().pending == 2, "the ack was recorded before the crash point"
            finally:
                sat.close()
    rc, _, err = await run("sync", str(data), url, "--lim", "3")
    assert rc == 0, err
    check_sat(data, hub.db, project)
    return point


async def crash_point_runs(point: str, runs: int, tmp_path: Path, project: Project) -> None:
    hub = HubProc(tmp_path / "hub.db")
    await hub.start()
    try:
        # history for catch-up batches (sat.mid_catchup needs more events than one batch)
        seed = tmp_path / "seed"
        rc, _, err = await run("pub", str(seed), "8")
        assert rc == 0, err
        rc, _, err = await run("sync", str(seed), hub.url)
        assert rc == 0, err
        t0 = time.monotonic()
        for i in range(runs):
            await crash_run(point, hub, tmp_path / f"sat{i}", project)
        # nothing unexpected: every uid in the hub came from one of the satellites
        counts = ledger_uids(hub.db)
        assert all(n == 1 for n in counts.values())
        print(f"CRASHPOINT {point}: {runs} runs ok in {time.monotonic() - t0:.1f} s; "
              f"{len(counts)} transactions in the hub, each exactly once")
    finally:
        await hub.stop()
    assert integrity(hub.db) == "ok"


# the sync's crash points (ops.* are a restore's: tests/hub/test_ops_review9.py; an
# import's: tests/satellite/test_import_whole.py; resolve_many's:
# tests/satellite/test_resolve_many14.py; the data format upgrade's, at the first writable
# open of a directory an older Outpost wrote: tests/satellite/test_uid_drop16.py)
SYNC_POINTS = sorted(p for p in POINTS if not p.startswith("ops.")
                     and p not in ("sat.mid_import", "sat.mid_resolve_many",
                                   "sat.mid_format_upgrade"))


@pytest.mark.parametrize("point", SYNC_POINTS)
@pytest.mark.timeout(300)
async def test_crash_point(point: str, tmp_path: Path, project: Project) -> None:
    await crash_point_runs(point, 3, tmp_path, project)


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.parametrize("point", SYNC_POINTS)
@pytest.mark.timeout(1800)
async def test_crash_point_soak(point: str, tmp_path: Path, project: Project) -> None:
    await crash_point_runs(point, RUNS, tmp_path, project)
