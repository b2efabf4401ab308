"""Schema loading, validation messages, version hash, text parsing and client-made keys."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.errors import SchemaError, ValidationError
from core.ids import clean_key, new_key, new_uid, uuid7
from core.model import Action, Cmd
from core.schema import FIELD_TYPES, Project, did_you_mean, load_project, parse_project
from tests.conftest import DEMO_SCHEMA

DEMO_TEXT = DEMO_SCHEMA.read_text(encoding="utf-8")
SITE = "field.site"
OBS = "field.obs"


# --- the demo schema ---------------------------------------------------------------------------


def test_demo_schema_loads(project: Project) -> None:
    assert project.name == "outpost-demo"
    assert project.topics == [SITE, OBS]
    site = project.model(SITE)
    assert site.key == "str"
    assert site.display == "name"
    assert site.title == "Sites"
    assert site.field_names() == ["name", "region", "lat", "lon", "notes"]
    name = site.field("name")
    assert name is not None and name.required and name.type == "str" and name.title == "Name"
    obs = project.model(OBS)
    assert obs.display == "species"
    ref = obs.field("site")
    assert ref is not None and ref.type == "ref" and ref.ref == SITE
    cond = obs.field("condition")
    assert cond is not None and cond.values == ("good", "fair", "poor")
    assert obs.field("observed") is not None and obs.field("observed").type == "datetime"  # type: ignore[union-attr]
    assert obs.field("nope") is None
    assert project.has(OBS) and not project.has("field.nope")


def test_valid_actions_pass(project: Project) -> None:
    k = new_key()
    assert project.check_action(Action(SITE, k, Cmd.NEW, {"name": "Ridge", "lat": 47.1,
                                                          "lon": 8, "notes": "a\nb"})).topic == SITE
    project.check_action(Action(OBS, k, Cmd.NEW, {
        "species": "Alpine chough", "site": new_key(), "count": 3,
        "observed": "2026-05-01T09:30:00Z", "condition": "fair", "notes": None}))
    project.check_action(Action(OBS, k, Cmd.MOD, {"count": 4}))
    project.check_action(Action(OBS, k, Cmd.DEL))


def check_fails(project: Project, act: Action, *parts: str) -> str:
    with pytest.raises(ValidationError) as info:
        project.check_action(act)
    msg = str(info.value)
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"
    return msg


def test_unknown_field_names_topic_key_field_and_did_you_mean(project: Project) -> None:
    msg = check_fails(project, Action(SITE, "k1", Cmd.NEW, {"nmae": "x"}),
                      "field.site", "k1", "'nmae'", "did you mean 'name'?")
    assert msg == "new field.site k1: unknown field 'nmae' for field.site: did you mean 'name'?"


def test_unknown_topic_did_you_mean(project: Project) -> None:
    check_fails(project, Action("field.sit", "k1", Cmd.NEW, {"name": "x"}),
                "no model found for topic 'field.sit'", "did you mean 'field.site'?")
    msg = check_fails(project, Action("zzz.qqq", "k1", Cmd.NEW, {}), "'zzz.qqq'")
    assert "did you mean" not in msg


@pytest.mark.parametrize(
    ("top", "arg", "field", "bad", "expected"),
    [
        (OBS, {"species": "x", "count": "3"}, "count", "'3'", "an integer"),
        (OBS, {"species": "x", "count": 1.5}, "count", "1.5", "an integer"),
        (OBS, {"species": "x", "count": True}, "count", "True", "an integer"),
        (OBS, {"species": "x", "count": 2**63}, "count", str(2**63), "an integer within 64 bits"),
        (SITE, {"name": "x", "lat": "47"}, "lat", "'47'", "a number"),
        (SITE, {"name": "x", "lat": float("nan")}, "lat", "nan", "a finite number"),
        (SITE, {"name": "x", "lat": float("inf")}, "lat", "inf", "a finite number"),
        (SITE, {"name": "x", "lat": 2**53 + 1}, "lat", str(2**53 + 1), "a number a float holds"),
        (SITE, {"name": "x", "lat": -10**400}, "lat", "-1000", "a number a float holds exactly"),
        (SITE, {"name": 5}, "name", "5", "a string"),
        (SITE, {"name": "two\nlines"}, "name", "'two\\nlines'", "a single line of text"),
        (SITE, {"name": "x", "notes": ["a"]}, "notes", "['a']", "a string"),
        (OBS, {"species": "x", "observed": "2026-13-01"}, "observed", "'2026-13-01'",
         "a date and time as RFC 3339"),
        (OBS, {"species": "x", "observed": 1700000000}, "observed", "1700000000",
         "a date and time as RFC 3339"),
        (OBS, {"species": "x", "site": ""}, "site", "''", "the key of a field.site record"),
        (OBS, {"species": "x", "site": {"key": "a"}}, "site", "{'key': 'a'}",
         "the key of a field.site record"),
        (OBS, {"species": "x", "condition": "excellent"}, "condition", "'excellent'",
         "one of good, fair, poor"),
    ],
)
def test_wrong_value_names_topic_key_field_value_and_expected(
    project: Project, top: str, arg: dict[str, Any], field: str, bad: str, expected: str
) -> None:
    check_fails(project, Action(top, "key-7", Cmd.NEW, arg),
                f"new {top} key-7", f"field {field!r}", f"got {bad}", f"expected {expected}")


def test_enum_did_you_mean(project: Project) -> None:
    check_fails(project, Action(OBS, "k", Cmd.MOD, {"condition": "god"}),
                "field 'condition' got 'god'", "expected one of good, fair, poor",
                "did you mean 'good'?")


def test_required_fields(project: Project) -> None:
    check_fails(project, Action(OBS, "k9", Cmd.NEW, {"count": 3}),
                "new field.obs k9", "required field 'species' is missing")
    check_fails(project, Action(OBS, "k9", Cmd.NEW, {"species": None}),
                "field 'species' got None", "required")
    check_fails(project, Action(OBS, "k9", Cmd.MOD, {"species": None}),
                "mod field.obs k9", "field 'species'", "required")


def test_cmd_shapes(project: Project) -> None:
    check_fails(project, Action(SITE, "k", Cmd.DEL, {"name": "x"}), "del takes no field values")
    check_fails(project, Action(SITE, "k", Cmd.MOD, {}), "mod without changed fields")
    check_fails(project, Action(SITE, "k", Cmd.MOD, None), "mod without changed fields")
    check_fails(project, Action(SITE, "k", "upd", {"name": "x"}),  # type: ignore[arg-type]
                "unknown cmd 'upd'", "expected new, mod or del")


def test_keys(project: Project) -> None:
    check_fails(project, Action(SITE, "", Cmd.NEW, {"name": "x"}), "empty key")
    check_fails(project, Action(SITE, "x" * 201, Cmd.NEW, {"name": "x"}), "longer than 200")
    p = parse_project('[a.b]\nkey = "int"\n[a.b.fields]\nn = "str"\n')
    p.check_action(Action("a.b", "-12", Cmd.NEW, {"n": "x"}))
    check_fails(p, Action("a.b", "12a", Cmd.NEW, {"n": "x"}), "'12a' is not an integer")


def test_defaults_fill_required(project: Project) -> None:
    p = parse_project('[a.b.fields]\nn = { type = "str", required = true, default = "x" }\n'
                      'c = { type = "int", default = 3 }\nd = "date"\n')
    assert p.model("a.b").defaults() == {"n": "x", "c": 3}
    p.check_action(Action("a.b", "k", Cmd.NEW, {}))
    p.check_action(Action("a.b", "k", Cmd.NEW, {"d": "2026-01-31"}))
    check_fails(p, Action("a.b", "k", Cmd.NEW, {"d": "2026-1-31"}), "'YYYY-MM-DD'")
    check_fails(p, Action("a.b", "k", Cmd.NEW, {"d": "2026-01-31T00:00:00"}), "'YYYY-MM-DD'")


def test_did_you_mean() -> None:
    assert did_you_mean("nmae", ["name", "region"]) == ": did you mean 'name'?"
    assert did_you_mean("zzzz", ["name", "region"]) == ""


# --- broken schema files -----------------------------------------------------------------------


def broken(tmp_path: Path, text: str) -> str:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        load_project(path)
    return str(info.value)


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("old", "new", "path", "says"),
    [
        ('count = { type = "int"', 'count = { type = "integr"', "field.obs.fields.count",
         ["unknown type 'integr'", "did you mean 'int'?"]),
        ('ref = "field.site"', 'ref = "field.sites"', "field.obs.fields.site",
         ["ref 'field.sites' is not a model", "did you mean 'field.site'?"]),
        ('display = "species"', 'display = "specis"', "field.obs.display",
         ["display field 'specis' is not a field", "did you mean 'species'?"]),
        ('display = "species"', 'display = 3', "field.obs.display",
         ["display must be the name of a field"]),
        ('count = { type = "int", label', 'count = { type = "int", default = "many", label',
         "field.obs.fields.count", ["default 'many' is not an integer"]),
        ('condition = { type = "enum", values = ["good", "fair", "poor"]',
         'condition = { type = "enum", values = ["good", "fair", "poor"], default = "bad"',
         "field.obs.fields.condition", ["default 'bad' is not one of good, fair, poor"]),
        ('count = { type = "int", label', 'count = { label', "field.obs.fields.count",
         ["missing type"]),
        ('count = { type = "int", label', 'count = { type = "int", requird = true, label',
         "field.obs.fields.count", ["unknown field setting 'requird'", "did you mean 'required'"]),
        ('key = "str"\ndisplay = "species"', 'key = "uuid"\ndisplay = "species"',
         "field.obs.key", ["key must be 'str' or 'int', got 'uuid'"]),
        ('values = ["good", "fair", "poor"], ', "", "field.obs.fields.condition",
         ["an enum needs values"]),
        ('label = "Observations"', 'lable = "Observations"', "field.obs.lable",
         ["unknown model setting: did you mean 'label'?"]),
        ('count = { type = "int"', 'Count = { type = "int"', "field.obs.fields.Count",
         ["field names use lower case"]),
        ('observer = { type = "str"', 'rev = { type = "str"', "field.obs.fields.rev",
         ["'rev' is reserved"]),
    ],
)
def test_broken_schema_names_file_line_and_path(
    tmp_path: Path, old: str, new: str, path: str, says: list[str]
) -> None:
    assert old in DEMO_TEXT
    text = DEMO_TEXT.replace(old, new, 1)
    msg = broken(tmp_path, text)
    needle = new.split("\n")[0] or old.split("\n")[0]
    m = re.match(r"(.*broken\.toml):(\d+): (\S+): ", msg)
    assert m, f"no file:line: path: in {msg!r}"
    if new:
        assert int(m[2]) == line_of(text, needle), msg
    assert m[3] == path
    for s in says:
        assert s in msg


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    text = DEMO_TEXT.replace('name = "outpost-demo"', "name = outpost-demo")
    msg = broken(tmp_path, text)
    assert re.match(rf".*broken\.toml:{line_of(text, 'name = outpost-demo')}: not valid TOML", msg)


def test_model_without_fields(tmp_path: Path) -> None:
    msg = broken(tmp_path, '[field.site]\nkey = "str"\n')
    assert msg.endswith("broken.toml:1: field.site.fields: a model needs a [fields] table "
                        "with at least one field")


def test_no_models(tmp_path: Path) -> None:
    assert "no models defined" in broken(tmp_path, '[project]\nname = "x"\n')


def test_top_level_value_that_is_no_schema(tmp_path: Path) -> None:
    assert "expected a schema table" in broken(tmp_path, 'version = 3\n[a.b.fields]\nn = "str"\n')


def test_date_default_must_be_text(tmp_path: Path) -> None:
    msg = broken(tmp_path, "[a.b.fields]\nd = { type = \"date\", default = 2026-01-31 }\n")
    assert "broken.toml:2: a.b.fields.d: write date defaults as quoted text" in msg


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="schema file not found; check the path"):
        load_project(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[a.b.fields]\nn = "\xe9"\n')
    with pytest.raises(SchemaError, match="cannot read schema file"):
        load_project(bad)


def test_shorthand_and_relative_ref() -> None:
    p = parse_project('[s.a.fields]\nn = "str"\n[s.b.fields]\nx = { type = "ref", ref = "a" }\n')
    assert p.model("s.a").fields[0].type == "str"
    assert p.model("s.b").field("x").ref == "s.a"  # type: ignore[union-attr]
    assert p.model("s.a").display == "n"


def test_parse_project_from_dict_round_trip(project: Project) -> None:
    again = parse_project(project.to_dict())
    assert again.to_dict() == project.to_dict()
    assert again.version == project.version


# --- version hash ------------------------------------------------------------------------------


def test_version_stable_across_loads(project: Project) -> None:
    again = load_project(DEMO_SCHEMA)
    assert again.version == project.version
    assert re.fullmatch(r"[0-9a-f]{16}", project.version)
    # comments and layout are not part of the version
    assert parse_project("# hello\n" + DEMO_TEXT).version == project.version


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('count = { type = "int"', 'count = { type = "float"'),
        ('species = { type = "str", required = true', 'species = { type = "str"'),
        ('label = "Count"', 'label = "Number"'),
        ('values = ["good", "fair", "poor"]', 'values = ["good", "fair", "poor", "bad"]'),
        ('notes = { type = "text", label = "Notes" }\n\n[field.obs]',
         'notes = { type = "text", label = "Notes" }\nelev = "int"\n\n[field.obs]'),
    ],
)
def test_version_changes_when_a_field_changes(project: Project, old: str, new: str) -> None:
    assert old in DEMO_TEXT
    assert parse_project(DEMO_TEXT.replace(old, new, 1)).version != project.version


# --- text values (command line, CSV) -----------------------------------------------------------


def test_parse_text(project: Project) -> None:
    site = project.model(SITE)
    obs = project.model(OBS)
    count, lat, name = obs.field("count"), site.field("lat"), site.field("name")
    assert count is not None and lat is not None and name is not None
    assert count.parse_text("12") == 12
    assert count.parse_text("-3") == -3
    assert lat.parse_text("47.25") == 47.25
    assert name.parse_text("Ridge 4") == "Ridge 4"
    assert count.parse_text("") is None
    with pytest.raises(ValueError, match="field 'count': 'x' is not an integer"):
        count.parse_text("x")
    with pytest.raises(ValueError, match="field 'lat': 'north' is not a number"):
        lat.parse_text("north")


def test_a_ref_loses_the_invisible_characters_around_it(project: Project) -> None:
    """A ref's text is a key the user typed: cleaned as the record's own key is
    (core.ids.clean_key), so "\u200bk1\ufeff" refers to k1, not to a look-alike."""
    site = project.model(OBS).field("site")
    name = project.model(SITE).field("name")
    assert site is not None and site.type == "ref" and name is not None
    assert site.parse_text("\u200bk1\ufeff") == "k1"
    assert site.parse_text("\u00a0k 1 \u2060") == "k 1"
    assert site.parse_text("\u200b") is None
    assert name.parse_text(" Ridge ") == " Ridge "  # text fields keep what was typed


def test_clean_key() -> None:
    assert clean_key("\ufeff k1\u200b\t\u00a0\u2028") == "k1"
    assert clean_key("a\u200bb") == "a\u200bb"  # inside: part of the key
    assert clean_key("\u200b \u2060") == "" and clean_key("k") == "k"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("Yes", True), ("1", True),
                                             ("off", False), ("N", False), ("false", False)])
def test_parse_text_bool(text: str, value: bool) -> None:
    p = parse_project('[a.b.fields]\nok = "bool"\nj = "json"\n')
    f = p.model("a.b").field("ok")
    assert f is not None and f.parse_text(text) is value


def test_parse_text_bool_and_json_errors() -> None:
    p = parse_project('[a.b.fields]\nok = "bool"\nj = "json"\n')
    ok, j = p.model("a.b").field("ok"), p.model("a.b").field("j")
    assert ok is not None and j is not None
    with pytest.raises(ValueError, match="field 'ok': 'maybe' is not true or false"):
        ok.parse_text("maybe")
    assert j.parse_text('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(ValueError, match=re.escape("field 'j': '{a' is not valid JSON")):
        j.parse_text("{a")


def test_every_field_type_is_loadable() -> None:
    lines = ["[a.b.fields]"]
    for t in FIELD_TYPES:
        if t == "enum":
            lines.append('f_enum = { type = "enum", values = ["x"] }')
        elif t == "ref":
            lines.append('f_ref = { type = "ref", ref = "a.b" }')
        else:
            lines.append(f'f_{t} = "{t}"')
    p = parse_project("\n".join(lines) + "\n")
    assert [f.type for f in p.model("a.b").fields] == list(FIELD_TYPES)


# --- client-made keys --------------------------------------------------------------------------


def test_uuid7_version_and_variant() -> None:
    for _ in range(100):
        u = uuid.UUID(new_key())
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
    assert uuid.UUID(new_uid()).version == 7


def test_uuid7_carries_the_timestamp() -> None:
    ms = 1_764_156_414_628
    u = uuid7(ms)
    assert u.int >> 80 == ms
    assert str(u).startswith(f"{ms:012x}"[:8])


def test_uuid7_unique() -> None:
    keys = {new_key() for _ in range(20_000)}
    assert len(keys) == 20_000
    same_ms = {uuid7(1_000) for _ in range(5_000)}
    assert len(same_ms) == 5_000


def test_uuid7_sorts_by_time() -> None:
    keys = [str(uuid7(ms)) for ms in range(1_764_156_414_000, 1_764_156_414_000 + 2000, 7)]
    assert sorted(keys) == keys
    assert sorted(reversed(keys)) == keys


def test_a_date_time_is_read_as_the_app_writes_it(project: Project) -> None:
    """Merge review 11 (app, 5): `outpost pub … observed=…` and a CSV cell refused the
    date-time text the app shows ("2026-11-27 10:30:00.000 UTC", "expected … RFC 3339").
    One parser (core.revision.read_datetime) reads the app's forms for the app, the CLI and
    CSV; RFC 3339 is kept as written."""
    observed = project.model(OBS).field("observed")
    assert observed is not None
    assert observed.parse_text("2026-11-27 10:30:00.000 UTC") == "2026-11-27T10:30:00Z"
    assert observed.parse_text("2026-11-27 10:30") == "2026-11-27T10:30:00Z"
    assert observed.parse_text("2026-11-27 12:30 +02:00") == "2026-11-27T10:30:00Z"
    assert observed.parse_text("2026-11-27 12:30:00 +0200") == "2026-11-27T10:30:00Z"
    assert observed.parse_text("2026-11-27T12:30:00+02:00") == "2026-11-27T12:30:00+02:00"
    assert observed.parse_text("2026-11-27T10:30:00.5Z") == "2026-11-27T10:30:00.5Z"
    # user review 13: day.month.year is read (a spreadsheet's date-time cell), as CSV dates
    assert observed.parse_text("27.11.2026 10:30") == "2026-11-27T10:30:00Z"
    for text in ("27.11.26 10:30", "2026-11-27 10:30 CET", "2026-02-29 10:00"):
        with pytest.raises(ValueError, match=f"field 'observed': '{text}' is not a date and "
                                             r"time.*write it as YYYY-MM-DD HH:MM.*\+02:00"):
            observed.parse_text(text)
    for text in ("2026-11-27 10:30:00.000 UTC", "2026-11-27 12:30 +02:00"):
        assert observed.check_value(observed.parse_text(text)) is None  # a value published
