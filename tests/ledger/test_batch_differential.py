"""Random batches published with ``publish_many`` to the SQL ledger (SQLite and PostgreSQL)
and to the in-memory ledger side by side: same outcomes, same events, same states.

It covers the PostgreSQL one-statement write (events, audits, uids and the state upserts of
several topics in one statement, deletes before it, the NOTIFY in it) and its fallback to one
statement per table for a batch with more parameters than one statement takes.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.errors import ConflictError, ValidationError
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project

TOPS = ("field.site", "field.obs")


def _arg(rnd: random.Random, top: str, new: bool) -> dict[str, Any]:
    if top == "field.site":
        arg: dict[str, Any] = {"name": rnd.choice(["n1", "n2", "ü"])} if new else {}
        arg.update(rnd.choice([{}, {"lat": rnd.choice([1.5, -2, None])},
                               {"region": rnd.choice(["r", None]), "notes": "a\nb"}]))
        return arg or {"lon": 7.25}
    arg = {"species": rnd.choice(["fox", "owl"])} if new else {}
    arg.update(rnd.choice([{}, {"count": rnd.choice([0, 3, 2**40])},
                           {"site": rnd.choice(["k1", 7]), "condition": "good"}]))
    return arg or {"observer": "ann"}


def _outcome(res: Any) -> Any:
    if isinstance(res, Exception):
        return type(res).__name__, str(res)
    return res.rev, res.evs, res.dup


def _compare(mem: MemLedger, sql: SqlLedger) -> None:
    assert sql.rev() == mem.rev()
    assert sql.events(0) == mem.events(0)
    for top in TOPS:
        assert sql.states(top) == mem.states(top)
    assert sql.verify() == []


def test_random_batches_same_as_memory(sql_ledger: SqlLedger, project: Project) -> None:
    rnd = random.Random(20261126)
    mem = MemLedger(project)
    revs = [0]
    uids: list[str] = []
    sent: dict[str, tuple[tuple[Action, ...], str]] = {}  # uid -> its first actions and user
    seen: set[str] = set()
    clashes = 0
    now = 10_000
    for step in range(60):
        items: list[tuple[Trans, str]] = []
        for _ in range(rnd.randint(1, 6)):
            acts = []
            for _ in range(rnd.randint(1, 4)):
                top = rnd.choice(TOPS)
                key = rnd.choice(["k1", "k2", "k3", "k4"])
                cmd = rnd.choice([Cmd.NEW, Cmd.NEW, Cmd.MOD, Cmd.MOD, Cmd.DEL])
                acts.append(Action(top, key, cmd,
                                   None if cmd == Cmd.DEL else _arg(rnd, top, cmd == Cmd.NEW)))
            usr = rnd.choice("xy")
            if uids and rnd.random() < 0.15:  # a uid again: a resend, or (since session 11)
                uid = rnd.choice(uids)        # other actions or user under it: rejected
                if rnd.random() < 0.6:
                    acts, usr = list(sent[uid][0]), sent[uid][1]
            else:
                uid = f"u{step}-{len(items)}"
                sent[uid] = (tuple(acts), usr)
            uids.append(uid)
            items.append((Trans(tuple(acts), base=rnd.choice(revs), uid=uid), usr))
        now += rnd.randint(-50, 200)  # the clock may go back
        got = [_outcome(r) for r in sql_ledger.publish_many(items, now=now)]
        want = [_outcome(r) for r in mem.publish_many(items, now=now)]
        assert got == want, step
        seen.update(r[0] if isinstance(r[0], str) else ("dup" if r[2] else "ok") for r in got)
        clashes += sum(1 for r in got if "already applied with other actions" in str(r[-1]))
        revs.extend(r[0] for r in got if isinstance(r[0], int))
    assert seen == {"ok", "dup", "ConflictError", "ValidationError"}  # every outcome occurred
    assert clashes > 0
    assert any(e.cmd == Cmd.DEL for e in mem.events(0))
    _compare(mem, sql_ledger)


def test_big_batch(sql_ledger: SqlLedger, project: Project) -> None:
    """More values than one PostgreSQL statement takes as parameters (65,535): the write
    sends one array per column."""
    mem = MemLedger(project)
    n = 65_535 // 12 + 100  # 6 event and 7 state values per action
    big = Trans(tuple(Action("field.site", f"b{i}", Cmd.NEW, {"name": f"n{i}"})
                      for i in range(n)), uid="big")
    small = Trans((Action("field.obs", "o1", Cmd.NEW, {"species": "fox"}),), uid="small")
    for led in (sql_ledger, mem):
        res = led.publish_many([(big, "ann"), (small, "bob")], now=5000)
        assert not any(isinstance(r, (ValidationError, ConflictError)) for r in res)
    again = sql_ledger.publish(big, "ann")
    assert again.dup and len(again.evs) == n
    _compare(mem, sql_ledger)


def test_values_read_back_by_a_publish_are_exact(sql_ledger: SqlLedger) -> None:
    """A publish reads the current state of its records (on PostgreSQL as JSON) and writes
    the merged state back: every value must survive that unchanged."""
    floats = [0.1 + 0.2, 1e-320, 1.7976931348623157e308, 3.0, -0.0, 46.500001, 2.0**53 + 2]
    for i, x in enumerate(floats):
        arg = {"name": f"ü\\\"'\n{i}".replace("\n", " "), "lat": x, "notes": "line1\nline2 ☃"}
        sql_ledger.publish(Trans((Action("field.site", f"f{i}", Cmd.NEW, arg),)), "ann")
        sql_ledger.publish(Trans((Action("field.site", f"f{i}", Cmd.MOD, {"lon": 1.5}),)), "ann")
        got = sql_ledger.state("field.site", f"f{i}")
        assert got is not None
        assert got["lat"] == x and type(got["lat"]) is float and got["name"] == arg["name"]
        assert got["notes"] == arg["notes"]
    # a conflict reports the current values as read by the publish: a double stays a float
    r = sql_ledger.publish(Trans((Action("field.site", "c", Cmd.NEW, {"name": "c", "lat": 3.0}),
                                  )), "ann")
    sql_ledger.publish(Trans((Action("field.site", "c", Cmd.MOD, {"lat": 4.0}),)), "bob")
    with pytest.raises(ConflictError) as err:
        sql_ledger.publish(Trans((Action("field.site", "c", Cmd.MOD, {"lat": 5.0}),),
                                 base=r.rev), "eve")
    theirs = err.value.conflicts[0].theirs
    assert theirs == {"lat": 4.0} and type(theirs["lat"]) is float
    obs = {"species": "fox", "count": 2**62, "site": 7, "condition": "good",
           "observed": "2026-05-01T09:30:00Z"}
    sql_ledger.publish(Trans((Action("field.obs", "o", Cmd.NEW, obs),)), "ann")
    sql_ledger.publish(Trans((Action("field.obs", "o", Cmd.MOD, {"notes": "n"}),)), "ann")
    assert sql_ledger.state("field.obs", "o") == {**obs, "observer": None, "notes": "n"}
    assert sql_ledger.verify() == []


def test_many_topics_fall_back_to_one_read_per_table(tmp_path: Any, sql_url: str) -> None:
    """More topics in one batch than one PostgreSQL read statement takes."""
    from core.schema import parse_project

    text = "".join(f'[s.m{i}.fields]\nname = "str"\n' for i in range(50))
    proj = parse_project(text, "many.toml")
    sql = SqlLedger(sql_url, proj)
    mem = MemLedger(proj)
    acts = tuple(Action(f"s.m{i}", "k", Cmd.NEW, {"name": f"n{i}"}) for i in range(50))
    outs = []
    for led in (sql, mem):
        led.publish(Trans(acts, uid="u1"), "ann", now=100)
        # base behind: the later events of all 50 topics are read as well (100 reads); the
        # first collides on every record, the second changes other fields and merges
        mods = [tuple(Action(a.top, a.key, Cmd.MOD, {f: "x"}) for a in acts)
                for f in ("name", "name")]
        res = led.publish_many([(Trans(mods[0], base=50), "bob")], now=200)
        res += led.publish_many([(Trans(mods[1], base=100), "bob")], now=300)
        outs.append([_outcome(r) for r in res])
    assert outs[0] == outs[1]
    assert outs[0][0][0] == "ConflictError" and outs[0][0][1].count("field name changed") == 50
    assert not outs[0][1][2]  # the second applied (not a dup)
    assert sql.events(0) == mem.events(0)
    assert sql.verify() == []
    sql.close()


@pytest.mark.parametrize("field", ["s", "k", "u", "e", "a", "mr"])
def test_fields_named_like_the_read_statements_aliases(sql_url: str, field: str) -> None:
    """A field named like an alias of the one read statement (found in review: a field ``s``
    made PostgreSQL aggregate that column instead of the state row, so every mod and del of
    the topic failed)."""
    from core.schema import parse_project

    proj = parse_project(f'[t.m.fields]\n{field} = "str"\nother = "str"\n', "alias.toml")
    led = SqlLedger(sql_url, proj)
    try:
        led.publish(Trans((Action("t.m", "k1", Cmd.NEW, {field: "a", "other": "b"}),)), "u")
        led.publish(Trans((Action("t.m", "k1", Cmd.MOD, {field: "c"}),)), "u")
        assert led.state("t.m", "k1") == {field: "c", "other": "b"}
        led.publish(Trans((Action("t.m", "k1", Cmd.DEL),)), "u")
        assert led.state("t.m", "k1") is None and led.verify() == []
    finally:
        led.close()
