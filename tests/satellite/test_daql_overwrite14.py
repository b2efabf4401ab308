"""Session 14, daql leftovers of wire review 13's conflicts after the fact (an edit a daql hub
applied over a colleague's change it took just before): the edit's own event is the user's
(a later edit of the record named it "someone"'s change), a change after it is said in the
words of such a conflict, and a ``new`` just after a colleague's ``new`` of the same key
(daql applies it over their record) is one too. Real CLI (subprocesses) against
:class:`tests.support.fakedaql.FakeDaql` on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from core.schema import Project
from tests.satellite.test_cli import cli
from tests.satellite.test_daql import daql_dir
from tests.satellite.test_daql_overwrite13 import _conflicts, _raced, _status, _synced
from tests.support.fakedaql import FakeDaql

SITE = "field.site"


async def test_a_later_edit_of_an_overwritten_record_names_the_users_own_event(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "k", "cmd": "new",
                       "arg": {"name": "P", "region": "R", "lat": 1.5}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        await _synced(d)
        first = json.loads((await cli(d, "pub", SITE, "k", "mod", "name=mine 1"))[1])["uid"]
        later = json.loads((await cli(d, "pub", SITE, "k", "mod", "region=mine R"))[1])["uid"]
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod",
                           "arg": {"name": "colleague", "region": "colleague R"}}])
        await _synced(d)
        await _synced(d)
        inbox = {c["uid"]: c for c in await _conflicts(d)}
        assert inbox[first]["overwrote"] is True
        # the later save conflicts with the colleague's change of region (not sent: a daql
        # hub would overwrite it); the last change of name is the user's own first edit
        text = " ".join(inbox[later]["explain"])
        assert 'they changed region to "colleague R" (someone, ' in text, text
        assert daql.state[(SITE, "k")]["region"] == "colleague R"


async def test_a_change_after_an_overwrite_is_said_as_such(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d, uid, _ = await _raced(tmp_path, project, daql, ["name=mine"], {"name": "colleague"})
        daql.publish([{"top": SITE, "key": "k", "cmd": "mod", "arg": {"name": "third"}}])
        await _synced(d)
        [row] = await _conflicts(d)
        assert row["uid"] == uid and row["overwrote"] is True
        name = next(f for f in row["fields"] if f["field"] == "name")
        assert name["since"] == "changed"
        said = " ".join(row["explain"])
        # session 13: "theirs shows it as it is now: keep mine replaces these values with
        # yours" (theirs shows what was overwritten; keep mine sends nothing)
        assert "theirs shows it as it is now" not in said, said
        assert "since your edit it was changed again (someone, " in said, said
        assert "keep mine leaves it as it is now" in said, said


async def test_a_new_just_after_a_colleagues_new_of_the_key_is_a_conflict(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        d = daql_dir(tmp_path / "sat", project, daql.url)
        await _synced(d)
        rc, out, err = await cli(d, "pub", SITE, "k2", "new", "name=mine", "lat=2.5")
        assert rc == 0, err
        uid = json.loads(out)["uid"]
        daql.race.append([{"top": SITE, "key": "k2", "cmd": "new",
                           "arg": {"name": "colleague", "region": "East"}}])
        said = await _synced(d)
        assert daql.state[(SITE, "k2")] == {"name": "mine", "lat": 2.5}  # theirs replaced
        assert "1 new conflict after the fact" in said, said  # session 14: "0 conflicts"
        st = await _status(d)
        assert (st["pending"], st["conflicts"]) == (0, 1), st
        [row] = await _conflicts(d)
        assert row["uid"] == uid and row["overwrote"] is True
        text = " ".join(row["explain"])
        assert "your new record replaced the one a colleague created under this key" in text
        assert ('theirs had name "colleague", region "East", yours has name "mine", lat 2.5'
                in text), text
        rc, out, err = await cli(d, "resolve", uid, "--keep", "theirs", json_out=False)
        assert rc == 0, err
        await _synced(d)
        got = {f: v for f, v in daql.state[(SITE, "k2")].items() if v is not None}
        assert got == {"name": "colleague", "region": "East"}
        assert await _conflicts(d) == []


async def test_a_carried_overwrite_conflict_does_not_make_a_colleagues_change_yours(
        tmp_path: Path, project: Project) -> None:
    """``outpost carry --rejected`` stores a carried conflict at the new replica's revision
    (merge review 14 HIGH 1: that revision, a colleague's change, counted as the user's own:
    a carried edit of the record was sent over it with no conflict)."""
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "k", "cmd": "new", "arg": {"name": "P"}},
                      {"top": SITE, "key": "m", "cmd": "new",
                       "arg": {"name": "M", "region": "R"}}])
        old = daql_dir(tmp_path / "old", project, daql.url)
        await _synced(old)
        over = json.loads((await cli(old, "pub", SITE, "k", "mod", "name=mine"))[1])["uid"]
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod",
                           "arg": {"name": "colleague"}}])
        await _synced(old)
        edit = json.loads((await cli(old, "pub", SITE, "m", "mod", "region=mineR"))[1])["uid"]
        # the colleague's change is the hub's newest event: the new replica's revision
        daql.publish([{"top": SITE, "key": "m", "cmd": "mod", "arg": {"region": "colleagueR"}}])
        new = daql_dir(tmp_path / "new", project, daql.url)
        await _synced(new)
        rc, out, err = await cli(new, "carry", str(old), "--rejected")
        assert rc == 0, (out, err)
        await _synced(new)
        assert daql.state[(SITE, "m")]["region"] == "colleagueR"  # not overwritten
        inbox = {c["uid"]: c for c in await _conflicts(new)}
        assert inbox[over]["overwrote"] is True
        text = " ".join(inbox[edit]["explain"])
        assert 'they changed region to "colleagueR" (someone, ' in text, text
        assert "earlier, you" not in text, text


async def test_an_overwrite_conflict_stored_before_session_14_names_no_change_yours(
        tmp_path: Path, project: Project) -> None:
    """Before session 14 such a conflict was stored at its reply's revision, which may be a
    colleague's change made after the edit in the same reply (merge review 14 MEDIUM 2: that
    change counted as the user's own). Simulated: the receipt set as it stored it."""
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "k", "cmd": "new",
                       "arg": {"name": "P", "region": "R", "lat": 1.5}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        await _synced(d)
        over = json.loads((await cli(d, "pub", SITE, "k", "mod", "name=mine"))[1])["uid"]
        later = json.loads((await cli(d, "pub", SITE, "k", "mod", "region=mineR"))[1])["uid"]
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod", "arg": {"name": "colleague"}}])
        daql.race_after.append([{"top": SITE, "key": "k", "cmd": "mod",
                                 "arg": {"region": "colleagueR"}}])
        await _synced(d)
        [db] = [p for p in d.rglob("*.sqlite")] or list(d.rglob("*.db"))
        con = sqlite3.connect(db)
        try:
            con.execute("UPDATE sat_receipt SET rev = (SELECT max(rev) FROM sat_receipt), "
                        "local_err = '' WHERE uid = ?", (over,))
            con.commit()
        finally:
            con.close()
        inbox = {c["uid"]: c for c in await _conflicts(d)}
        assert inbox[over]["overwrote"] is True
        text = " ".join(inbox[later]["explain"])
        assert 'they changed region to "colleagueR" (someone, ' in text, text
        assert "earlier, you" not in text, text
