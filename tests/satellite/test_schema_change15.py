"""Schema-change review 15: a team changes its schema (backup, restore with the new schema,
serve the new database) while laptops hold edits. Real hubs on 127.0.0.1 over real SQLite
files, the laptops' commands real CLI processes."""

from __future__ import annotations

import json
from pathlib import Path

from core.ledger import ops
from core.ledger.sql import SqlLedger
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
