"""Three real ``outpost-hub serve`` processes on one PostgreSQL ledger; one dies by kill -9
in the middle of publishing.

Writers (raw clients) and real satellites are spread over the three hubs and publish at the
same time; subscribers on every hub record what they are given. Hub 2 dies right after a
durable commit whose ack it never sends (crash point ``hub.after_append_before_ack``, an
``os._exit``, as kill -9), or, should that point not be reached, by SIGKILL from the test
while its writers have publishes in flight. Its clients resend the same uids through another
hub. Afterwards:

- every subscriber of a surviving hub got exactly the ledger's events, in order (no skip,
  no duplicate, no reorder); the dead hub's subscriber got a prefix of them;
- every acknowledged transaction is in the ledger exactly once, at the acknowledged revision;
- every satellite's replica equals the ledger state, every receipt is accepted;
- the ledger verifies (replayed events equal the state tables).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.scaleout.conftest import TOPS, Client, check_stream, site, trans
from tests.support.procs import HubProc

pytestmark = [pytest.mark.pg, pytest.mark.timeout(120)]

N_WRITERS = 6   # two per hub
N_EACH = 20     # transactions per writer
KILL = 2        # the hub that dies


async def test_kill9_one_of_three_hubs_mid_publish(fresh_pg_db: str, project: Project,
                                                    tmp_path: Path) -> None:
    procs: list[HubProc] = []
    clients: list[Client] = []
    sats: list[Satellite] = []
    try:
        # the first hub creates the tables; the others start on an existing ledger
        for i in range(3):
            p = HubProc(fresh_pg_db, log=tmp_path / f"hub{i}.log", log_level="WARNING")
            procs.append(p)
            await p.start(crash="hub.after_append_before_ack:5" if i == KILL else "")
        urls = [p.url for p in procs]

        subs = [await Client.open(u) for u in urls]
        clients += subs
        for s in subs:
            await s.sub()

        # real satellites, one per hub, with records made offline before connecting
        for i in range(3):
            sat = Satellite(tmp_path / f"sat{i}", project)
            sats.append(sat)
            for j in range(3):
                sat.pub([Action("field.obs", f"sat{i}-{j}", Cmd.NEW,
                                {"species": "wren", "count": j})])

        acks: dict[str, int] = {}
        via_kill: list[str] = []
        resent: set[str] = set()
        dead: set[int] = set()

        async def write(w: int) -> None:
            hub = w % 3
            c = await Client.open(urls[hub])
            clients.append(c)
            for j in range(N_EACH):
                uid = f"w{w}-{j}"
                body = trans(uid, site(f"k{w}-{j}", f"name {j}"))
                for _attempt in range(6):
                    try:
                        acks[uid] = await c.pub(body, timeout=10)
                        if hub == KILL:
                            via_kill.append(uid)
                        break
                    except (ConnectionError, OSError, TimeoutError):
                        # the hub died with our request in flight (its ack may be lost):
                        # resend the same uid through another hub
                        dead.add(hub)
                        resent.add(uid)
                        hub = next(h for h in ((hub + k) % 3 for k in range(1, 3))
                                   if h not in dead)
                        c = await Client.open(urls[hub])
                        clients.append(c)
                else:
                    raise AssertionError(f"{uid} was never acknowledged")

        async def killer() -> None:
            # fallback if the crash point was not reached: SIGKILL while publishes run
            for _ in range(1000):
                if len(via_kill) >= 14 or procs[KILL].returncode is not None:
                    break
                await asyncio.sleep(0.005)
            await procs[KILL].kill()

        async def sync_sat(i: int) -> None:
            await SyncClient(sats[i], urls[i], rnd=random.Random(i)).sync_once(15)

        async with asyncio.timeout(90):
            results = await asyncio.gather(
                *(write(w) for w in range(N_WRITERS)), killer(),
                *(sync_sat(i) for i in range(3) if i != KILL),
                return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        print(f"hub {KILL} exit status {procs[KILL].returncode}; resent {sorted(resent)}")
        assert procs[KILL].returncode in (137, -9), procs[KILL].returncode
        assert KILL in dead and resent, "hub 2 did not die with a publish in flight"

        # the satellite of the dead hub finishes through another hub
        await SyncClient(sats[KILL], urls[0], rnd=random.Random(7)).sync_once(15)
        for i in range(3):
            if i != KILL:
                await SyncClient(sats[i], urls[i], rnd=random.Random(9)).sync_once(15)

        led = SqlLedger(fresh_pg_db, project)
        try:
            want = [(e.id, e.rev) for e in led.events(0)]
            assert len(want) == N_WRITERS * N_EACH + 3 * 3
            # every acknowledged transaction is in the ledger exactly once, at its revision
            assert len(acks) == N_WRITERS * N_EACH
            for uid, rev in acks.items():
                assert led.uid_rev(uid) == rev, uid
            with led.engine.connect() as conn:
                a = led.tables.audit
                twice = conn.execute(select(a.c.uid).group_by(a.c.uid)
                                     .having(func.count() > 1)).all()
                n_audit = conn.execute(select(func.count()).select_from(a)).scalar()
            assert twice == []
            assert n_audit == len(want)  # one transaction (one audit row) per event here
            assert led.verify() == []

            for i, s in enumerate(subs):
                if i == KILL:
                    assert s.got == want[:len(s.got)], "dead hub's subscriber out of order"
                    continue
                assert await s.wait_rev(want[-1][1], 15.0), f"subscriber {i} is behind"
                check_stream(s.got, want, f"subscriber on hub {i}")

            for i, sat in enumerate(sats):
                rs = sat.receipts()
                assert [r.state for r in rs] == [ReceiptState.ACCEPTED] * 3, (i, rs)
                for r in rs:
                    assert led.uid_rev(r.uid) == r.rev
                assert sat.replica.rev() <= led.rev()
                replica = sat.replica.read
                for top in TOPS:
                    # the replica equals the ledger up to the replica's revision
                    assert replica.states(top) == led.states(top, sat.replica.rev()), (i, top)
            # a final sync brings every replica to the ledger's revision
            for i, sat in enumerate(sats):
                url = urls[0] if i == KILL else urls[i]
                await SyncClient(sat, url, rnd=random.Random(11)).sync_once(15)
                assert sat.replica.rev() == led.rev()
                for top in TOPS:
                    assert sat.replica.read.states(top) == led.states(top), (i, top)
        finally:
            led.close()
    finally:
        for c in clients:
            await c.close()
        for sat in sats:
            sat.close()
        for p in procs:
            await p.stop()
