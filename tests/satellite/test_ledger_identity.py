"""Ledger identity end to end: real hubs on 127.0.0.1 with SQLite ledgers, real satellites
(`outpost` CLI subprocesses and SyncClient). A replica stores the id of its hub's ledger and is
never synced against another ledger, even one with the same schema that is ahead of it;
nothing is sent to that hub or written to the replica."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.satellite.machine import Backoff, Phase
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import _tree, cli

SITE = "field.site"


def kept(tree: dict[str, bytes]) -> dict[str, bytes]:
    """A directory's files but SQLite's -wal/-shm (they come and go with connections) and
    status.json (the holder's connection status, rewritten by every run)."""
    return {k: v for k, v in tree.items()
            if not k.endswith(("-wal", "-shm")) and k != "status.json"}


async def refused_and_kept(d: Path, url: str, connect_says: Sequence[str],
                           sync_says: Sequence[str]) -> DataDir:
    """The replica in ``d`` refuses the hub at ``url``: `outpost connect URL` fails with an
    error holding ``connect_says``, and `outpost sync --once` with ``url`` written into
    config.json anyway (another hub now answers at the replica's URL) stops at the handshake
    with one holding ``sync_says``: nothing sent, nothing of ``d`` changed. ``d``'s DataDir
    (its config.json names ``url``)."""
    before = kept(_tree(d))
    rc, out, err = await cli(d, "connect", url)
    assert rc == 1 and out == "", err
    assert all(s in err for s in connect_says), err
    assert kept(_tree(d)) == before
    dd = DataDir(d)
    dd.save_config(dd.load_config().with_hub(url, None))
    before = kept(_tree(d))
    rc, out, err = await cli(d, "sync", "--once", "--timeout", "300")
    assert rc == 1, err
    assert all(s in err for s in sync_says), err
    assert kept(_tree(d)) == before
    return dd


def stored_id(d: Path) -> str:
    sat = Satellite(d, read_only=True)
    try:
        return sat.ledger()
    finally:
        sat.close()


def publish(led: SqlLedger, *keys: str) -> None:
    for k in keys:
        led.publish(Trans((Action(SITE, k, Cmd.NEW, {"name": k}),), base=led.rev()), "op")


async def test_a_replica_is_never_synced_against_another_ledger_ahead_of_it(
        tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    one = SqlLedger(f"sqlite:///{tmp_path / 'one.db'}", project)
    two = SqlLedger(f"sqlite:///{tmp_path / 'two.db'}", project)  # same schema
    assert one.ledger_id != two.ledger_id
    async with Hub(one, port=0) as hub1:
        assert (await cli(a, "connect", hub1.url))[0] == 0
        assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge"))[0] == 0
        rc, _, err = await cli(a, "sync", "--once")
        assert rc == 0, err
        assert stored_id(a) == one.ledger_id  # stored on the first sync
        rc, out, _ = await cli(a, "status")
        assert rc == 0 and json.loads(out)["ledger"] == one.ledger_id
        publish(two, "o1", "o2", "o3")  # the other ledger moves ahead of the replica
        assert two.rev() > one.rev()
        assert (await cli(a, "pub", SITE, "s2", "new", "name=Held"))[0] == 0  # pending
        async with Hub(two, port=0) as hub2:
            # connect and sync refused, naming both ledgers and the fix
            says = ("came from another ledger", "new --data DIR", one.ledger_id, two.ledger_id)
            dd = await refused_and_kept(a, hub2.url, says, says)
            assert two.keys(SITE) == ["o1", "o2", "o3"]  # the pending edit never went out
            rev_two = two.rev()
        assert two.rev() == rev_two
        # back at its own hub: the pending edit goes out, the replica keeps its id
        dd.save_config(dd.load_config().with_hub(hub1.url, None))
        rc, out, err = await cli(a, "sync", "--once")
        assert rc == 0 and json.loads(out)["pending"] == 0, err
        assert one.keys(SITE) == ["s1", "s2"] and stored_id(a) == one.ledger_id
    one.close()
    two.close()


async def test_sync_stops_with_a_status_error_and_keeps_the_replica(
        tmp_path: Path, project: Project) -> None:
    """The app's continuous sync (SyncClient.run_until): stopped for good, the status names
    the ledgers, the replica's revision and records are as they were."""
    one = SqlLedger(f"sqlite:///{tmp_path / 'one.db'}", project)
    two = SqlLedger(f"sqlite:///{tmp_path / 'two.db'}", project)
    async with Hub(one, port=0) as hub1, Hub(two, port=0) as hub2:
        sat = Satellite(tmp_path / "a", project)
        try:
            sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"})])
            await SyncClient(sat, hub1.url, rnd=random.Random(0)).sync_once(30)
            publish(two, "o1", "o2")
            sat.pub([Action(SITE, "s2", Cmd.NEW, {"name": "Held"})])
            rev, recs = sat.rev(), sat.replica.read.states(SITE)
            client = SyncClient(sat, hub2.url, rnd=random.Random(0), backoff=Backoff(0.05, 0.1))
            assert await client.run_until(lambda: False, 300) is False  # stopped, not timed out
            assert client.machine.phase == Phase.STOPPED
            st = sat.status()
            assert "came from another ledger" in st.last_error and "new --data DIR" in \
                st.last_error and two.ledger_id in st.last_error
            assert sat.rev() == rev and sat.replica.read.states(SITE) == recs
            assert st.pending == 1 and two.keys(SITE) == ["o1", "o2"]
            assert sat.ledger() == one.ledger_id
        finally:
            sat.close()
    one.close()
    two.close()


async def test_hub_restart_and_a_restored_backup_keep_the_id(tmp_path: Path,
                                                             project: Project) -> None:
    """A hub restarted on its file serves the same id (sync goes on); a hub restored from an
    older backup serves it too, with its restore point, before the replica's revision:
    `sync --once` fails at once (not at its --timeout) naming both revisions and what
    happened; nothing changes."""
    a = tmp_path / "a"
    db = tmp_path / "hub.db"
    led = SqlLedger(f"sqlite:///{db}", project)
    lid = led.ledger_id
    async with Hub(led, port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge"))[0] == 0
        assert (await cli(a, "sync", "--once"))[0] == 0
    led.close()
    led = SqlLedger(f"sqlite:///{db}", project)  # the restart
    ops.backup(led, tmp_path / "old.bak")
    assert led.ledger_id == lid
    async with Hub(led, port=0) as hub:
        dd = DataDir(a)
        dd.save_config(dd.load_config().with_hub(hub.url, None))
        assert (await cli(a, "pub", SITE, "s2", "new", "name=Later"))[0] == 0
        rc, _, err = await cli(a, "sync", "--once")
        assert rc == 0, err
    led.close()
    restored = ops.restore(tmp_path / "old.bak", f"sqlite:///{tmp_path / 'r.db'}", project)
    assert restored.ledger_id == lid and restored.keys(SITE) == ["s1"]
    async with Hub(restored, port=0) as old:
        dd.save_config(dd.load_config().with_hub(old.url, None))
        before = kept(_tree(a))
        rc, _, err = await cli(a, "sync", "--once", "--timeout", "300")
        assert rc == 1, err
        assert "restored from a backup at revision" in err and "up to " in err, err
        assert "did not finish within" not in err
        assert kept(_tree(a)) == before and restored.keys(SITE) == ["s1"]
    restored.close()
    assert stored_id(a) == lid


async def test_a_replica_without_an_id_adopts_it_on_its_next_sync(
        tmp_path: Path, project: Project) -> None:
    """A replica made before ledger ids (no ``ledger`` in sat_meta), with an edit made
    offline: its next sync with its hub passes the checks and stores the hub's id."""
    a = tmp_path / "a"
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led, port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge"))[0] == 0
        assert (await cli(a, "sync", "--once"))[0] == 0
        with sqlite3.connect(DataDir(a).db_file) as c:  # as an older version left it
            c.execute("DELETE FROM sat_meta WHERE name = 'ledger'")
        assert stored_id(a) == ""
        assert (await cli(a, "pub", SITE, "s2", "new", "name=Offline"))[0] == 0
        rc, out, err = await cli(a, "sync", "--once")
        assert rc == 0 and json.loads(out)["pending"] == 0, err
        assert stored_id(a) == led.ledger_id and led.keys(SITE) == ["s1", "s2"]
    led.close()
