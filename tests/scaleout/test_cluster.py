"""Several hubs on one PostgreSQL ledger, in one process (fast): cross-hub pushes, order under
concurrent publishes, uid uniqueness across hubs, reconnect and catch-up of the listener.

Every hub has its own SqlLedger (own connection pool) and its own LISTEN connection, as
separate ``outpost-hub serve`` processes would; ``test_kill.py`` runs real processes.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import psycopg
import pytest

from core.errors import StorageError
from core.ledger.sql import SqlLedger
from core.revision import format_rev
from core.schema import Project
from hubserver.cluster import ClusterListener, is_postgres, libpq_url
from hubserver.service import HubService
from tests.scaleout.conftest import Client, check_stream, cluster, site, trans

pytestmark = [pytest.mark.pg, pytest.mark.timeout(90)]


def ledger_ids(led: SqlLedger) -> list[tuple[int, int]]:
    return [(e.id, e.rev) for e in led.events(0)]


async def test_push_crosses_hubs(fresh_pg_db: str, project: Project) -> None:
    async with cluster(fresh_pg_db, project, 2) as (a, b):
        sub = await Client.open(b.hub.url)
        pub = await Client.open(a.hub.url)
        try:
            assert (await sub.sub())["res"] is None
            t0 = time.monotonic()
            rev = await pub.pub(trans("u-1", site("s-1", "one")))
            assert await sub.wait_rev(rev, 5.0), "hub b never pushed a revision of hub a"
            took = time.monotonic() - t0
            assert sub.got == [(1, rev)]
            assert sub.pushes == 1
            assert b.listener.notifies >= 1
            # prompt: by NOTIFY, not by the 2 s safety-net poll
            assert took < 1.5, f"cross-hub push took {took:.2f} s"
            assert pub.got == []  # the publisher gets its events in the reply only
        finally:
            await sub.close()
            await pub.close()


async def test_concurrent_publishes_on_three_hubs_arrive_in_order(
        fresh_pg_db: str, project: Project) -> None:
    n_writers, n_each = 3, 25
    async with cluster(fresh_pg_db, project, 3) as nodes:
        subs = [await Client.open(nd.hub.url) for nd in nodes]
        for s in subs:
            await s.sub()
        writers = [await Client.open(nodes[i % 3].hub.url) for i in range(3 * n_writers)]
        acks: dict[str, int] = {}

        async def write(w: int) -> None:
            for j in range(n_each):
                uid = f"w{w}-{j}"
                acks[uid] = await writers[w].pub(trans(uid, site(f"k{w}-{j}", f"n{j}")))

        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(write(w) for w in range(len(writers))))
            led = nodes[0].ledger
            want = ledger_ids(led)
            assert len(want) == len(writers) * n_each
            for i, s in enumerate(subs):
                assert await s.wait_rev(want[-1][1], 10.0), f"subscriber {i} is behind"
                check_stream(s.got, want, f"subscriber on hub {i}")
            for uid, rev in acks.items():
                assert led.uid_rev(uid) == rev
            # revisions strictly increase with event ids (one event per transaction here)
            revs = [r for _, r in want]
            assert all(x < y for x, y in itertools.pairwise(revs))
            assert led.verify() == []
        finally:
            for c in subs + writers:
                await c.close()


async def test_resend_to_another_hub_after_a_lost_ack_is_exactly_once(
        fresh_pg_db: str, project: Project) -> None:
    async with cluster(fresh_pg_db, project, 2) as (a, b):
        ca = await Client.open(a.hub.url)
        cb = await Client.open(b.hub.url)
        watcher = await Client.open(b.hub.url)
        try:
            await watcher.sub()
            body = trans("lost-ack", site("s-9", "nine"))
            rev = await ca.pub(body)
            # the ack was "lost": the satellite resends the same uid through hub b, at once,
            # before hub b may even have heard of the revision
            again = await cb.request("evt.pub", body)
            assert again["res"]["rev"] == format_rev(rev)
            sat = await cb.request("evt.sat", {"rev": format_rev(0), "trans": [body],
                                               "tops": ["field.site"]})
            assert sat["res"]["acks"] == [{"uid": "lost-ack", "rev": format_rev(rev)}]
            assert [e["id"] for e in sat["res"]["evs"]] == [1]
            led = a.ledger
            assert ledger_ids(led) == [(1, rev)]
            assert led.uid_rev("lost-ack") == rev
            assert led.rev() == rev
            assert await watcher.wait_rev(rev, 5.0)
            check_stream(watcher.got, [(1, rev)], "watcher")
        finally:
            for c in (ca, cb, watcher):
                await c.close()


async def test_listener_reconnects_and_catches_up(fresh_pg_db: str, project: Project) -> None:
    async with cluster(fresh_pg_db, project, 2, poll=30.0) as (a, b):
        sub = await Client.open(b.hub.url)
        pub = await Client.open(a.hub.url)
        try:
            await sub.sub()
            r1 = await pub.pub(trans("r-1", site("s-1", "one")))
            assert await sub.wait_rev(r1, 5.0)
            pid = b.listener.backend_pid
            with psycopg.connect(libpq_url(fresh_pg_db), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # publish while hub b is deaf: no NOTIFY reaches it
            for _ in range(200):
                if not b.listener.connected or b.listener.backend_pid != pid:
                    break
                await asyncio.sleep(0.01)
            revs = [await pub.pub(trans(f"r-{i}", site(f"s-{i}", "x"))) for i in range(2, 6)]
            assert await b.listener.wait_connected(10.0)
            assert await sub.wait_rev(revs[-1], 10.0), "hub b did not catch up after reconnect"
            assert b.listener.reconnects >= 1
            assert b.listener.backend_pid not in (0, pid)
            check_stream(sub.got, ledger_ids(a.ledger), "subscriber on the cut-off hub")
        finally:
            await sub.close()
            await pub.close()


async def test_listener_start_fails_clearly_without_database(project: Project) -> None:
    lis = ClusterListener("postgresql://postgres@127.0.0.1:9/none", lambda: None,
                          connect_timeout=1.0, backoff=(0.05, 0.1))
    with pytest.raises(StorageError,
                       match=re.escape("cannot LISTEN on 'outpost_rev' at "
                                       "postgresql://postgres@127.0.0.1:9/none")):
        await lis.start(timeout=0.5)
    assert not lis.connected


def test_urls() -> None:
    assert is_postgres("postgresql://h/db") and is_postgres("postgresql+psycopg://h/db")
    assert not is_postgres("sqlite:///x.db") and not is_postgres("/tmp/hub.db")
    assert libpq_url("postgresql+psycopg://u@h:5/db") == "postgresql://u@h:5/db"
    with pytest.raises(Exception, match="not a PostgreSQL URL"):
        libpq_url("sqlite:///x.db")


def test_service_fills_the_gap_left_by_another_hub(tmp_path: object, project: Project) -> None:
    """Sans-I/O: hub 1's own commit at rev N+1 is fanned out only after rev N of hub 2.

    Two SqlLedgers on one SQLite file stand in for two hubs on one database (same write lock,
    same dense event ids), so this runs without PostgreSQL.
    """
    from pathlib import Path

    from core.model import Action, Cmd, Trans

    db = f"sqlite:///{Path(str(tmp_path)) / 'shared.db'}"
    one, two = SqlLedger(db, project), SqlLedger(db, project)
    try:
        svc = HubService(one)
        svc.connect("c", "ann")
        svc.handle_sync("c", 'evt.sub#1\n{"rev":"0001-01-01T00:00:00Z","tops":["field.site"]}')
        other = two.publish(Trans((Action("field.site", "a", Cmd.NEW, {"name": "A"}),),
                                  uid="t2"), "bob")
        mine = one.publish(Trans((Action("field.site", "b", Cmd.NEW, {"name": "B"}),),
                                 uid="t1"), "ann")
        assert mine.rev > other.rev
        outs = svc.published(list(mine.evs))
        assert svc.rev == mine.rev
        push = svc.take_push("c")
        assert push is not None
        assert push.index('"key":"a"') < push.index('"key":"b"'), push
        # a late catch-up of what was already fanned out delivers nothing twice
        assert svc.catch_up(two.events(0)) == []
        assert svc.take_push("c") is None
        assert outs
    finally:
        one.close()
        two.close()


async def test_every_hub_of_a_cluster_serves_the_one_ledger_id(fresh_pg_db: str,
                                                               project: Project) -> None:
    """The id lives in the shared ledger: every hub serves the same one, so a satellite may
    move between them; hubs opening a ledger made before ids at the same moment make one."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine, text

    led = SqlLedger(fresh_pg_db, project)
    led.close()
    eng = create_engine(fresh_pg_db.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.begin() as c:  # the layout before ledger ids
        c.execute(text("ALTER TABLE evt_meta DROP COLUMN ledger_id"))
    eng.dispose()
    with ThreadPoolExecutor(3) as pool:
        leds = list(pool.map(lambda _: SqlLedger(fresh_pg_db, project), range(3)))
    ids = {x.ledger_id for x in leds}
    for x in leds:
        x.close()
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", next(iter(ids)))
    async with cluster(fresh_pg_db, project, 3) as nodes:
        served = []
        for nd in nodes:
            c = await Client.open(nd.hub.url)
            try:
                served.append((await c.request("evt.stat"))["res"]["ledger"])
            finally:
                await c.close()
        assert served == [next(iter(ids))] * 3
