"""Session 15, daql leftovers of the conflicts after the fact (an edit a daql hub applied over
a colleague's change it took just before, session 13): the user's next edit of the fields
the overwrite set, saved before the overwrite was known, is sent (it was held back as a
second conflict with the colleague's change the overwrite's conflict already reports). Real
CLI (subprocesses) against :class:`tests.support.fakedaql.FakeDaql` on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from core.model import Action, Cmd
from core.revision import parse_rev
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.satellite.test_cli import cli
from tests.satellite.test_daql import daql_dir
from tests.satellite.test_daql_overwrite13 import _conflicts, _status, _synced
from tests.support.fakedaql import FakeDaql

SITE = "field.site"


async def test_a_later_edit_of_an_overwritten_field_is_sent_not_held_back(
        tmp_path: Path, project: Project) -> None:
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "k", "cmd": "new",
                       "arg": {"name": "P", "region": "R", "lat": 1.5}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        await _synced(d)
        first = json.loads((await cli(d, "pub", SITE, "k", "mod", "name=mine 1"))[1])["uid"]
        later = json.loads((await cli(d, "pub", SITE, "k", "mod", "name=mine 2"))[1])["uid"]
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod",
                           "arg": {"name": "colleague"}}])
        await _synced(d)
        await _synced(d)
        inbox = {c["uid"]: c for c in await _conflicts(d)}
        assert list(inbox) == [first] and inbox[first]["overwrote"] is True
        assert later not in inbox  # before: a local conflict "earlier, you changed name …"
        assert daql.state[(SITE, "k")]["name"] == "mine 2"
        st = await _status(d)
        assert (st["pending"], st["conflicts"]) == (0, 1), st
        # the overwrite's conflict is still there, its theirs the colleague's value
        [row] = await _conflicts(d)
        name = next(f for f in row["fields"] if f["field"] == "name")
        assert name["theirs"] == "colleague"


async def test_an_edit_on_the_old_base_after_the_overwrite_is_known_is_sent(
        tmp_path: Path, project: Project) -> None:
    """An edit made after the overwrite was reported, on a base before it (as the app's form
    loaded it): the colleague's overwritten change is no conflict of it either; a change of
    another field of theirs still is."""
    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "k", "cmd": "new",
                       "arg": {"name": "P", "region": "R", "lat": 1.5}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        await _synced(d)
        old = parse_rev((await _status(d))["rev"])
        first = json.loads((await cli(d, "pub", SITE, "k", "mod", "name=mine 1"))[1])["uid"]
        daql.race.append([{"top": SITE, "key": "k", "cmd": "mod",
                           "arg": {"name": "colleague", "region": "colleague R"}}])
        await _synced(d)
        sat = Satellite(d, project)
        try:
            again = sat.pub([Action(SITE, "k", Cmd.MOD, {"name": "mine 2"})], base=old)
            region = sat.pub([Action(SITE, "k", Cmd.MOD, {"region": "mine R"})], base=old)
        finally:
            sat.close()
        await _synced(d)
        inbox = {c["uid"]: c for c in await _conflicts(d)}
        assert set(inbox) == {first, region}, inbox
        assert daql.state[(SITE, "k")]["name"] == "mine 2"
        assert daql.state[(SITE, "k")]["region"] == "colleague R"
        assert again not in inbox
