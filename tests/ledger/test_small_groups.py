"""The hub's group commits: batches of every size through the SQL publish path's shapes.

A batch's reads go in ONE statement on SQLite up to 500 parameters (``key = ?`` arms up to
eight keys of a kind, one ``IN`` list beyond), the reads of bigger batches one statement per
table; its rows go in one multi-row ``INSERT`` per table up to 64 rows, ``executemany``
beyond. Each size below crosses one of those lines with a batch that has everything the
rules look at (new, mod and del on stored records with old and zero bases, field merges and
conflicts, a key created before, uids resent within the batch and applied before, an invalid
transaction), and must give what one publish after the other gives on the in-memory ledger.
And: a small group commit runs a fixed number of statements on SQLite, whatever its size
(each statement releases the hub writer's GIL and takes it back).
"""

from __future__ import annotations

from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project, load_project
from tests.conftest import DEMO_SCHEMA
from tests.ledger.test_publish_batch import contents, one_by_one, outcome

PROJECT: Project = load_project(DEMO_SCHEMA)
SITE, OBS = "field.site", "field.obs"


def _setup(led: MemLedger | SqlLedger, n: int) -> tuple[int, int]:
    """Records s0..s{n} and o0..o{n}; then a change of every other one. Returns the revision
    before the changes (an old base) and after them."""
    led.publish(Trans(tuple(Action(SITE, f"s{i}", Cmd.NEW, {"name": f"n{i}", "lat": 1.0 * i})
                            for i in range(n + 1)), uid="setup-s"), "ann", now=1_000)
    led.publish(Trans(tuple(Action(OBS, f"o{i}", Cmd.NEW, {"species": "fox", "count": i})
                            for i in range(n + 1)), uid="setup-o"), "ann", now=2_000)
    old = led.rev()
    for i in range(0, n + 1, 2):
        led.publish(Trans((Action(SITE, f"s{i}", Cmd.MOD, {"region": "r"}),), base=old,
                          uid=f"mod-{i}"), "bob", now=3_000 + i)
    led.publish(Trans((Action(SITE, "gone", Cmd.NEW, {"name": "g"}),)), "bob", now=9_000)
    led.publish(Trans((Action(SITE, "gone", Cmd.DEL),)), "bob", now=9_001)
    return old, led.rev()


def _batch(n: int, old: int, cur: int) -> list[tuple[Trans, str]]:
    """``n`` transactions cycling through every case the rules and the reads distinguish."""
    out: list[tuple[Trans, str]] = []
    for i in range(n):
        k = i % 11
        if k == 0:  # new record, zero base
            t = Trans((Action(SITE, f"fresh{i}", Cmd.NEW, {"name": "x", "lon": 2.5}),),
                      uid=f"b-{i}")
        elif k == 1:  # a field another user changed after the base: conflict
            t = Trans((Action(SITE, f"s{i - i % 2}", Cmd.MOD, {"region": "mine"}),),
                      base=old, uid=f"b-{i}")
        elif k == 2:  # another field of a record changed after the base: merges
            t = Trans((Action(SITE, f"s{i}", Cmd.MOD, {"notes": "merged"}),), base=old)
        elif k == 3:  # del of a record modified after the base: conflict
            t = Trans((Action(SITE, f"s{i - i % 2}", Cmd.DEL),), base=old, uid=f"b-{i}")
        elif k == 4:  # two topics, current base
            t = Trans((Action(OBS, f"o{i}", Cmd.MOD, {"count": 100 + i}),
                       Action(SITE, f"s{i}", Cmd.MOD, {"lat": 0.1 + i})), base=cur)
        elif k == 5:  # the uid of the first transaction again: a duplicate within the batch
            t = Trans((Action(SITE, "fresh0", Cmd.NEW, {"name": "again"}),), uid="b-0")
        elif k == 6:  # a uid applied before the batch
            t = Trans((Action(SITE, "s1", Cmd.MOD, {"name": "late"}),), uid="mod-0")
        elif k == 7:  # a key created (and deleted) after a zero base: conflict
            t = Trans((Action(SITE, "gone", Cmd.NEW, {"name": "g2"}),), uid=f"b-{i}")
        elif k == 8:  # invalid: unknown field
            t = Trans((Action(OBS, f"o{i}", Cmd.MOD, {"nope": 1}),), uid=f"b-{i}")
        elif k == 9:  # changes a record an earlier transaction of the batch created
            t = Trans((Action(SITE, f"fresh{i - 9}", Cmd.MOD, {"name": "y"}),), base=cur)
        else:  # deletes a stored record no one changed since the base
            t = Trans((Action(OBS, f"o{i}", Cmd.DEL),), base=old, uid=f"b-{i}")
        out.append((t, f"usr{i % 3}"))
    return out


@pytest.mark.parametrize("n", [1, 5, 8, 9, 11, 20, 65, 200])
def test_group_of_every_size_equals_one_publish_after_the_other(sql_url: str, n: int) -> None:
    mem = MemLedger(PROJECT)
    sql = SqlLedger(sql_url, PROJECT)
    try:
        old, cur = _setup(mem, n)
        assert _setup(sql, n) == (old, cur)
        items = _batch(n, old, cur)
        want = [outcome(r) for r in one_by_one(mem, items, 20_000)]
        assert [outcome(r) for r in sql.publish_many(items, now=20_000)] == want
        assert contents(sql) == contents(mem)
        assert sql.verify() == []
        # and a second batch on top, whose bases are now all behind
        items = _batch(n, old, cur)
        want = [outcome(r) for r in one_by_one(mem, items, 30_000)]
        assert [outcome(r) for r in sql.publish_many(items, now=30_000)] == want
        assert contents(sql) == contents(mem)
    finally:
        sql.close()


def test_small_group_commit_runs_seven_statements_whatever_its_size(tmp_path: Any) -> None:
    """BEGIN IMMEDIATE, one read, one INSERT per table (events, audits, uids, states),
    COMMIT: a group of ten one-action transactions used to run 45 (a read per table, a
    statement run per row)."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", PROJECT, synchronous="OFF")
    try:
        led.publish(Trans((Action(SITE, "first", Cmd.NEW, {"name": "f"}),)), "ann")
        runs: list[str] = []
        led._pub.driver_connection.set_trace_callback(runs.append)
        for n in (1, 5, 10):
            runs.clear()
            res = led.publish_many([(Trans((Action(SITE, f"g{n}-{i}", Cmd.NEW,
                                                  {"name": "x", "lat": 1.5}),),
                                           uid=f"u{n}-{i}"), "ann") for i in range(n)])
            assert all(not isinstance(r, Exception) for r in res)
            assert len(runs) == 7, (n, runs)
        assert led.verify() == []
    finally:
        led.close()


def test_batch_with_more_lookups_than_one_compound_select_takes(sql_url: str) -> None:
    """500 keys of eight or fewer per topic (and eight uids): within the one read's 500
    parameters, but one arm each would make 501 terms of a compound select, which SQLite
    refuses ("too many terms in compound SELECT"): the batch reads table by table."""
    from core.schema import parse_project

    proj = parse_project("".join(f'[s.m{i}.fields]\nname = "str"\n' for i in range(62)),
                         "wide.toml")
    items = []
    for k in range(8):  # transaction k modifies key k of every topic (no such records)
        acts = tuple(Action(f"s.m{t}", f"k{k}", Cmd.MOD, {"name": "x"})
                     for t in range(62) if t < 61 or k < 4)
        items.append((Trans(acts, uid=f"u{k}"), "ann"))
    assert sum(len(t.acts) for t, _ in items) == 492
    mem = MemLedger(proj)
    sql = SqlLedger(sql_url, proj)
    try:
        for led in (mem, sql):
            led.publish(Trans((Action("s.m0", "k0", Cmd.NEW, {"name": "a"}),)), "ann", now=100)
        want = [outcome(r) for r in one_by_one(mem, items, 200)]
        got = [outcome(r) for r in sql.publish_many(items, now=200)]
        assert got == want
        assert [w[0] for w in want] == ["ValidationError"] * 8
        assert sql.verify() == []
    finally:
        sql.close()
