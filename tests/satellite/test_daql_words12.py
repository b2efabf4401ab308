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
        assert "1 edit is in conflict and 1 edit put aside (answer lost)" in err, err
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


async def test_an_edit_refused_here_says_not_sent_not_rejected_by_the_hub(
        tmp_path: Path, project: Project) -> None:
    """An offline edit of a record a colleague changed meanwhile is found to conflict here and
    never sent to the daql hub: `sync --once`, the status's last error, `outpost conflicts`
    and continuous sync's line say so; session 11 said "rejected by the hub" / "the hub
    rejected the whole transaction" though the hub never saw it."""
    from core.model import Action, Cmd
    from core.satellite.api import ReceiptState
    from core.satellite.satellite import Satellite
    from desktop.headless import rejection_line

    async with FakeDaql(set(project.topics)) as daql:
        daql.publish([{"top": SITE, "key": "r", "cmd": "new", "arg": {"name": "v0"}}])
        d = daql_dir(tmp_path / "sat", project, daql.url)
        assert (await cli(d, "sync", "--once", "--timeout", "10"))[0] == 0
        sat = Satellite(d, project)
        try:  # one edit of two records: r clashes, z (new) collides with nothing
            uid = sat.pub([Action(SITE, "r", Cmd.MOD, {"name": "mine"}),
                           Action(SITE, "z", Cmd.NEW, {"name": "zz"})])
        finally:
            sat.close()
        daql.publish([{"top": SITE, "key": "r", "cmd": "mod", "arg": {"name": "colleague"}}])
        rc, _, err = await cli(d, "sync", "--once", "--timeout", "10")
        assert rc == 0, err
        assert "1 new conflict found here, not sent: this hub (daql)" in err, err
        assert "rejected" not in err, err
        assert daql.news(SITE) == ["r"]  # z was not sent either
        st = json.loads((await cli(d, "status"))[1])
        assert st["last_error"].startswith(f"not sent (a conflict found here): {uid}: "), st
        assert "rejected" not in st["last_error"], st
        [c] = json.loads((await cli(d, "conflicts"))[1])
        said = " ".join(c["explain"])
        assert "Not sent: this hub (a daql hub) does not check an edit" in said, said
        assert "held back with the rest of the edit (not sent)" in said, said
        assert "rejected" not in said, said
        sat = Satellite(d, project)
        try:
            rec = sat.receipt(uid)
            assert rec is not None and rec.state == ReceiptState.REJECTED
            line = rejection_line(rec)
            assert line.startswith(f"conflict found here in {SITE} r, {SITE} z (uid {uid}): "), line
            assert "not sent: this hub (daql)" in line and "rejected" not in line, line
        finally:
            sat.close()
        # resolved: the status's error is no longer shown (it named only that edit)
        assert (await cli(d, "resolve", uid, "--keep", "theirs"))[0] == 0
        st = json.loads((await cli(d, "status"))[1])
        assert st["last_error"] == "" and st["conflicts"] == 0, st


def test_a_session_11_receipt_refused_here_is_known_as_such() -> None:
    """Session 11 stored an edit refused here without the reason code, its error ending
    "(not sent: this hub, a daql hub, …)": still said as not sent."""
    from core.model import Action, Cmd
    from core.revision import ZERO_REV
    from core.satellite.api import Receipt, ReceiptState, refused_here

    def rec(err: str) -> Receipt:
        return Receipt("u1", ZERO_REV, ZERO_REV, (Action(SITE, "k", Cmd.MOD, {"name": "B"}),),
                       ReceiptState.REJECTED, err=err)

    assert refused_here(rec(
        "conflict: mod field.site k: field name changed at X (not sent: this hub, a daql "
        "hub, does not check an edit against changes made after it, and would have "
        "overwritten them)"))
    assert not refused_here(rec("the hub refused this edit: bad value"))
