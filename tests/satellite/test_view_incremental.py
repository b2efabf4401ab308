"""The incremental view (:class:`QueueView` updated with what changed) equals a full rebase,
for any queue and any sequence of rounds — hub events on any records, transactions leaving the
queue, bases moving, acks arriving, new edits appended (Hypothesis, in-memory replica)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Event, Sig, Trans
from core.satellite.view import Overlay, Queued, QueueView, rebase, sigs_of
from core.schema import Project

SITE = "field.site"
KEYS = ["a", "b", "c", "d", "e"]

_arg = st.fixed_dictionaries({}, optional={"name": st.sampled_from(["x", "y"]),
                                           "region": st.sampled_from(["N", "S"])})
_acts = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from([Cmd.NEW, Cmd.MOD, Cmd.DEL]),
                           _arg), min_size=1, max_size=2, unique_by=lambda x: x[0])
_round = st.fixed_dictionaries({
    "hub": st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from([Cmd.NEW, Cmd.MOD, Cmd.DEL]),
                              _arg), max_size=4),
    "drop": st.lists(st.integers(0, 11), max_size=2),
    "move": st.lists(st.integers(0, 11), max_size=3),
    "ack": st.lists(st.integers(0, 11), max_size=2),
    "add": st.lists(_acts, max_size=2),
    # drop the leaving ones alone on their records first: one at a time, or in one pass
    "alone": st.sampled_from(["", "one", "many"]),
})


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, object]:
    return {
        "first": draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4)),
        "queue": draw(st.lists(st.tuples(_acts, st.booleans(), st.booleans()), max_size=8)),
        "rounds": draw(st.lists(_round, min_size=1, max_size=3)),
    }


def view(ov: Overlay) -> tuple[object, ...]:
    return (ov.states, ov.pending, ov.conflicts, ov.conflict_sigs)


def _trans(uid: str, acts: list[tuple[str, Cmd, dict[str, str]]], base: int) -> Trans:
    t = tuple(Action(SITE, k, cmd, None if cmd == Cmd.DEL else {"name": "n", **arg})
              for k, cmd, arg in acts)
    return Trans(t, base=base, uid=uid)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sc=scenario())
def test_incremental_view_equals_full_rebase(sc: dict[str, object], project: Project) -> None:
    rep = MemLedger(project)
    ids = iter(range(1, 1000))
    first: list[str] = sc["first"]  # type: ignore[assignment]
    rep.replicate(1000, [Event(next(ids), 1000, SITE, k, Cmd.NEW, {"name": k}) for k in first])
    present = set(first)
    queued: list[Queued] = []
    for i, (acts, old_base, auth) in enumerate(sc["queue"]):  # type: ignore[attr-defined]
        queued.append(Queued(f"u{i}", _trans(f"u{i}", acts, 0 if old_base else 1000), auth))
    qv = QueueView()
    qv.update(rep, queued)
    assert view(qv.ov) == view(rebase(rep, queued))
    rev = 1000
    n = len(queued)
    for rnd in sc["rounds"]:  # type: ignore[attr-defined]
        evs = []
        for k, cmd, arg in rnd["hub"]:
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
        by_uid = {q.uid: q for q in queued}
        names = list(by_uid)
        drop = {names[i] for i in rnd["drop"] if i < len(names)}
        changed: list[Queued] = []
        for i in rnd["move"]:  # like Satellite._advance_bases: a base moves to the new rev
            if i < len(names) and names[i] not in drop:
                q = by_uid[names[i]]
                by_uid[q.uid] = Queued(q.uid, Trans(q.trans.acts, base=rev, uid=q.uid),
                                       q.auth, q.accepted)
                changed.append(by_uid[q.uid])
        for i in rnd["ack"]:  # an ack stored before its events
            if i < len(names) and names[i] not in drop:
                q = by_uid[names[i]]
                by_uid[q.uid] = Queued(q.uid, q.trans, q.auth, True)
                changed.append(by_uid[q.uid])
        for acts in rnd["add"]:
            uid = f"u{n}"
            n += 1
            by_uid[uid] = Queued(uid, _trans(uid, acts, rev))
            changed.append(by_uid[uid])
        queued = [q for u, q in by_uid.items() if u not in drop]
        touched = {Sig(e.top, e.key) for e in evs}
        if rnd["alone"] == "one":
            for u in sorted(drop):
                if u not in {q.uid for q in changed} and qv.drop_alone(u) is not None:
                    drop.discard(u)
        elif rnd["alone"] == "many":  # as Satellite.written does for a reply's acks
            asked = [u for u in sorted(drop) if u not in {q.uid for q in changed}]
            gone, kept = qv.drop_alone_many(asked)
            for u in asked:
                if u not in kept:
                    drop.discard(u)
            assert gone == {s for u in asked if u not in kept for s in sigs_of(by_uid[u].trans)}
        qv.update(rep, changed, drop, touched)
        assert view(qv.ov) == view(rebase(rep, queued))
