"""SQL ledger operations and failure modes: verify, backup/restore, atomicity, disk full,
concurrent writers (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from core.errors import SchemaError, StorageError, ValidationError
from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.revision import ZERO_REV
from core.schema import Project, parse_project

SITE = "field.site"


def new(key: str, **arg: Any) -> Action:
    return Action(SITE, key, Cmd.NEW, {"name": "n", **arg})


def dump(led: SqlLedger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, in primary key order."""
    out = {}
    with led.engine.connect() as conn:
        for t in led.metadata.sorted_tables:
            pk = list(t.primary_key.columns)
            out[t.name] = [tuple(r) for r in conn.execute(select(t).order_by(*pk))]
    return out


def fill(led: SqlLedger, n: int = 5) -> None:
    for i in range(n):
        led.publish(Trans((new(f"k{i}", lat=float(i)),), base=led.rev(), uid=f"u{i}"),
                    f"user{i % 2}", now=1000 * (i + 1))
    led.publish(Trans((Action(SITE, "k0", Cmd.MOD, {"region": "r"}),
                       Action(SITE, "k1", Cmd.DEL)), base=led.rev(), uid="u-last"),
                "ann", now=10_000)


def test_verify_reports_a_tampered_state_row(sql_ledger: SqlLedger) -> None:
    fill(sql_ledger)
    assert ops.verify(sql_ledger) == []
    with sql_ledger.engine.begin() as conn:
        conn.execute(text("UPDATE st_field_site SET region = 'forged' WHERE key = 'k2'"))
        conn.execute(text("DELETE FROM st_field_site WHERE key = 'k3'"))
        conn.execute(text("INSERT INTO st_field_site (key, name, rev) VALUES ('ghost', 'g', 1)"))
    problems = sql_ledger.verify()
    assert any("k2" in p and "region" in p and "forged" in p for p in problems), problems
    assert any("k3" in p and "missing from state" in p for p in problems), problems
    assert any("ghost" in p and "absent in the event log" in p for p in problems), problems
    assert len(problems) == 3


def test_backup_restore_round_trip(sql_ledger: SqlLedger, project: Project,
                                   tmp_path: Path) -> None:
    fill(sql_ledger)
    info = ops.backup(sql_ledger, tmp_path / "b.backup")
    assert (info.rev, info.events, info.audits, info.uids) == (10_000, 7, 6, 6)
    assert not (tmp_path / "b.backup.tmp").exists()
    # publishing after the backup does not change it
    sql_ledger.publish(Trans((new("later"),), base=sql_ledger.rev()), "x", now=20_000)
    restored = ops.restore(tmp_path / "b.backup", f"sqlite:///{tmp_path / 'r.db'}", project)
    try:
        assert restored.rev() == 10_000
        assert restored.verify() == []
        assert restored.events(ZERO_REV) == sql_ledger.events(ZERO_REV)[:7]
        assert restored.states(SITE) == sql_ledger.states(SITE, 10_000)
        assert restored.uid_rev("u-last") == 10_000
        assert restored.audit(10_000) == sql_ledger.audit(10_000)
        assert [h.usr for h in restored.history(SITE, "k0")] == ["user0", "ann"]
        # a restored hub carries on: same uid is still a duplicate, new ones publish
        again = restored.publish(Trans((new("k3", lat=3.0),), uid="u3"), "user1", now=30_000)
        assert again.dup and again.rev == 4000
        with pytest.raises(ValidationError, match="uid u3 was already applied"):
            restored.publish(Trans((new("zz"),), uid="u3"), "user1", now=30_000)
        assert restored.publish(Trans((new("zz"),), base=restored.rev()), "x").rev > 10_000
        assert restored.last_id() == 8
    finally:
        restored.close()


def test_restore_to_postgres_or_sqlite(sql_url: str, project: Project, tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    led = ops.restore(tmp_path / "b.backup", sql_url, project)
    try:
        assert led.events(ZERO_REV) == src.events(ZERO_REV)
        assert led.states(SITE) == src.states(SITE)
        assert led.verify() == []
    finally:
        led.close()
        src.close()


def test_restore_refuses_a_non_empty_ledger_and_other_schemas(project: Project,
                                                              tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    with pytest.raises(StorageError, match="not empty"):
        ops.restore(tmp_path / "b.backup", f"sqlite:///{tmp_path / 'src.db'}", project)
    other = parse_project('[x.y.fields]\nname = "str"\n', "other.toml")
    with pytest.raises(SchemaError, match="schema version"):
        ops.restore(tmp_path / "b.backup", f"sqlite:///{tmp_path / 'o.db'}", other)
    (tmp_path / "junk").write_text("not a backup")
    with pytest.raises(StorageError, match="not an Outpost ledger backup"):
        ops.restore(tmp_path / "junk", f"sqlite:///{tmp_path / 'j.db'}", project)


def _demo_changed(old: str, new: str) -> Project:
    from hubserver.cli import DEMO_SCHEMA

    text = DEMO_SCHEMA.read_text()
    assert old in text
    return parse_project(text.replace(old, new), "changed.toml")


def test_restore_with_a_changed_schema_rebuilds_the_state(sql_url: str, project: Project,
                                                          tmp_path: Path) -> None:
    # the advice of the hub's schema version error: back up, restore with the new schema
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    changed = _demo_changed('label = "Region" }',
                            'label = "Area" }\nelevation = { type = "int", default = 0 }')
    assert changed.version != project.version
    led = ops.restore(tmp_path / "b.backup", sql_url, changed)
    try:
        assert led.project.version == changed.version
        assert led.events(ZERO_REV) == src.events(ZERO_REV)
        want = {k: {**v, "elevation": None} for k, v in src.states(SITE).items()}
        assert led.states(SITE) == want
        assert led.verify() == []
        assert led.publish(Trans((new("e1", elevation=1200),), base=led.rev()), "x").rev
    finally:
        led.close()
        src.close()
    with pytest.raises(SchemaError, match="schema version"):
        SqlLedger(sql_url, project)  # the restored ledger now has the new version


@pytest.mark.parametrize("old,new_text,why", [
    ('lat = { type = "float", label = "Latitude" }\n', "", "unknown field 'lat'"),
    ('type = "float", label = "Latitude"', 'type = "int", label = "Latitude"',
     "field 'lat' got 0.0, expected an integer"),
    ('label = "Region" }', 'label = "Region" }\nowner = { type = "str", required = true }',
     "required field 'owner' is missing"),
])
def test_restore_with_a_changed_schema_refuses_an_event_it_does_not_accept(
        project: Project, tmp_path: Path, old: str, new_text: str, why: str) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    target = tmp_path / "new.db"
    with pytest.raises(SchemaError) as exc:
        ops.restore(tmp_path / "b.backup", f"sqlite:///{target}", _demo_changed(old, new_text))
    msg = str(exc.value)
    # the first offending event, its revision as RFC 3339, the reason and the fix
    assert "event at revision 0001-01-01T00:00:01Z (new field.site k0)" in msg, msg
    assert why in msg and "nothing was restored" in msg and "give a new required" in msg
    assert not target.exists()  # checked before the target was touched


def test_restore_refusal_names_the_revision_as_rfc3339(project: Project, tmp_path: Path) -> None:
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    with pytest.raises(StorageError, match=r"at revision 0001-01-01T00:00:10Z\)"):
        ops.restore(tmp_path / "b.backup", f"sqlite:///{tmp_path / 'src.db'}", project)


def test_failed_transactions_leave_the_content_unchanged(sql_ledger: SqlLedger) -> None:
    fill(sql_ledger)
    before = dump(sql_ledger)
    base = 2000  # behind: k0 and k1 were changed after it
    for acts in [(new("x1"), Action(SITE, "k0", Cmd.MOD, {"region": "mine"})),
                 (new("x2"), Action(SITE, "k4", Cmd.MOD, {"nmae": "x"})),
                 (new("x3"), new("x3"))]:
        with pytest.raises((ValidationError, Exception)):
            sql_ledger.publish(Trans(acts, base=base, uid="bad"), "eve", now=50_000)
    res = sql_ledger.publish_many([(Trans((new("x4"), new("k2")), base=10_000), "eve")])
    assert isinstance(res[0], ValidationError)
    assert dump(sql_ledger) == before
    assert sql_ledger.rev() == 10_000


def test_disk_full_is_a_storage_error_and_applies_nothing(project: Project,
                                                          tmp_path: Path) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    fill(led)
    before = dump(led)
    led.engine.dispose()
    with led.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(led.engine, "connect")
    def _limit(dbapi: Any, _rec: Any) -> None:
        dbapi.execute(f"PRAGMA max_page_count = {pages}")

    led.engine.dispose()
    big = tuple(new(f"big{i}", notes="x" * 2000) for i in range(200))
    with pytest.raises(StorageError) as err:
        led.publish(Trans(big, base=led.rev(), uid="big"), "ann", now=99_000)
    msg = str(err.value)
    assert "database or disk is full" in msg and "free space" in msg
    assert "nothing was applied" in msg
    res = led.publish_many([(Trans(big, base=led.rev()), "ann")], now=99_000)
    assert isinstance(res[0], StorageError)
    assert dump(led) == before
    assert led.rev() == 10_000 and led.uid_rev("big") is None
    led.close()


def test_concurrent_writers_keep_revisions_strictly_increasing(sql_url: str,
                                                               project: Project) -> None:
    """Two ledger objects (separate engines, as two hub processes) publish at once."""
    SqlLedger(sql_url, project).close()
    leds = [SqlLedger(sql_url, project) for _ in range(2)]
    revs: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(25):
                led = leds[i]
                # a fixed clock forces next_rev to build on the other writer's revision
                res = led.publish(Trans((new(f"w{i}-{n}"),), base=ZERO_REV), f"w{i}", now=5000)
                revs[i].append(res.rev)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for r in revs:
        assert r == sorted(r) and len(set(r)) == 25
    assert len(set(revs[0]) | set(revs[1])) == 50
    evs = leds[0].events(ZERO_REV)
    assert [e.id for e in evs] == list(range(1, 51))
    assert [e.rev for e in evs] == list(range(5000, 5050))
    assert leds[1].rev() == 5049 and leds[0].verify() == []
    for led in leds:
        led.close()


def test_restoring_a_nul_into_postgres_says_a_retry_fails_the_same_way(
        fresh_pg_db: str, project: Project, tmp_path: Path) -> None:
    import sqlite3

    # a SQLite ledger of before session 7 could store a NUL in text; PostgreSQL cannot
    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    src.publish(Trans((new("k1", notes="nulPLACEHOLDERhere"),)), "ann")
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    db = sqlite3.connect(tmp_path / "b.backup")
    with db:
        db.execute("UPDATE evt_event SET arg = replace(arg, 'PLACEHOLDER', '\\u0000')")
    db.close()
    with pytest.raises(StorageError) as exc:
        ops.restore(tmp_path / "b.backup", fresh_pg_db, project).close()
    msg = str(exc.value)
    # named before the target is touched, with the way out that works
    assert "NUL" in msg and "(new field.site 'k1')" in msg, msg
    assert "Restore it into an SQLite ledger" in msg and "no schema change helps" in msg
    assert "check the database server" not in msg
    led = SqlLedger(fresh_pg_db, project)  # nothing was restored: an empty ledger
    try:
        assert led.rev() == 0 and led.events(0) == []
    finally:
        led.close()


def _nul_backup(project: Project, tmp_path: Path) -> Path:
    """A backup of an SQLite ledger of before session 7, which stored a NUL in text."""
    import sqlite3

    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    src.publish(Trans((new("k9", name="aPLACEHOLDERb"),), base=src.rev()), "ann")
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    db = sqlite3.connect(tmp_path / "b.backup")
    with db:
        db.execute("UPDATE evt_event SET arg = replace(arg, 'PLACEHOLDER', '\\u0000')")
    db.close()
    return tmp_path / "b.backup"


def test_a_nul_in_the_history_does_not_block_a_schema_change_into_sqlite(
        project: Project, tmp_path: Path) -> None:
    bak = _nul_backup(project, tmp_path)
    changed = _demo_changed('label = "Region" }', 'label = "Area" }')
    assert changed.version != project.version
    led = ops.restore(bak, f"sqlite:///{tmp_path / 'new.db'}", changed)
    try:
        assert led.states(SITE)["k9"]["name"] == "a\x00b" and led.verify() == []
    finally:
        led.close()
    # the rest of such an event is still checked
    other = _demo_changed('name = { type = "str"', 'name = { type = "int"')
    with pytest.raises(SchemaError, match=r"\(new field.site k0\).*expected an integer"):
        ops.restore(bak, f"sqlite:///{tmp_path / 'other.db'}", other)


def test_a_nul_in_the_history_blocks_a_schema_change_into_postgres_naming_sqlite(
        fresh_pg_db: str, project: Project, tmp_path: Path) -> None:
    bak = _nul_backup(project, tmp_path)
    changed = _demo_changed('label = "Region" }', 'label = "Area" }')
    with pytest.raises(StorageError) as exc:
        ops.restore(bak, fresh_pg_db, changed)
    msg = str(exc.value)
    assert "(new field.site 'k9')" in msg and "Restore it into an SQLite ledger" in msg, msg
    assert "Change the schema" not in msg


def _tampered_backup(project: Project, tmp_path: Path, *sql: str) -> Path:
    """A backup of an SQLite ledger of before session 7 (which stored NULs in text), made
    by running ``sql`` on a backup of :func:`fill`'s ledger."""
    import sqlite3

    src = SqlLedger(f"sqlite:///{tmp_path / 'src.db'}", project)
    fill(src)
    ops.backup(src, tmp_path / "b.backup")
    src.close()
    db = sqlite3.connect(tmp_path / "b.backup")
    with db:
        for q in sql:
            db.execute(q)
    db.close()
    return tmp_path / "b.backup"


def _pg_tables(url: str) -> list[str]:
    from sqlalchemy import create_engine, inspect

    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return inspect(eng).get_table_names()
    finally:
        eng.dispose()


@pytest.mark.parametrize(("sql", "named"), [
    # the audit of revision 3000 by a user name holding a NUL (and a later one)
    (("UPDATE evt_audit SET usr = 'a' || char(0) || 'b' WHERE rev >= 3000",),
     "audit at revision {r3000} holds a NUL character (U+0000) in its user name 'a\\x00b'"),
    # its transaction uid, in the audit and the applied uids
    (("UPDATE evt_audit SET uid = 'v' || char(0) || uid WHERE rev = 4000",
      "UPDATE evt_uid SET uid = 'v' || char(0) || uid WHERE rev = 4000"),
     "audit at revision {r4000} holds a NUL character (U+0000) in its transaction uid "
     "'v\\x00u3'"),
    # an applied uid only
    (("UPDATE evt_uid SET uid = 'w' || char(0) || uid WHERE rev = 2000",),
     "applied transaction uid 'w\\x00u1' (revision {r2000}) holds a NUL character"),
])
def test_restoring_a_nul_in_audits_or_uids_into_postgres_is_refused_first(
        fresh_pg_db: str, project: Project, tmp_path: Path, sql: tuple[str, ...],
        named: str) -> None:
    """Review of session 7: only the events were checked; a NUL in an audit's user name or
    a uid made PostgreSQL refuse the restore mid-way with its own error. Refused before the
    target is touched, naming the first such row and the way out (SQLite stores them)."""
    from core.revision import format_rev

    bak = _tampered_backup(project, tmp_path, *sql)
    with pytest.raises(StorageError) as exc:
        ops.restore(bak, fresh_pg_db, project).close()
    msg = str(exc.value)
    want = named.format(**{f"r{k}": format_rev(k) for k in (2000, 3000, 4000)})
    assert want in msg, msg
    assert "Restore it into an SQLite ledger" in msg and "nothing was restored" in msg, msg
    assert "cannot contain NUL" not in msg and "replicating" not in msg, msg
    assert _pg_tables(fresh_pg_db) == []  # not touched: not even the tables made
    # SQLite stores them: the same backup restores there, NULs kept
    led = ops.restore(bak, f"sqlite:///{tmp_path / 'r.db'}", project)
    try:
        assert led.verify() == [] and led.rev() == 10_000
    finally:
        led.close()


def test_an_escaped_nul_in_an_audits_extra_restores_into_postgres(
        fresh_pg_db: str, project: Project, tmp_path: Path) -> None:
    """An audit's extra is JSON text, its NULs escaped (\\u0000): PostgreSQL stores that
    text, so it is not refused."""
    bak = _tampered_backup(project, tmp_path,
                           "UPDATE evt_audit SET extra = '{\"x\":\"a\\u0000b\"}' WHERE rev = 2000")
    led = ops.restore(bak, fresh_pg_db, project)
    try:
        audit = led.audit(2000)
        assert audit is not None and audit.extra == {"x": "a\x00b"}
    finally:
        led.close()


def _damage_page(bak: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in the backup file with garbage (a disk error)."""
    import sqlite3

    with sqlite3.connect(bak) as db:
        page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                          (table,)).fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(bak, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * size)


@pytest.mark.parametrize("table", ["evt_event", "evt_audit", "evt_uid"])
def test_a_damaged_backup_is_named_before_the_target_is_touched(
        project: Project, tmp_path: Path, table: str) -> None:
    """Review (session 8): a backup damaged on disk was read half-way inside the target's
    transaction, and the error named the TARGET ('a write transaction failed on r.db:
    database disk image is malformed ... if the file is damaged, restore it from a
    backup'), after making its tables."""
    bak = _tampered_backup(project, tmp_path)
    _damage_page(bak, table)
    target = tmp_path / "r.db"
    with pytest.raises(StorageError) as exc:
        ops.restore(bak, f"sqlite:///{target}", project)
    msg = str(exc.value)
    assert f"backup {bak} is damaged" in msg and "nothing was restored" in msg, msg
    assert "r.db" not in msg and not target.exists(), msg
    # a backup cut short (a copy interrupted): named as damaged too, not "not a backup"
    cut = tmp_path / "cut.backup"
    data = (tmp_path / "b.backup").read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(StorageError, match=r"is damaged and cannot be restored"):
        ops.restore(cut, f"sqlite:///{target}", project)
    assert not target.exists()


def test_a_backup_row_that_is_not_json_is_named_and_rolled_back(project: Project,
                                                                tmp_path: Path) -> None:
    bak = _tampered_backup(project, tmp_path,
                           "UPDATE evt_audit SET extra = '{not json' WHERE rev = 3000")
    target = tmp_path / "r.db"
    with pytest.raises(StorageError, match=r"is damaged .*nothing was restored"):
        ops.restore(bak, f"sqlite:///{target}", project)
    led = SqlLedger(f"sqlite:///{target}", project)
    try:
        assert led.rev() == 0 and led.events(ZERO_REV) == []
    finally:
        led.close()
