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
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["fast_init"]

_T = TypeVar("_T")


def fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that sets its slots
    directly (see the module doc); use it above ``@dataclass(frozen=True, slots=True)``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init needs a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fast_init does not run __post_init__")
    old = cls.__dict__["__init__"]
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if list(inspect.signature(old).parameters)[1:] != [f.name for f in fields]:
        # an InitVar, a keyword-only or a non-init field: the generated __init__ takes
        # other parameters than the fields
        raise TypeError(f"{cls.__name__}: fast_init needs __init__(self, *fields)")
    ns: dict[str, Any] = {}
    args: list[str] = []
    lines: list[str] = []
    for f in fields:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes only positional "
                            "init fields with plain defaults")
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
