"""An incremental rebase (``prev`` + the records the replica changed) equals a full rebase, for
any queue and any hub events on any records (Hypothesis, in-memory replica)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Event, Sig, Trans
from core.satellite.view import Overlay, Queued, rebase
from core.schema import Project

SITE = "field.site"
KEYS = ["a", "b", "c", "d", "e"]

_arg = st.fixed_dictionaries({}, optional={"name": st.sampled_from(["x", "y"]),
                                           "region": st.sampled_from(["N", "S"])})


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, object]:
    return {
        "first": draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4)),
        "queue": draw(st.lists(st.tuples(
            st.lists(st.tuples(st.sampled_from(KEYS),
                               st.sampled_from([Cmd.NEW, Cmd.MOD, Cmd.DEL]), _arg),
                     min_size=1, max_size=2, unique_by=lambda x: x[0]),
            st.booleans()), max_size=8)),
        "hub": draw(st.lists(st.tuples(st.sampled_from(KEYS),
                                       st.sampled_from([Cmd.NEW, Cmd.MOD, Cmd.DEL]), _arg),
                             max_size=5)),
        "drop": draw(st.lists(st.integers(0, 7), max_size=2)),
    }


def view(ov: Overlay) -> tuple[object, ...]:
    return (ov.states, ov.pending, ov.conflicts, ov.conflict_sigs)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sc=scenario())
def test_incremental_rebase_equals_full(sc: dict[str, object], project: Project) -> None:
    rep = MemLedger(project)
    ids = iter(range(1, 1000))
    first: list[str] = sc["first"]  # type: ignore[assignment]
    rep.replicate(1000, [Event(next(ids), 1000, SITE, k, Cmd.NEW, {"name": k}) for k in first])
    present = set(first)
    queued = []
    for i, (acts, old_base) in enumerate(sc["queue"]):  # type: ignore[attr-defined]
        t = tuple(Action(SITE, k, cmd, None if cmd == Cmd.DEL else {"name": "n", **arg})
                  for k, cmd, arg in acts)
        queued.append(Queued(f"u{i}", Trans(t, base=0 if old_base else 1000, uid=f"u{i}")))
    prev = rebase(rep, queued)
    # hub events (valid on the replica), then some transactions leave the queue
    rev = 1000
    evs = []
    for k, cmd, arg in sc["hub"]:  # type: ignore[attr-defined]
        if (cmd == Cmd.NEW) == (k in present):
            continue
        rev += 1
        evs.append(Event(next(ids), rev, SITE, k, cmd,
                         None if cmd == Cmd.DEL else {"name": "h", **arg}))
        if cmd == Cmd.DEL:
            present.discard(k)
        else:
            present.add(k)
    rep.replicate(rev, evs)
    drop = {f"u{i}" for i in sc["drop"]}  # type: ignore[attr-defined]
    # like Satellite._advance_bases: bases of most pending transactions move to the new rev
    moved = [q if q.trans.base == 0 else
             Queued(q.uid, Trans(q.trans.acts, base=rev, uid=q.uid)) for q in queued]
    left = [q for q in moved if q.uid not in drop]
    inc = rebase(rep, left, prev=prev, changed={Sig(e.top, e.key) for e in evs})
    full = rebase(rep, left)
    assert view(inc) == view(full)
