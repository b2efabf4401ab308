"""Rebase and local conflict detection, without I/O (MemLedger as the replica)."""

from __future__ import annotations

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.view import Queued, rebase
from core.schema import Project

SITE = "field.site"


def _hub_with(project: Project) -> tuple[MemLedger, int]:
    hub = MemLedger(project)
    r = hub.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "A", "region": "N"}),)),
                    "ann", now=1000)
    return hub, r.rev


def _replica(project: Project, hub: MemLedger) -> MemLedger:
    rep = MemLedger(project)
    rep.replicate(hub.rev(), hub.events(0))
    return rep


def test_pending_actions_overlay_the_replica(project: Project) -> None:
    hub, base = _hub_with(project)
    rep = _replica(project, hub)
    q = [Queued("u1", Trans((Action(SITE, "s1", Cmd.MOD, {"name": "B"}),), base=base, uid="u1")),
         Queued("u2", Trans((Action(SITE, "s2", Cmd.NEW, {"name": "C"}),), base=base, uid="u2")),
         Queued("u3", Trans((Action(SITE, "s2", Cmd.MOD, {"lat": 1.5}),), base=base, uid="u3"))]
    ov = rebase(rep, q)
    assert ov.conflicts == {}
    s1 = next(v for k, v in ov.states.items() if k.key == "s1")
    s2 = next(v for k, v in ov.states.items() if k.key == "s2")
    assert s1 is not None and s1["name"] == "B" and s1["region"] == "N"
    assert s2 is not None and s2["name"] == "C" and s2["lat"] == 1.5
    assert [u for k, u in ov.pending.items() if k.key == "s2"] == [["u2", "u3"]]


def test_hub_change_of_same_field_is_a_local_conflict_at_once(project: Project) -> None:
    hub, base = _hub_with(project)
    rep = _replica(project, hub)
    mine = Queued("u1", Trans((Action(SITE, "s1", Cmd.MOD, {"name": "mine"}),), base=base,
                              uid="u1"))
    assert rebase(rep, [mine]).conflicts == {}
    # someone else changes the same field; the replica receives it
    hub.publish(Trans((Action(SITE, "s1", Cmd.MOD, {"name": "theirs"}),), base=base), "bob",
                now=2000)
    rep.replicate(hub.rev(), hub.events(base))
    ov = rebase(rep, [mine])
    assert "u1" in ov.conflicts
    _err, conflicts = ov.conflicts["u1"]
    assert conflicts[0].fields == ("name",) and conflicts[0].reason == "field changed"
    assert not any(k.key == "s1" for k in ov.states)  # not applied: the replica's value shows
    assert [k.key for k in ov.conflict_sigs] == ["s1"]


def test_other_field_change_merges_cleanly(project: Project) -> None:
    hub, base = _hub_with(project)
    rep = _replica(project, hub)
    mine = Queued("u1", Trans((Action(SITE, "s1", Cmd.MOD, {"name": "mine"}),), base=base,
                              uid="u1"))
    hub.publish(Trans((Action(SITE, "s1", Cmd.MOD, {"region": "S"}),), base=base), "bob",
                now=2000)
    rep.replicate(hub.rev(), hub.events(base))
    ov = rebase(rep, [mine])
    assert ov.conflicts == {}
    st = next(iter(ov.states.values()))
    assert st == {"name": "mine", "region": "S", "lat": None, "lon": None, "notes": None}


def test_mod_of_record_deleted_by_someone_else_conflicts(project: Project) -> None:
    hub, base = _hub_with(project)
    rep = _replica(project, hub)
    mine = Queued("u1", Trans((Action(SITE, "s1", Cmd.MOD, {"lat": 2.0}),), base=base,
                              uid="u1"))
    hub.publish(Trans((Action(SITE, "s1", Cmd.DEL),), base=base), "bob", now=2000)
    rep.replicate(hub.rev(), hub.events(base))
    ov = rebase(rep, [mine])
    assert ov.conflicts["u1"][1][0].reason == "deleted"


def test_authoritative_and_accepted_are_not_checked(project: Project) -> None:
    hub, base = _hub_with(project)
    rep = _replica(project, hub)
    hub.publish(Trans((Action(SITE, "s1", Cmd.MOD, {"name": "theirs"}),), base=base), "bob",
                now=2000)
    rep.replicate(hub.rev(), hub.events(base))
    t = Trans((Action(SITE, "s1", Cmd.MOD, {"name": "mine"}),), base=base, uid="u1")
    ov = rebase(rep, [Queued("u1", t, auth=True)])
    assert ov.conflicts == {} and ov.pending == {}
    assert next(iter(ov.states.values()))["name"] == "mine"  # type: ignore[index]


def test_keys_of_applies_the_overlay_to_the_sorted_replica_keys() -> None:
    from core.model import Sig
    from core.satellite.view import Overlay, keys_of

    ov = Overlay(states={Sig(SITE, "b"): None, Sig(SITE, "c"): {"name": "C2"},
                         Sig(SITE, "a0"): {"name": "new"}, Sig(SITE, "zz"): {"name": "new"},
                         Sig("field.obs", "x"): {"site": "c"}})
    assert keys_of(["a", "b", "c", "d"], ov, SITE) == ["a", "a0", "c", "d", "zz"]
    assert keys_of(["d", "c", "b", "a"], ov, SITE) == ["a", "a0", "c", "d", "zz"]  # any order
    assert keys_of([], ov, "field.obs") == ["x"]
    assert keys_of(["a"], Overlay(), SITE) == ["a"]
