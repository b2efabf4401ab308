"""The ledger contract (DESIGN §3), run against every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.errors import ConflictError, ValidationError
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Audit, Cmd, Event, Trans
from core.revision import ZERO_REV, format_rev

Led = MemLedger | SqlLedger

SITE = "field.site"
OBS = "field.obs"
BLANK_SITE = {"name": None, "region": None, "lat": None, "lon": None, "notes": None}


def new(key: str, **arg: Any) -> Action:
    return Action(SITE, key, Cmd.NEW, {"name": "n", **arg})


def mod(key: str, **arg: Any) -> Action:
    return Action(SITE, key, Cmd.MOD, arg)


def delete(key: str) -> Action:
    return Action(SITE, key, Cmd.DEL)


def pub(led: Led, *acts: Action, base: int | None = None, usr: str = "ann", now: int = 0,
        uid: str = "") -> Any:
    b = led.rev() if base is None else base
    return led.publish(Trans(tuple(acts), base=b, uid=uid), usr, now=now or led.rev() + 1000)


def site(**fields: Any) -> dict[str, Any]:
    return {**BLANK_SITE, **fields}


def snapshot(led: Led) -> tuple[Any, ...]:
    return (led.rev(), led.events(ZERO_REV), led.states(SITE), led.states(OBS))


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("acts", "base", "needle"), [
    ((Action("field.sit", "a", Cmd.NEW, {"name": "x"}),), None,
     "no model found for topic 'field.sit': did you mean 'field.site'?"),
    ((Action(SITE, "", Cmd.NEW, {"name": "x"}),), None, "empty key"),
    ((Action(SITE, "a", "upd", {"name": "x"}),), None,  # type: ignore[arg-type]
     "unknown cmd 'upd': expected new, mod or del"),
    ((Action(SITE, "a", Cmd.NEW, {"nmae": "x"}),), None,
     "unknown field 'nmae' for field.site: did you mean 'name'?"),
    ((Action(SITE, "a", Cmd.NEW, {"name": "x", "lat": "north"}),), None,
     "field 'lat' got 'north', expected a number"),
    ((Action(SITE, "a", Cmd.NEW, {"region": "x"}),), None, "required field 'name' is missing"),
    ((new("old"),), None, "new field.site old: the record already exists"),
    ((mod("nope", name="x"),), None, "mod field.site nope: no such record"),
    ((delete("nope"),), None, "del field.site nope: no such record"),
    ((), None, "no actions"),
    ((mod("old", name="y"),), 10**13, "is in the future of the ledger"),
    # a valid action followed by an invalid one: the whole transaction is refused
    ((new("fresh"), mod("nope", name="x")), None, "mod field.site nope: no such record"),
])
def test_validation_errors_apply_nothing(ledger: Led, acts: tuple[Action, ...],
                                         base: int | None, needle: str) -> None:
    pub(ledger, new("old"), uid="u0")
    before = snapshot(ledger)
    with pytest.raises(ValidationError) as err:
        pub(ledger, *acts, base=base, uid="u-bad")
    assert needle in str(err.value)
    assert snapshot(ledger) == before
    assert ledger.uid_rev("u-bad") is None


# -- conflicts ----------------------------------------------------------------------------------


def test_mod_vs_mod_same_field_conflicts_with_details(ledger: Led) -> None:
    base = pub(ledger, new("a", region="r0")).rev
    won = pub(ledger, mod("a", region="theirs"), usr="bob")
    before = snapshot(ledger)
    with pytest.raises(ConflictError) as err:
        pub(ledger, mod("a", region="mine", notes="n"), base=base, usr="cy")
    (c,) = err.value.conflicts
    assert (c.top, c.key, c.cmd, c.reason) == (SITE, "a", Cmd.MOD, "field changed")
    assert c.fields == ("region",)
    assert c.theirs == {"region": "theirs"}
    assert (c.rev, c.usr) == (won.rev, "bob")
    assert "by bob" in str(err.value)
    assert snapshot(ledger) == before


def test_different_fields_merge_cleanly(ledger: Led) -> None:
    base = pub(ledger, new("a", region="r0")).rev
    pub(ledger, mod("a", region="theirs"), usr="bob")
    res = pub(ledger, mod("a", notes="mine"), base=base, usr="cy")
    assert not res.dup
    assert ledger.state(SITE, "a") == site(name="n", region="theirs", notes="mine")


@pytest.mark.parametrize(("mine", "reason"), [
    (mod("a", region="x"), "deleted"),
    (delete("a"), "deleted"),
])
def test_changes_on_a_record_deleted_after_base_conflict(ledger: Led, mine: Action,
                                                         reason: str) -> None:
    base = pub(ledger, new("a")).rev
    gone = pub(ledger, delete("a"), usr="bob")
    with pytest.raises(ConflictError) as err:
        pub(ledger, mine, base=base)
    (c,) = err.value.conflicts
    assert (c.reason, c.rev, c.usr, c.theirs) == (reason, gone.rev, "bob", None)


def test_del_of_a_record_modified_after_base_conflicts(ledger: Led) -> None:
    base = pub(ledger, new("a")).rev
    won = pub(ledger, mod("a", lat=1.5), usr="bob")
    with pytest.raises(ConflictError) as err:
        pub(ledger, delete("a"), base=base)
    (c,) = err.value.conflicts
    assert (c.cmd, c.reason, c.fields, c.theirs) == (Cmd.DEL, "modified", ("lat",), {"lat": 1.5})
    assert (c.rev, c.usr) == (won.rev, "bob")
    assert ledger.state(SITE, "a") == site(name="n", lat=1.5)


def test_each_conflicting_field_names_its_own_last_change(ledger: Led) -> None:
    # user review 13 F8: carol changed lat and region offline; alice then changed lat, bob
    # region: both were credited to bob, the last. Each field names its own change (``by``);
    # the record's rev/usr (daql's shape) stay the last change's
    base = pub(ledger, new("a")).rev
    by_alice = pub(ledger, mod("a", lat=46.0), usr="alice")
    by_bob = pub(ledger, mod("a", region="East"), usr="bob")
    for mine in (mod("a", lat=45.0, region="West"), delete("a")):
        with pytest.raises(ConflictError) as err:
            pub(ledger, mine, base=base, usr="carol")
        (c,) = err.value.conflicts
        assert (c.fields, c.rev, c.usr) == (("lat", "region"), by_bob.rev, "bob")
        assert c.by == {"lat": (by_alice.rev, "alice"), "region": (by_bob.rev, "bob")}
        assert (c.of("lat"), c.of("region")) == ((by_alice.rev, "alice"), (by_bob.rev, "bob"))
        if c.reason == "field changed":
            assert (f"field lat changed at {format_rev(by_alice.rev)} by alice, field region "
                    f"changed at {format_rev(by_bob.rev)} by bob") in str(err.value)
    # one change set every conflicting field: no per-field part (daql's shape)
    base = ledger.rev()
    pub(ledger, mod("a", lat=1.0, region="x"), usr="bob")
    with pytest.raises(ConflictError) as err:
        pub(ledger, mod("a", lat=2.0, region="y"), base=base, usr="carol")
    assert err.value.conflicts[0].by is None


def test_new_vs_new_conflicts(ledger: Led) -> None:
    base = ledger.rev()
    pub(ledger, new("a", region="first"), usr="bob")
    with pytest.raises(ConflictError) as err:
        pub(ledger, new("a", region="second"), base=base)
    (c,) = err.value.conflicts
    assert (c.cmd, c.reason, c.usr) == (Cmd.NEW, "created", "bob")
    assert ledger.state(SITE, "a") == site(name="n", region="first")


def test_conflict_names_every_colliding_record(ledger: Led) -> None:
    base = pub(ledger, new("a"), new("b"), new("c")).rev
    pub(ledger, mod("a", name="x"), delete("b"), usr="bob")
    with pytest.raises(ConflictError) as err:
        pub(ledger, mod("a", name="y"), mod("b", name="y"), mod("c", name="ok"), base=base)
    assert {(c.key, c.reason) for c in err.value.conflicts} == {
        ("a", "field changed"), ("b", "deleted")}
    assert ledger.state(SITE, "c") == site(name="n")


# -- exactly once, audit identity, revisions ----------------------------------------------------


def test_resent_uid_returns_original_and_changes_nothing(ledger: Led) -> None:
    first = pub(ledger, new("a"), uid="u1")
    pub(ledger, new("b"), uid="u2")
    before = snapshot(ledger)
    for _ in range(3):
        again = ledger.publish(Trans((new("a"),), base=ZERO_REV, uid="u1"), "ann",
                               now=first.rev + 10**6)
        assert again.dup
        assert (again.rev, again.evs) == (first.rev, first.evs)
    # other actions under the uid, or another user's resend of it: refused (session 11;
    # before, acked with the first revision, the edit dropped)
    for acts, usr in (((new("zzz"),), "ann"), ((new("zzz"),), "eve"),
                      ((new("a", lat=1.0),), "ann"), ((new("a"), new("b")), "ann")):
        with pytest.raises(ValidationError, match="uid u1 was already applied with other "
                           "actions; a client must make a new uid per transaction"):
            ledger.publish(Trans(acts, base=ZERO_REV, uid="u1"), usr, now=first.rev + 10**6)
    # the very edit under another user's token (a token changed before a lost answer): still
    # refused, but saying it was applied, as whose and when (session 16: "other actions …
    # nothing of this one was applied", which was false)
    with pytest.raises(ValidationError) as exc:
        ledger.publish(Trans((new("a"),), base=ZERO_REV, uid="u1"), "eve",
                       now=first.rev + 10**6)
    assert str(exc.value) == (
        f"uid u1 was already applied with these same actions at revision "
        f"{format_rev(first.rev)}, sent with user ann's token: this edit is in the hub as "
        "ann's and was not applied again (nothing was changed)")
    assert snapshot(ledger) == before
    assert ledger.uid_rev("u1") == first.rev


def test_usr_comes_from_the_caller_not_the_client(ledger: Led) -> None:
    t = Trans((new("a"),), base=ZERO_REV, usr="mallory", uid="u1", created=123)
    res = ledger.publish(t, "ann", now=5000)
    audit = ledger.audit(res.rev)
    assert audit is not None
    assert (audit.usr, audit.uid, audit.created, audit.arrived) == ("ann", "u1", 123, 5000)
    assert [h.usr for h in ledger.history(SITE, "a")] == ["ann"]


def test_next_rev_strictly_increases_when_the_clock_goes_back(ledger: Led) -> None:
    r1 = pub(ledger, new("a"), now=10_000).rev
    r2 = pub(ledger, new("b"), now=5_000).rev
    r3 = pub(ledger, new("c"), now=10_000).rev
    r4 = pub(ledger, new("d"), now=20_000).rev
    assert (r1, r2, r3, r4) == (10_000, 10_001, 10_002, 20_000)
    assert ledger.rev() == 20_000
    evs = ledger.events(ZERO_REV)
    assert [e.id for e in evs] == [1, 2, 3, 4]
    assert [e.rev for e in evs] == [r1, r2, r3, r4]


# -- queries ------------------------------------------------------------------------------------


def test_events_order_topics_and_limit_never_cuts_a_revision(ledger: Led) -> None:
    r1 = pub(ledger, new("a"), new("b"), new("c")).rev
    r2 = pub(ledger, Action(OBS, "o", Cmd.NEW, {"species": "fox"})).rev
    r3 = pub(ledger, mod("a", lat=1.0), mod("b", lat=2.0)).rev
    evs = ledger.events(ZERO_REV)
    assert [(e.rev, e.key) for e in evs] == [(r1, "a"), (r1, "b"), (r1, "c"), (r2, "o"),
                                             (r3, "a"), (r3, "b")]
    assert [e.id for e in evs] == [1, 2, 3, 4, 5, 6]
    assert [e.key for e in ledger.events(ZERO_REV, [OBS])] == ["o"]
    assert ledger.events(ZERO_REV, []) == []
    assert [e.id for e in ledger.events(r1)] == [4, 5, 6]
    assert ledger.events(r3) == []
    # limit 1 inside a 3-event revision: the whole revision comes
    assert [e.id for e in ledger.events(ZERO_REV, limit=1)] == [1, 2, 3]
    assert [e.id for e in ledger.events(ZERO_REV, limit=4)] == [1, 2, 3, 4]
    assert [e.id for e in ledger.events(ZERO_REV, limit=5)] == [1, 2, 3, 4, 5, 6]
    assert [e.id for e in ledger.events(ZERO_REV, [SITE], limit=4)] == [1, 2, 3, 5, 6]
    assert evs[0].arg == {"name": "n"}


def test_event_keys_are_the_events_without_their_args(ledger: Led) -> None:
    """``event_keys`` (a monitor catch-up's read) answers every query as ``events`` does,
    with ``arg`` left out: same events, order, topics and whole revisions at a limit."""
    pub(ledger, new("a"), new("b"), new("c"))
    r2 = pub(ledger, Action(OBS, "o", Cmd.NEW, {"species": "fox"})).rev
    pub(ledger, mod("a", lat=1.0), mod("b", lat=2.0), delete("c"))
    pub(ledger, Action(OBS, "o", Cmd.MOD, {"species": "cat"}))
    for rev in (ZERO_REV, r2):
        for tops in (None, [SITE], [OBS], [SITE, OBS], []):
            for limit in (0, 1, 2, 4, 5, 100):
                full = ledger.events(rev, tops, limit)
                keys = ledger.event_keys(rev, tops, limit)
                assert keys == [Event(e.id, e.rev, e.top, e.key, e.cmd) for e in full], \
                    (rev, tops, limit)
    assert all(e.arg is None for e in ledger.event_keys(ZERO_REV))
    assert {e.cmd for e in ledger.event_keys(ZERO_REV)} == {Cmd.NEW, Cmd.MOD, Cmd.DEL}


def test_audits_at_are_the_audits_of_those_revisions(ledger: Led) -> None:
    """``audits_at`` (an evt.sat reply's audits by key) answers as ``audits`` of the range
    filtered to the revisions asked for, in order, leaving out revisions it has none of,
    also beyond one query's chunk of revisions."""
    revs = [pub(ledger, new(f"k{i}"), usr=f"u{i}").rev for i in range(12)]
    every = ledger.audits(ZERO_REV, revs[-1])
    assert [a.rev for a in every] == revs
    for want in ([], revs[:1], revs[2:9:3], revs, [revs[0], revs[-1] + 1]):
        got = ledger.audits_at(want)
        assert got == [a for a in every if a.rev in set(want)], want
    if isinstance(ledger, SqlLedger):
        ledger.AUDITS_AT_CHUNK = 5
        assert ledger.audits_at(revs) == every


def test_state_states_and_history_as_of_a_revision(ledger: Led) -> None:
    r1 = pub(ledger, new("a", region="r1"), new("b"), usr="ann").rev
    r2 = pub(ledger, mod("a", region="r2", lat=3.5), usr="bob").rev
    r3 = pub(ledger, delete("b"), new("c"), usr="cy").rev
    assert ledger.state(SITE, "a") == site(name="n", region="r2", lat=3.5)
    assert ledger.state(SITE, "a", r1) == site(name="n", region="r1")
    assert ledger.state(SITE, "b", r2) == site(name="n")
    assert ledger.state(SITE, "b") is None
    assert ledger.state(SITE, "a", ZERO_REV) is None
    assert ledger.states(SITE, r1) == {"a": site(name="n", region="r1"), "b": site(name="n")}
    assert ledger.states(SITE) == {"a": site(name="n", region="r2", lat=3.5),
                                   "c": site(name="n")}
    assert set(ledger.states(SITE, r3)) == {"a", "c"}
    hist = ledger.history(SITE, "a")
    assert [(h.rev, h.usr, h.cmd, h.fields) for h in hist] == [
        (r1, "ann", Cmd.NEW, ("name", "region")), (r2, "bob", Cmd.MOD, ("region", "lat"))]
    assert [(h.usr, h.cmd) for h in ledger.history(SITE, "b")] == [("ann", Cmd.NEW),
                                                                    ("cy", Cmd.DEL)]


def test_history_page_is_history_cut_by_count_and_bytes_never_a_revision(ledger: Led) -> None:
    """``history_page`` (the hub's ``evt.hist``, session 15): pages after a revision, at
    most ``limit`` changes and about ``max_bytes``, never cutting a revision; the pages
    make the whole history."""
    pub(ledger, new("a"), usr="ann")
    for i in range(6):
        pub(ledger, mod("a", notes="x" * 1000 * (i + 1)), usr="bob")
    pub(ledger, mod("a", region="r1"), mod("a", region="r2"), usr="cy")  # one revision
    whole = ledger.history(SITE, "a")
    assert len(whole) == 9
    for limit, max_bytes in ((0, 0), (1, 0), (2, 0), (4, 0), (0, 2500), (3, 5000), (0, 1)):
        got, after = [], 0
        for _ in range(20):  # bounded
            page, more = ledger.history_page(SITE, "a", after, limit, max_bytes)
            assert page, (limit, max_bytes)
            if limit and len({h.rev for h in page}) > 1:
                assert len(page) <= limit
            got += page
            if not more:
                break
            after = page[-1].rev
        assert got == whole, (limit, max_bytes)
    assert ledger.history_page(SITE, "a", whole[-1].rev, 2) == ([], False)
    assert ledger.history_page(SITE, "nope") == ([], False)


def test_values_of_every_type_round_trip(ledger: Led) -> None:
    obs = {"site": "s-1", "species": "fox", "count": 2**40, "observed": "2026-05-01T09:30:00Z",
           "observer": "ann", "condition": "good", "notes": "line 1\nline 2 — ünïcode"}
    pub(ledger, Action(OBS, "o", Cmd.NEW, obs))
    assert ledger.state(OBS, "o") == obs
    assert ledger.events(ZERO_REV)[0].arg == obs


def test_defaults_are_applied_on_new(ledger: Led) -> None:
    assert ledger.verify() == []
    pub(ledger, new("a"), Action(OBS, "o", Cmd.NEW, {"species": "x", "site": 7}))
    assert ledger.state(OBS, "o") is not None
    assert ledger.state(OBS, "o")["site"] == 7  # type: ignore[index]
    assert ledger.verify() == []


# -- publish_many and replicate -----------------------------------------------------------------


def test_publish_many_each_on_its_own(ledger: Led) -> None:
    pub(ledger, new("a"))
    base = ledger.rev()
    res = ledger.publish_many([
        (Trans((new("b"),), base=base, uid="u1"), "ann"),
        (Trans((mod("nope", name="x"), new("zz")), base=base, uid="u2"), "bob"),
        (Trans((new("c"),), base=base, uid="u3"), "cy"),
        (Trans((new("b"),), base=base, uid="u1"), "ann"),  # resend inside the batch
    ], now=base + 1000)
    assert isinstance(res[1], ValidationError)
    ok = [r for r in res if not isinstance(r, Exception)]
    assert [r.rev for r in ok] == [base + 1000, base + 1001, base + 1000]
    assert [r.dup for r in ok] == [False, False, True]
    assert set(ledger.states(SITE)) == {"a", "b", "c"}
    assert ledger.uid_rev("u2") is None
    assert ledger.audit(base + 1001).usr == "cy"  # type: ignore[union-attr]
    assert ledger.rev() == base + 1001


def test_replicate_applies_forward_and_skips_old_events(ledger: Led) -> None:
    evs = [Event(1, 100, SITE, "a", Cmd.NEW, {"name": "x"}),
           Event(2, 200, SITE, "a", Cmd.MOD, {"lat": 1.0}),
           Event(3, 200, SITE, "b", Cmd.NEW, {"name": "y"})]
    ledger.replicate(200, evs, [Audit(100, usr="ann", uid="u1"), Audit(200, usr="bob")])
    ledger.replicate(300, [*evs, Event(4, 300, SITE, "b", Cmd.DEL)])
    assert ledger.rev() == 300
    assert ledger.states(SITE) == {"a": site(name="x", lat=1.0)}
    assert [e.id for e in ledger.events(ZERO_REV)] == [1, 2, 3, 4]
    assert ledger.uid_rev("u1") == 100
    assert [h.usr for h in ledger.history(SITE, "a")] == ["ann", "bob"]
    assert ledger.verify() == []
    with pytest.raises(ValidationError, match="only move forward"):
        ledger.replicate(250, [])


def test_count_is_the_number_of_keys_without_reading_them(ledger: Any) -> None:
    assert ledger.count(SITE) == 0
    ledger.publish(Trans((new("1", name="a"), new("2", name="b"), new("3", name="c"))), "u")
    ledger.publish(Trans((delete("2"),)), "u")
    assert ledger.count(SITE) == len(ledger.keys(SITE)) == 2


# -- negative zero and non-finite floats --------------------------------------------------------


def _signs(fields: dict[str, Any] | None, *names: str) -> list[float]:
    assert fields is not None
    return [math.copysign(1.0, fields[n]) for n in names]


def test_negative_zero_survives_in_state_as_in_events(ledger: Led) -> None:
    """-0.0 is a float like any other: the state keeps its sign through later changes of the
    record (SQLite stored it as 0.0; PostgreSQL's state read through JSON lost it on the next
    mod), so state equals the replay of the events and verify() agrees."""
    pub(ledger, new("a", lat=-0.0, lon=0.0), new("b", lat=1.5))
    assert _signs(ledger.state(SITE, "a"), "lat", "lon") == [-1.0, 1.0]
    pub(ledger, mod("a", name="m"), mod("b", lon=-0.0))  # read back, written again
    ledger.publish_many([(Trans((mod("a", region="r"),), base=ledger.rev()), "ann"),
                         (Trans((mod("b", notes="x"),), base=ledger.rev()), "bob")],
                        now=ledger.rev() + 1000)
    for got in (ledger.state(SITE, "a"), ledger.states(SITE)["a"],
                ledger.states_of(SITE, ["a"])["a"]):
        assert _signs(got, "lat", "lon") == [-1.0, 1.0]
    assert _signs(ledger.state(SITE, "b"), "lat", "lon") == [1.0, -1.0]
    ledger.replicate(ledger.rev() + 5000, [
        Event(100, ledger.rev() + 5000, SITE, "c", Cmd.NEW, {"name": "c", "lat": -0.0})])
    ledger.replicate(ledger.rev() + 1000, [
        Event(101, ledger.rev() + 1000, SITE, "c", Cmd.MOD, {"name": "d"})])
    assert _signs(ledger.state(SITE, "c"), "lat") == [-1.0]
    assert ledger.verify() == []


def test_verify_tells_a_zero_of_the_wrong_sign(sql_ledger: SqlLedger) -> None:
    pub(sql_ledger, new("a", lat=-0.0))
    st = sql_ledger.tables.state(SITE).table
    with sql_ledger.engine.begin() as conn:
        conn.execute(st.update().where(st.c.key == "a").values(lat=0.0))
    (problem,) = sql_ledger.verify()
    assert problem.endswith("lat: state 0.0 != replay -0.0"), problem


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(ledger: Led, bad: float) -> None:
    with pytest.raises(ValidationError, match=r"field 'lat' got .*, expected a finite number"):
        pub(ledger, new("a", lat=bad))
    pub(ledger, new("a", lat=1.0))
    with pytest.raises(ValidationError, match="expected a finite number"):
        pub(ledger, mod("a", lat=bad))
    assert ledger.state(SITE, "a") == site(lat=1.0, name="n")


@pytest.mark.parametrize("big", [2**53 + 1, -(2**53) - 1, 10**30, 10**400],
                         ids=["2^53+1", "-2^53-1", "10^30", "10^400"])
def test_whole_numbers_a_float_field_cannot_hold_exactly_are_refused(ledger: Led,
                                                                     big: int) -> None:
    with pytest.raises(ValidationError, match="expected a number a float holds exactly"):
        pub(ledger, new("a", lat=big))
    pub(ledger, new("a", lat=2**53))  # the largest exact one is taken, and kept exactly
    assert ledger.state(SITE, "a") == site(lat=2**53, name="n")
    assert ledger.verify() == []


def test_states_of_as_of_a_revision_is_state_of_each_key(ledger: Led) -> None:
    """``states_of(top, keys, rev)``: what ``state(top, key, rev)`` returns for each key (the
    import of a ``_rev`` file reads them so, one read per chunk of keys), keys of records
    that did not exist then left out; more keys than one chunk of the SQL read."""
    keys = [f"k{i:03d}" for i in range(520)]
    revs = [pub(ledger, *(new(k, name=k, lat=1.0) for k in keys[:300])).rev]
    revs.append(pub(ledger, *(new(k, name=k) for k in keys[300:])).rev)
    revs.append(pub(ledger, mod("k001", name="one", lat=None), delete("k002"),
                    mod("k400", region="r")).rev)
    revs.append(pub(ledger, new("k002", name="again"), mod("k001", lon=2.5),
                    delete("k519")).rev)
    ask = ["k001", "k002", "k400", "k519", "nope", *keys[::7]]
    for rev in (0, revs[0] - 1, *revs, revs[-1] + 1, None):
        want = {k: st for k in ask if (st := ledger.state(SITE, k, rev)) is not None}
        assert ledger.states_of(SITE, ask, rev) == want, rev
    assert ledger.states_of(SITE, ask, revs[1])["k001"]["lat"] == 1.0
    assert "k002" not in ledger.states_of(SITE, ask, revs[2])


def test_events_of_is_each_records_history_after_a_revision(ledger: Led) -> None:
    """``events_of(top, keys, rev)``: each record's events after ``rev`` as its history has
    them (what a satellite checks an edit with an older base against), in one read."""
    keys = [f"k{i:03d}" for i in range(520)]
    revs = [pub(ledger, *(new(k) for k in keys)).rev]
    revs.append(pub(ledger, mod("k001", name="one"), delete("k002"), mod("k519", lat=1.0)).rev)
    revs.append(pub(ledger, new("k002", name="again"), mod("k001", lon=2.5)).rev)
    ask = ["k001", "k002", "k003", "k519", "nope", *keys[::9]]
    for rev in (0, *revs):
        got = ledger.events_of(SITE, ask, rev)
        want = {k: [(h.rev, h.cmd, h.arg) for h in ledger.history(SITE, k) if h.rev > rev]
                for k in dict.fromkeys(ask)}
        assert {k: [(e.rev, e.cmd, e.arg) for e in evs] for k, evs in got.items()} == {
            k: v for k, v in want.items() if v}, rev
        assert all(e.top == SITE and e.key == k for k, evs in got.items() for e in evs)


def test_histories_is_each_records_history(ledger: Led) -> None:
    """``histories(top, keys)``: ``history(top, key)`` of each key in one read (the conflicts
    view reads its conflicts' records so, session 13), records without a change left out;
    more keys than one chunk of the SQL read."""
    keys = [f"k{i:03d}" for i in range(520)]
    pub(ledger, *(new(k) for k in keys), usr="ann")
    pub(ledger, mod("k001", name="one"), delete("k002"), mod("k519", lat=1.0), usr="bob")
    pub(ledger, new("k002", name="again"), mod("k001", lon=2.5), usr="cy")
    ask = ["k001", "k002", "k003", "k519", "nope", *keys[::9]]
    got = ledger.histories(SITE, ask)
    assert got == {k: h for k in dict.fromkeys(ask) if (h := ledger.history(SITE, k))}
    assert [(h.usr, h.cmd) for h in got["k002"]] == [("ann", Cmd.NEW), ("bob", Cmd.DEL),
                                                      ("cy", Cmd.NEW)]
    assert "nope" not in got and ledger.histories(SITE, []) == {}


def test_count_after_is_how_many_events_follow_a_revision(ledger: Led) -> None:
    """``count_after`` (a catch-up's size for the hub's ``total_max``): exact on a ledger
    whose ids follow revisions without gaps, every backend and SQLite layout."""
    assert ledger.count_after(ZERO_REV) == 0
    revs = []
    for i in range(7):
        revs.append(pub(ledger, *(new(f"k{i}-{j}", name="n") for j in range(i + 1))).rev)
    total = sum(range(1, 8))
    assert ledger.count_after(ZERO_REV) == total
    for i, r in enumerate(revs):
        assert ledger.count_after(r) == total - sum(range(1, i + 2)), i
        assert ledger.count_after(r) == len(ledger.events(r))
    assert ledger.count_after(revs[-1] + 1000) == 0


def test_count_after_of_some_topics_counts_only_theirs(ledger: Led) -> None:
    """A satellite syncing some topics (session 10): ``count_after(rev, tops)`` is how many
    events of those topics follow; every topic's count (as before) never reached "of N"."""
    revs = []
    for i in range(6):
        acts = [new(f"k{i}-{j}") for j in range(i + 1)]
        acts += [Action(OBS, f"o{i}", Cmd.NEW, {"species": "fox"})] if i % 2 else []
        revs.append(pub(ledger, *acts).rev)
    for r in [ZERO_REV, *revs]:
        for tops in ([OBS], [SITE], [SITE, OBS], [OBS, SITE, OBS], []):
            assert ledger.count_after(r, tops) == len(ledger.events(r, tops)), (r, tops)
        assert ledger.count_after(r, None) == ledger.count_after(r)
    assert ledger.count_after(ZERO_REV, [OBS]) == 3
    assert ledger.count_after(revs[2], [SITE]) == 4 + 5 + 6


def test_count_after_is_an_upper_bound_with_id_gaps(ledger: Led) -> None:
    """A replica of some topics holds ids with gaps: the count is then at most the span."""
    if not isinstance(ledger, SqlLedger):
        return  # MemLedger counts its list: exact whatever the ids
    evs = [Event(i * 3, 1000 + i, "field.site", f"k{i}", Cmd.NEW, {"name": "n"})
           for i in range(1, 11)]
    ledger.replicate(evs[-1].rev, evs, [Audit(e.rev, usr="a") for e in evs])
    for e in evs:
        n = ledger.count_after(e.rev)
        assert len(ledger.events(e.rev)) <= n <= evs[-1].id - e.id
