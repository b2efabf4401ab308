"""Nesting and 64-bit limits of values and keys (session 12, reviewer "wire")."""

from __future__ import annotations

import json

import orjson
import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.replica import int_key
from core.schema import MAX_NESTING, nesting, parse_project

PROJ = parse_project({"project": {"name": "j"}, "doc": {"item": {
    "key": "int", "fields": {"name": {"type": "str"}, "data": {"type": "json"},
                             "n": {"type": "int"}}}}})
M = PROJ.model("doc.item")
DATA = M.field("data")


def deep(n: int) -> str:
    return "[" * n + "1" + "]" * n


def test_nesting_counts_levels_of_lists_and_objects() -> None:
    assert [nesting(v) for v in (1, "x", None, [], {}, [1], {"a": [1]}, [[], [[{}]]])] == \
        [0, 0, 0, 1, 1, 1, 2, 4]
    assert nesting(json.loads(deep(500))) == MAX_NESTING + 1  # counted up to the limit + 1
    assert nesting(json.loads(deep(500)), 1000) == 500


def test_a_json_value_nests_at_most_the_limit() -> None:
    ok = json.loads(deep(MAX_NESTING))
    PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"data": ok}))
    with pytest.raises(ValidationError) as exc:
        PROJ.check_action(Action("doc.item", "1", Cmd.NEW,
                                 {"data": {"a": ok}}))  # 101 levels
    assert str(exc.value) == (
        "new doc.item 1: field 'data' got an object nested more than 100 levels deep, "
        "expected JSON nested at most 100 levels deep (lists and objects; this value nests "
        "more): flatten it")
    # a deep value in a field of another type: said without its repr (RecursionError)
    with pytest.raises(ValidationError, match="field 'name' got a list nested more than 100"):
        PROJ.check_action(Action("doc.item", "1", Cmd.NEW,
                                 {"name": orjson.loads(deep(1000))}))


def test_the_quick_test_of_a_json_value_keeps_the_limit_at_its_edges() -> None:
    """A json field's quick test (session 13: a text shorter than 2 * (limit + 1) bytes
    cannot nest past the limit, and is not counted): the shortest value one level past the
    limit is 202 bytes and refused; one at the limit passes; a wide value with more brackets
    than the limit, shallow, passes (walked)."""
    at = orjson.loads("[" * MAX_NESTING + "]" * MAX_NESTING)  # 200 bytes
    past = orjson.loads("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1))  # 202 bytes
    assert len(orjson.dumps(past)) == 2 * (MAX_NESTING + 1)
    PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"data": at}))
    with pytest.raises(ValidationError, match="field 'data' got a list nested more than 100"):
        PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"data": past}))
    with pytest.raises(ValidationError, match="field 'data' got an object nested more than"):
        PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"data": {"a": at}}))
    wide = [[i] for i in range(3 * MAX_NESTING)]  # 301 brackets, 2 levels
    PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"data": wide}))


def test_int_keys_of_19_characters_are_bounded_and_canonical() -> None:
    """Keys of 18 characters or fewer are within 64 bits without the comparison (session
    13); from 19 on it is made, and the canonical form is checked at every length."""
    for key in ("999999999999999999", "-999999999999999999", "1000000000000000000",
                "-1000000000000000000", "9223372036854775807"):
        PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))
    for key in ("9999999999999999999", "-9999999999999999999"):  # 19 and 20 characters
        with pytest.raises(ValidationError, match="is beyond 64 bits"):
            PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))
    for key in ("0999999999999999999", "00000000000000000001", "-0", "012"):
        with pytest.raises(ValidationError, match="is not in canonical form"):
            PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))
    for key in ("1a", "", "--1", "1 "):
        with pytest.raises(ValidationError, match=r"empty key|is not an integer"):
            PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))


def test_typed_json_is_refused_past_the_limit_and_past_the_stdlib() -> None:
    assert DATA is not None
    assert DATA.parse_text(deep(MAX_NESTING)) == json.loads(deep(MAX_NESTING))
    for n in (MAX_NESTING + 1, 300, 5000):  # 5000: the stdlib's json raised RecursionError
        with pytest.raises(ValueError) as exc:
            DATA.parse_text(deep(n))
        assert str(exc.value).startswith("field 'data': '[[[[")
        assert "is not JSON nested at most 100 levels deep" in str(exc.value)


def test_int_keys_beyond_64_bits_are_refused_for_new_records() -> None:
    for key in ("99999999999999999999999", "9223372036854775808", "-9223372036854775809"):
        with pytest.raises(ValidationError) as exc:
            PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))
        assert str(exc.value) == (
            f"doc.item: key {key!r} is beyond 64 bits; this model's integer keys are from "
            "-9223372036854775808 to 9223372036854775807")
    for key in ("9223372036854775807", "-9223372036854775808"):
        PROJ.check_action(Action("doc.item", key, Cmd.NEW, {"name": "x"}))
    # a record made under such a key before stays editable
    PROJ.check_action(Action("doc.item", "99999999999999999999999", Cmd.MOD, {"name": "y"}))
    # the next key a satellite makes does not follow it
    assert int_key("99999999999999999999999") == 0
    assert int_key("9223372036854775807") == 2**63 - 1


def test_an_integer_past_64_bits_is_not_called_a_float() -> None:
    # orjson reads 99999999999999999999999 as the float 1e+23: "got 1e+23" read as if a
    # float had been sent
    for value, shown in ((1e23, "1e+23"), (-9.223372036854776e18, "-9.223372036854776e+18")):
        with pytest.raises(ValidationError) as exc:
            PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"n": value}))
        assert str(exc.value) == (f"new doc.item 1: field 'n' got an integer past 64 bits "
                                  f"(about {shown}), expected an integer within 64 bits")
    with pytest.raises(ValidationError, match=r"field 'n' got 1\.5, expected an integer$"):
        PROJ.check_action(Action("doc.item", "1", Cmd.NEW, {"n": 1.5}))
