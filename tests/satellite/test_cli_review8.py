"""User review 8 (findings 4, 5, 7, 10, 14) for the headless CLI: `outpost conflicts` shows
every field of a rejected edit and says plainly what happened; a token the hub refuses
changes nothing (`connect`) and stops `sync --once` at once; `sync --once` counts new
conflicts and `--fail-on-conflict` exits 3; `status` prints the holder readably; `pub` of a ref
to a record that does not exist warns. Subprocesses `python -m desktop.headless` against real
hubs on 127.0.0.1 (with tokens where it matters)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.schema import Project, parse_project
from hubserver.auth import Users
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

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


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in ("status.json", "outpost.lock")}


async def test_connect_with_a_token_the_hub_refuses_changes_nothing(
        tmp_path: Path, hub: Hub, users: Users) -> None:
    """`connect URL --token=badtoken` stored the bad token over the working one, exit 0."""
    good = users.add("alice")
    a = tmp_path / "a"
    rc, _, err = await cli(a, "connect", hub.url, f"--token={good}")
    assert rc == 0, err
    assert (await cli(a, "sync", "--once", "--timeout", "10"))[0] == 0
    before = _tree(a)
    rc, out, err = await cli(a, "connect", hub.url, "--token=badtoken", json_out=False)
    assert rc == 1 and out == ""
    assert "refused the token (HTTP 401)" in err
    assert "nothing was changed" in err and "kept" in err
    assert "--token=TOKEN` again with a valid token" in err
    assert _tree(a) == before  # config.json still holds the good token
    assert json.loads((a / "config.json").read_text())["token"] == good
    # a new directory with a refused token is not made at all
    rc, _, err = await cli(tmp_path / "new", "connect", hub.url, "--token=badtoken")
    assert rc == 1 and "refused the token" in err
    assert not (tmp_path / "new").exists()
    # an unreachable OTHER hub is not stored over the one that works (a typo in the port;
    # firstday review 14) unless --offline: then stored (offline first), and said
    rc, out, err = await cli(a, "connect", "ws://127.0.0.1:9", "--token=x", json_out=False)
    assert rc == 1 and out == "", out
    assert f"its hub stays {hub.url}" in err and "--offline" in err, err
    assert _tree(a) == before
    rc, out, err = await cli(a, "connect", "ws://127.0.0.1:9", "--token=x", "--offline",
                             json_out=False)
    assert rc == 0, err
    assert "could not be reached" in out and "stored anyway, to work offline" in out


async def test_connect_without_a_token_to_a_hub_that_needs_one_says_so(
        tmp_path: Path, hub: Hub, users: Users) -> None:
    """Firstday review 14: `connect URL` with no --token said the token "is wrong, expired or
    revoked"; none was given."""
    users.add("alice")
    rc, out, err = await cli(tmp_path / "a", "connect", hub.url, json_out=False)
    assert rc == 1 and out == "", out
    assert "needs a token, and none was given" in err, err
    assert "--token=TOKEN" in err and "outpost-hub user add NAME" in err, err
    assert "wrong, expired or revoked" not in err
    assert not (tmp_path / "a").exists()


async def test_sync_once_stops_at_once_on_a_refused_token(
        tmp_path: Path, hub: Hub, users: Users) -> None:
    """It retried for the whole --timeout before failing; now it fails on the first refusal
    (the message names the fix, not "did not finish within")."""
    good = users.add("alice")
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url, f"--token={good}"))[0] == 0
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "token": "revoked"}))
    rc, _, err = await cli(a, "sync", "--once", "--timeout", "600")
    assert rc == 1
    assert "refused the token (HTTP 401)" in err and "did not finish within" not in err
    assert f"outpost connect {hub.url} --token=TOKEN" in err


async def test_sync_once_says_an_unreachable_hub_while_it_retries(
        tmp_path: Path, project: Project) -> None:
    """An unreachable hub is retried until --timeout (the contract), but said at once: 30 s
    of silence read as a hang."""
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as h:
        assert (await cli(a, "connect", h.url))[0] == 0
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "hub": "ws://127.0.0.1:9"}))
    rc, _, err = await cli(a, "sync", "--once", "--timeout", "1")
    assert rc == 1
    first, *rest = err.splitlines()
    assert "cannot reach the hub at ws://127.0.0.1:9" in first
    assert "retrying for up to 1 s" in first
    assert "did not finish within 1 s" in rest[-1]


async def test_sync_once_stops_at_once_on_a_hub_of_another_schema(
        tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as h:
        assert (await cli(a, "connect", h.url))[0] == 0
    other = parse_project({"project": {"name": "x"},
                           "field": {"site": {"fields": {"name": {"type": "str"}}}}})
    async with Hub(MemLedger(other), port=0) as elsewhere:
        cfg = json.loads((a / "config.json").read_text())
        (a / "config.json").write_text(json.dumps({**cfg, "hub": elsewhere.url}))
        rc, _, err = await cli(a, "sync", "--once", "--timeout", "600")
    assert rc == 1 and "schema version" in err and "did not finish within" not in err


async def test_conflicts_and_sync_once_with_conflicts(tmp_path: Path, project: Project) -> None:
    """Findings 4, 5 and 10: A changed name and region, B the name (A's region did not
    conflict: it is listed, marked); B deleted a record A changed; A deleted one B changed.
    `sync --once` counts the new conflicts on stderr (exit 0, the contract) and
    `--fail-on-conflict` exits 3."""
    a, b = tmp_path / "a", tmp_path / "b"
    async with Hub(MemLedger(project), port=0) as h:
        assert (await cli(a, "connect", h.url))[0] == 0
        assert (await cli(b, "connect", h.url))[0] == 0
        for k in ("s1", "s2", "s3"):
            assert (await cli(a, "pub", SITE, k, "new", f"name=Site {k}", "region=R"))[0] == 0
        assert (await cli(a, "sync", "--once"))[0] == 0
        assert (await cli(b, "sync", "--once"))[0] == 0
        assert (await cli(b, "pub", SITE, "s1", "mod", "name=B name"))[0] == 0
        assert (await cli(b, "pub", SITE, "s2", "del"))[0] == 0
        assert (await cli(b, "pub", SITE, "s3", "mod", "notes=B notes"))[0] == 0
        assert (await cli(b, "sync", "--once"))[0] == 0
        assert (await cli(a, "pub", SITE, "s1", "mod", "name=A3", "region=A3 region"))[0] == 0
        assert (await cli(a, "pub", SITE, "s2", "mod", "name=A2", "region=West"))[0] == 0
        assert (await cli(a, "pub", SITE, "s3", "del"))[0] == 0
        rc, out, err = await cli(a, "sync", "--once", json_out=False)
        assert rc == 0, err
        assert "outpost: 3 new conflicts: the hub rejected edits" in err
        # review 10: the hint names per-field resolution as well as --keep
        assert "`outpost resolve UID --keep mine|theirs`" in err
        assert "field by field `outpost resolve UID --field FIELD=mine|theirs ...`" in err
        # review 9: the rejection read as a failure to reach the hub, "(retrying for up to
        # 30 s; --timeout S to change)", once the sync had finished
        assert "retrying for up to" not in err
        rc, out, err = await cli(a, "sync", "--once", "--fail-on-conflict")
        assert rc == 3 and json.loads(out)["conflicts"] == 3
        assert "3 edits are in conflict" in err and "new conflict" not in err  # none new
        rc, _, err = await cli(a, "sync", "--fail-on-conflict")
        assert rc == 1 and "works with --once" in err
    rc, out, _ = await cli(a, "conflicts", json_out=False)
    assert rc == 0
    assert 'field.site s1 name: base "Site s1" | mine "A3" | theirs "B name" (field changed' \
        in out
    assert ('field.site s1 region: base "R" | mine "A3 region" | theirs "R" (no conflict)'
            in out)
    assert 'your change of region to "A3 region" did not conflict' in out
    assert "keep theirs drops all of them, region too" in out
    assert ('field.site s2: they deleted this record (anonymous, ' in out
            and 'you changed name to "A2", region to "West". Keep mine recreates it' in out)
    assert 'field.site s3: you deleted this record; they changed notes to "B notes"' in out
    assert "Keep mine deletes it anyway" in out
    s3 = [ln for ln in out.splitlines() if ln.startswith("  field.site s3 ")]
    assert s3 == ['  field.site s3 (whole record): base "exists" | mine "delete" | theirs '
                  f'"modified" (modified by anonymous at {s3[0].split(" at ")[1]}']
    rc, out, _ = await cli(a, "conflicts")
    rows = json.loads(out)
    s1 = next(r for r in rows if r["records"] == ["field.site s1"])
    assert [(f["field"], f["conflict"]) for f in s1["fields"]] == [("name", True),
                                                                  ("region", False)]
    assert any("did not conflict" in t for t in s1["explain"])


async def test_status_text_says_the_holder_in_words(tmp_path: Path, project: Project) -> None:
    """Finding 14: the text output printed the holder as a Python dict."""
    import signal

    from tests.satellite.test_holder_status import _holder, _until

    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as h:
        assert (await cli(a, "connect", h.url))[0] == 0
        rc, out, _ = await cli(a, "status", json_out=False)
        assert rc == 0 and "holder: none (no process has this directory open)" in out
        holder = await _holder(a)
        try:
            await _until(a, lambda s: s["online"] and s["holder"]["pid"] == holder.pid)
            rc, out, _ = await cli(a, "status", json_out=False)
            line = next(ln for ln in out.splitlines() if ln.startswith("holder: "))
            assert line.startswith(f"holder: pid {holder.pid} on ") and ", live, " in line
            assert "{" not in line and " s ago)" in line
            holder.send_signal(signal.SIGTERM)
            assert await holder.wait() == 0
        finally:
            if holder.returncode is None:
                holder.kill()
                await holder.wait()
    rc, out, _ = await cli(a, "status", json_out=False)
    assert f"holder: pid {holder.pid} on " in out and "not live (closed)" in out
    rc, out, _ = await cli(a, "status")
    assert json.loads(out)["holder"]["why"] == "closed"  # --json keeps the object


async def test_pub_of_a_ref_to_a_record_not_here_warns(tmp_path: Path, project: Project) -> None:
    """Finding 14: `pub field.obs - new site=doesnotexist` was accepted without a word. It
    still is (offline, the record may not have arrived yet), with a warning on stderr."""
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as h:
        assert (await cli(a, "connect", h.url))[0] == 0
    rc, out, err = await cli(a, "pub", "field.obs", "-", "new", "species=Heron",
                             "site=doesnotexist")
    assert rc == 0 and json.loads(out)["uid"]
    assert "warning: site=doesnotexist names no field.site record this replica has" in err
    assert "published anyway" in err
    assert (await cli(a, "pub", "field.site", "s1", "new", "name=Alder"))[0] == 0
    rc, _, err = await cli(a, "pub", "field.obs", "-", "new", "species=Heron", "site=s1")
    assert rc == 0 and err == ""


async def test_continuous_sync_stops_on_a_refused_token_naming_the_fix(
        tmp_path: Path, hub: Hub, users: Users) -> None:
    """Session 9: continuous `outpost sync` retried a refused token (401) for ever with a
    generic "offline: ... retrying" line; its fix (`outpost connect --token`) needs the data
    directory the running sync holds. Now it stops: exit 1, what happened and the fix."""

    from tests.satellite.test_cli import _spawn_sync

    good = users.add("alice")
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url, f"--token={good}"))[0] == 0
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "token": "revoked"}))
    proc = await _spawn_sync(a)
    _, err = await reap(proc, 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "refused the token (HTTP 401)" in text
    assert f"run `outpost connect {hub.url} --token=TOKEN` with a valid token" in text
    assert "retrying" not in text and "Traceback" not in text
