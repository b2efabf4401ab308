"""Real-process tests (issue: satellite, item 6): ``outpost-hub serve`` and the headless CLI as
subprocesses on 127.0.0.1, killed with SIGKILL mid-sync and mid-publish, then restarted.

After the restarts: every accepted transaction is in the hub's ledger exactly once (its uid in
one audit row, at the revision the satellite recorded), nothing is pending or lost, and the
satellites' replicas equal each other and the hub. A satellite clock off by a day
(``OUTPOST_CLOCK_OFFSET_MS``) changes no outcome.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
from pathlib import Path

import pytest

from core.revision import from_datetime, parse_rev
from tests.support.procs import (
    HubProc,
    cli,
    hub_counts,
    hub_uids,
    receipts,
    spawn_sync,
)

DAY_MS = 86_400_000
pytestmark = pytest.mark.timeout(300)


def _now_rev() -> int:
    from datetime import UTC, datetime

    return from_datetime(datetime.now(UTC))


async def _export(data: Path) -> list[dict[str, str]]:
    rc, out, err = await cli(data, "export", "field.site", "--no-rev")  # the data only
    assert rc == 0, err
    return sorted(csv.DictReader(io.StringIO(out)), key=lambda r: r["key"])


def _csv(path: Path, n: int, tag: str) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "name", "region"])
        for i in range(n):
            w.writerow([f"{tag}{i:05d}", f"site {tag}{i}", "north"])
    return path


async def _check_exactly_once(hub: HubProc, sats: list[Path]) -> None:
    """Invariants on the stopped hub's file and the satellites' receipts."""
    applied = hub_uids(hub.db)
    for uid, revs in applied.items():
        assert len(revs) == 1, f"uid {uid} applied {len(revs)} times: {revs}"
    n_audit = len(applied)
    _, n_revs = hub_counts(hub.db)
    assert n_revs == n_audit, "every revision belongs to exactly one transaction"
    for data in sats:
        for uid, state, rev, _ in receipts(data):
            assert state in ("accepted", "rejected", "resolved"), (data.name, uid, state)
            if state == "accepted":
                assert applied.get(uid) == [rev], (uid, rev, applied.get(uid))
            else:
                assert uid not in applied, uid


async def test_kill9_satellite_during_sync(tmp_path: Path) -> None:
    hub = HubProc(tmp_path / "hub.db")
    await hub.start()
    a, b = tmp_path / "a", tmp_path / "b"
    try:
        for d in (a, b):
            rc, _, err = await cli(d, "connect", hub.url)
            assert rc == 0, err
        rc, out, err = await cli(a, "import", "field.site", str(_csv(tmp_path / "a.csv", 3000,
                                                                     "a")))
        assert rc == 0 and out["rows"] == 3000, err
        for i in range(3):
            rc, _, err = await cli(a, "pub", "field.site", f"a{i:05d}", "mod", f"name=m{i}")
            assert rc == 0, err
        # 1. killed right after sending its queue, before reading any answer (crash point)
        rc, _, _ = await cli(a, "sync", "--once", "--timeout", "30",
                             OUTPOST_CRASH_AT="sat.after_send")
        assert rc == 137
        # 2. SIGKILL at random moments of a running `sync` (seeded, bounded)
        rnd = random.Random(7)
        for _ in range(4):
            p = await spawn_sync(a)
            await asyncio.sleep(rnd.uniform(0.3, 1.5))
            p.kill()
            assert await asyncio.wait_for(p.wait(), 10) == -9
            rc, st, _ = await cli(a, "status")
            assert rc == 0
        # meanwhile B edits offline; then both sync to the end
        rc, _, err = await cli(b, "pub", "field.site", "b1", "new", "name=from b")
        assert rc == 0, err
        for d in (a, b, a):
            rc, st, err = await cli(d, "sync", "--once", "--timeout", "60")
            assert rc == 0, err
            assert st["pending"] == 0 and st["conflicts"] == 0, st
        rows_a, rows_b = await _export(a), await _export(b)
        assert rows_a == rows_b and len(rows_a) == 3001
        assert {r["key"]: r["name"] for r in rows_a}["a00002"] == "m2"
        rc, st_a, _ = await cli(a, "status")
        rc, st_b, _ = await cli(b, "status")
        assert st_a["rev"] == st_b["rev"] == st_a["hub_rev"]
    finally:
        await hub.stop()
    await _check_exactly_once(hub, [a, b])
    assert [s for _, s, _, _ in receipts(a)] == ["accepted"] * 9  # 6 import batches + 3 mods


async def test_kill9_hub_during_publish(tmp_path: Path) -> None:
    hub = HubProc(tmp_path / "hub.db")
    a, b = tmp_path / "a", tmp_path / "b"
    # 1. the hub dies after committing the satellite's first transaction, before the ack
    await hub.start(crash="hub.after_append_before_ack")
    try:
        for d in (a, b):
            rc, _, err = await cli(d, "connect", hub.url)
            assert rc == 0, err
        for i in range(3):
            rc, _, err = await cli(a, "pub", "field.site", f"k{i}", "new", f"name=n{i}")
            assert rc == 0, err
        rc, _, err = await cli(a, "sync", "--once", "--timeout", "5")
        assert rc != 0 and err, "the hub died: sync --once must fail with the reason"
        assert await hub.wait(10) == 137
        rc, st, _ = await cli(a, "status")
        assert st["pending"] == 3, "no ack arrived: all still pending"
        # 2. restart; SIGKILL the hub at a random moment while A pushes a big import
        await hub.start()
        rc, _, err = await cli(a, "import", "field.site", str(_csv(tmp_path / "a.csv", 4000,
                                                                   "x")))
        assert rc == 0, err
        sync = await spawn_sync(a)
        await asyncio.sleep(random.Random(3).uniform(0.8, 1.5))
        await hub.kill()
        await hub.start()
        sync.kill()
        await asyncio.wait_for(sync.wait(), 10)
        for d in (a, b):
            rc, st, err = await cli(d, "sync", "--once", "--timeout", "60")
            assert rc == 0, err
            assert st["pending"] == 0 and st["conflicts"] == 0, st
        rows = await _export(b)
        assert rows == await _export(a) and len(rows) == 4003
    finally:
        await hub.stop()
    await _check_exactly_once(hub, [a, b])


async def _skew_scenario(tmp_path: Path, offset: int) -> tuple[object, ...]:
    """Two satellites, one record, a collision and a clean merge; the outcome in plain data."""
    hub = HubProc(tmp_path / "hub.db")
    await hub.start()
    a, b = tmp_path / "a", tmp_path / "b"
    skew = {"OUTPOST_CLOCK_OFFSET_MS": str(offset)}
    before = _now_rev()
    try:
        for d in (a, b):
            assert (await cli(d, "connect", hub.url, **skew))[0] == 0
        assert (await cli(a, "pub", "field.site", "s1", "new", "name=one", **skew))[0] == 0
        for d in (a, b):
            assert (await cli(d, "sync", "--once", **skew))[0] == 0
        assert (await cli(a, "pub", "field.site", "s1", "mod", "name=A", **skew))[0] == 0
        assert (await cli(b, "pub", "field.site", "s1", "mod", "name=B", **skew))[0] == 0
        assert (await cli(b, "pub", "field.site", "s1", "mod", "region=R", **skew))[0] == 0
        for d in (a, b, a):
            rc, _, err = await cli(d, "sync", "--once", **skew)
            assert rc == 0, err
        rc, conflicts, _ = await cli(b, "conflicts", **skew)
        rc, st_b, _ = await cli(b, "status", **skew)
        rows = await _export(a)
        assert rows == await _export(b)
    finally:
        await hub.stop()
    after = _now_rev()
    # the hub ordered everything with its own clock, whatever the satellites' clocks said
    for revs in hub_uids(hub.db).values():
        assert before <= revs[0] <= after + 1000, (offset, revs, before, after)
    # and the offset was really in effect: local transactions are stamped with it
    created = [c for d in (a, b) for _, _, _, c in receipts(d)]
    assert all(before + offset - 1000 <= c <= after + offset + 1000 for c in created)
    assert parse_rev(st_b["local_rev"]) >= before + offset - 1000
    states = [(s, i) for i, (_, s, _, _) in enumerate(receipts(a) + receipts(b))]
    return (tuple(tuple(sorted(r.items())) for r in rows), tuple(states),
            tuple(c.get("records", "") for c in conflicts),
            st_b["pending"], st_b["conflicts"])


async def test_satellite_clock_off_by_a_day_changes_nothing(tmp_path: Path) -> None:
    base = await _skew_scenario(tmp_path / "zero", 0)
    assert base[3] == 0 and base[4] == 1, "B's name edit collides with A's, its region merges"
    ahead, behind = await asyncio.gather(_skew_scenario(tmp_path / "ahead", DAY_MS),
                                         _skew_scenario(tmp_path / "behind", -DAY_MS))
    assert ahead == base and behind == base
