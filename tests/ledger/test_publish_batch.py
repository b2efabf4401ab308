"""publish_many without SAVEPOINTs: a batch decides each transaction against the ones before it.

The oracle is the in-memory ledger's ``publish``, one transaction after the other. Hypothesis
draws batches of valid, invalid, conflicting and resent transactions on random bases; the SQL
ledger's and the in-memory ledger's ``publish_many`` (both through the batch planner) must give
the same outcome for every entry (result, or error type and message) and end with the same
events, audits, uids and state. Plus: the planner on its own
(sans-I/O), a storage failure in the middle of a batch (real SQLite trigger), and the same
batch on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConflictError, StorageError, ValidationError
from core.ledger import batch as batch_mod
from core.ledger import memory as memory_mod
from core.ledger.batch import later_wanted, plan_batch
from core.ledger.memory import MemLedger
from core.ledger.protocols import PubResult
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Sig, Trans
from core.revision import ZERO_REV
from core.schema import Project, load_project
from tests.conftest import DEMO_SCHEMA
from tests.ledger.test_stateful import actions

PROJECT: Project = load_project(DEMO_SCHEMA)
SITE = "field.site"


def new(key: str, **arg: Any) -> Action:
    return Action(SITE, key, Cmd.NEW, {"name": key, **arg})


def mod(key: str, **arg: Any) -> Action:
    return Action(SITE, key, Cmd.MOD, arg)


def outcome(r: PubResult | Exception) -> tuple[Any, ...]:
    if isinstance(r, Exception):
        return (type(r).__name__, str(r))
    return ("ok", r.rev, r.evs, r.dup)


def one_by_one(led: MemLedger, items: list[tuple[Trans, str]],
               now: int) -> list[PubResult | Exception]:
    """The oracle: each transaction published on its own."""
    out: list[PubResult | Exception] = []
    for t, usr in items:
        try:
            out.append(led.publish(t, usr, now))
        except (ValidationError, ConflictError) as exc:
            out.append(exc)
    return out


def contents(led: MemLedger | SqlLedger) -> tuple[Any, ...]:
    evs = led.events(ZERO_REV)
    audits = [led.audit(r) for r in sorted({e.rev for e in evs})]
    return (led.rev(), evs, audits, led.states(SITE), led.states("field.obs"))


# -- the SQL batch equals one publish after the other (Hypothesis) -----------------------------

entry = st.tuples(
    st.lists(actions(), min_size=0, max_size=3),
    st.integers(0, 3),  # base: zero, an old revision, the current one, the future
    st.sampled_from(["", "", "u1", "u2", "u3"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(entry, min_size=1, max_size=6), min_size=1, max_size=4))
def test_batch_equals_sequential_publishes(batches: list[list[tuple[Any, ...]]]) -> None:
    mem = MemLedger(PROJECT)
    mem_batch = MemLedger(PROJECT)
    sql = SqlLedger("sqlite://", PROJECT)
    try:
        revs = [ZERO_REV]
        now = 1_000_000
        for batch in batches:
            cur = mem.rev()
            items = []
            for acts, pick, uid in batch:
                base = [ZERO_REV, revs[len(revs) // 2], cur, cur + 5][pick]
                items.append((Trans(tuple(acts), base=base, uid=uid), f"usr{pick}"))
            now += 10
            want = [outcome(r) for r in one_by_one(mem, items, now)]
            assert [outcome(r) for r in sql.publish_many(items, now=now)] == want
            assert [outcome(r) for r in mem_batch.publish_many(items, now=now)] == want
            revs.append(mem.rev())
            assert contents(sql) == contents(mem)
            assert contents(mem_batch) == contents(mem)
            for _, _, uid in batch:
                if uid:
                    assert sql.uid_rev(uid) == mem.uid_rev(uid) == mem_batch.uid_rev(uid)
        assert sql.verify() == [] and mem_batch.verify() == []
    finally:
        sql.close()


# -- the planner alone ---------------------------------------------------------------------------


def test_plan_batch_sees_earlier_transactions_of_the_batch() -> None:
    s_a = Sig(SITE, "a")
    items = [
        (Trans((mod("a", lat=1.0),), base=100, uid="m1"), "ann"),
        (Trans((mod("a", lat=2.0),), base=100, uid="m2"), "bob"),  # same field: conflict
        (Trans((mod("a", region="x"),), base=100, uid="m3"), "cy"),  # other field: merges
        (Trans((mod("a", lat=1.0),), base=100, uid="m1"), "ann"),  # resend of m1
        (Trans((mod("a", lat=4.0),), base=100, uid="m2"), "bob"),  # resend of rejected m2
    ]
    calls: list[int] = []

    def clock() -> int:
        calls.append(1)
        return 500

    bp = plan_batch(PROJECT, items, last_rev=100, last_id=7,
                    states={s_a: {"name": "a", "lat": 0.0}}, later={}, applied={}, clock=clock)
    r = bp.results
    assert isinstance(r[0], PubResult) and r[0].rev == 500 and r[0].evs[0].id == 8
    assert isinstance(r[1], ConflictError)
    assert r[1].conflicts[0].usr == "ann" and r[1].conflicts[0].fields == ("lat",)
    assert isinstance(r[2], PubResult) and r[2].rev == 501
    assert isinstance(r[3], PubResult) and r[3].dup and r[3].rev == 500
    assert isinstance(r[4], ConflictError)  # still collides with m1's lat
    assert bp.uids == [("m1", 500), ("m3", 501)]
    assert bp.states == {s_a: ({"name": "a", "lat": 1.0, "region": "x"}, 501)}
    assert [e.id for e in bp.events] == [8, 9] and (bp.last_rev, bp.last_id) == (501, 9)
    assert [a[3] for a in bp.audits] == ["ann", "cy"]
    assert len(calls) == 4  # one clock reading per planned (not duplicate) transaction


def test_plan_batch_stored_uid_is_a_duplicate_and_rejections_store_nothing() -> None:
    items = [
        (Trans((new("a"),), base=100, uid="old"), "ann"),
        (Trans((mod("zz", lat=1.0),), base=100), "bob"),
        (Trans((), base=100), "bob"),
    ]
    bp = plan_batch(PROJECT, items, last_rev=100, last_id=7, states={}, later={},
                    applied={"old": 42}, clock=lambda: 500)
    assert bp.results[0] is None and bp.dup_of == {0: 42}
    assert isinstance(bp.results[1], ValidationError)
    assert "no such record" in str(bp.results[1])
    assert isinstance(bp.results[2], ValidationError)
    assert not bp.changed and bp.events == [] and bp.states == {}
    assert (bp.last_rev, bp.last_id) == (100, 7)


def test_later_wanted_takes_the_oldest_base_and_skips_mod_del_on_zero_base() -> None:
    items = [
        (Trans((mod("a", lat=1.0),), base=300), ""),
        (Trans((mod("b", lat=1.0), Action(SITE, "c", Cmd.DEL)), base=ZERO_REV), ""),
        (Trans((new("d"),), base=ZERO_REV), ""),
        (Trans((mod("e", lat=1.0),), base=200), ""),
        (Trans((mod("f", lat=1.0),), base=400), ""),  # current: no check
    ]
    assert later_wanted(items, 400) == {SITE: (ZERO_REV, ["a", "d", "e"])}
    assert later_wanted(items[:1], 400) == {SITE: (300, ["a"])}
    assert later_wanted(items[4:], 400) == {}


# -- storage failure in the middle of a batch ----------------------------------------------------


def test_storage_failure_fails_the_whole_batch_and_stores_nothing(tmp_path: Path) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'l.db'}", PROJECT)
    try:
        led.publish(Trans((new("a"),), uid="u0"), "ann")
        before = contents(led)
        db = sqlite3.connect(tmp_path / "l.db")
        db.execute("CREATE TRIGGER boom BEFORE INSERT ON evt_event WHEN NEW.key = 'boom' "
                   "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")
        db.commit()
        db.close()
        res = led.publish_many([
            (Trans((new("b"),), base=led.rev(), uid="u1"), "ann"),
            (Trans((new("boom"),), base=led.rev(), uid="u2"), "bob"),
            (Trans((mod("zz", lat=1.0),), base=led.rev()), "cy"),
        ])
        assert all(isinstance(r, StorageError) for r in res) and len(res) == 3
        assert "simulated failure" in str(res[0]) and "nothing was applied" in str(res[0])
        assert res[0].__cause__ is not None
        assert contents(led) == before
        assert led.uid_rev("u1") is None
        with pytest.raises(StorageError, match="simulated failure"):
            led.publish(Trans((new("boom"),), uid="u3"), "ann")
        assert contents(led) == before
        assert led.publish(Trans((new("b"),), uid="u1"), "ann").rev > before[0]
        assert led.verify() == []
    finally:
        led.close()


def test_mem_publish_many_lets_a_bug_propagate_and_applies_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only rejections are per-transaction outcomes; a bug is not turned into a reject."""
    led = MemLedger(PROJECT)
    led.publish(Trans((new("a"),), uid="u0"), "ann")
    before = contents(led)
    real = batch_mod.plan

    def plan(project: Project, t: Trans, **kw: Any) -> Any:
        if any(a.key == "bug" for a in t.acts):
            raise RuntimeError("a bug in the rules")
        return real(project, t, **kw)

    monkeypatch.setattr(batch_mod, "plan", plan)
    monkeypatch.setattr(memory_mod, "plan", plan)
    with pytest.raises(RuntimeError, match="a bug in the rules"):
        led.publish_many([(Trans((new("b"),), uid="u1"), "ann"),
                          (Trans((new("bug"),), uid="u2"), "ann")])
    assert contents(led) == before and led.uid_rev("u1") is None
    # rejections still are outcomes, and the rest applies
    res = led.publish_many([(Trans((new("a"),), base=led.rev(), uid="u3"), "ann"),
                            (Trans((new("b"),), uid="u1"), "ann")])
    assert isinstance(res[0], ValidationError) and isinstance(res[1], PubResult)


# -- the same batch on SQLite and PostgreSQL -----------------------------------------------------


def test_batch_on_every_sql_backend(sql_ledger: SqlLedger) -> None:
    led = sql_ledger
    first = led.publish(Trans((new("a"), new("b")), uid="u0"), "ann", now=1000)
    base = first.rev
    res = led.publish_many([
        (Trans((mod("a", lat=1.0),), base=base, uid="u1"), "ann"),
        (Trans((mod("a", lat=2.0),), base=base, uid="u2"), "bob"),
        (Trans((Action(SITE, "b", Cmd.DEL),), base=base, uid="u3"), "cy"),
        (Trans((new("b", lat=5.0),), base=base, uid="u4"), "dan"),
        (Trans((new("a"), new("b")), base=base, uid="u0"), "ann"),  # resends: acked
        (Trans((mod("a", lat=1.0),), base=base, uid="u1"), "ann"),
        (Trans((new("a"),), base=base, uid="u0"), "ann"),  # other actions: refused
        (Trans((mod("a", lat=1.0),), base=base, uid="u1"), "bob"),  # another user: refused
    ], now=2000)
    assert isinstance(res[1], ConflictError) and res[1].conflicts[0].usr == "ann"
    assert isinstance(res[6], ValidationError) and str(res[6]).startswith(
        "uid u0 was already applied with other actions")
    # ann's very edit with bob's token: applied, as ann's (session 16: "other actions")
    assert isinstance(res[7], ValidationError) and str(res[7]).startswith(
        "uid u1 was already applied with these same actions at revision ")
    assert "sent with user ann's token" in str(res[7])
    ok = [r for r in res if isinstance(r, PubResult)]
    # u4 re-creates b deleted by u3 earlier in the batch: no "new" after its base, applies
    assert [(r.rev, r.dup) for r in ok] == [(2000, False), (2001, False), (2002, False),
                                            (base, True), (2000, True)]
    assert [e.key for e in ok[3].evs] == ["a", "b"]
    assert led.rev() == 2002 and led.last_id() == 5
    sts = led.states(SITE)
    assert (sts["a"]["lat"], sts["b"]["lat"]) == (1.0, 5.0)
    assert led.uid_rev("u2") is None and led.uid_rev("u3") == 2001
    assert led.audit(2001).usr == "cy"  # type: ignore[union-attr]
    assert [h.cmd for h in led.history(SITE, "b")] == [Cmd.NEW, Cmd.DEL, Cmd.NEW]
    assert led.verify() == []
