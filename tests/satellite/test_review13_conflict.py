"""User review 13, conflict findings: each conflicting field names who changed it last (F8).
Real hub on 127.0.0.1 with accounts, real satellites (SQLite in tmp_path), the real CLI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


@pytest.fixture
def users(tmp_path: Path) -> AsyncIterator[Users]:
    u = Users(tmp_path / "users.db")
    yield u
    u.close()


@pytest.fixture
async def hub(project: Project, users: Users) -> AsyncIterator[Hub]:
    async with Hub(MemLedger(project), port=0, users=users) as h:
        yield h


async def laptops(tmp_path: Path, hub: Hub, users: Users, *names: str) -> list[Path]:
    out = []
    for n in names:
        d = tmp_path / n
        assert (await cli(d, "connect", hub.url, f"--token={users.add(n)}"))[0] == 0
        out.append(d)
    return out


async def sync(d: Path) -> None:
    rc, _, err = await cli(d, "sync", "--once", "--timeout", "20")
    assert rc == 0, err


async def test_each_conflicting_field_is_credited_to_who_changed_it(
        tmp_path: Path, hub: Hub, users: Users) -> None:
    # F8: carol changed lat and region offline; alice then changed lat, bob region: the
    # conflict said "bob changed lat to 46.0, region to East"
    a, b, c = await laptops(tmp_path, hub, users, "alice", "bob", "carol")
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Site 1"))[0] == 0
    for d in (a, b, c):
        await sync(d)
    assert (await cli(c, "pub", SITE, "s1", "mod", "lat=45.0", "region=West"))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "mod", "lat=46.0"))[0] == 0
    await sync(a)
    await sync(b)
    assert (await cli(b, "pub", SITE, "s1", "mod", "region=East"))[0] == 0
    await sync(b)
    await sync(c)
    rc, out, err = await cli(c, "conflicts")
    assert rc == 0, err
    [row] = json.loads(out)
    who = {f["field"]: f["usr"] for f in row["fields"]}
    assert who == {"lat": "alice", "region": "bob"}
    said = " ".join(row["explain"])
    assert 'alice changed lat to 46.0 (' in said and 'bob changed region to "East" (' in said
    assert "bob changed lat" not in said
    [conf] = row["conflicts"]
    assert conf["usr"] == "bob"  # the record's last change (daql's shape) stays
    assert {f: v["usr"] for f, v in conf["by"].items()} == {"lat": "alice", "region": "bob"}
    rc, out, err = await cli(c, "conflicts", json_out=False)
    assert "lat: base null | mine 45.0 | theirs 46.0 (field changed by alice" in out
    assert 'region: base null | mine "West" | theirs "East" (field changed by bob' in out
