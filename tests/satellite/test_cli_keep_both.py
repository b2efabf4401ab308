"""`outpost resolve UID --keep both` (session 9, s9-conf): a record created on two laptops
offline under one key; the CLI as a subprocess, a real hub on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


async def _clash(tmp_path: Path, hub: Hub) -> tuple[Path, Path, str]:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "camp", "new", "name=A camp"))[0] == 0
    assert (await cli(b, "pub", SITE, "camp", "new", "name=B camp"))[0] == 0
    for d in (a, b):
        assert (await cli(d, "sync", "--once"))[0] == 0
    _rc, out, _ = await cli(b, "conflicts")
    [c] = json.loads(out)
    assert c["conflicts"][0]["reason"] == "created"
    assert any("Keep both adds yours as a new record" in t for t in c["explain"])
    return a, b, c["uid"]


async def test_keep_both_from_the_cli(tmp_path: Path, hub: Hub) -> None:
    a, b, uid = await _clash(tmp_path, hub)
    rc, out, err = await cli(b, "resolve", uid, "--keep", "mine", "--key", "x")
    assert rc == 1 and "--key gives the new key of --keep both" in err
    rc, out, err = await cli(b, "resolve", uid, "--keep", "both", "--key", "s 1")
    assert rc == 0, err
    res = json.loads(out)
    assert res["uid"] == uid and res["new_keys"] == {f"{SITE} camp": "s 1"}
    rc, out, err = await cli(b, "resolve", uid, "--keep", "both")
    assert rc == 1 and "already resolved" in err and res["resolved_by"] in err
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    rc, out, _ = await cli(a, "show", SITE)
    names = {r["key"]: r["fields"]["name"] for r in json.loads(out)}
    assert names == {"camp": "A camp", "s 1": "B camp"}


async def test_keep_mine_on_a_clash_says_it_replaced_their_record(
        tmp_path: Path, hub: Hub) -> None:
    _a, b, uid = await _clash(tmp_path, hub)
    rc, out, err = await cli(b, "resolve", uid, "--keep", "mine", json_out=False)
    assert rc == 0, err
    assert f"{SITE} camp: your values were set on the record someone else created" in out
    rc, out, _ = await cli(b, "resolve", "--help", json_out=False)
    assert "--keep {mine,theirs,both}" in out and "SETS YOUR VALUES ON THEIR RECORD" in out


async def test_app_and_cli_cannot_resolve_one_conflict_twice(tmp_path: Path, hub: Hub) -> None:
    """The app holds the data directory: `outpost resolve` of the same conflict meanwhile is
    refused, resolving nothing; afterwards it says the conflict was resolved, and by what."""
    from core.satellite.api import Keep, ReceiptState
    from core.satellite.satellite import Satellite

    _a, b, uid = await _clash(tmp_path, hub)
    app = Satellite(b)  # what the app opens: it holds the directory's lock
    try:
        rc, _, err = await cli(b, "resolve", uid, "--keep", "both")
        assert rc == 1 and "in use by another Outpost process" in err
        [rej] = app.receipts([ReceiptState.REJECTED])
        assert rej.uid == uid  # the CLI resolved nothing
        new = app.resolve(uid, Keep.THEIRS)
    finally:
        app.close()
    assert new == ""
    rc, _, err = await cli(b, "resolve", uid, "--keep", "mine")
    assert rc == 1 and "already resolved (by keeping theirs)" in err
    rc, out, _ = await cli(b, "status")
    assert json.loads(out)["conflicts"] == 0 and json.loads(out)["pending"] == 0


async def test_keep_mine_on_a_clash_lists_and_names_the_fields_only_theirs_has(
        tmp_path: Path, hub: Hub) -> None:
    """User review 13 F2: keep mine "replaces their record's values with yours" but their
    region and notes stayed, and no view listed them. Every field of both records is listed;
    the words say they stay (and they do)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "hut", "new", "name=Alice hut", "region=North",
                      "notes=water here"))[0] == 0
    assert (await cli(b, "pub", SITE, "hut", "new", "name=Bob hut", "lat=45.2"))[0] == 0
    for d in (a, b):
        assert (await cli(d, "sync", "--once"))[0] == 0
    _rc, out, _ = await cli(b, "conflicts", json_out=False)
    assert (f'{SITE} hut region: base null | mine (not set) | theirs "North" (only theirs has '
            "it: keep mine leaves it)") in out
    assert f'{SITE} hut notes: base null | mine (not set) | theirs "water here"' in out
    assert ('keep mine sets your values on their record (no second record); what only theirs '
            'has stays: region "North", notes "water here"') in out
    [c] = json.loads((await cli(b, "conflicts"))[1])
    assert [f["field"] for f in c["fields"] if f["theirs_only"]] == ["region", "notes"]
    rc, out, err = await cli(b, "resolve", c["uid"], "--keep", "mine", json_out=False)
    assert rc == 0, err
    assert "what only it had stays (region, notes)" in out
    assert (await cli(b, "sync", "--once"))[0] == 0
    _rc, out, _ = await cli(b, "show", SITE, "hut")
    rec = json.loads(out)
    assert {k: v for k, v in rec["fields"].items() if v is not None} == {
        "name": "Bob hut", "lat": 45.2, "region": "North", "notes": "water here"}
