"""The publish path's fast paths decide exactly as the plain code they shortcut.

``Model.check_arg`` accepts most values through a quick exact-type test per field
(``core.schema._quick_check``) and asks ``Field.check_value`` only when that test is unsure;
``rules.plan`` skips the conflict loop when no later events were read. These tests pin that a
quick "yes" is never given to a value ``check_value`` refuses, and that every outcome
(accepted, or the error message) is the one of the plain checks.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ValidationError
from core.ledger.rules import plan
from core.model import Action, Cmd, Trans
from core.schema import FIELD_TYPES, MAX_INT, Field, Model, _quick_check


class _Str(str):
    pass


def _field(t: str, required: bool = False) -> Field:
    return Field(name="f", type=t, required=required,
                 values=("good", "fair") if t == "enum" else (),
                 ref="x.y" if t == "ref" else "")


SPECIAL: list[Any] = [
    None, True, False, 0, 1, -1, MAX_INT, MAX_INT + 1, -MAX_INT - 1, -MAX_INT - 2, 1.5,
    math.nan, math.inf, -math.inf, "", "a", "a\nb", "a\rb", _Str("x"), _Str("a\nb"), "good",
    "bad", "2026-05-01", "2026-13-01", "2026-05-01T09:30:00Z", [1], {"a": 1}, b"x",
]
values = st.one_of(
    st.sampled_from(SPECIAL), st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(), max_size=2))


@pytest.mark.parametrize("t", FIELD_TYPES)
@pytest.mark.parametrize("required", [False, True])
def test_quick_yes_only_for_values_check_value_accepts(t: str, required: bool) -> None:
    f = _field(t, required)
    quick = _quick_check(f)
    for v in SPECIAL:
        if quick(v):
            assert f.check_value(v) is None, (t, required, v)


@settings(max_examples=400, deadline=None)
@given(t=st.sampled_from(FIELD_TYPES), required=st.booleans(), v=values)
def test_quick_yes_implies_accepted(t: str, required: bool, v: Any) -> None:
    f = _field(t, required)
    if _quick_check(f)(v):
        assert f.check_value(v) is None


def _plain_check(m: Model, cmd: Cmd, arg: dict[str, Any]) -> str | None:
    """What check_arg did before the fast path: the message of the first problem, or None."""
    for name, value in arg.items():
        f = m.field(name)
        if f is None:
            return "unknown"
        problem = f.check_value(value)
        if problem is not None:
            return problem
    if cmd == Cmd.NEW:
        for f in m.fields:
            if f.required and arg.get(f.name) is None and f.default is None:
                return "missing"
    return None


@settings(max_examples=300, deadline=None)
@given(vals=st.dictionaries(st.sampled_from(["s", "t", "i", "fl", "b", "e", "r", "j", "zz"]),
                            values, max_size=5),
       cmd=st.sampled_from([Cmd.NEW, Cmd.MOD]))
def test_check_arg_outcome_is_the_plain_one(vals: dict[str, Any], cmd: Cmd) -> None:
    m = Model(schema="x", name="y", fields=(
        Field("s", "str", required=True), Field("t", "text"), Field("i", "int"),
        Field("fl", "float"), Field("b", "bool"), Field("e", "enum", values=("a", "b")),
        Field("r", "ref", ref="x.y"), Field("j", "json", required=True, default=1)))
    want = _plain_check(m, cmd, vals)
    if cmd == Cmd.MOD and not vals:
        want = "mod without"
    try:
        m.check_arg(cmd, "k", vals)
        got = None
    except ValidationError as exc:
        got = str(exc)
    if want is None:
        assert got is None
    else:
        assert got is not None
        if want not in ("unknown", "missing", "mod without"):
            assert want in got
        else:
            assert {"unknown": "unknown field", "missing": "is missing",
                    "mod without": "mod without"}[want] in got


def test_plan_reports_the_first_schema_error_of_a_long_transaction(project: Any) -> None:
    """Several actions: the first bad action (in order) is the one named, as before."""
    acts = [Action("field.site", f"k{i}", Cmd.NEW, {"name": f"n{i}"}) for i in range(5)]
    acts[2] = Action("field.site", "k2", Cmd.NEW, {"name": "a\nb"})
    acts[4] = Action("field.site", "k4", Cmd.NEW, {"nam": "x"})
    with pytest.raises(ValidationError, match="k2: field 'name'"):
        plan(project, Trans(tuple(acts)), last_rev=0, last_id=0, states={}, later={}, now=1)
    acts[1] = Action("field.site", "", Cmd.NEW, {"name": "x"})
    with pytest.raises(ValidationError, match="empty key"):
        plan(project, Trans(tuple(acts)), last_rev=0, last_id=0, states={}, later={}, now=1)
    acts[1] = Action("field.site", "k1", "bogus", {"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown cmd"):
        plan(project, Trans(tuple(acts)), last_rev=0, last_id=0, states={}, later={}, now=1)


def test_new_with_defaults_and_no_arg(project: Any) -> None:
    """A model default fills a new record; a new without arg gets the defaults only."""
    from core.schema import parse_project

    proj = parse_project('[a.b.fields]\nx = { type = "int", default = 7 }\ny = "str"\n', "t.toml")
    p = plan(proj, Trans((Action("a.b", "k", Cmd.NEW, None),
                          Action("a.b", "m", Cmd.NEW, {"y": "s"}))),
             last_rev=0, last_id=0, states={}, later={}, now=1)
    assert [e.arg for e in p.evs] == [{"x": 7}, {"x": 7, "y": "s"}]
    assert p.evs[0].arg is not p.states[next(iter(p.states))]
