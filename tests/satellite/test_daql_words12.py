"""Session 12: what a satellite syncing with a daql hub says of its edits. An edit put aside
(sent, its answer lost) is counted apart from the conflicts (`outpost status`, text and
`--json`; `sync --once`), not as one. Real CLI processes against
:class:`tests.support.fakedaql.FakeDaql` on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from core.schema import Project
from tests.satellite.test_cli import cli
from tests.satellite.test_daql import SITE, _aside, daql_dir
from tests.support.fakedaql import FakeDaql


async def _clash(d: Path, daql: FakeDaql) -> str:
    """An offline change of record ``r`` a colleague changed meanwhile: a conflict found
    here (not sent to the daql hub). Its uid."""
    rc, out, err = await cli(d, "pub", SITE, "r", "mod", "name=mine (offline)")
    assert rc == 0, err
    uid: str = json.loads(out)["uid"]
    daql.publish([{"top": SITE, "key": "r", "cmd": "mod", "arg": {"name": "colleague"}}])
    return uid


async def test_status_counts_put_aside_edits_apart_from_conflicts(
        tmp_path: Path, project: Project) -> None:
    """One edit put aside and one real conflict: "1 conflict, 1 put aside", `put_aside` in
    the JSON, `conflicts` only the real one (session 11 counted 2 conflicts)."""
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "r", "cmd": "new", "arg": {"name": "v0"}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        assert (await cli(d, "sync", "--once", "--timeout", "10"))[0] == 0
        aside, _, err = await _aside(d, daql, "-", "new", "name=Birch")
        assert "1 edit put aside (answer lost)" in err, err
        st = json.loads((await cli(d, "status"))[1])
        assert (st["conflicts"], st["put_aside"]) == (0, 1), st
        clash = await _clash(d, daql)
        rc, out, err = await cli(d, "sync", "--once", "--timeout", "10", "--fail-on-conflict",
                                 json_out=False)
        assert rc == 3, (out, err)
        assert out.strip().endswith("0 pending, 1 conflict, 1 put aside"), out
        assert "1 edit in conflict and 1 edit put aside (answer lost)" in err, err
        inbox = {c["uid"] for c in json.loads((await cli(d, "conflicts"))[1])}
        assert inbox == {aside, clash}  # the inbox lists both, to resolve
        st = json.loads((await cli(d, "status"))[1])
        assert (st["conflicts"], st["put_aside"]) == (1, 1), st
        rc, out, _ = await cli(d, "status", json_out=False)
        assert "conflicts: 1\n" in out and "put_aside: 1\n" in out, out
        # dropping the one put aside leaves the conflict alone
        assert (await cli(d, "resolve", aside, "--keep", "theirs"))[0] == 0
        st = json.loads((await cli(d, "status"))[1])
        assert (st["conflicts"], st["put_aside"]) == (1, 0), st
        rc, out, err = await cli(d, "sync", "--once", "--timeout", "10", "--fail-on-conflict",
                                 json_out=False)
        assert rc == 3 and out.strip().endswith("0 pending, 1 conflict"), (out, err)
        assert "put aside" not in err, err
