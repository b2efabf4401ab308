"""A big topic's filter reads only the rows an SQL condition selects (``_prefilter``), then
matches them in Python: the condition must select every row the Python match keeps, for
every field type, in any script. Checked against the match over every row, on a real
SQLite replica, with generated values and filter texts."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.model import Cmd, Event
from core.satellite.satellite import Satellite
from core.schema import parse_project
from desktop.models import records as R

SCHEMA = """
[project]
name = "prefilter"

[t.all]
key = "str"

[t.all.fields]
s = "str"
tx = { type = "text" }
i = "int"
f = "float"
b = "bool"
d = "date"
dt = "datetime"
e = { type = "enum", values = ["Good", "fair", "\u00c9t\u00e9"] }
j = "json"
r = { type = "ref", ref = "t.all" }
"""
TOP = "t.all"
# letters whose lower case SQLite does not know (É, the Kelvin sign K -> k, İ -> i̇, ß,
# Greek sigmas, the Ohm sign Ω -> ω, the title-case ǅ, a combining dot, Cyrillic), line
# breaks (a text cell shows its first line, then " …"), what numbers print, GLOB's and LIKE's
# special characters
CHARS = ("abcAB kK\u212aÉé\u0130ß\n\r 0123456789.-+einf\"\\\t\x00"
         "σΣςω\u2126ǅǆ\u0307жЖ\u2026*?[]%_")
texts = st.text(alphabet=CHARS, max_size=12)
values = st.fixed_dictionaries({}, optional={
    "s": texts, "tx": texts, "i": st.integers(-10**7, 10**7),
    "f": st.floats(-1e12, 1e12, allow_nan=False) | st.sampled_from([1e-7, -0.0, 2.5e20]),
    "b": st.booleans(), "d": st.dates().map(lambda d: d.isoformat()),
    "dt": st.sampled_from(["2026-05-01T09:30:00Z", "1999-12-31T23:59:59.5+01:00",
                           "2026-05-01T09:30:00.25Z", "2026-13-01T00:00:00Z",
                           "2026-05-01t09:30:00z", "2026-05-01 09:30:00Z"]),
    "e": st.sampled_from(["Good", "fair", "\u00c9t\u00e9"]),
    "j": st.dictionaries(st.sampled_from(["a", "B"]), st.integers(0, 99) | texts, max_size=2),
    "r": texts.filter(bool),
})
records = st.lists(st.tuples(texts, values), min_size=1, max_size=25)
filters = st.text(alphabet=CHARS, min_size=1, max_size=4) | st.sampled_from(
    ["yes", "no", "e", "1e-07", "inf", "-0", "{\"a\"", "good", "ét", "2026", "k"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, filters)
@example([("x", {"s": "\u212a"})], "k")  # the Kelvin sign: Python lower-cases it to k
@example([("x", {"tx": "\u0130z"})], "i")  # İ lower-cases to i + a combining dot
@example([("x", {"f": 1e-07})], "e-07")  # a float cell's %g text, not its stored value
@example([("x", {"f": 2.5e20})], "+20")
@example([("x", {"b": True})], "ye")
@example([("x", {"b": False})], "o")
@example([("x", {"i": -123})], "-12")
@example([("x", {"j": {"a": 1}})], '{"a"')
@example([("x", {"e": "Good"})], "goo")
@example([("x", {"dt": "2026-05-01T09:30:00Z"})], "t09")
# a datetime cell shows the time in UTC as the form does (2026-05-01 09:30:00 UTC)
@example([("x", {"dt": "2026-05-01T09:30:00Z"})], "01 09")
@example([("x", {"dt": "2026-05-01T09:30:00Z"})], "0 utc")
@example([("x", {"dt": "1999-12-31T23:59:59.5+01:00"})], "22:59:59.500")
@example([("x", {"dt": "2026-05-01T09:30:00.25Z"})], ".250 u")
@example([("x", {"dt": "2026-13-01T00:00:00Z"})], "01t0")  # not a valid time: shown as stored
@example([("x", {"dt": "2026-05-01t09:30:00z"})], "01 09")  # lower-case t and z
@example([("x", {"dt": "2026-05-01 09:30:00Z"})], "0 utc")
@example([("x", {"dt": "2026-05-01T09:30:00\x00x"})], "x")  # LIKE stops at a NUL
@example([("x", {"s": "a_b%c"})], "_b%")  # LIKE's wildcards are escaped
@example([("x", {"s": "axb"})], "_")
@example([("x", {"s": "a\\b"})], "\\b")
@example([("x", {"s": "a\\b"})], "\\")  # LIKE's escape character itself
@example([("x", {"r": 'site"1'})], 'e"')  # a ref is stored as JSON: '"site\\"1"'
@example([("x", {"r": "c:\\dir"})], ":\\d")
@example([("x", {"r": "a\tb"})], "a\tb")
@example([("x", {"r": "ab"})], "ab")
@example([("x", {"s": "abc\x00def"})], "def")  # LIKE stops at a NUL
@example([("x", {"tx": "x\x00needle"})], "needle")
@example([("x", {"tx": "ab\ncd"})], "b ")  # the cell shows "ab …"
@example([("x", {"tx": "ab\ncd"})], "\u2026")
@example([("x", {"s": "ZÜRICH"})], "zürich")  # outside ASCII: GLOB with case classes
@example([("x", {"s": "\u2126mega"})], "ωm")  # the Ohm sign lower-cases to omega
@example([("x", {"s": "\u01c5"})], "\u01c6")  # title case ǅ -> ǆ
@example([("x", {"s": "a \u03a3\u03a3"})], "\u03c2")  # ending a word, Σ lower-cases to ς
@example([("x", {"s": "\u0130"})], "i\u0307")  # İ -> i + combining dot: every row read
@example([("x", {"s": "a[é]*?"})], "[é]*?")  # GLOB's own characters, taken literally
@example([("x", {"r": "жук"})], "Жу".lower())  # a ref's JSON text keeps Cyrillic as is
def test_the_prefilter_keeps_every_row_the_filter_matches(
        rows: list[tuple[str, dict[str, object]]], text: str) -> None:
    project = parse_project(SCHEMA)
    fields = tuple(project.model(TOP).fields)
    text = text.lower()  # the window lower-cases the filter box
    with tempfile.TemporaryDirectory() as d:
        sat = Satellite(Path(d) / "sat", project)
        try:
            evs = [Event(i + 1, 1000 + i, TOP, f"{i:03d}{k}", Cmd.NEW, v)
                   for i, (k, v) in enumerate(rows)]
            sat.replica.apply(1000 + len(evs), evs)
            every = [rv for chunk in sat.confirmed_scan(TOP) for rv in chunk]
            assert len(every) == len(rows)
            want = [rv.key for rv in every if R._matches(fields, text, rv)]
            got, _ = R._read_rows(sat, TOP, fields, R._Query(text, -1, False), frozenset(),
                                  None)
            assert got == want
            where = R._prefilter(fields, text)
            if where is not None:  # and the condition itself keeps every match
                kept = {rv.key for chunk in sat.confirmed_scan(TOP, where=where) for rv in chunk}
                assert set(want) <= kept
        finally:
            sat.close()


def _kept(tmp_path: Path, records: list[dict[str, object]], texts: list[str]
          ) -> list[list[str]]:
    """The keys (``a``, ``b``, ... in order) of ``records`` each filter text's SQL
    condition reads, on a real replica."""
    project = parse_project(SCHEMA)
    fields = tuple(project.model(TOP).fields)
    sat = Satellite(tmp_path / "sat", project)
    try:
        sat.replica.apply(1000 + len(records), [
            Event(i + 1, 1000 + i, TOP, chr(ord("a") + i), Cmd.NEW, v)
            for i, v in enumerate(records)])
        out = []
        for text in texts:
            where = R._prefilter(fields, text)
            assert where is not None, text
            out.append([rv.key for chunk in sat.confirmed_scan(TOP, where=where)
                        for rv in chunk])
        return out
    finally:
        sat.close()


def test_the_prefilter_leaves_out_rows_that_cannot_match(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [{"s": "heron", "f": 1.5, "b": True}, {"s": "swan", "i": 7},
                            {"s": "Grey HERON"}], ["heron"])
    assert kept == [["a", "c"]]  # "b" is not read at all


def test_a_datetime_is_filtered_by_the_text_its_cell_shows(tmp_path: Path) -> None:
    """The cell shows ``2026-05-01 09:30:00 UTC``: the condition finds that text in a value
    stored in whole seconds in UTC and leaves out one that cannot show it; a value with
    milliseconds or an offset is read and matched in Python."""
    kept = _kept(tmp_path, [{"dt": "2026-05-01T09:30:00Z"}, {"dt": "2026-05-02T10:00:00Z"},
                            {"dt": "2026-05-02T10:00:00.5Z"}],
                 ["01 09:30:00 utc", "2026-05-0", "heron 00"])
    # a text no valid time's cell can hold reads none of them (a filter by name stays fast)
    assert kept == [["a", "c"], ["a", "b", "c"], []]


def test_a_filter_outside_ascii_leaves_out_rows_that_cannot_match(tmp_path: Path) -> None:
    kept = _kept(tmp_path, [
        {"s": "Héron cendré", "i": 5}, {"s": "heron", "b": True},
        {"tx": "GRAND HÉRON\nnotes"}, {"r": "héron"}, {"s": "Москва"},
        {"s": "москва", "f": 2.5}],
        ["héron", "москва", "n \u2026"])  # the last: a text of several lines, "… HÉRON …"
    assert kept == [["a", "c", "d"], ["e", "f"], ["c"]]


def test_the_case_classes_cover_every_character() -> None:
    """``_glob`` builds its classes from the characters up to ``_CASED_LAST``: no character
    after it changes in lower case, and the classes hold every one that does."""
    last = max(i for i in range(sys.maxunicode + 1) if chr(i).lower() != chr(i))
    assert last == R._CASED_LAST
    cases, later = R._cases()
    for i in range(sys.maxunicode + 1):
        x = chr(i)
        low = x.lower()
        if low != x:
            assert x in cases[low[0]] and low[0] in cases[low[0]]
            assert set(low[1:]) <= later
    assert later == {"\u0307"}


def test_the_characters_that_lower_case_into_ascii_are_all_known() -> None:
    found = {c: "".join(x for x in c.lower() if x.isascii())
             for c in map(chr, range(128, sys.maxunicode + 1))
             if any(x.isascii() for x in c.lower())}
    assert found == R._LOWER_TO_ASCII


def test_a_model_too_wide_for_one_condition_reads_every_row(tmp_path: Path) -> None:
    """SQLite's expression depth is 1,000: a model of hundreds of fields gets no condition
    (every row is read and matched), one below the cap gets a condition SQLite takes."""
    for n, has in ((R._MAX_CONDS - 2, True), (R._MAX_CONDS + 5, False)):
        fields = "\n".join(f"f{i} = \"str\"" for i in range(n))
        project = parse_project(f'[project]\nname = "wide"\n\n[w.t]\nkey = "str"\n\n'
                                f"[w.t.fields]\n{fields}\n")
        model_fields = tuple(project.model("w.t").fields)
        where = R._prefilter(model_fields, "ki")  # the Kelvin sign and İ looked for too
        assert (where is not None) == has
        sat = Satellite(tmp_path / f"sat{n}", project)
        try:
            sat.replica.apply(1000, [Event(1, 1000, "w.t", "a", Cmd.NEW, {"f0": "skip"}),
                                     Event(2, 1000, "w.t", "b", Cmd.NEW, {"f1": "no"})])
            got, _ = R._read_rows(sat, "w.t", model_fields, R._Query("ki", -1, False),
                                  frozenset(), None)
            assert got == ["a"]
        finally:
            sat.close()
    assert R._prefilter(tuple(parse_project(SCHEMA).model(TOP).fields), "_" * 6_000) is None


_DIGIT = st.sampled_from("0123456789")


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    # whole seconds in UTC, any digits (invalid months, days, Feb 29, 24:00, :60 included)
    st.builds(lambda d: "{}{}{}{}-{}{}-{}{}T{}{}:{}{}:{}{}Z".format(*d),
              st.lists(_DIGIT, min_size=14, max_size=14)),
    # the same shape with one character changed (week dates, lower case, other digits)
    st.builds(lambda d, i, c: (s := "{}{}{}{}-{}{}-{}{}T{}{}:{}{}:{}{}Z".format(*d))[:i] + c
              + s[i + 1:], st.lists(_DIGIT, min_size=14, max_size=14),
              st.integers(0, 19), st.sampled_from("tzW+ -:.٣0")),
    st.text(max_size=24)))
@example("2024-02-29T23:59:59Z")
@example("2023-02-29T00:00:00Z")
@example("0000-01-01T00:00:00Z")
@example("0001-01-01T00:00:00Z")
@example("2025-W11-5T07:36:00Z")
@example("2025-03-14T24:00:00Z")
def test_a_datetime_cell_in_whole_seconds_reads_as_the_full_parse_gives_it(value: str) -> None:
    """display_datetime's quick path for whole seconds in UTC (the filter formats every row
    it reads) shows what the full parse shows, for every value of that shape or near it."""
    from desktop.format import _display_parsed, display_datetime

    assert display_datetime(value) == _display_parsed(value)
