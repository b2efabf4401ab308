"""The event vocabulary: merge table, deltas, grouping, ordering, applying, immutability."""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import CONFLICT_FIX, ConflictError, ValidationError
from core.model import (
    CMDS,
    Action,
    Audit,
    Cmd,
    Conflict,
    Event,
    Note,
    Sig,
    Status,
    Trans,
    Update,
    Watch,
    apply_action,
    by_id,
    by_rev,
    changed_fields,
    collect,
    collect_all,
    merge,
    merge_deltas,
)
from core.revision import parse_rev

TOP = "field.site"


def new(key: str = "k1", **arg: object) -> Action:
    return Action(TOP, key, Cmd.NEW, arg)


def mod(key: str = "k1", **arg: object) -> Action:
    return Action(TOP, key, Cmd.MOD, arg)


def dele(key: str = "k1") -> Action:
    return Action(TOP, key, Cmd.DEL)


# --- merge table -------------------------------------------------------------------------------


def test_new_then_mod_is_new_with_delta_applied() -> None:
    got = merge(new(name="a", region="north"), mod(name="b", lat=1.5))
    assert got == Action(TOP, "k1", Cmd.NEW, {"name": "b", "region": "north", "lat": 1.5})


def test_mod_then_mod_merges_deltas_later_wins() -> None:
    got = merge(mod(name="a", region="r"), mod(name="b"))
    assert got == Action(TOP, "k1", Cmd.MOD, {"name": "b", "region": "r"})


def test_del_then_new_is_mod_with_the_new_fields() -> None:
    got = merge(dele(), new(name="again"))
    assert got.cmd == Cmd.MOD
    assert got.arg == {"name": "again"}
    assert got.sig == Sig(TOP, "k1")


@pytest.mark.parametrize("first", [new(name="a"), mod(name="a")])
def test_new_or_mod_then_del_is_del(first: Action) -> None:
    got = merge(first, dele())
    assert got == Action(TOP, "k1", Cmd.DEL, None)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (new(name="a"), new(name="b"), "new for existing record field.site k1"),
        (mod(name="a"), new(name="b"), "new for existing record"),
        (dele(), mod(name="b"), "mod after del for field.site k1"),
        (dele(), dele(), "double del for field.site k1"),
    ],
)
def test_merge_errors(a: Action, b: Action, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        merge(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (new("k1", name="a"), mod("k2", name="b")),
        (Action("field.obs", "k1", Cmd.MOD, {"x": 1}), mod("k1", name="b")),
    ],
)
def test_merge_of_different_sigs_is_an_error(a: Action, b: Action) -> None:
    with pytest.raises(ValidationError, match="cannot merge actions of different records"):
        merge(a, b)


def test_merge_does_not_touch_its_inputs() -> None:
    a_arg = {"name": "a"}
    b_arg = {"region": "r"}
    a = Action(TOP, "k1", Cmd.NEW, a_arg)
    got = merge(a, Action(TOP, "k1", Cmd.MOD, b_arg))
    assert a_arg == {"name": "a"}
    assert b_arg == {"region": "r"}
    assert got.arg is not a_arg and got.arg is not b_arg


def test_merge_folds_a_whole_edit_session() -> None:
    acts = [new(name="a"), mod(lat=1.0), mod(name="b"), dele(), new(name="c"), mod(lon=2.0)]
    acc = acts[0]
    for act in acts[1:]:
        acc = merge(acc, act)
    # del + new became mod; the final mod joins it
    assert acc == Action(TOP, "k1", Cmd.MOD, {"name": "c", "lon": 2.0})


def test_merge_deltas() -> None:
    assert merge_deltas({"a": 1, "b": 2}, {"b": 3, "c": None}) == {"a": 1, "b": 3, "c": None}
    assert merge_deltas(None, {"a": 1}) == {"a": 1}
    assert merge_deltas({"a": 1}, None) == {"a": 1}
    assert merge_deltas(None, None) == {}
    a = {"x": 1}
    out = merge_deltas(a, {"x": 2})
    assert a == {"x": 1} and out == {"x": 2}


# --- ordering and grouping ---------------------------------------------------------------------

R1 = parse_rev("2026-11-26T11:26:54.628Z")
R2 = parse_rev("2026-11-26T11:26:57.899Z")

EVS = [
    Event(3, R2, "prod.prod", "25", Cmd.NEW, {"name": "Y"}),
    Event(1, R1, "prod.cat", "1", Cmd.NEW, {"name": "a"}),
    Event(2, R2, "prod.cat", "1", Cmd.MOD, {"name": "b"}),
    Event(4, R1 - 5, "prod.cat", "2", Cmd.NEW, {"name": "c"}),
]


def test_by_rev_sorts_by_rev_then_id() -> None:
    assert [e.id for e in by_rev(EVS)] == [4, 1, 2, 3]


def test_by_id() -> None:
    assert [e.id for e in by_id(EVS)] == [1, 2, 3, 4]
    assert [e.id for e in EVS] == [3, 1, 2, 4]  # input untouched


def test_collect_keeps_given_order() -> None:
    got = collect(EVS, Sig("prod.cat", "1"))
    assert [e.id for e in got] == [1, 2]
    assert collect(by_id(EVS)[::-1], Sig("prod.cat", "1"))[0].id == 2
    assert collect(EVS, Sig("prod.cat", "nope")) == []
    assert collect(EVS, Sig("prod.prod", "1")) == []  # same key, other topic


def test_collect_all_groups_by_sig() -> None:
    got = collect_all(by_id(EVS))
    assert list(got) == [Sig("prod.cat", "1"), Sig("prod.prod", "25"), Sig("prod.cat", "2")]
    assert [e.id for e in got[Sig("prod.cat", "1")]] == [1, 2]
    assert collect_all([]) == {}


def test_event_sig_and_action() -> None:
    e = EVS[0]
    assert e.sig == Sig("prod.prod", "25")
    assert e.action == Action("prod.prod", "25", Cmd.NEW, {"name": "Y"})
    assert str(e.sig) == "prod.prod 25"


# --- applying ----------------------------------------------------------------------------------


def test_apply_action_lifecycle() -> None:
    state = apply_action(None, new(name="a", region="r"))
    assert state == {"name": "a", "region": "r"}
    state2 = apply_action(state, mod(name="b", lat=None))
    assert state2 == {"name": "b", "region": "r", "lat": None}
    assert state == {"name": "a", "region": "r"}  # a new dict each time
    assert apply_action(state2, dele()) is None


def test_apply_new_without_arg_is_empty_record() -> None:
    assert apply_action(None, Action(TOP, "k", Cmd.NEW)) == {}


@pytest.mark.parametrize(
    ("state", "act", "message"),
    [
        ({"name": "a"}, new(name="b"), "already exists \\(its key is taken\\)"),
        (None, mod(name="b"), "mod field.site k1: no such record"),
        (None, dele(), "del field.site k1: no such record"),
    ],
)
def test_apply_action_errors(state: dict[str, object] | None, act: Action, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        apply_action(state, act)


def test_changed_fields_in_first_seen_order() -> None:
    acts = [mod(b=1, a=2), dele(), mod(c=3, b=4), new("k2", d=5)]
    assert changed_fields(acts) == ("b", "a", "c", "d")
    assert changed_fields([]) == ()


# --- vocabulary values -------------------------------------------------------------------------


def test_cmds() -> None:
    assert {"new", "mod", "del"} == CMDS
    assert Cmd("del") is Cmd.DEL
    assert str(Cmd.MOD) == "mod"
    with pytest.raises(ValueError):
        Cmd("upd")


@pytest.mark.parametrize(
    "value",
    [
        new(name="a"),
        EVS[0],
        Audit(R1, usr="bob"),
        Trans((new(name="a"),), base=R1, uid="u1"),
        Watch(TOP, ("k1", "new")),
        Note(1, (Watch(TOP, ("k1",)),)),
        Update(R1, (EVS[0],)),
        Status(R1, "abc"),
        Conflict(TOP, "k1", Cmd.MOD, "field changed", ("name",), {"name": "x"}, R1, "bob"),
    ],
)
def test_values_are_frozen(value: object) -> None:
    assert dataclasses.is_dataclass(value)
    name = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, "changed")
    with pytest.raises((AttributeError, TypeError)):
        value.extra_attribute = 1  # type: ignore[attr-defined]  # slots: no new attributes


def test_sig_is_frozen() -> None:
    sig = Sig(TOP, "k")  # a named tuple (its hash runs in C)
    with pytest.raises(AttributeError):
        sig.key = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sig.extra_attribute = 1  # type: ignore[attr-defined]
    assert (sig.top, sig.key, str(sig)) == (TOP, "k", f"{TOP} k")


def test_equal_values_hash_equal() -> None:
    assert Sig(TOP, "k") == Sig(TOP, "k")
    assert hash(Sig(TOP, "k")) == hash(Sig(TOP, "k"))
    assert len({Sig(TOP, "k"), Sig(TOP, "k"), Sig(TOP, "j")}) == 2
    assert Watch(TOP, ("a",)) == Watch(TOP, ("a",))


def test_defaults() -> None:
    t = Trans(acts=())
    assert (t.base, t.id, t.rev, t.usr, t.uid, t.extra) == (0, 0, 0, "", "", None)
    assert Update(R1).evs == () and Update(R1).note == ()
    assert Status(R1) == Status(R1, "", 0, 0)


def test_conflict_describe_and_error() -> None:
    c = Conflict(TOP, "k1", Cmd.MOD, "field changed", ("name", "lat"), {"name": "x"}, R1, "bob")
    text = c.describe()
    assert text == ("mod field.site k1: fields name, lat changed at "
                    "2026-11-26T11:26:54.628Z by bob")
    d = Conflict(TOP, "k2", Cmd.DEL, "modified", rev=R2)
    assert d.describe() == "del field.site k2: modified at 2026-11-26T11:26:57.899Z"
    err = ConflictError([c, d])
    assert err.conflicts == (c, d)
    assert str(err) == "conflict: " + c.describe() + "; " + d.describe() + ". " + CONFLICT_FIX


# -- fast_init: the hot model classes' __init__ ----------------------------------------------


def test_hot_model_classes_store_fields_through_their_slots() -> None:
    """Trans, Action, Event, Audit and Ack are built by core.frozen.fast_init's __init__ (not
    the frozen dataclass's object.__setattr__ per field), with the generated one's
    signature, and the same objects: equal, hashable, frozen, replaceable, picklable."""
    import inspect
    import pickle

    from core.wire import Ack

    for cls in (Trans, Action, Event, Audit, Ack):
        init = cls.__init__
        assert "__setattr__" not in init.__code__.co_names, cls  # the generated one calls it
        twin = dataclasses.make_dataclass(cls.__name__, [
            (f.name, f.type, dataclasses.field(default=f.default))
            for f in dataclasses.fields(cls)], frozen=True, slots=True)
        assert str(inspect.signature(cls)) == str(inspect.signature(twin)), cls
        assert init.__qualname__ == f"{cls.__name__}.__init__"
    e = Event(3, 10, "field.site", "k", Cmd.NEW, {"name": "A"})
    assert (e.id, e.rev, e.top, e.key, e.cmd, e.arg) == (3, 10, "field.site", "k", Cmd.NEW,
                                                          {"name": "A"})
    assert e == Event(3, 10, "field.site", "k", Cmd.NEW, {"name": "A"})
    assert Event(1, 2, "t", "k", Cmd.DEL) == Event(1, 2, "t", "k", Cmd.DEL, None)
    assert hash(Ack("u", 5)) == hash(Ack("u", 5)) and Ack(uid="u", rev=5) == Ack("u", 5)
    assert Audit(7).usr == "" and Audit(7, usr="x", uid="y") == Audit(7, 0, 0, "x", None, "y")
    t = Trans((Action("t", "k", Cmd.NEW, {"a": 1}),), uid="x")
    assert (t.base, t.created, t.usr, t.extra, t.uid) == (0, 0, "", None, "x")
    assert dataclasses.replace(t, base=4).base == 4 and pickle.loads(pickle.dumps(t)) == t
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.id = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event(1, 2, "t")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Ack("u", 1, 2)  # type: ignore[call-arg]
