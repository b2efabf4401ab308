"""core.frozen.fast_init: the faster __init__ behaves exactly as the dataclass's own; and
core.frozen.builder: what it builds is what the class itself makes."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from typing import Any

import pytest

import core.ledger.protocols as protocols
import core.model as model
import core.wire as wire
import hubserver.outputs as outputs
from core.frozen import builder, fast_init

FAST = [model.Action, model.Event, model.Audit, model.Trans, model.Watch, model.Note,
        model.Update, model.Status, model.Conflict, wire.Frame, wire.SubReq, wire.MonReq,
        wire.SatReq, wire.Ack, wire.Reject, wire.SatRes, outputs.Send, outputs.Close,
        outputs.Flush, protocols.PubResult]


def _twin(cls: type) -> type:
    """The same fields as ``cls`` in a plain frozen, slotted dataclass (the generated
    ``__init__``), to compare with."""
    fs = [(f.name, f.type, field(default=f.default)) if f.default is not dataclasses.MISSING
          else (f.name, f.type) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fs, frozen=True, slots=True)


def _values(cls: type, salt: int) -> list[Any]:
    return [f"v{salt}-{i}" for i, _ in enumerate(dataclasses.fields(cls))]


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_fast_init_is_the_dataclass_init(cls: type) -> None:
    # the fast one: no object.__setattr__ per field (the dataclass's generated __init__)
    assert "__setattr__" not in cls.__init__.__code__.co_names
    twin = _twin(cls)
    assert "__setattr__" in twin.__init__.__code__.co_names
    # the same parameters and defaults
    assert [(p.name, p.kind, p.default) for p in
            inspect.signature(cls.__init__).parameters.values()] \
        == [(p.name, p.kind, p.default) for p in
            inspect.signature(twin.__init__).parameters.values()]
    vals = _values(cls, 1)
    a, b = cls(*vals), twin(*vals)
    assert [getattr(a, f.name) for f in dataclasses.fields(cls)] == vals
    assert [getattr(b, f.name) for f in dataclasses.fields(cls)] == vals
    by_kw = cls(**{f.name: v for f, v in zip(dataclasses.fields(cls), vals, strict=True)})
    assert by_kw == a and hash(by_kw) == hash(a)
    assert repr(a).split("(", 1)[1] == repr(b).split("(", 1)[1]
    # defaults: only the required fields given
    req = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    short = cls(*[f"r{i}" for i in range(len(req))])
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert getattr(short, f.name) == f.default
    # still frozen, still slotted
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, name, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(a, name)
    assert not hasattr(a, "__dict__")
    # the dataclass's other methods
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.copy(a) == a and copy.deepcopy(a) == a
    c = dataclasses.replace(a, **{name: "other"})
    assert getattr(c, name) == "other" and c != a
    assert dataclasses.astuple(a) == tuple(vals)
    with pytest.raises(TypeError):
        cls(*vals, "one too many")
    if req:
        with pytest.raises(TypeError):
            cls()


def test_fast_init_refuses_what_it_would_change() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class NoInit:
        a: int = field(default=0, init=False)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    for cls in (NoSlots, NotFrozen, PostInit, Factory, KwOnly, NoInit, WithInitVar):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_fast_init_of_a_class_without_fields() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Empty:
        pass

    assert Empty() == Empty()
    with pytest.raises(TypeError):
        Empty(1)  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_builder_makes_what_the_class_makes(cls: type) -> None:
    build = builder(cls)
    assert build is not cls  # the twin-class path, not the fallback: every FAST class takes it
    vals = _values(cls, 2)
    a, b = build(*vals), cls(*vals)
    assert type(a) is cls
    assert [getattr(a, f.name) for f in dataclasses.fields(cls)] == vals
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, name, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(a, name)
    assert not hasattr(a, "__dict__")
    assert pickle.loads(pickle.dumps(a)) == b
    assert copy.copy(a) == b and copy.deepcopy(a) == b
    assert dataclasses.replace(a, **{name: "other"}) == dataclasses.replace(b, **{name: "other"})
    assert dataclasses.astuple(a) == tuple(vals)
    with pytest.raises(TypeError):
        build(*vals[:-1])  # every field, no defaults
    with pytest.raises(TypeError):
        build(*vals, "one too many")


def test_builder_refuses_what_it_would_change_and_falls_back_on_another_layout() -> None:
    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (PostInit, NoSlots):
        with pytest.raises(TypeError):
            builder(cls)

    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        b: int

    # not a direct subclass of object: no twin, the class itself builds
    assert builder(Derived) is Derived
    assert builder(Derived)(1, 2) == Derived(1, 2)
