"""Wire review 13, finding 1: a colleague's change a daql hub applied just before the
satellite's edit arrived (the Go hub pushes every 200 ms: not received yet when the edit was
sent). daql ignores ``base`` and applies the edit over it; the reply holds the colleague's
event before the edit's own revision. Before, the edit was acked and the satellite said "0
conflicts": the colleague's change was silently overwritten. Now it is a conflict after the
fact, whose keep theirs sends theirs back and keep mine keeps the hub as it is. Real CLI
(subprocesses) against :class:`tests.support.fakedaql.FakeDaql` on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.schema import Project
from tests.satellite.test_cli import cli
from tests.satellite.test_daql import daql_dir
from tests.support.fakedaql import FakeDaql

SITE = "field.site"


async def _synced(d: Path) -> str:
    rc, _, err = await cli(d, "sync", "--once", "--timeout", "10")
    assert rc == 0, err
    return err


async def _raced(tmp_path: Path, project: Project, daql: FakeDaql, mine: list[str],
                 theirs: dict[str, Any] | None, *, late: bool = False,
                 cmd: str = "mod") -> tuple[Path, str, str]:
    """A record k on the hub and synced; the user edits it (``cmd`` ``mine``); a colleague's
    ``mod`` of ``theirs`` reaches the hub just before the edit (pushed to the satellite
    after the reply with ``late``). Returns the data directory, the edit's uid and what
    the sync said on stderr."""
    daql.publish([{"top": SITE, "key": "k", "cmd": "new",
                   "arg": {"name": "P", "region": "R", "lat": 1.5}}])
    d = daql_dir(tmp_path / "sat", project, daql.url)
    await _synced(d)
    rc, out, err = await cli(d, "pub", SITE, "k", cmd, *mine)
    assert rc == 0, err
    uid = json.loads(out)["uid"]
    if theirs is not None:
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod", "arg": theirs}])
    daql.race_late = late
    return d, uid, await _synced(d)


async def _conflicts(d: Path) -> list[dict[str, Any]]:
    rc, out, err = await cli(d, "conflicts")
    assert rc == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


async def _status(d: Path) -> dict[str, Any]:
    rc, out, err = await cli(d, "status")
    assert rc == 0, err
    st: dict[str, Any] = json.loads(out)
    return st


@pytest.mark.parametrize("late", [False, True])
async def test_an_edit_applied_over_a_colleagues_change_is_a_conflict_keep_theirs_sends_it_back(
        tmp_path: Path, project: Project, late: bool) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, said = await _raced(tmp_path, project, daql, ["name=mine"],
                                    {"name": "colleague"}, late=late)
        assert daql.state[(SITE, "k")]["name"] == "mine"  # daql applied it over theirs
        assert "1 new conflict after the fact" in said, said
        st = await _status(d)
        assert (st["pending"], st["conflicts"]) == (0, 1), st
        inbox = await _conflicts(d)
        assert [c["uid"] for c in inbox] == [uid]
        assert inbox[0]["overwrote"] is True
        text = " ".join(inbox[0]["explain"])
        assert "your edit overwrote a colleague's change" in text, text
        assert 'theirs was name "colleague"' in text, text
        row = next(f for f in inbox[0]["fields"] if f["field"] == "name")
        assert (row["base"], row["mine"], row["theirs"]) == ("P", "mine", "colleague")
        assert row["since"] is None  # the user's own event is not "changed since"
        rc, out, _ = await cli(d, "conflicts", json_out=False)
        assert f"{uid}\toverwrote\t" in out, out
        rc, out, _ = await cli(d, "show", SITE, "k")
        shown = json.loads(out)
        assert shown["state"] == "conflict" and shown["fields"]["name"] == "mine", shown
        # keep theirs: their value goes back to the hub as a new edit
        rc, out, err = await cli(d, "resolve", uid, "--keep", "theirs", json_out=False)
        assert rc == 0, err
        assert f"resolved {uid}: theirs sent back as " in out, out
        await _synced(d)
        assert daql.state[(SITE, "k")] == {"name": "colleague", "region": "R", "lat": 1.5}
        assert [e["arg"] for e in daql.events if e["cmd"] == "mod"][-1] == {"name": "colleague"}
        assert await _conflicts(d) == []
        st = await _status(d)
        assert (st["pending"], st["conflicts"]) == (0, 0), st


async def test_keep_mine_of_an_overwrite_sends_nothing_and_says_so_again(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, _ = await _raced(tmp_path, project, daql, ["name=mine"], {"name": "colleague"})
        n = len(daql.events)
        rc, out, err = await cli(d, "resolve", uid, "--keep", "mine")
        assert rc == 0, err
        assert json.loads(out) == {"uid": uid, "resolved_by": "mine", "overwrote": True}
        rc, out, err = await cli(d, "conflicts")  # nothing left, and said in words too
        assert json.loads(out) == []
        await _synced(d)
        assert len(daql.events) == n  # nothing sent: the hub has it
        assert daql.state[(SITE, "k")]["name"] == "mine"
        assert await _conflicts(d) == []
        rc, _out, err = await cli(d, "resolve", uid, "--keep", "theirs")
        assert rc == 1 and "by keeping yours, on the hub already" in err, err


async def test_a_change_of_other_fields_just_before_merges_without_a_conflict(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, _uid, said = await _raced(tmp_path, project, daql, ["name=mine"], {"region": "Q"})
        assert "conflict" not in said, said
        st = await _status(d)
        assert (st["pending"], st["conflicts"]) == (0, 0), st
        _rc, out, _ = await cli(d, "show", SITE, "k")
        shown = json.loads(out)
        assert shown["state"] == "confirmed", shown
        assert (shown["fields"]["name"], shown["fields"]["region"]) == ("mine", "Q"), shown
        assert daql.state[(SITE, "k")] == {"name": "mine", "region": "Q", "lat": 1.5}


async def test_a_delete_over_a_colleagues_change_keep_theirs_creates_it_again(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, said = await _raced(tmp_path, project, daql, [], {"region": "Q"}, cmd="del")
        assert (SITE, "k") not in daql.state
        assert "1 new conflict after the fact" in said, said
        inbox = await _conflicts(d)
        assert [c["uid"] for c in inbox] == [uid]
        text = " ".join(inbox[0]["explain"])
        assert "your delete overwrote a colleague's change" in text, text
        rc, _out, err = await cli(d, "resolve", uid, "--keep", "theirs")
        assert rc == 0, err
        await _synced(d)
        # as they left it: their change on the record as it was
        assert daql.state[(SITE, "k")] == {"name": "P", "region": "Q", "lat": 1.5}
        assert await _conflicts(d) == []


async def test_per_field_choice_of_an_overwrite_sends_back_only_the_fields_kept_theirs(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, _ = await _raced(tmp_path, project, daql, ["name=mine", "region=mine"],
                                 {"name": "colleague", "region": "theirs"})
        inbox = await _conflicts(d)
        assert sorted(f["field"] for f in inbox[0]["fields"] if f["conflict"]) == [
            "name", "region"]
        rc, _out, err = await cli(d, "resolve", uid, "--field", "name=theirs",
                                 "--field", "region=mine")
        assert rc == 0, err
        await _synced(d)
        assert daql.state[(SITE, "k")] == {"name": "colleague", "region": "mine", "lat": 1.5}
        assert [e["arg"] for e in daql.events if e["cmd"] == "mod"][-1] == {"name": "colleague"}
        assert await _conflicts(d) == []
