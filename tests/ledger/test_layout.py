"""The SQLite layouts (docs/ledger.md, "SQLite layout"): ledgers made since session 8
have no index on ``evt_event.rev`` and read by revision through ids
(``core.ledger.tables.rev_bound``); ledgers made before keep the index and are read through
it. Ledgers made since session 10 (by-record) have no ``(top, key, rev)`` index either: a
topic's state rows and event key entries share one B-tree, and reads by record go through
the entries. Every read must give the same, exact answer in each, and the same as the
in-memory ledger."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from core.errors import ValidationError
from core.ledger import ops
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.ledger.tables import REV_INDEX, SIG_INDEX, build_tables, hot_sql
from core.model import Action, Audit, Cmd, Event, Trans
from core.schema import Project
from hubserver.limits import Limits
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock
from tests.support.layout import LAYOUTS, make_sqlite_ledger

SITE, OBS = "field.site", "field.obs"


def _has_rev_index(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                           (REV_INDEX,)).fetchone()
    db.close()
    return found is not None


def _fill(led: SqlLedger | MemLedger, seed: int, n: int = 120) -> None:
    """Transactions of 1–4 actions over both topics (news, mods, dels), some with uids."""
    rnd = random.Random(seed)
    live: dict[str, list[str]] = {SITE: [], OBS: []}
    made = 0
    for i in range(n):
        acts: list[Action] = []
        for j in range(rnd.randint(1, 4)):
            top = rnd.choice([SITE, OBS])
            if len(live[top]) < 3 or rnd.random() < 0.4:
                made += 1
                key = f"k{made}"
                arg = {"name": f"n{i}.{j}"} if top == SITE else {"species": f"s{i}.{j}"}
                acts.append(Action(top, key, Cmd.NEW, arg))
                live[top].append(key)
                continue
            key = rnd.choice(live[top])
            if any(a.top == top and a.key == key for a in acts):
                continue
            if rnd.random() < 0.2:
                acts.append(Action(top, key, Cmd.DEL))
                live[top].remove(key)
            else:
                field = "notes"
                acts.append(Action(top, key, Cmd.MOD, {field: f"m{i}.{j}"}))
        led.publish(Trans(tuple(acts), uid=f"u{i}" if i % 3 == 0 else ""), "usr",
                    now=63_900_000_000_000 + 7 * i)


@pytest.fixture(params=LAYOUTS)
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                          "AND tbl_name = 'evt_event'")}
    db.close()
    return names


def test_new_ledgers_are_by_record_and_old_ones_keep_their_layout(tmp_path: Path,
                                                                  project: Project) -> None:
    leds = {lay: SqlLedger(make_sqlite_ledger(tmp_path / f"{lay}.db", lay), project)
            for lay in LAYOUTS}
    asked = SqlLedger(f"sqlite:///{tmp_path / 'asked.db'}", project, layout="by-id")
    try:
        assert {lay: led.layout for lay, led in leds.items()} == {lay: lay for lay in LAYOUTS}
        assert asked.layout == "by-id"  # a replica's (core.satellite.replica)
        for led in leds.values():
            _fill(led, 1, 20)
    finally:
        for led in (*leds.values(), asked):
            led.close()
    assert _indexes(tmp_path / "by-record.db") == set()
    assert _indexes(tmp_path / "by-id.db") == {SIG_INDEX}
    assert _indexes(tmp_path / "asked.db") == {SIG_INDEX}
    assert _indexes(tmp_path / "rev-index.db") == {SIG_INDEX, REV_INDEX}
    with sqlite3.connect(tmp_path / "by-record.db") as db:
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master WHERE name IN "
                                "('st_field_site', 'sk_field_site')").fetchall())
    db.close()
    assert kinds == {"st_field_site": "view", "sk_field_site": "table"}
    for lay in LAYOUTS:  # SQLite's own check (3.40 misread a by-record table's NOT NULLs
        with sqlite3.connect(tmp_path / f"{lay}.db") as db:  # declared after its key's)
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], lay
        db.close()
    for lay in LAYOUTS:  # reopened, read only, and by a writer
        for create in (False, True):
            led = SqlLedger(f"sqlite:///{tmp_path / lay}.db", project, create=create)
            assert led.layout == lay
            led.close()
    with pytest.raises(ValueError, match="layout"):
        SqlLedger(f"sqlite:///{tmp_path / 'x.db'}", project, layout="by-key")


def test_the_by_record_reads_go_by_key(tmp_path: Path, project: Project) -> None:
    """By record, through the entries: a key's entries by the B-tree's key, each event by its
    id; never a scan of every event (there is no (top, key, rev) index to read)."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    try:
        _fill(led, 2, 30)
        hot = led._sql
        reads = [(hot.later_sql(1, SITE), (SITE, 5, "k1")),
                 (hot.later_sql(3, SITE), (SITE, 5, "k1", "k2", "k3")),
                 (f"SELECT e.id{led._rec_from(SITE)} AND s.key IN (?, ?) AND e.rev <= ?",
                  ("k1", "k2", 5)),
                 (f"SELECT e.rev, a.usr{led._rec_from(SITE, audit=True)} AND s.key = ?",
                  ("k1",)),
                 (hot.by_keys(hot.select_state[SITE], 2), ("k1", "k2")),
                 ("SELECT * FROM st_field_site WHERE key = ?", ("k1",))]
    finally:
        led.close()
    with sqlite3.connect(tmp_path / "l.db") as db:
        for sql, params in reads:
            plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "SCAN" not in plan, plan
            assert "USING PRIMARY KEY (key=? AND _n" in plan, plan
    db.close()


@pytest.mark.parametrize("damage", [
    "DELETE FROM sk_field_site WHERE _n = (SELECT max(id) FROM evt_event WHERE top = "
    "'field.site')",
    "UPDATE sk_field_site SET rev = rev + 1 WHERE _n = (SELECT min(_n) FROM sk_field_site "
    "WHERE _n > 0)",
    "INSERT INTO sk_field_site (key, _n, rev) VALUES ('k1', 999999, 1)",
    "INSERT INTO sk_field_site (key, _n, rev) SELECT key, id, rev FROM evt_event "
    "WHERE top = 'field.obs' LIMIT 1"])
def test_verify_names_event_key_entries_that_miss_or_do_not_match(
        tmp_path: Path, project: Project, damage: str) -> None:
    """By record, the entries are what reads by record go through: ``verify`` names one
    missing, one of another revision, one without its event, one of another topic."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    try:
        _fill(led, 5, 30)
        assert led.verify() == []
    finally:
        led.close()
    with sqlite3.connect(tmp_path / "l.db") as db:
        db.execute(damage)
    db.close()
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project, create=False)
    try:
        got = led.verify()
    finally:
        led.close()
    assert got and all("event key entry" in p and "back the ledger up and restore it" in p
                       for p in got), got


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_by_revision_are_exact_in_both_layouts(tmp_path: Path, project: Project,
                                                     layout: str, seed: int) -> None:
    led = SqlLedger(make_sqlite_ledger(tmp_path / "l.db", layout), project)
    mem = MemLedger(project)
    try:
        _fill(led, seed)
        _fill(mem, seed)
        assert led.layout == layout
        evs = mem.events(0)
        assert led.events(0) == evs
        revs = sorted({e.rev for e in evs})
        probes = [0, revs[0] - 1, *revs[::4], revs[-1], revs[-1] + 1,
                  *[r + 1 for r in revs[1::9]]]
        for r in probes:
            for tops in (None, [SITE], [OBS], []):
                for limit in (0, 1, 5):
                    got = led.events(r, tops, limit)
                    assert got == mem.events(r, tops, limit), (r, tops, limit)
                    assert led.event_keys(r, tops, limit) == mem.event_keys(r, tops, limit)
        # the state as of a past revision, history, events of keys: unchanged
        for r in revs[::11]:
            assert led.states(SITE, r) == mem.states(SITE, r)
        assert led.history(SITE, "k3") == mem.history(SITE, "k3")
        assert led.events_of(OBS, ["k1", "k2"], revs[5]) == mem.events_of(OBS, ["k1", "k2"],
                                                                          revs[5])
        # a uid applied before: the original revision's events (events_at), in both
        for i in (0, 30, 60):  # resent as it was (other actions are refused: test_contract)
            rev = mem.uid_rev(f"u{i}")
            t = Trans(tuple(Action(e.top, e.key, e.cmd, e.arg) for e in evs if e.rev == rev),
                      uid=f"u{i}")
            a, b = led.publish(t, "usr"), mem.publish(t, "usr")
            assert a.dup and b.dup and a.rev == b.rev and a.evs == b.evs and a.evs
        assert led.verify() == []
    finally:
        led.close()


def test_the_by_id_read_is_a_rowid_range(tmp_path: Path, project: Project) -> None:
    """The events after a revision: a rowid range (not a scan of every event), with or
    without topics; the revision of a duplicate uid the same."""
    led = SqlLedger(make_sqlite_ledger(tmp_path / "l.db", "by-id"), project)
    led.close()
    tables = build_tables(project, MetaData())
    hot = hot_sql(tables, "sqlite", by_id=True)
    from core.ledger.tables import rev_bound

    with sqlite3.connect(tmp_path / "l.db") as db:
        for sql, params in (
                (f"SELECT id FROM evt_event WHERE id > {rev_bound('?1')} AND rev > ?1 "
                 "AND top || '' IN (?2) ORDER BY id LIMIT 10", (5, SITE)),
                (hot.events_at, (5,))):
            plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "SCAN evt_event" not in plan, plan
            assert "INTEGER PRIMARY KEY (rowid>?" in plan, plan
    db.close()


def _replica_events(seed: int) -> list[Event]:
    """A hub's events (ids in revision order), some topics left out: ids with gaps."""
    rnd = random.Random(seed)
    evs: list[Event] = []
    i, rev = 0, 1000
    for _ in range(150):
        rev += rnd.randint(1, 3)
        for _ in range(rnd.randint(1, 3)):
            i += rnd.randint(1, 4)  # the replica holds some of the hub's events only
            evs.append(Event(i, rev, SITE, f"k{i}", Cmd.NEW, {"name": "n"}))
    return evs


@pytest.mark.parametrize("seed", [4, 5])
def test_replica_reads_by_revision_are_exact_with_gaps(tmp_path: Path, project: Project,
                                                       layout: str, seed: int) -> None:
    evs = _replica_events(seed)
    led = SqlLedger(make_sqlite_ledger(tmp_path / "r.db", layout), project)
    try:
        cut = len(evs) // 2
        while evs[cut].rev == evs[cut - 1].rev:
            cut += 1
        led.replicate(evs[cut - 1].rev, evs[:cut], [Audit(evs[0].rev, usr="a")])
        led.replicate(evs[-1].rev + 5, evs[cut:])  # no audits: the bound needs none
        revs = sorted({e.rev for e in evs})
        for r in [0, *revs, *[x + 1 for x in revs], revs[-1] + 10]:
            want = [e for e in evs if e.rev > r]
            assert led.events(r) == want
            for limit in (1, 3):
                got = led.events(r, [SITE], limit)
                if want:
                    last = want[min(limit, len(want)) - 1].rev
                    assert got == [e for e in want if e.rev <= last]
                else:
                    assert got == []
        assert led.verify() == []
    finally:
        led.close()


def test_replicate_refuses_ids_out_of_revision_order(tmp_path: Path, project: Project) -> None:
    """By id, reads rely on ids growing with revisions: a replicate that would break that is
    refused whole (a hub's events never do); the layout with the index takes it as before."""
    a = Event(10, 1000, SITE, "a", Cmd.NEW, {"name": "a"})
    b = Event(5, 1001, SITE, "b", Cmd.NEW, {"name": "b"})  # a later revision, a smaller id
    c = Event(12, 1002, SITE, "c", Cmd.NEW, {"name": "c"})
    for layout in LAYOUTS:
        led = SqlLedger(make_sqlite_ledger(tmp_path / f"{layout}.db", layout), project)
        try:
            led.replicate(1000, [a])
            if layout != "rev-index":
                with pytest.raises(ValidationError, match="revision and id order"):
                    led.replicate(1001, [b])
                with pytest.raises(ValidationError, match="revision and id order"):
                    led.replicate(1002, [c, Event(11, 1002, SITE, "d", Cmd.NEW, {"name": "d"})])
                assert led.rev() == 1000 and led.events(0) == [a]  # nothing applied
            else:
                led.replicate(1001, [b])
            led.replicate(1002, [c])
        finally:
            led.close()


def test_verify_names_events_out_of_revision_order(tmp_path: Path, project: Project) -> None:
    led = SqlLedger(make_sqlite_ledger(tmp_path / "l.db", "by-id"), project)
    try:
        _fill(led, 7, 10)
        assert led.verify() == []
    finally:
        led.close()
    with sqlite3.connect(tmp_path / "l.db") as db:  # damage: the first event gets a late rev
        db.execute("UPDATE evt_event SET rev = rev + 1000000 WHERE id = 1")
    db.close()
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    try:
        assert any("ids out of revision order" in p for p in led.verify())
    finally:
        led.close()


@pytest.mark.parametrize(("src", "dst"), [("by-id", "rev-index"), ("rev-index", "by-id"),
                                          ("by-id", "by-id"), ("by-id", "by-record"),
                                          ("by-record", "by-id"), ("rev-index", "by-record"),
                                          ("by-record", "by-record")])
def test_backup_and_restore_across_layouts(tmp_path: Path, project: Project, src: str,
                                           dst: str) -> None:
    led = SqlLedger(make_sqlite_ledger(tmp_path / "src.db", src), project)
    try:
        _fill(led, 9, 60)
        info = ops.backup(led, tmp_path / "b.bak")
        want = led.events(0)
    finally:
        led.close()
    out = ops.restore(tmp_path / "b.bak", make_sqlite_ledger(tmp_path / "dst.db", dst), project)
    try:
        assert out.layout == dst
        assert out.events(0) == want and out.rev() == info.rev
        revs = sorted({e.rev for e in want})
        for r in revs[::5]:
            assert out.events(r, [OBS], 3) == [e for e in want if e.rev > r and e.top == OBS][
                :len(out.events(r, [OBS], 3))]
        assert out.verify() == []
    finally:
        out.close()


def test_hub_catch_up_in_batches_reads_every_event_once(tmp_path: Path, project: Project,
                                                        layout: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``evt.sat`` from the start in batches of 4 events (``more``), read from the ledger
    (not the hub's recent events): every event of the topic once, in order, both layouts."""
    import orjson

    monkeypatch.setattr(HubService, "RECENT_EVENTS", 4)
    led = SqlLedger(make_sqlite_ledger(tmp_path / "hub.db", layout), project)
    try:
        _fill(led, 11, 80)
        want = [e for e in led.events(0) if e.top == OBS]
        hub = HubService(led, Clock(), Limits(max_batch=4))
        hub.connect("S", "sat")
        rev, got = "0001-01-01T00:00:00Z", []
        for i in range(500):
            # an Outpost satellite's request (``lim``): a daql client's (none of lim, audits,
            # cont) gets the rest of its catch-up pushed instead of ``more`` (session 12)
            req = {"rev": rev, "tops": [OBS], "trans": [], "lim": 4}
            (out,) = [o for o in hub.handle_sync("S", f"evt.sat#{i}\n"
                                                 + orjson.dumps(req).decode())
                      if isinstance(o, Send)]
            res = orjson.loads(out.text.partition("\n")[2])["res"]
            got.extend((e["key"], e["cmd"]) for e in res.get("evs", ()))
            rev = res["rev"]
            if not res.get("more"):
                break
        assert got == [(e.key, e.cmd.value) for e in want]
    finally:
        led.close()


@pytest.mark.pg
def test_postgresql_keeps_the_rev_index(fresh_pg_db: str, project: Project) -> None:
    import psycopg

    led = SqlLedger(fresh_pg_db, project)
    try:
        assert led.layout == "rev-index"
        _fill(led, 3, 10)
        assert led.events(0, [SITE], 2) == [e for e in led.events(0) if e.top == SITE][
            :len(led.events(0, [SITE], 2))]
    finally:
        led.close()
    with psycopg.connect(fresh_pg_db.replace("postgresql+psycopg://", "postgresql://")) as c:
        names = {r[0] for r in c.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'evt_event'")}
    assert REV_INDEX in names


@pytest.mark.parametrize(("dst", "want"), [("by-record", "by-record+rev-index"),
                                           ("by-id", "rev-index")])
def test_a_backup_with_ids_out_of_revision_order_restores_with_the_index(
        tmp_path: Path, project: Project, dst: str, want: str) -> None:
    """A ledger with the revision index may hold ids that do not follow revisions (its
    replicate never required it); its backup restores into a new SQLite database, which then
    gets the index (instead of the restore being refused), and reads the same; by record
    too (history, a past state: the event key entries do not depend on the id order)."""
    old = SqlLedger(make_sqlite_ledger(tmp_path / "old.db", "rev-index"), project)
    evs = [Event(10, 1000, SITE, "a", Cmd.NEW, {"name": "a"}),
           Event(5, 1001, SITE, "b", Cmd.NEW, {"name": "b"}),
           Event(7, 1001, OBS, "c", Cmd.NEW, {"species": "c"}),
           Event(12, 1002, SITE, "a", Cmd.MOD, {"notes": "x"})]
    try:
        for rev in (1000, 1001, 1002):
            old.replicate(rev, [e for e in evs if e.rev == rev])
        ops.backup(old, tmp_path / "b.bak")
    finally:
        old.close()
    out = ops.restore(tmp_path / "b.bak", make_sqlite_ledger(tmp_path / "new.db", dst),
                      project)
    try:
        assert out.layout == want
        assert out.events(0) == evs and out.events(1000, [SITE]) == [evs[1], evs[3]]
        assert out.events(1000, None, 1) == evs[1:3]
        assert out.events_of(SITE, ["a", "b"], 0) == {"a": [evs[0], evs[3]], "b": [evs[1]]}
        assert out.states(SITE, 1001) == {"a": {"name": "a", "region": None, "lat": None,
                                                "lon": None, "notes": None},
                                          "b": {"name": "b", "region": None, "lat": None,
                                                "lon": None, "notes": None}}
        assert [h.rev for h in out.history(SITE, "a")] == [1000, 1002]
        assert out.verify() == []
    finally:
        out.close()
    assert _has_rev_index(tmp_path / "new.db")
