"""Revisions: RFC 3339 text <-> milliseconds since 0001-01-01, exactly as daql writes them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.revision import (
    ZERO_REV,
    format_rev,
    from_datetime,
    next_rev,
    now_rev,
    parse_rev,
    read_datetime,
    to_datetime,
)

MAX_REV = from_datetime(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
UNIX_EPOCH = from_datetime(datetime(1970, 1, 1, tzinfo=UTC))


def rev_of(*args: int, ms: int = 0) -> int:
    return from_datetime(datetime(*args, tzinfo=UTC)) + ms  # type: ignore[misc]


def test_zero_revision() -> None:
    assert ZERO_REV == 0
    assert parse_rev("0001-01-01T00:00:00Z") == 0
    assert format_rev(0) == "0001-01-01T00:00:00Z"
    assert to_datetime(0) == datetime(1, 1, 1, tzinfo=UTC)


def test_unix_epoch_offset() -> None:
    assert UNIX_EPOCH == 62135596800000
    assert parse_rev("1970-01-01T00:00:00Z") == UNIX_EPOCH


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-26T11:26:54.628Z", 628),
        ("2026-11-26T11:26:54.6Z", 600),
        ("2026-11-26T11:26:54.62Z", 620),
        ("2026-11-26T11:26:54.6289Z", 628),
        ("2026-11-26T11:26:54.62899Z", 628),
        ("2026-11-26T11:26:54.628999Z", 628),
        ("2026-11-26T11:26:54.6289999Z", 628),
        ("2026-11-26T11:26:54.62899999Z", 628),
        ("2026-11-26T11:26:54.628999999Z", 628),
        ("2026-11-26T11:26:54Z", 0),
        ("2026-11-26T11:26:54.000000000Z", 0),
        ("2026-11-26T11:26:54.999999999Z", 999),
    ],
)
def test_parse_fractions_of_1_to_9_digits_truncate_to_ms(text: str, ms: int) -> None:
    assert parse_rev(text) == rev_of(2026, 11, 26, 11, 26, 54, ms=ms)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T12:26:54.628+01:00",
        "2026-11-26T06:56:54.628-04:30",
        "2026-11-26T11:26:54.628+00:00",
        "2026-11-26T11:26:54.628-00:00",
        "2026-11-27T01:26:54.628+14:00",
        "2026-11-26t11:26:54.628z",
        "2026-11-26 11:26:54.628Z",
    ],
)
def test_parse_offsets_and_variants(text: str) -> None:
    assert parse_rev(text) == rev_of(2026, 11, 26, 11, 26, 54, ms=628)
    assert format_rev(parse_rev(text)) == "2026-11-26T11:26:54.628Z"


def test_offset_crossing_midnight_and_year() -> None:
    assert format_rev(parse_rev("2027-01-01T00:30:00+01:00")) == "2026-12-31T23:30:00Z"
    assert format_rev(parse_rev("2026-12-31T23:30:00-01:00")) == "2027-01-01T00:30:00Z"


def test_parse_agrees_with_datetime() -> None:
    dt = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-7)))
    text = dt.isoformat()
    assert parse_rev(text) == from_datetime(dt.replace(microsecond=123000))


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (250, "2026-11-26T11:26:29.25Z"),
        (200, "2026-11-26T11:26:29.2Z"),
        (5, "2026-11-26T11:26:29.005Z"),
        (50, "2026-11-26T11:26:29.05Z"),
        (999, "2026-11-26T11:26:29.999Z"),
        (0, "2026-11-26T11:26:29Z"),
        (100, "2026-11-26T11:26:29.1Z"),
    ],
)
def test_format_drops_trailing_zeros_like_daql(ms: int, text: str) -> None:
    assert format_rev(rev_of(2026, 11, 26, 11, 26, 29, ms=ms)) == text


def test_format_daql_frames_verbatim() -> None:
    for text in ("2026-11-26T11:26:54.628Z", "2026-11-26T11:27:01.167Z", "0001-01-01T00:00:00Z"):
        assert format_rev(parse_rev(text)) == text


def test_format_range() -> None:
    assert format_rev(MAX_REV) == "9999-12-31T23:59:59.999Z"
    with pytest.raises(ValueError, match="out of range"):
        format_rev(-1)
    with pytest.raises(ValueError, match="out of range"):
        format_rev(MAX_REV + 1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "expected an RFC 3339 time"),
        ("yesterday", "expected an RFC 3339 time"),
        ("2026-11-26", "expected an RFC 3339 time"),
        ("2026-11-26T11:26:54", "expected an RFC 3339 time"),  # no offset
        ("2026-11-26T11:26:54.Z", "expected an RFC 3339 time"),
        ("2026-11-26T11:26:54.1234567890Z", "expected an RFC 3339 time"),  # 10 digits
        ("2026-11-26T11:26:54+0100", "expected an RFC 3339 time"),
        ("2026-11-26T11:26:54Z ", "expected an RFC 3339 time"),
        (" 2026-11-26T11:26:54Z", "expected an RFC 3339 time"),
        ("2026-11-26T11:26:54Z\n", "expected an RFC 3339 time"),
        ("26-11-26T11:26:54Z", "expected an RFC 3339 time"),
        ("2026-13-01T00:00:00Z", "out of range"),
        ("2026-00-01T00:00:00Z", "out of range"),
        ("2026-04-31T00:00:00Z", "out of range"),
        ("2026-01-00T00:00:00Z", "out of range"),
        ("2026-01-01T24:00:00Z", "out of range"),
        ("2026-01-01T00:60:00Z", "out of range"),
        ("2026-01-01T00:00:60Z", "out of range"),
        ("0000-01-01T00:00:00Z", "out of range"),
        ("2026-02-29T00:00:00Z", "not a leap year"),
        ("1900-02-29T00:00:00Z", "not a leap year"),
        ("0001-01-01T00:00:00+00:01", "before 0001-01-01"),
        ("9999-12-31T23:59:59.999-00:01", "after 9999-12-31"),
        ("2026-01-01T00:00:00+24:00", "offset out of range"),
        ("2026-01-01T00:00:00-01:60", "offset out of range"),
        ("٢٠٢٦-11-26T11:26:54Z", "expected an RFC 3339 time"),  # non-ASCII digits
    ],
)
def test_invalid_inputs_raise_value_error_naming_the_text(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_rev(text)
    assert repr(text) in str(info.value)


def test_leap_days_that_exist() -> None:
    assert format_rev(parse_rev("2000-02-29T00:00:00Z")) == "2000-02-29T00:00:00Z"
    assert format_rev(parse_rev("2024-02-29T12:00:00Z")) == "2024-02-29T12:00:00Z"


@pytest.mark.parametrize("bad", [None, 12, b"2026-11-26T11:26:54Z"])
def test_non_text_raises_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid revision"):
        parse_rev(bad)  # type: ignore[arg-type]


def test_next_rev_uses_clock_when_it_moves_forward() -> None:
    assert next_rev(1000, 1500) == 1500


def test_next_rev_is_monotonic_with_a_clock_jumping_back() -> None:
    clock = [5000, 5000, 5001, 4000, 3000, 5003, 5003, 9000, 100, 9000]
    last = ZERO_REV
    seen = []
    for now in clock:
        last = next_rev(last, now)
        seen.append(last)
    assert seen == [5000, 5001, 5002, 5003, 5004, 5005, 5006, 9000, 9001, 9002]
    assert all(b > a for a, b in itertools.pairwise(seen))


@given(st.lists(st.integers(min_value=0, max_value=MAX_REV // 2), min_size=1, max_size=50))
@settings(max_examples=200)
def test_next_rev_strictly_increases_for_any_clock(clock: list[int]) -> None:
    last = ZERO_REV
    for now in clock:
        rev = next_rev(last, now)
        assert rev > last
        assert rev >= now
        last = rev


def test_now_rev_is_wall_clock() -> None:
    expected = from_datetime(datetime.now(UTC))
    assert abs(now_rev() - expected) < 5000
    assert next_rev(ZERO_REV) > UNIX_EPOCH


revs = st.integers(min_value=0, max_value=MAX_REV)


@given(revs)
@settings(max_examples=200)
def test_format_parse_round_trip(rev: int) -> None:
    text = format_rev(rev)
    assert parse_rev(text) == rev
    assert text.endswith("Z")
    if "." in text:
        frac = text[text.index(".") + 1 : -1]
        assert 1 <= len(frac) <= 3
        assert not frac.endswith("0")


@given(revs, st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59))
@settings(max_examples=200)
def test_parse_any_offset_matches_datetime(rev: int, offset_min: int) -> None:
    try:
        dt = to_datetime(rev).astimezone(timezone(timedelta(minutes=offset_min)))
        text = dt.isoformat(timespec="milliseconds")
    except (OverflowError, ValueError):
        return
    if not text[:4].isdigit() or dt.year < 1:
        return
    assert parse_rev(text) == rev


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.just(UTC)))
@settings(max_examples=200)
def test_datetime_conversion_truncates_to_ms(dt: datetime) -> None:
    rev = from_datetime(dt)
    assert to_datetime(rev) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)



@given(st.lists(st.integers(min_value=0, max_value=parse_rev("9999-12-31T23:59:59.999Z")),
                min_size=1, max_size=4))
def test_format_rev_matches_formatting_from_scratch(revs: list[int]) -> None:
    """format_rev reuses the text of the last second: the same text as formatting each anew
    (several revisions in a row, so the reuse and the change of second are both taken)."""
    for rev in [r for x in revs for r in (x, x - x % 1000, x - x % 1000 + 999)]:
        dt = datetime(1, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rev)
        want = (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
                f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
        if rev % 1000:
            want += "." + f"{rev % 1000:03d}".rstrip("0")
        assert format_rev(rev) == want + "Z"


def _parse_uncached(text: str) -> int:
    from core import revision

    revision._SECONDS.clear()
    return parse_rev(text)


@given(st.integers(0, 3_155_378_975_999_999 // 1000 * 1000 + 999), st.integers(1, 9),
       st.sampled_from(["T", "t", " "]), st.booleans())
@settings(max_examples=300)
def test_parse_rev_cached_second_gives_the_full_parse(rev: int, digits: int, sep: str,
                                                       z_lower: bool) -> None:
    # the second's cache (filled by a full parse) must decide exactly as the full parse does
    from core.revision import _MAX_REV

    rev = min(rev, _MAX_REV)
    text = format_rev(rev)
    head, frac = text[:19], text[19:-1]
    frac = (frac[1:] if frac else "").ljust(digits, "0")[:digits] if digits else ""
    variants = [text, f"{head[:10]}{sep}{head[11:]}.{frac}Z", f"{head}Z",
                f"{head}.{frac}{'z' if z_lower else 'Z'}"]
    for v in variants:
        want = _parse_uncached(v)
        parse_rev(v)  # fills the cache
        assert parse_rev(v) == want
        assert parse_rev(text) == rev  # from the cache now


@pytest.mark.parametrize("tail", [".Z", ".1234567890Z", ".12aZ", ".１２Z", "Z ", ".5", "",
                                  ".5z ", "+01:00x", ".-1Z"])
def test_parse_rev_cached_second_still_refuses_bad_tails(tail: str) -> None:
    parse_rev("2026-11-26T11:26:54.628Z")  # the second is cached
    with pytest.raises(ValueError, match="invalid revision"):
        parse_rev("2026-11-26T11:26:54" + tail)


def test_every_fraction_of_up_to_3_digits_parses_from_the_cache_as_in_full() -> None:
    """The cached second's fraction table (``_TAILS``: ``Z`` and ``.d``, ``.dd``, ``.ddd``
    before ``Z``) gives what the full parse gives, for every such tail."""
    from core import revision

    head = "2026-11-26T11:26:54"
    assert len(revision._TAILS) == 1 + 10 + 100 + 1000
    for tail in revision._TAILS:
        want = _parse_uncached(head + tail)
        assert parse_rev(head + tail) == want == parse_rev(head + "Z") + revision._TAILS[tail]


@pytest.mark.parametrize(("text", "want"), [
    ("21.11.2026 07:15", "2026-11-21T07:15:00Z"),
    ("21.11.2026 07:15:30", "2026-11-21T07:15:30Z"),
    ("1.2.2026 7:05 UTC", "2026-02-01T07:05:00Z"),
    ("21.11.2026 08:15 +01:00", "2026-11-21T07:15:00Z"),
    ("21.11.2026", "2026-11-21T00:00:00Z"),
])
def test_read_datetime_takes_a_day_month_year_date(text: str, want: str) -> None:
    """User review 13: a spreadsheet's date-time cell ``21.11.2026 07:15`` was refused while
    its date cell ``21.11.2026`` was read; the same pattern reads it, UTC as the others."""
    assert format_rev(read_datetime(text)) == want


@pytest.mark.parametrize("text", ["31.2.2026 07:15", "21.11.20261 07:15", "21.11.26 07:15",
                                  "11/21/2026 07:15"])
def test_read_datetime_refuses_a_bad_day_month_year_date(text: str) -> None:
    with pytest.raises(ValueError, match="not a date and time"):
        read_datetime(text)
