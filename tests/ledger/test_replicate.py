"""``SqlLedger.replicate`` folds each batch in Python and writes state without reading it
(full upserts, partial upserts per column set, deletes): the result must equal replaying the
event log, for any sequence of new/mod/del cut into any batches (Hypothesis vs MemLedger)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Audit, Cmd, Event
from core.schema import Project

SITE = "field.site"
_RUNS = itertools.count()
OBS = "field.obs"

_site_arg = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=5), "region": st.sampled_from(["N", "S", None]),
    "lat": st.floats(-90, 90), "notes": st.none()})


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], list[int]]:
    """Valid event logs (new on a missing key, mod/del on a present one) and batch cuts."""
    n = draw(st.integers(1, 40))
    present: set[str] = set()
    evs: list[Event] = []
    rev = 1000
    for i in range(n):
        key = draw(st.sampled_from(["a", "b", "c", "d"]))
        cmd = draw(st.sampled_from([Cmd.MOD, Cmd.MOD, Cmd.DEL])) if key in present else Cmd.NEW
        arg = None if cmd == Cmd.DEL else draw(_site_arg)
        if cmd == Cmd.NEW:
            arg = {"name": "n", **(arg or {})}
            present.add(key)
        elif cmd == Cmd.DEL:
            present.discard(key)
        if draw(st.booleans()):
            rev += 1
        evs.append(Event(i + 1, rev, SITE, key, cmd, arg))
    revs = sorted({e.rev for e in evs})
    cuts = sorted(set(draw(st.lists(st.sampled_from(revs), max_size=4))) | {revs[-1]})
    return evs, cuts


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=histories())
def test_batched_replicate_equals_replay(h: tuple[list[Event], list[int]], tmp_path: Path,
                                         project: Project) -> None:
    evs, cuts = h
    path = tmp_path / f"r{next(_RUNS)}.db"
    sql = SqlLedger(f"sqlite:///{path}", project, synchronous="OFF")
    mem = MemLedger(project)
    args = [copy.deepcopy(e.arg) for e in evs]
    try:
        lo = 0
        for cut in cuts:
            batch = [e for e in evs if lo < e.rev <= cut]
            audits = [Audit(r, usr=f"u{r}") for r in sorted({e.rev for e in batch})]
            sql.replicate(cut, batch, audits)
            mem.replicate(cut, batch, audits)
            lo = cut
        assert sql.states(SITE) == mem.states(SITE)
        assert sql.verify() == []
        assert sql.rev() == mem.rev() and sql.last_id() == len(evs)
        # the fold keeps the events' own args as the records' fields (no copy per new record,
        # session 15): a later mod in the batch must not change them
        assert [e.arg for e in evs] == args
        for k in "abcd":
            assert [(x.rev, x.usr, x.cmd) for x in sql.history(SITE, k)] == [
                (x.rev, x.usr, x.cmd) for x in mem.history(SITE, k)]
    finally:
        sql.close()
        path.unlink(missing_ok=True)


def test_replicate_mixes_topics_and_column_sets(sql_url: str, project: Project) -> None:
    led = SqlLedger(sql_url, project)
    try:
        ids = itertools.count(1)
        led.replicate(10, [
            Event(next(ids), 10, SITE, "s1", Cmd.NEW, {"name": "A", "region": "N"}),
            Event(next(ids), 10, SITE, "s2", Cmd.NEW, {"name": "B"}),
            Event(next(ids), 10, OBS, "o1", Cmd.NEW, {"site": "s1", "species": "Heron"}),
        ])
        led.replicate(20, [
            Event(next(ids), 11, SITE, "s1", Cmd.MOD, {"region": "S"}),
            Event(next(ids), 12, SITE, "s2", Cmd.MOD, {"name": "B2", "lat": 2.5}),
            Event(next(ids), 13, SITE, "s1", Cmd.MOD, {"lat": 1.0}),
            Event(next(ids), 14, OBS, "o1", Cmd.MOD, {"count": 4}),
            Event(next(ids), 15, OBS, "o1", Cmd.DEL),
            Event(next(ids), 16, OBS, "o1", Cmd.NEW, {"site": "s2", "species": "Owl"}),
            Event(next(ids), 17, SITE, "s2", Cmd.DEL),
        ])
        assert led.state(SITE, "s1") == {**dict.fromkeys(led.state(SITE, "s1") or {}),
                                          "name": "A", "region": "S", "lat": 1.0}
        assert led.state(SITE, "s2") is None
        o1 = led.state(OBS, "o1")
        assert o1 is not None and o1["species"] == "Owl" and o1["count"] is None
        assert led.verify() == []
    finally:
        led.close()


def test_big_batches_equal_replay(sql_url: str, project: Project) -> None:
    """Batches of hundreds of events, audits and uids (SQLite writes them as multi-row
    statements of up to ``ROWS_MAX`` rows, with a shorter last part): every row stored,
    in order, as replaying them one by one stores them."""
    from core.ledger.sql_replicate import ROWS_MAX

    n = 3 * ROWS_MAX + 7
    evs: list[Event] = []
    audits: list[Audit] = []
    ids = itertools.count(1)
    for i in range(n):  # one new per revision, field sets varying (full upserts per set)
        arg: dict[str, object] = {"name": f"s{i}"}
        if i % 3:
            arg["lat"] = i / 4
        if i % 5 == 0:
            arg["region"] = "N"
        evs.append(Event(next(ids), 1000 + i, SITE, f"k{i:04d}", Cmd.NEW, arg))
        audits.append(Audit(1000 + i, 900 + i, 0, f"u{i % 7}", {"n": i} if i % 4 == 0 else None,
                            f"uid{i:04d}"))
    second: list[Event] = []
    for j in range(n):  # mods (partial upserts, two column sets), dels, news again
        rev = 5000 + j
        key = f"k{(j * 7) % n:04d}"
        if j % 11 == 0:
            second.append(Event(next(ids), rev, SITE, key, Cmd.DEL))
            second.append(Event(next(ids), rev, OBS, f"o{j}", Cmd.NEW,
                                {"site": key, "species": "Heron"}))
        else:
            second.append(Event(next(ids), rev, SITE, key, Cmd.MOD,
                                {"lat": float(j)} if j % 2 else {"name": f"m{j}", "lat": 1.0}))
    sat = SqlLedger(sql_url, project)
    mem = MemLedger(project)
    try:
        for led in (sat, mem):
            led.replicate(1000 + n - 1, evs, audits)
            led.replicate(5000 + n - 1, second, [Audit(e.rev, usr="x", uid=f"v{e.rev}")
                                                 for e in second if e.top == OBS])
        assert sat.states(SITE) == mem.states(SITE)
        assert sat.states(OBS) == mem.states(OBS)
        assert sat.verify() == []
        assert sat.rev() == mem.rev() and sat.last_id() == len(evs) + len(second)
        assert sat.events(0) == mem.events(0)
        assert sat.audits(0, 10_000) == mem.audits(0, 10_000)
        assert [sat.uid_rev(f"uid{i:04d}") for i in range(n)] == [1000 + i for i in range(n)]
    finally:
        sat.close()
