"""Keep both: my record, created under a key someone else took meanwhile, again under a new key.

Two laptops offline can create a record under the same key (an ``int`` key both picked with
``Satellite.new_key``, or a key typed by hand); the second to sync is rejected (``created``).
Keep mine then writes my values over *their* record (it exists: a ``mod``), keep theirs drops
mine. Keep both publishes mine as a new record under a new key instead, and points the refs of
the same rejected transaction that named the taken key (an observation made with the site) at
the new key. The rest of the transaction is resolved as keep mine does.

Pure functions over actions and the schema; ``Satellite.resolve`` (``Keep.BOTH``) gathers what
the user sees and publishes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.errors import ValidationError
from core.ids import clean_key
from core.model import Action, Cmd, Sig
from core.schema import Project

__all__ = ["check_new_keys", "clashes", "renamed", "sig_text"]


def sig_text(sig: Sig) -> str:
    """``"top key"``: how a record is named in a resolution's choices."""
    return f"{sig.top} {sig.key}"


def clashes(acts: Sequence[Action], seen: Mapping[Sig, Mapping[str, Any] | None]) -> list[Sig]:
    """The records ``acts`` create (``new``) whose key the user now sees taken by another
    record, in the transaction's order."""
    out: dict[Sig, None] = {}
    for a in acts:
        s = Sig(a.top, a.key)
        if a.cmd == Cmd.NEW and seen.get(s) is not None:
            out.setdefault(s, None)
    return list(out)


def check_new_keys(project: Project, acts: Sequence[Action], keys: Mapping[Sig, str],
                   free: Callable[[list[Sig]], Mapping[Sig, bool]]) -> dict[Sig, str]:
    """The new keys for the clashing records, checked: each cleaned like a typed key
    (``clean_key``), valid for its model, different from the others, from every key the
    transaction itself uses in that topic, and free (``free(sigs)``: whether the user sees no
    record there).

    Raises:
        ValidationError: a key that breaks one of those rules, named with the fix.
    """
    out: dict[Sig, str] = {}
    used = {Sig(a.top, a.key) for a in acts}
    for s, typed in keys.items():
        m = project.model(s.top)
        key = m.canonical_key(clean_key(typed))  # an int key "007" is 7
        if not key:
            raise ValidationError(f"the new key for {sig_text(s)} is empty: give a key, or "
                                  "leave it out for a free one")
        m.check_key(key)
        n = Sig(s.top, key)
        if n in used:
            raise ValidationError(
                f"the new key {key!r} for {sig_text(s)} is a key this transaction uses "
                f"itself: give another (or leave it out for a free one)")
        if n in {Sig(t.top, k) for t, k in out.items()}:
            raise ValidationError(f"the new key {key!r} is given to two records of "
                                  f"{s.top}: give each its own")
        out[s] = key
    taken = free([Sig(s.top, k) for s, k in out.items()])
    for s, k in out.items():
        if not taken.get(Sig(s.top, k), True):
            raise ValidationError(
                f"the new key {k!r} for {sig_text(s)} is taken: a record {s.top} {k} exists; "
                "give another (or leave it out for a free one)")
    return out


def renamed(project: Project, acts: Sequence[Action], keys: Mapping[Sig, str]) -> list[Action]:
    """``acts`` with every action on a renamed record under its new key, and every ``ref``
    value naming a renamed record (in the ref's topic) naming the new key."""
    out: list[Action] = []
    for a in acts:
        key = keys.get(Sig(a.top, a.key), a.key)
        arg = a.arg
        if arg:
            arg = dict(arg)
            for name, value in arg.items():
                f = project.model(a.top).field(name) if project.has(a.top) else None
                if f is None or f.type != "ref" or isinstance(value, bool):
                    continue
                if isinstance(value, str):
                    new = keys.get(Sig(f.ref, value))
                    if new is not None:
                        arg[name] = new
                elif isinstance(value, int):  # a ref to an int-keyed record, as a number
                    new = keys.get(Sig(f.ref, str(value)))
                    if new is not None:
                        arg[name] = int(new) if new.lstrip("-").isdigit() else new
        out.append(Action(a.top, key, a.cmd, arg))
    return out
