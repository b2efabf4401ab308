"""User review 13 F4: identical changes on both sides (both set lon to 9.9) were conflicts the
user had to resolve ("mine 9.9 | theirs 9.9"). The hub still reports them (DESIGN §3); the
satellite settles such a rejection by itself, as an audited resolution naming it, and shows
equal fields of a real conflict as identical. Real satellites (SQLite in tmp_path), a real hub
on 127.0.0.1 (SQLite ledger), the real CLI."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.model import Action, Cmd, Trans
from core.satellite.api import Keep, ReceiptState
from core.satellite.client import SyncClient
from core.satellite.conflicts import SETTLED, conflict_fields, explain
from core.satellite.satellite import SAME, Satellite
from core.schema import Project
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((Action(SITE, "s3", Cmd.NEW, {"name": "Site 3", "region": "North",
                                                       "lat": 46.3}),)), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


async def two(tmp_path: Path, project: Project, hub: Hub) -> tuple[Satellite, Satellite]:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    await sync(a, hub)
    await sync(b, hub)
    return a, b


def hub_state(hub: Hub) -> dict[str, object]:
    st = hub.ledger.state(SITE, "s3")  # type: ignore[attr-defined]
    assert st is not None
    return {k: v for k, v in st.items() if v is not None}


async def test_the_same_values_on_both_sides_settle_by_themselves(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    # the sheet case: the same lat and region as alice's, and a note of bob's own
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "Alpine"})])
    await sync(a, hub)
    sheet = b.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "Alpine",
                                                 "notes": "from sheet"})])
    await sync(b, hub)
    await sync(b, hub)
    assert b.receipts([ReceiptState.REJECTED]) == []  # nothing for the user to resolve
    rc = b.receipt(sheet)
    assert rc is not None and rc.state == ReceiptState.RESOLVED and rc.conflicts
    fix = b.receipt(rc.resolved_by)
    assert fix is not None and fix.resolves == sheet and fix.state == ReceiptState.ACCEPTED
    assert [a.arg for a in fix.acts] == [{"notes": "from sheet"}]  # only what differed
    assert hub_state(hub) == {"name": "Site 3", "region": "Alpine", "lat": 44.4,
                              "notes": "from sheet"}
    au = hub.ledger.audit(fix.rev)  # type: ignore[attr-defined]
    assert au is not None and au.extra == {"resolves": sheet,
                                           "settled": "same values on both sides"}
    # nothing else left (both set lon to 9.9): dropped as keep theirs, said as settled
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 9.9})])
    await sync(a, hub)
    lon = b.pub([Action(SITE, "s3", Cmd.MOD, {"lon": 9.9})])
    await sync(b, hub)
    rc2 = b.receipt(lon)
    assert rc2 is not None and rc2.state == ReceiptState.RESOLVED and rc2.resolved_by == SAME
    assert b.receipts([ReceiptState.REJECTED, ReceiptState.PENDING]) == []
    a.close()
    b.close()
    rc_, out, err = await cli(tmp_path / "b", "conflicts", json_out=False)
    assert rc_ == 0, err
    assert out.startswith("no conflicts\nsettled by themselves")
    assert (f"{sheet}\t{SETTLED} ({SITE} s3 lat 44.4, region \"Alpine\"); your other changes "
            f"sent as transaction {fix.uid} ({SITE} s3 notes)") in out
    assert f"{lon}\t{SETTLED} ({SITE} s3 lon 9.9); nothing else to send: dropped" in out
    rows = json.loads((await cli(tmp_path / "b", "conflicts"))[1])
    assert [(r["uid"], r["settled"]) for r in rows] == [(sheet, SETTLED), (lon, SETTLED)]


async def test_equal_fields_of_a_real_conflict_are_shown_identical(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "Alpine"})])
    await sync(a, hub)
    uid = b.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "region": "East"})])
    await sync(b, hub)
    [rc] = b.receipts([ReceiptState.REJECTED])  # region differs: the user's choice
    assert rc.uid == uid
    rows = {f.field: f for f in conflict_fields(b, rc)}
    assert (rows["lat"].same, rows["region"].same) == (True, False)
    said = explain(rc)[0]
    assert 'you changed region to "East"; they changed region to "Alpine"' in said
    assert "you both set lat to 44.4: identical, no choice needed" in said
    b.close()
    _, out, _ = await cli(tmp_path / "b", "conflicts", json_out=False)
    assert "s3 lat: base 46.3 | mine 44.4 | theirs 44.4 (identical: no choice needed)" in out
    assert 's3 region: base "North" | mine "East" | theirs "Alpine" (field changed' in out
    b = Satellite(tmp_path / "b", project)
    b.resolve(uid, Keep.MINE)
    await sync(b, hub)
    assert hub_state(hub)["region"] == "East" and hub_state(hub)["lat"] == 44.4
    b.close()
    a.close()
