"""Chaos with real processes: one hub and four satellite processes, each satellite behind its
own :class:`~tests.support.faultproxy.FaultProxy`; random offline edit sessions; a fault every
few seconds (reset, blackhole, latency, tiny slices, refused connections, ``kill -9`` of the hub
or of a satellite); then heal, drain and check.

Invariants (all must be 0): lost, duplicated, unexpected transactions; divergent replicas;
stuck queues. The figures are printed as one ``CHAOS-FIGURES {json}`` line (docs/reliability.md).

Fast tier: ~35 s of faults; soak (``OUTPOST_SOAK=1``): ``OUTPOST_CHAOS_SECONDS`` (300).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import time
from pathlib import Path

import pytest

from core.ledger.sql import SqlLedger
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import Backoff
from core.schema import Project
from tests.reliability.satdriver import TOP, open_sat
from tests.support.faultproxy import FaultProxy
from tests.support.procs import (
    DRIVER,
    PY,
    ROOT,
    HubProc,
    env,
    integrity,
    ledger_uids,
    sat_db,
)

SATS = 4
KINDS = ["cut", "cut", "blackhole", "latency", "slices", "refuse", "kill_hub", "kill_sat"]


class SatProc:
    def __init__(self, name: str, data: Path, url: str, seed: int):
        self.name, self.data, self.url, self.seed = name, data, url, seed
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        with open(self.data.parent / f"{self.name}.log", "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                PY, DRIVER, "chaos", str(self.data), self.url, self.name,
                str(self.seed * 1000 + self.starts), "--max-time", "1200", "--drain", "40",
                cwd=ROOT, env=env(), stdout=asyncio.subprocess.DEVNULL, stderr=log)

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        await self.proc.wait()


def quantiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 3),
            "p99": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 3),
            "max": round(xs[-1], 3)}


def read_log(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:  # a line cut by kill -9 is incomplete: ignore it
            out.setdefault(parts[0], float(parts[1]))
    return out


async def chaos(seconds: float, seed: int, tmp_path: Path, project: Project) -> dict[str, object]:
    rng = random.Random(seed)
    hub = HubProc(tmp_path / "hub.db")
    await hub.start()
    proxies = [FaultProxy("127.0.0.1", hub.port, seed=seed + i) for i in range(SATS)]
    for p in proxies:
        await p.start()
    sats = [SatProc(f"s{i}", tmp_path / f"s{i}", f"ws://127.0.0.1:{p.port}", seed + i)
            for i, p in enumerate(proxies)]
    for s in sats:
        await s.start()
    faults: dict[str, int] = {}
    order = rng.sample(KINDS[1:], len(KINDS) - 1)
    heal_at: list[tuple[float, FaultProxy]] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            now = time.monotonic()
            for t, p in [h for h in heal_at if h[0] <= now]:
                p.set_mode("pass")
                heal_at.remove((t, p))
            # every kind of fault once (in random order), then at random
            kind = order.pop() if order else rng.choice(KINDS)
            faults[kind] = faults.get(kind, 0) + 1
            i = rng.randrange(SATS)
            if kind == "cut":
                proxies[i].cut()
            elif kind == "blackhole":
                proxies[i].set_mode("blackhole")
                heal_at.append((now + rng.uniform(1, 4), proxies[i]))
            elif kind == "latency":
                proxies[i].set_mode("latency", delay=rng.uniform(0.05, 0.4))
                heal_at.append((now + rng.uniform(2, 6), proxies[i]))
            elif kind == "slices":
                proxies[i].set_mode("slices", slice_max=rng.randint(1, 9))
                heal_at.append((now + rng.uniform(2, 6), proxies[i]))
            elif kind == "refuse":
                proxies[i].set_mode("refuse")
                proxies[i].cut()
                heal_at.append((now + rng.uniform(1, 3), proxies[i]))
            elif kind == "kill_hub":
                await hub.kill()
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                await hub.start()
            else:
                await sats[i].kill()
                await asyncio.sleep(rng.uniform(0.1, 1.0))
                await sats[i].start()
        # heal, quiet period, drain
        for p in proxies:
            p.set_mode("pass")
        unknown = 0
        for s in sats:
            j, a = read_log(s.data / "journal"), read_log(s.data / "acks")
            unknown += len(set(j) - set(a))
        heal = time.monotonic()
        for s in sats:
            (s.data / "stop").touch()
        codes = []
        for s in sats:
            assert s.proc is not None
            codes.append(await asyncio.wait_for(s.proc.wait(), 120))
        drained = time.monotonic() - heal
        # last catch-ups straight to the hub (a satellite that went idle before another
        # published its last edits needs one more round), until every replica has the hub's rev
        for _ in range(3):
            behind = 0
            for s in sats:
                sat = open_sat(str(s.data))
                try:
                    await SyncClient(sat, hub.url, backoff=Backoff(0.05, 0.5)).sync_once(30)
                finally:
                    sat.close()
            led = SqlLedger(f"sqlite:///{hub.db}", project)
            try:
                for s in sats:
                    sat = open_sat(str(s.data))
                    try:
                        behind += sat.replica.rev() != led.rev()
                    finally:
                        sat.close()
            finally:
                led.close()
            if not behind:
                break
        converged = time.monotonic() - heal
    finally:
        for s in sats:
            if s.proc is not None and s.proc.returncode is None:
                await s.kill()
        for p in proxies:
            await p.close()
        await hub.stop()

    # -- the books -----------------------------------------------------------------------------
    counts = ledger_uids(hub.db)
    hub_led = SqlLedger(f"sqlite:///{hub.db}", project)
    attempted = acked = found = lost = stuck = divergent = rejected = 0
    queued_all: set[str] = set()
    latencies: list[float] = []
    reasons: dict[str, str] = {}
    try:
        hub_states = hub_led.states(TOP)
        hub_rev = hub_led.rev()
        for s in sats:
            assert integrity(sat_db(s.data)) == "ok"
            journal, acks = read_log(s.data / "journal"), read_log(s.data / "acks")
            sat = open_sat(str(s.data))
            try:
                recs = {r.uid: r for r in sat.receipts()}
                queued_all.update(recs)
                attempted += len(recs)
                lost += len(set(journal) - set(recs))  # pub returned, but not in the queue
                for uid, r in recs.items():
                    if r.state == ReceiptState.PENDING:
                        stuck += 1
                    elif r.state == ReceiptState.ACCEPTED:
                        acked += 1
                        if hub_led.uid_rev(uid) != r.rev:
                            lost += 1
                    else:
                        rejected += 1
                        reasons.setdefault(r.err[:160], uid)
                    found += uid in counts
                    if uid in journal and uid in acks:
                        latencies.append(acks[uid] - journal[uid])
                if sat.replica.rev() != hub_rev or sat.replica.read.states(TOP) != hub_states:
                    divergent += 1
                    mine = sat.replica.read.states(TOP)
                    diff = {k for k in set(mine) | set(hub_states)
                            if mine.get(k) != hub_states.get(k)}
                    reasons[f"divergent {s.name}: rev {sat.replica.rev()} vs {hub_rev}, "
                            f"{len(diff)} records differ"] = ",".join(sorted(diff)[:3])
            finally:
                sat.close()
    finally:
        hub_led.close()
    dup = sum(1 for n in counts.values() if n > 1)
    unexpected = len(set(counts) - queued_all)
    figures: dict[str, object] = {
        "seconds": seconds, "seed": seed, "satellites": SATS,
        "attempted": attempted, "acknowledged": acked, "rejected": rejected,
        "outcome_unknown_at_heal": unknown, "found_in_ledger": found,
        "lost": lost, "duplicated": dup, "unexpected": unexpected,
        "divergent_replicas": divergent, "stuck_queues": stuck,
        "commit_to_ack_s": quantiles(latencies),
        "drain_s": round(drained, 2), "converged_s": round(converged, 2),
        "faults": faults, "proxy_resets": sum(p.cuts for p in proxies),
        "hub_kills": hub.kills, "sat_kills": sum(s.kills for s in sats),
        "driver_exit_codes": codes, "hub_integrity": integrity(hub.db),
        "problems": reasons,
    }
    print("CHAOS-FIGURES " + json.dumps(figures, sort_keys=True))
    out = os.environ.get("OUTPOST_FIGURES_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"chaos-{seed}.json").write_text(json.dumps(figures, indent=1))
    return figures


def check(f: dict[str, object]) -> None:
    for k in ("lost", "duplicated", "unexpected", "divergent_replicas", "stuck_queues",
              "rejected"):
        assert f[k] == 0, f"{k} = {f[k]}: {f}"
    assert f["attempted"] == f["acknowledged"] == f["found_in_ledger"]
    assert isinstance(f["attempted"], int) and f["attempted"] > 20
    assert f["driver_exit_codes"] == [0] * SATS
    assert f["hub_integrity"] == "ok"


@pytest.mark.timeout(300)
async def test_chaos_fast(tmp_path: Path, project: Project) -> None:
    f = await chaos(35.0, 1, tmp_path, project)
    check(f)
    assert set(f["faults"]) == set(KINDS), f["faults"]  # type: ignore[arg-type]


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.timeout(3600)
async def test_chaos_soak(tmp_path: Path, project: Project) -> None:
    f = await chaos(float(os.environ.get("OUTPOST_CHAOS_SECONDS", "300")), 7, tmp_path, project)
    check(f)
