"""A faster ``__init__`` for the frozen, slotted dataclasses built once per message.

``@dataclass(frozen=True)`` generates an ``__init__`` that sets each field with
``object.__setattr__(self, "name", value)``: per field a lookup of ``__setattr__`` on
``object``, a call with the field's name, and a look-up of that name in the class's
attributes to find the slot. The hub builds several such values per publish (its frame, the
transaction and its actions, the audit, the update, the reply) and its writer thread one
event per action; those ``__init__`` calls were about a tenth of the event loop's time
holding the GIL during ``bench/hub.py``'s rate run (py-spy, session 9).

:func:`fast_init` replaces the generated ``__init__`` with one that calls each slot's own
setter (the member descriptor's ``__set__``, bound once when the class is made), which is
what ``object.__setattr__`` ends up calling. Nothing else changes: the same parameters and
defaults, the instance still refuses ``setattr``/``delattr`` (``FrozenInstanceError``), and
``__eq__``, ``__hash__``, ``__repr__``, pickling and ``dataclasses.replace`` are the
dataclass's own. Only classes that are frozen, slotted, without ``__post_init__``,
``InitVar``, ``default_factory``, keyword-only or non-init fields are accepted (else
``TypeError`` at import: the generated ``__init__`` would do more than set the fields).

:func:`builder` goes further for code that builds thousands of one class per message (the
hub's ``evt.sat``): a function that makes the instance without any ``__init__`` (see there).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["builder", "fast_init"]

_T = TypeVar("_T")


def fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that sets its slots
    directly (see the module doc); use it above ``@dataclass(frozen=True, slots=True)``."""
    fields = _plain_fields(cls, "fast_init")
    old = cls.__dict__["__init__"]
    ns: dict[str, Any] = {}
    args: list[str] = []
    lines: list[str] = []
    for f in fields:
        name = f.name
        if f.default is dataclasses.MISSING:
            args.append(name)
        else:
            ns[f"_d_{name}"] = f.default
            args.append(f"{name}=_d_{name}")
        ns[f"_s_{name}"] = cls.__dict__[name].__set__  # the slot's member descriptor
        lines.append(f"    _s_{name}(self, {name})\n")
    src = f"def __init__(self, {', '.join(args)}):\n" + ("".join(lines) or "    pass\n")
    exec(src, ns)  # generated from the field names, as dataclasses itself does
    init = ns["__init__"]
    init.__qualname__ = old.__qualname__
    init.__module__ = cls.__module__
    init.__annotations__ = dict(old.__annotations__)
    init.__doc__ = old.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _plain_fields(cls: type, who: str) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of ``cls``, a frozen, slotted dataclass whose generated ``__init__`` only sets
    them (else TypeError: ``who`` would do less than it)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: {who} needs a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: {who} does not run __post_init__")
    fields = dataclasses.fields(cls)
    init = cls.__dict__["__init__"]
    if list(inspect.signature(init).parameters)[1:] != [f.name for f in fields]:
        # an InitVar, a keyword-only or a non-init field: the generated __init__ takes
        # other parameters than the fields
        raise TypeError(f"{cls.__name__}: {who} needs __init__(self, *fields)")
    for f in fields:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: {who} takes only positional "
                            "init fields with plain defaults")
    return fields


def builder(cls: type[_T]) -> Callable[..., _T]:
    """A function that makes a ``cls`` from all its fields, positionally, for the hub's bulk
    decoding and replies (an ``evt.sat`` builds thousands of transactions, actions, audits
    and acks per request).

    Each of :func:`fast_init`'s field setters is a call through the slot's descriptor (an
    argument tuple made and unpacked per field): about 240 instructions a field. The
    builder stores the fields into an instance of a twin class with the same slots and no
    ``__setattr__`` of its own (plain attribute stores, specialized by the interpreter),
    then makes it a ``cls`` by assigning ``__class__``, which CPython allows between
    classes of the same slots and base: ``Trans`` 0.36 -> 0.12 µs. The result is a ``cls``
    in every respect (its type, fields, equality, hash, repr, pickling; frozen after). When
    the interpreter refuses the assignment (another layout), the builder is ``cls`` itself.
    Only the hub's ``evt.sat`` path uses it: the ledger's own objects are built as before.

    Raises:
        TypeError: ``cls`` is not a class :func:`fast_init` takes (its ``__init__`` would do
            more than set the fields: the builder does only that).
    """
    names = [f.name for f in _plain_fields(cls, "builder")]
    slots = cls.__dict__.get("__slots__")
    if slots is None or cls.__bases__ != (object,) or tuple(slots) != tuple(names):
        return cls
    twin = type(f"_{cls.__name__}Build", (), {"__slots__": tuple(names)})
    try:
        probe = twin()
        probe.__class__ = cls
    except TypeError:  # pragma: no cover - a layout CPython does not let us assign
        return cls
    ns: dict[str, Any] = {"_twin": twin, "_cls": cls}
    src = (f"def build({', '.join(names)}):\n    o = _twin()\n"
           + "".join(f"    o.{n} = {n}\n" for n in names)
           + "    o.__class__ = _cls\n    return o\n")
    exec(src, ns)  # generated from the field names, as fast_init
    build: Callable[..., _T] = ns["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build
