"""New keys of int-keyed topics (user review 8, finding 6): one above every key the replica
knows (deleted and queued ones too), for the app's Ctrl+N and `outpost pub TOPIC - new`; two
offline satellites that pick the same key get a conflict that says what happened and what to
do. Real satellites on SQLite, a real hub (websockets on 127.0.0.1), the CLI as a subprocess."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

ITEM = "inv.item"
SCHEMA = """
[project]
name = "inttest"

[inv.item]
label = "Items"
key = "int"
display = "name"

[inv.item.fields]
name = { type = "str", required = true, label = "Name" }

[inv.tag]
key = "int"

[inv.tag.fields]
name = "str"
"""


@pytest.fixture
def int_project() -> Project:
    return parse_project(SCHEMA)


@contextlib.asynccontextmanager
async def items_hub(project: Project, deleted: str) -> AsyncIterator[Hub]:
    """A hub whose ledger holds items 1, 2, 3 of which ``deleted`` was deleted."""
    led = MemLedger(project)
    led.publish(Trans(tuple(Action(ITEM, str(k), Cmd.NEW, {"name": f"item {k}"})
                            for k in (1, 2, 3))), "office")
    led.publish(Trans((Action(ITEM, deleted, Cmd.DEL),)), "office")
    async with Hub(led, port=0, anon_user="office") as h:
        yield h


@pytest.fixture
async def hub(int_project: Project) -> AsyncIterator[Hub]:
    async with items_hub(int_project, "3") as h:  # the greatest, deleted
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def test_new_key_is_above_every_key_the_replica_knows(tmp_path: Path, int_project: Project,
                                                           hub: Hub) -> None:
    sat = Satellite(tmp_path / "a", int_project)
    assert sat.new_key(ITEM) == "1"  # nothing known yet
    await sync(sat, hub)
    assert sat.count(ITEM) == 2
    assert sat.new_key(ITEM) == "4"  # 3 was deleted: not given again (total + 1 gave 3)
    assert sat.new_key("inv.tag") == "1"  # per topic
    sat.pub([Action(ITEM, "7", Cmd.NEW, {"name": "pending"})])
    assert sat.new_key(ITEM) == "8"  # pending keys count
    sat.pub([Action(ITEM, "007", Cmd.NEW, {"name": "leading zeros"})])
    assert sat.new_key(ITEM) == "8"
    long = "123456789012345678901234567890"  # beyond SQLite's 64-bit integers
    sat.pub([Action(ITEM, long, Cmd.NEW, {"name": "long"}), Action(ITEM, "-50", Cmd.NEW,
                                                                   {"name": "negative"})])
    assert sat.new_key(ITEM) == str(int(long) + 1)
    await sync(sat, hub)  # now in the replica's events, no longer in the queue
    assert sat.receipts([ReceiptState.PENDING]) == []
    assert sat.new_key(ITEM) == str(int(long) + 1)
    sat.pub([Action(ITEM, long, Cmd.DEL)])
    await sync(sat, hub)
    assert sat.new_key(ITEM) == str(int(long) + 1)  # deleted, still known
    with pytest.raises(ValidationError, match="no model found"):
        sat.new_key("inv.itme")
    sat.close()


async def test_new_key_follows_hub_data_stored_after_the_first_read(
        tmp_path: Path, int_project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", int_project), Satellite(tmp_path / "b", int_project)
    for s in (a, b):
        await sync(s, hub)
    assert a.new_key(ITEM) == "4"  # read from the replica once, then kept
    b.pub([Action(ITEM, "10", Cmd.NEW, {"name": "ten"})])
    await sync(b, hub)
    await sync(a, hub)  # stored by the sync worker
    assert a.new_key(ITEM) == "11"
    b.pub([Action(ITEM, "10", Cmd.DEL)])
    await sync(b, hub)
    await sync(a, hub)
    assert a.new_key(ITEM) == "11"  # deleted, not given again
    a.close()
    b.close()


async def test_two_offline_satellites_with_one_key_get_a_clear_conflict(
        tmp_path: Path, int_project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", int_project), Satellite(tmp_path / "b", int_project)
    for s in (a, b):
        await sync(s, hub)
    keys = [s.new_key(ITEM) for s in (a, b)]
    assert keys == ["4", "4"]  # offline, neither can know the other's
    for s, name in ((a, "from A"), (b, "from B")):
        s.pub([Action(ITEM, "4", Cmd.NEW, {"name": name})])
    await sync(a, hub)
    await sync(b, hub)
    [rej] = b.receipts([ReceiptState.REJECTED])
    assert rej.conflicts[0].reason == "created"
    assert "key 4 was taken" in rej.err and "keep both to add yours under a new key" in rej.err
    assert "use mod" not in rej.err
    assert hub.ledger.state(ITEM, "4") == {"name": "from A"}  # type: ignore[attr-defined]
    # B's next key is past the taken one
    assert b.new_key(ITEM) == "5"
    # an explicit new of a key that exists: what to do, not "use mod"
    with pytest.raises(ValidationError, match="its key is taken") as exc:
        b.pub([Action(ITEM, "1", Cmd.NEW, {"name": "again"})])
    assert "use mod" not in str(exc.value)
    a.close()
    b.close()


async def test_cli_pub_dash_new_on_int_keys(tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "sync", "--once", "--timeout", "10"))[0] == 0
    rc, out, err = await cli(a, "pub", ITEM, "-", "new", "name=first")
    assert rc == 0, err
    assert json.loads(out)["key"] == "4"  # was a UUID, refused as "not an integer"
    rc, out, err = await cli(a, "pub", ITEM, "-", "new", "name=second")
    assert rc == 0 and json.loads(out)["key"] == "5"  # the pending 4 counts
    rc, out, err = await cli(a, "pub", ITEM, "1", "new", "name=again")
    assert rc != 0 and "its key is taken" in err and "use mod" not in err
