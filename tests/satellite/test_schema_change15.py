"""Schema-change review 15: a team changes its schema (backup, restore with the new schema,
serve the new database) while laptops hold edits. Real hubs on 127.0.0.1 over real SQLite
files, the laptops' commands real CLI processes."""

from __future__ import annotations

import json
from pathlib import Path

from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from hubserver.cli import DEMO_SCHEMA
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here
from tests.satellite.test_cli import cli
from tests.support.procs import free_port

SITE = "field.site"
V1 = DEMO_SCHEMA.read_text()


def changed(old: str, new: str) -> Project:
    """The demo schema with ``old`` replaced by ``new`` (a schema change)."""
    assert old in V1
    return parse_project(V1.replace(old, new))


async def test_schema_change_names_the_edits_the_hub_accepted_after_the_backup(
        tmp_path: Path, project: Project) -> None:
    """operations.md §4 as it read: a backup while the hub still runs, a laptop's edit the
    hub accepts after it, then the restore with a new schema. The laptop's stop message
    named only the schema: it now names the accepted edits the new hub lacks and the
    `carry --accepted` that brings them; a laptop that synced before the backup is told
    nothing of the kind."""
    old, early = tmp_path / "old", tmp_path / "early"
    port = free_port()
    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=port) as hub1:
            for d in (old, early):
                assert (await cli(d, "connect", hub1.url))[0] == 0
            pub_here(old, "s1", "new", name="Ridge")
            await sync_here(old)
            await sync_here(early)
            ops.backup(led1, tmp_path / "b.ledger")
            uid = pub_here(old, "s1", "mod", notes="accepted after the backup")
            await sync_here(old)
            assert led1.uid_rev(uid)
    finally:
        led1.close()
    v2 = changed('label = "Sites"', 'label = "Field sites"')
    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", v2)
    try:
        async with Hub(led2, port=port):
            rc, _, err = await cli(old, "sync", "--once", json_out=False)
            said = " ".join(err.split())
            assert rc != 0 and "schema version" in said, said
            assert "does not hold every edit of this replica it accepted" in said, said
            assert "`outpost carry OLD_DIR --data NEWDIR --accepted`" in said, said
            rc, out, _ = await cli(old, "status")
            st = json.loads(out)
            assert st["pending"] == 0 and "--accepted" in st["last_error"], st
            # synced before the backup: the new hub holds all it has; no --accepted
            rc, _, err = await cli(early, "sync", "--once", json_out=False)
            said = " ".join(err.split())
            assert rc != 0 and "schema version" in said, said
            assert "--accepted" not in said and "does not hold" not in said, said
    finally:
        led2.close()


async def test_carry_past_edits_the_new_schema_refuses(tmp_path: Path, project: Project) -> None:
    """The hub makes `region` required (every stored event set it) and drops `lon` (none
    set it); a laptop holds offline edits: a `new` site without region, later given one,
    a `mod` setting lon, others that fit. carry refused everything, and its advice
    (--drop-invalid-fields) repeated itself once followed. Now the advice fits each case,
    and --skip-invalid carries the rest, leaving (and listing) the `new` and the later
    edit of its record in the old directory."""
    old, new = tmp_path / "old", tmp_path / "new"
    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=0) as hub1:
            assert (await cli(old, "connect", hub1.url))[0] == 0
            pub_here(old, "s1", "new", name="Ridge", region="Alps")
            await sync_here(old)
            ops.backup(led1, tmp_path / "b.ledger")
    finally:
        led1.close()
    notes = pub_here(old, "s1", "mod", notes="day 1 notes")
    s2 = pub_here(old, "s2", "new", name="Col", lat=46.1)
    sat = Satellite(old)
    try:
        obs = sat.pub([Action("field.obs", "o1", Cmd.NEW, {"site": "s2", "species": "Ibex"})])
    finally:
        sat.close()
    s2_region = pub_here(old, "s2", "mod", region="Valais")
    lon = pub_here(old, "s1", "mod", lon=7.1)
    v2 = changed('region = { type = "str", label = "Region" }\nlat = { type = "float", '
                 'label = "Latitude" }\nlon = { type = "float", label = "Longitude" }',
                 'region = { type = "str", required = true, label = "Region" }\n'
                 'lat = { type = "float", label = "Latitude" }')
    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", v2)
    try:
        async with Hub(led2, port=0) as hub2:
            assert (await cli(new, "connect", hub2.url))[0] == 0
            await sync_here(new)
            rc, out, err = await cli(new, "carry", str(old), json_out=False)
            said = " ".join(err.split())
            assert rc == 1 and "nothing was carried" in said, said
            assert "1 transaction only sets fields the new schema refuses" in said, said
            assert "--drop-invalid-fields leaves those fields out" in said, said
            assert "dropping fields cannot fix 1 transaction" in said, said
            assert "--skip-invalid carries the rest" in said, said
            # as advised: the fields dropped; the advice is not given again
            rc, out, err = await cli(new, "carry", str(old), "--drop-invalid-fields",
                                     json_out=False)
            said = " ".join(err.split())
            assert rc == 1 and "--drop-invalid-fields" not in said, said
            assert "dropping fields cannot fix 1 transaction" in said, said
            assert "--skip-invalid carries the rest" in said, said
            assert not json.loads((await cli(new, "status"))[1])["pending"]
            rc, out, err = await cli(new, "carry", str(old), "--drop-invalid-fields",
                                     "--skip-invalid")
            res = json.loads(out)
            assert rc == 0, err
            assert res["uids"] == [notes, obs] and res["left_uids"] == [s2, s2_region]
            assert res["emptied_uids"] == [lon], res  # it set lon only: nothing left
            assert res["left_actions"][0]["reason"].endswith(
                "required field 'region' is missing"), res
            assert s2 in res["left_actions"][1]["reason"], res
            rc, _, err = await cli(new, "carry", str(old), "--drop-invalid-fields",
                                   "--skip-invalid", "--dry-run", json_out=False)
            assert rc == 0 and "left there, not carried (--skip-invalid" in err, err
            assert s2 in err and s2_region in err, err
            await sync_here(new)
            st = led2.state(SITE, "s1")
            assert st is not None and st["notes"] == "day 1 notes" and "lon" not in st, st
            assert led2.state("field.obs", "o1") is not None
            assert led2.state(SITE, "s2") is None
        # the left ones stay in the old directory, pending, as they were
        rc, out, _ = await cli(old, "status")
        assert json.loads(out)["pending"] == 5
    finally:
        led2.close()


async def test_export_import_after_a_required_field_with_a_default(
        tmp_path: Path, project: Project) -> None:
    """A required `status` with a default is added: the records made before hold none.
    `export` then `import` of the same file (a cell edited) was refused on every such row
    ("empty, but ... required"); an empty cell equal to the record's value is unchanged
    now. An empty required cell of a new record, or one that clears a value, is still
    refused."""
    old, new = tmp_path / "old", tmp_path / "new"
    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=0) as hub1:
            assert (await cli(old, "connect", hub1.url))[0] == 0
            pub_here(old, "s1", "new", name="Ridge", region="Alps")
            await sync_here(old)
            ops.backup(led1, tmp_path / "b.ledger")
    finally:
        led1.close()
    v2 = changed('notes = { type = "text", label = "Notes" }\n\n[field.obs]',
                 'notes = { type = "text", label = "Notes" }\nstatus = { type = "enum", '
                 'values = ["active", "closed"], required = true, default = "active" }\n\n'
                 '[field.obs]')
    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", v2)
    try:
        async with Hub(led2, port=0) as hub2:
            assert (await cli(new, "connect", hub2.url))[0] == 0
            await sync_here(new)
            rc, out, err = await cli(new, "export", SITE, json_out=False)
            assert rc == 0, err
            head, row = out.splitlines()[:2]
            assert head.split(",")[6] == "status" and row.split(",")[6] == "", out
            sheet = tmp_path / "sites.csv"
            sheet.write_text(out.replace(",Alps,", ",Alps (north),"))
            rc, out, err = await cli(new, "import", SITE, str(sheet), json_out=False)
            assert rc == 0 and "1 changed" in out, err
            st = new_state(new, "s1")
            assert st["region"] == "Alps (north)" and st["status"] is None, st
            # a new record needs it; a cell clearing a value is refused
            sheet.write_text("key,name,status\ns9,Col,\n")
            rc, _, err = await cli(new, "import", SITE, str(sheet), json_out=False)
            assert rc != 0 and "column status: empty, but field.site's status is " \
                "required: give a value" in " ".join(err.split()), err
            sheet.write_text("key,name\ns1,\n")
            rc, _, err = await cli(new, "import", SITE, str(sheet), json_out=False)
            said = " ".join(err.split())
            assert rc != 0 and "column name: empty, but field.site's name is required: " \
                "give a value (the record holds one: an empty cell would clear it)" in said, said
            assert new_state(new, "s1")["name"] == "Ridge"
    finally:
        led2.close()


def new_state(data: Path, key: str) -> dict[str, object]:
    sat = Satellite(data, read_only=True)
    try:
        rec = sat.record(SITE, key)
        assert rec is not None and rec.fields is not None
        return dict(rec.fields)
    finally:
        sat.close()
