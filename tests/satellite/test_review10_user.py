"""Review 10 ("user": a field team's week): findings fixed in session 10, each with a real
hub (websockets on 127.0.0.1), real SQLite ledgers and replicas, the CLI as a subprocess.

Finding 1: int keys are text on the wire, so "002" beside "2" was a second record (a CSV of
zero-padded plot numbers made new records instead of updating). The hub refuses a new record
under a key that is not canonical, naming the canonical one; `pub`, `import` and `show` make
a typed key canonical first; a record an older hub took under such a key stays readable and
editable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.ledger.sql import SqlLedger, open_ledger
from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Model, Project, parse_project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

ITEM = "inv.item"
SCHEMA = """
[project]
name = "review10"

[inv.item]
key = "int"
display = "name"

[inv.item.fields]
name = { type = "str", required = true }
part_of = { type = "ref", ref = "inv.item" }
"""


@pytest.fixture
def int_project() -> Project:
    return parse_project(SCHEMA)


@pytest.fixture
def ledger(tmp_path: Path, int_project: Project) -> SqlLedger:
    led = open_ledger(tmp_path / "hub.db", int_project)
    led.publish(Trans(tuple(Action(ITEM, str(k), Cmd.NEW, {"name": f"item {k}"})
                            for k in (1, 2))), "office")
    return led


@pytest.fixture
async def int_hub(ledger: SqlLedger) -> AsyncIterator[Hub]:
    async with Hub(ledger, port=0, anon_user="office") as h:
        yield h


def test_canonical_int_keys(int_project: Project) -> None:
    m = int_project.model(ITEM)
    assert [m.canonical_key(k) for k in ("2", "002", "-0", "+7", "-007", "x2", "")] == \
        ["2", "2", "0", "7", "-7", "x2", ""]
    m.check_key("002")  # an existing record's key (mod, del) stays valid
    with pytest.raises(ValidationError, match=r"'002' is not in canonical form: write it "
                                              r"as '2'"):
        m.check_key("002", new=True)
    with pytest.raises(ValidationError, match="write it as '0'"):
        int_project.check_action(Action(ITEM, "-0", Cmd.NEW, {"name": "zero"}))


def test_the_hub_refuses_a_new_record_under_a_non_canonical_key(ledger: SqlLedger) -> None:
    with pytest.raises(ValidationError, match="write it as '2'"):
        ledger.publish(Trans((Action(ITEM, "002", Cmd.NEW, {"name": "two again"}),)), "bob")
    with pytest.raises(ValidationError, match="write it as '3'"):  # in a batch, not first
        ledger.publish(Trans((Action(ITEM, "4", Cmd.NEW, {"name": "four"}),
                              Action(ITEM, "03", Cmd.NEW, {"name": "three"}))), "bob")
    assert ledger.state(ITEM, "002") is None and ledger.state(ITEM, "4") is None


def test_a_record_an_older_hub_took_under_such_a_key_stays_editable(
        ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    old = Model.check_key
    with monkeypatch.context() as mp:  # before session 10: any integer text
        mp.setattr(Model, "check_key", lambda self, key, new=False: old(self, key))
        ledger.publish(Trans((Action(ITEM, "002", Cmd.NEW, {"name": "doubled"}),)), "bob")
    ledger.publish(Trans((Action(ITEM, "002", Cmd.MOD, {"name": "still there"}),)), "bob")
    assert ledger.state(ITEM, "002") == {"name": "still there", "part_of": None}
    ledger.publish(Trans((Action(ITEM, "002", Cmd.DEL),)), "bob")
    assert ledger.state(ITEM, "002") is None and ledger.state(ITEM, "2") is not None


async def test_typed_int_keys_are_made_canonical(tmp_path: Path, int_hub: Hub) -> None:
    data = tmp_path / "sat"
    assert (await cli(data, "connect", int_hub.url))[0] == 0
    assert (await cli(data, "sync", "--once"))[0] == 0
    # pub: "007" is the new record 7; "002" is the record 2 (mod), and show finds it so
    rc, out, err = await cli(data, "pub", ITEM, "007", "new", "name=seven", "part_of=01")
    assert rc == 0, err
    assert json.loads(out)["key"] == "7"
    assert "names no" not in err  # the ref "01" is the record 1
    rc, out, err = await cli(data, "pub", ITEM, "002", "mod", "name=two renamed")
    assert rc == 0 and json.loads(out)["key"] == "2", err
    rc, out, _ = await cli(data, "show", ITEM, "0007")
    assert rc == 0 and json.loads(out)["fields"] == {"name": "seven", "part_of": "1"}
    # import: a zero-padded plot number updates the record, the summary says so
    csv = tmp_path / "z.csv"
    csv.write_text("key,name\n001,one renamed\n0008,eight\n")
    rc, out, err = await cli(data, "import", ITEM, str(csv), json_out=False)
    assert rc == 0, err
    assert out.strip() == "imported 2 rows (1 new, 1 changed) in 1 transaction"
    csv.write_text("key,name\n2,two again\n002,two twice\n")  # one record on two rows
    rc, _, err = await cli(data, "import", ITEM, str(csv))
    assert rc == 1 and "key '2' is on line 2 too" in err
    rc, out, err = await cli(data, "sync", "--once")
    assert rc == 0, err
    rc, out, _ = await cli(data, "show", ITEM)
    assert {r["key"]: r["fields"]["name"] for r in json.loads(out)} == {
        "1": "one renamed", "2": "two renamed", "7": "seven", "8": "eight"}
    rc, out, _ = await cli(data, "status")
    assert json.loads(out)["conflicts"] == 0


async def test_a_satellite_edits_a_record_under_a_non_canonical_key_it_holds(
        tmp_path: Path, ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    old = Model.check_key
    with monkeypatch.context() as mp:  # taken by a hub before session 10
        mp.setattr(Model, "check_key", lambda self, key, new=False: old(self, key))
        ledger.publish(Trans((Action(ITEM, "005", Cmd.NEW, {"name": "legacy"}),)), "bob")
    data = tmp_path / "sat"
    async with Hub(ledger, port=0, anon_user="office") as hub:
        assert (await cli(data, "connect", hub.url))[0] == 0
        assert (await cli(data, "sync", "--once"))[0] == 0
        rc, out, err = await cli(data, "pub", ITEM, "005", "mod", "name=kept")
        assert rc == 0 and json.loads(out)["key"] == "005", err
        rc, out, err = await cli(data, "sync", "--once")
        assert rc == 0, err
    assert ledger.state(ITEM, "005") == {"name": "kept", "part_of": None}
    assert ledger.state(ITEM, "5") is None


# -- finding 2: after a restore, the advice and carry name the conflicts not resolved yet ----

SITE = "field.site"


async def _pub(data: Path, *args: str) -> str:
    rc, out, err = await cli(data, "pub", SITE, *args)
    assert rc == 0, err
    return str(json.loads(out)["uid"])


async def test_after_a_restore_carry_is_advised_with_rejected_and_says_what_it_leaves(
        tmp_path: Path, project: Project) -> None:
    from core.ledger import ops

    old, other, new = tmp_path / "old", tmp_path / "other", tmp_path / "new"
    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=0) as hub1:
            port = int(hub1.url.rsplit(":", 1)[1])
            for d in (old, other):
                assert (await cli(d, "connect", hub1.url))[0] == 0
            await _pub(old, "s1", "new", "name=A")
            assert (await cli(old, "sync", "--once"))[0] == 0
            assert (await cli(other, "sync", "--once"))[0] == 0
            ops.backup(led1, tmp_path / "b.ledger")
            await _pub(other, "s1", "mod", "name=Theirs")
            assert (await cli(other, "sync", "--once"))[0] == 0
            await _pub(old, "s2", "new", "name=B")  # accepted, then lost by the restore
            clash = await _pub(old, "s1", "mod", "name=Mine")  # rejected: unresolved
            assert (await cli(old, "sync", "--once"))[0] == 0
    finally:
        led1.close()
    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", project)
    try:
        async with Hub(led2, port=port) as hub2:  # the restored hub at the same address
            rc, _, err = await cli(old, "sync", "--once", "--timeout", "10")
            assert rc == 1
            assert "`outpost carry OLD_DIR --data NEWDIR --accepted --rejected`" in err, err
            assert "and its 1 unresolved conflict (to resolve there)" in err
            rc, out, _ = await cli(old, "status")
            assert "--accepted --rejected" in json.loads(out)["last_error"]
            rc, _, err = await cli(old, "connect", hub2.url)  # connect says it too
            assert rc == 1 and f"`outpost carry {old} --data DIR --accepted --rejected`" in err
            assert (await cli(new, "connect", hub2.url))[0] == 0
            assert (await cli(new, "sync", "--once"))[0] == 0
            rc, out, err = await cli(new, "carry", str(old), "--accepted", json_out=False)
            assert rc == 0, err
            assert "1 unresolved conflict not carried: add --rejected" in out
            assert f"1 unresolved conflict of {old} not carried: add --rejected" in err
            assert "carried 1 transaction: " in out  # one, not "1 transactions"
            rc, out, err = await cli(new, "carry", str(old), "--accepted", "--rejected")
            res = json.loads(out)
            assert rc == 0 and res["rejected"] == 1 and res["unresolved_left"] == 0, res
            rc, out, _ = await cli(new, "conflicts")
            assert [c["uid"] for c in json.loads(out)] == [clash]
    finally:
        led2.close()


# -- finding 3: a reader's edits: refused with the fix once the hub said so, and discarded ----


async def test_a_readers_pending_edits_can_be_discarded_and_new_ones_are_refused(
        tmp_path: Path, project: Project) -> None:
    from hubserver.auth import Users

    users = Users(tmp_path / "users.db")
    rita, ann = users.add("rita", "reader"), users.add("ann", "writer")
    r, w = tmp_path / "rita", tmp_path / "ann"
    try:
        async with Hub(SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project), port=0,
                       users=users) as hub:
            assert (await cli(w, "connect", hub.url, f"--token={ann}"))[0] == 0
            await _pub(w, "s1", "new", "name=A")
            assert (await cli(w, "sync", "--once"))[0] == 0
            assert (await cli(r, "connect", hub.url, f"--token={rita}"))[0] == 0
            # made before the hub said anything of rita: queued, then refused by the hub
            stuck = await _pub(r, "s2", "new", "name=from the field")
            rc, _, err = await cli(r, "sync", "--once", "--timeout", "10")
            assert rc == 1 and "may only read" in err
            rc, out, _ = await cli(r, "status")
            st = json.loads(out)
            assert st["pending"] == 1 and "may only read" in st["read_only"]
            assert "`outpost discard --all`" in st["read_only"]
            # now pub refuses, saying why and what to do
            rc, _, err = await cli(r, "pub", SITE, "s1", "mod", "notes=oops")
            assert rc == 1 and "may only read" in err and "nothing was queued" in err
            assert "--role writer" in err and "outpost connect URL --token=TOKEN" in err
            # an import too (it was queued, for the hub to refuse: final review 10)
            csv_file = tmp_path / "rows.csv"
            csv_file.write_text("key,name\ns9,Nine\n", encoding="utf-8")
            rc, _, err = await cli(r, "import", SITE, str(csv_file))
            assert rc == 1 and "may only read" in err and "nothing was imported" in err
            # the stuck edit is listed with its way out, and discarded (recorded, not deleted)
            rc, out, _ = await cli(r, "conflicts", json_out=False)
            assert stuck in out and f"`outpost discard {stuck}` drops it" in out
            rc, out, err = await cli(r, "discard", stuck)
            assert rc == 0 and json.loads(out) == {"discarded": [stuck]}, err
            rc, out, _ = await cli(r, "status")
            assert json.loads(out)["pending"] == 0 and json.loads(out)["conflicts"] == 0
            sat = Satellite(r, read_only=True)
            try:
                rec = sat.receipt(stuck)
                assert rec is not None and rec.state == ReceiptState.RESOLVED
                assert rec.resolved_by == "discarded"
                assert sat.record(SITE, "s2") is None  # out of the view
            finally:
                sat.close()
            rc, _, err = await cli(r, "discard", stuck)
            assert rc == 1 and "already resolved (by discarding it)" in err
            # a writer's pending edit may be on its way: not discarded
            mine = await _pub(w, "s1", "mod", "notes=ann")
            rc, _, err = await cli(w, "discard", mine)
            assert rc == 1 and "may reach the hub" in err
            assert (await cli(w, "sync", "--once"))[0] == 0
            # a new token lifts the mark (the hub says "writer" on the next sync too)
            assert (await cli(r, "connect", hub.url, f"--token={ann}"))[0] == 0
            rc, out, err = await cli(r, "pub", SITE, "s1", "mod", "notes=with a writer token")
            assert rc == 0, err
            assert (await cli(r, "sync", "--once"))[0] == 0
            rc, out, _ = await cli(r, "status")
            assert json.loads(out)["read_only"] is None
    finally:
        users.close()


async def test_the_hub_says_a_reader_may_only_read_before_any_edit(
        tmp_path: Path, project: Project) -> None:
    """The role in ``evt.stat`` (an Outpost extension): a reader that never edited learns it
    on its first sync, so its first edit is refused offline, not queued for ever."""
    from hubserver.auth import Users

    users = Users(tmp_path / "users.db")
    rita = users.add("rita", "reader")
    r = tmp_path / "rita"
    try:
        async with Hub(SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project), port=0,
                       users=users) as hub:
            assert (await cli(r, "connect", hub.url, f"--token={rita}"))[0] == 0
            rc, _, err = await cli(r, "sync", "--once")
            assert rc == 0, err
        rc, _, err = await cli(r, "pub", SITE, "-", "new", "name=offline")  # hub gone
        assert rc == 1 and "only read (role reader): nothing was queued" in err
    finally:
        users.close()



async def test_a_readers_sync_and_discard_say_what_happens(
        tmp_path: Path, project: Project) -> None:
    """Final review 10 (LOW): `sync --once` on a reader's pending edit said "(retrying for up
    to 30 s ...)" and stopped at once; its error never named `outpost discard`; after
    `discard --all` the status still said "your edits stay pending" (the hub's words) with
    none pending; `discard --all` of a writer's edit on its way said only "nothing to
    discard". Real CLI processes, a real hub with users on 127.0.0.1."""
    from hubserver.auth import Users

    users = Users(tmp_path / "users.db")
    rita, ann = users.add("rita", "reader"), users.add("ann", "writer")
    r, w = tmp_path / "rita", tmp_path / "ann"
    try:
        async with Hub(SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project), port=0,
                       users=users) as hub:
            assert (await cli(r, "connect", hub.url, f"--token={rita}"))[0] == 0
            assert (await cli(w, "connect", hub.url, f"--token={ann}"))[0] == 0
            await _pub(r, "s2", "new", "name=from the field")  # before the hub said anything
            rc, _, err = await cli(r, "sync", "--once", "--timeout", "10")
            assert rc == 1 and "may only read" in err and "retrying" not in err, err
            assert ("the 1 edit pending here stay so: `outpost discard --all` drops them "
                    "(kept as receipts), or with a writer token (`outpost connect URL "
                    "--token=TOKEN`) they go out on the next sync") in err
            rc, out, err = await cli(r, "discard", "--all")
            assert rc == 0 and len(json.loads(out)["discarded"]) == 1, err
            rc, out, _ = await cli(r, "status")
            st = json.loads(out)
            assert st["pending"] == 0 and "may only read" in st["read_only"]
            said = st["read_only"] + " " + (st["last_error"] or "")
            assert "stay pending" not in said and "stored none of these edits" in said, said
            # a writer's edit not sent yet is not discarded, and the reply says why
            await _pub(w, "s1", "new", "name=A")
            rc, out, err = await cli(w, "discard", "--all", json_out=False)
            assert rc == 0 and out.strip() == (
                "nothing to discard: the 1 pending edit may be on its way to the hub (--all "
                "discards only edits the hub refused, or every pending edit of a user who may "
                "only read); `outpost sync --once` sends them"), err
    finally:
        users.close()


# -- finding 4: the CLI resolves per field, as the app does --------------------------------


async def test_resolve_per_field(tmp_path: Path, project: Project) -> None:
    a, b = tmp_path / "alice", tmp_path / "bob"
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            for d in (a, b):
                assert (await cli(d, "connect", hub.url))[0] == 0
            await _pub(a, "s1", "new", "name=A", "region=R")
            assert (await cli(a, "sync", "--once"))[0] == 0
            assert (await cli(b, "sync", "--once"))[0] == 0
            await _pub(a, "s1", "mod", "name=A1", "region=R1")
            assert (await cli(a, "sync", "--once"))[0] == 0
            uid = await _pub(b, "s1", "mod", "name=B1", "region=RB", "lat=47")
            assert (await cli(b, "sync", "--once"))[0] == 0
            rc, _, err = await cli(b, "resolve", uid)
            assert rc == 1 and "--field FIELD=mine|theirs" in err
            rc, _, err = await cli(b, "resolve", uid, "--field", "name=theirs")
            assert rc == 1 and "field 'region' of field.site s1 conflicts and was not named" \
                in err
            rc, _, err = await cli(b, "resolve", uid, "--field", "notes=mine")
            assert rc == 1 and "does not change 'notes'" in err and "name, region, lat" in err
            rc, _, err = await cli(b, "resolve", uid, "--field", "name=maybe")
            assert rc == 1 and "write FIELD=mine or FIELD=theirs" in err
            rc, _, err = await cli(b, "resolve", uid, "--keep", "mine", "--field", "name=mine")
            assert rc == 1 and "give one of them" in err
            # the record changes again after the conflict: refused until the user has seen
            # it, then --seen (as `conflicts` shows) is honoured (final review 10: ignored)
            await _pub(a, "s1", "mod", "name=A2")
            assert (await cli(a, "sync", "--once"))[0] == 0
            assert (await cli(b, "sync", "--once"))[0] == 0
            rc, _, err = await cli(b, "resolve", uid, "--field", "name=theirs",
                                   "--field", "field.site s1 region=mine")
            assert rc == 1 and "nothing was resolved" in err, err
            rc, out, _ = await cli(b, "conflicts")
            seen = json.loads(out)[0]["seen"]
            rc, out, err = await cli(b, "resolve", uid, "--field", "name=theirs",
                                     "--field", "field.site s1 region=mine", "--seen", seen)
            assert rc == 0, err
            res = json.loads(out)
            assert res["fields"] == {"field.site s1 name": "theirs",
                                     "field.site s1 region": "mine",
                                     "field.site s1 lat": "mine"}
            assert (await cli(b, "sync", "--once"))[0] == 0
            st = led.state(SITE, "s1")
            assert st is not None and (st["name"], st["region"], st["lat"]) == ("A2", "RB", 47)
            rc, _, err = await cli(b, "resolve", uid, "--field", "name=mine",
                                   "--field", "region=mine")
            assert rc == 1 and "already resolved" in err
            rc, out, _ = await cli(b, "resolve", "--help", json_out=False)
            assert "--field [TOPIC KEY ]FIELD=mine|theirs" in out
    finally:
        led.close()


# -- finding 5: continuous sync does not repeat an old error as current ---------------------


async def test_continuous_sync_online_line_has_no_stale_error(
        tmp_path: Path, project: Project) -> None:
    import signal

    from tests.satellite.test_cli import _line_with, _spawn_sync

    a = tmp_path / "a"
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    try:
        async with Hub(led, port=0) as hub:
            url = hub.url
            port = int(url.rsplit(":", 1)[1])
            assert (await cli(a, "connect", url))[0] == 0
            await _pub(a, "s1", "new", "name=A")
        proc = await _spawn_sync(a)  # the hub is down: "offline: cannot reach the hub"
        assert proc.stderr is not None
        try:
            line = await _line_with(proc.stderr, "offline:")
            assert "cannot reach the hub" in line
            async with Hub(led, port=port):
                line = await _line_with(proc.stderr, "online with", timeout=60)
                assert "cannot reach" not in line, line
                assert "pending" in line
                proc.send_signal(signal.SIGTERM)
                _, err = await reap(proc, 30)
            assert proc.returncode == 0, err
            assert "cannot reach" not in err.decode()  # no later line repeats it either
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        led.close()


# -- finding 6: words -----------------------------------------------------------------------


def test_conflict_sentences_name_the_deleter_and_read_as_values() -> None:
    from core.model import Conflict
    from core.satellite.api import Receipt
    from core.satellite.conflicts import explain

    def said(c: Conflict, a: Action) -> str:
        rc = Receipt("u1", 0, 0, (a,), ReceiptState.REJECTED, 0, "conflict", (c,))
        return explain(rc, when=lambda r: "noon")[0]

    again = said(Conflict(ITEM, "4", Cmd.MOD, "deleted", (), {"name": "back"}, 7, "bob"),
                 Action(ITEM, "4", Cmd.MOD, {"name": "mine"}))
    assert "created it again (deleted by bob, noon)" in again
    assert 'theirs has name "back"' in again
    both = said(Conflict(ITEM, "4", Cmd.NEW, "created", (), {"name": "Plot bob"}, 7, "bob"),
                Action(ITEM, "4", Cmd.NEW, {"name": "Plot ann"}))
    assert 'yours has name "Plot ann"; theirs has name "Plot bob"' in both
    assert "has name to" not in again + both


async def test_words_of_import_and_sync(tmp_path: Path, int_hub: Hub) -> None:
    data = tmp_path / "sat"
    assert (await cli(data, "connect", int_hub.url))[0] == 0
    rc, out, _ = await cli(data, "sync", "--once", json_out=False)
    assert rc == 0 and out.strip().endswith("0 pending, 0 conflicts")
    csv = tmp_path / "r.csv"
    csv.write_text("key,name,part_of\n9,nine,1\n10,ten,77\n11,eleven,78\n12,twelve,9\n")
    rc, out, err = await cli(data, "import", ITEM, str(csv), json_out=False)
    assert rc == 0 and out.strip() == "imported 4 rows (4 new, 0 changed) in 1 transaction"
    # a ref naming a record the replica does not have is said, as `pub` says it
    assert "warning: in 2 rows, part_of names no inv.item record this replica has (e.g. " \
           "part_of=77;" in err
    csv.write_text("key,name\n9,nine\n")
    rc, out, err = await cli(data, "import", ITEM, str(csv), json_out=False)
    assert out.strip() == "imported 0 rows (0 new, 0 changed) in 0 transactions; 1 row " \
                          "unchanged"
