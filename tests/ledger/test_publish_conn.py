"""The publish path's own connection and what one publish writes.

``SqlLedger`` keeps one pooled connection for publishing (no pool checkout per publish) and
a publish no longer updates ``evt_meta`` (the revision and last event id are read back from
the audit and event tables). These tests pin what must hold around that: concurrent
publishes from threads are all applied once with distinct revisions, a connection the
server dropped is replaced (the failed publish applied nothing), ``engine.dispose()`` is
followed, ``close()`` then publishing again works, and the revision read back is right when
``evt_meta`` is ahead (after a replicate) or behind (a publish).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.errors import StorageError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Event, Trans
from core.schema import Project

SITE = "field.site"


def new(key: str) -> Action:
    return Action(SITE, key, Cmd.NEW, {"name": key})


def meta_row(led: SqlLedger) -> tuple[int, int]:
    with led.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT rev, last_id FROM evt_meta WHERE id = 1").one()
        conn.rollback()
    return int(row[0]), int(row[1])


def test_publish_reads_rev_and_last_id_back_without_writing_meta(sql_ledger: SqlLedger) -> None:
    before = meta_row(sql_ledger)
    r1 = sql_ledger.publish(Trans((new("a"), new("b"))), "ann", now=1000)
    r2 = sql_ledger.publish(Trans((new("c"),)), "ann", now=900)  # clock went back
    assert meta_row(sql_ledger) == before  # one statement and one page fewer per commit
    assert r2.rev > r1.rev and [e.id for e in r2.evs] == [3]
    assert sql_ledger.rev() == r2.rev and sql_ledger.last_id() == 3
    res = sql_ledger.publish_many([(Trans((new("d"),)), "bob"), (Trans((new("e"),)), "bob")],
                                  now=800)
    assert [r.evs[0].id for r in res if not isinstance(r, Exception)] == [4, 5]
    assert sql_ledger.rev() == res[-1].rev  # type: ignore[union-attr]
    assert sql_ledger.verify() == []


def test_meta_ahead_after_replicate_wins(sql_ledger: SqlLedger) -> None:
    """replicate may move the revision past its last event and audit: evt_meta keeps it."""
    sql_ledger.replicate(5000, [Event(7, 4000, SITE, "a", Cmd.NEW, {"name": "a"})])
    assert sql_ledger.rev() == 5000 and sql_ledger.last_id() == 7
    res = sql_ledger.publish(Trans((new("b"),)), "ann", now=10)
    assert res.rev == 5001 and res.evs[0].id == 8
    assert sql_ledger.rev() == 5001 and sql_ledger.last_id() == 8


def test_threads_publishing_at_once_are_each_applied_once(sql_ledger: SqlLedger) -> None:
    errors: list[BaseException] = []
    revs: list[int] = []
    lock = threading.Lock()

    def work(w: int) -> None:
        try:
            for i in range(15):
                r = sql_ledger.publish(Trans((new(f"w{w}-{i}"),), uid=f"u{w}-{i}"), f"u{w}")
                with lock:
                    revs.append(r.rev)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(revs)) == 60
    assert len(sql_ledger.states(SITE)) == 60
    assert sql_ledger.verify() == []


def test_close_then_publish_again_and_dispose_is_followed(project: Project,
                                                          tmp_path: Path) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", project)
    led.publish(Trans((new("a"),)), "ann")
    first = led._pub
    led.engine.dispose()  # new pool: the next publish takes a connection from it
    led.publish(Trans((new("b"),)), "ann")
    assert led._pub is not first
    led.close()
    led.publish(Trans((new("c"),)), "ann")  # reopens
    assert sorted(led.states(SITE)) == ["a", "b", "c"]
    led.close()


def test_pg_connection_killed_by_the_server_is_replaced(fresh_pg_db: str,
                                                        project: Project) -> None:
    import psycopg

    led = SqlLedger(fresh_pg_db, project)
    led.publish(Trans((new("a"),), uid="ua"), "ann")
    pid = led._pub.driver_connection.info.backend_pid
    with psycopg.connect(fresh_pg_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StorageError):
        led.publish(Trans((new("b"),), uid="ub"), "ann")
    res = led.publish(Trans((new("b"),), uid="ub"), "ann")  # a new connection
    assert not res.dup
    assert sorted(led.states(SITE)) == ["a", "b"]
    assert led.verify() == []
    led.close()


def test_database_error_mid_publish_rolls_back_and_the_next_publish_works(
        sql_ledger: SqlLedger) -> None:
    """The write fails inside the database (a constraint added here): nothing of the batch is
    stored, the lock is released, and the same connection publishes again (on PostgreSQL the
    publisher sends BEGIN/COMMIT itself and must roll the failed transaction back)."""
    with sql_ledger.engine.begin() as conn:
        if sql_ledger.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE st_field_site ADD CONSTRAINT no_boom "
                                 "CHECK (name <> 'boom')")
        else:  # by-record: the state rows are written to the topic's B-tree
            t = "sk_field_site" if sql_ledger.layout == "by-record" else "st_field_site"
            conn.exec_driver_sql(f"CREATE TRIGGER no_boom BEFORE INSERT ON {t} "
                                 "WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
    sql_ledger.publish(Trans((new("a"),), uid="ua"), "ann", now=1000)
    before = (sql_ledger.rev(), sql_ledger.last_id(), sql_ledger.events(0))
    boom = Trans((new("b"), Action(SITE, "c", Cmd.NEW, {"name": "boom"})), uid="ub")
    for _ in range(2):
        with pytest.raises(StorageError):
            sql_ledger.publish(boom, "ann", now=2000)
        assert (sql_ledger.rev(), sql_ledger.last_id(), sql_ledger.events(0)) == before
        assert sql_ledger.uid_rev("ub") is None
    res = sql_ledger.publish(Trans((new("b"),), uid="ub"), "ann", now=3000)
    assert res.rev == 3000 and not res.dup
    assert sorted(sql_ledger.states(SITE)) == ["a", "b"]
    assert sql_ledger.verify() == []
