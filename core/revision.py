"""Revisions: UTC timestamps with millisecond precision, strictly increasing in a ledger.

Outpost keeps a revision as an ``int``: milliseconds since the zero revision
``0001-01-01T00:00:00Z`` (so the zero revision is ``0``). Integers sort, compare and store fast;
conversion to text happens only at the wire and display boundary.

On the wire a revision is an RFC 3339 string. We write UTC with ``Z``, truncated to
milliseconds, with trailing zeros of the fraction dropped as daql does
(``2026-11-26T11:26:29.25Z``, ``2026-11-26T11:26:29Z``). We read any offset, with or without a
fraction of any length (digits past milliseconds are truncated, as daql truncates).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "DATETIME_FORMS",
    "DATETIME_TEXT",
    "DATE_DOTS",
    "DATE_FORM",
    "DATE_MIDNIGHT",
    "DATE_TEXT",
    "ZERO_REV",
    "Rev",
    "format_rev",
    "from_datetime",
    "next_rev",
    "now_rev",
    "parse_rev",
    "read_date",
    "read_datetime",
    "says_zone",
    "to_datetime",
]

Rev = int
"""Milliseconds since 0001-01-01T00:00:00Z."""

ZERO_REV: Rev = 0

_EPOCH0 = datetime(1, 1, 1, tzinfo=UTC)
# Milliseconds from the zero revision to the Unix epoch.
_UNIX_OFFSET_MS = 62135596800000
_MAX_REV = int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH0)
               / timedelta(milliseconds=1))

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z",
    re.ASCII,  # RFC 3339 digits are ASCII: no other scripts' digits
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 0001-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    # 719468 shifts 0000-03-01 to the Unix epoch; 719162 is 0001-01-01 -> 1970-01-01.
    return era * 146097 + doe - 719468 + 719162


_MDAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_SECONDS: dict[str, int] = {}
"""Date-and-time parts (``YYYY-MM-DDTHH:MM:SS``) already validated by a full parse of a UTC
(``Z``) text -> that second in milliseconds: the revisions of a frame share a few seconds
(each transaction's ``base`` and ``created``, the events' ``rev``), and the full parse costs
about 4 µs against well under 1 µs here."""
_SECONDS_MAX = 4096

_TAILS: dict[str, int] = {"Z": 0}
"""What follows the second of a UTC text with up to three fraction digits -> its
milliseconds (``".5Z"`` -> 500, ``".05Z"`` -> 50, ``".123Z"`` -> 123): one look-up instead of
checking and converting the digits (a parse of a second seen before took about 1 µs, 0.2 µs
with it; a replay's replies carry some 13,000 revision texts)."""
for _n in (1, 2, 3):
    for _v in range(10 ** _n):
        _d = f"{_v:0{_n}d}"
        _TAILS[f".{_d}Z"] = int((_d + "00")[:3])
del _n, _v, _d


def parse_rev(text: str) -> Rev:
    """Parse an RFC 3339 timestamp into a revision.

    Args:
        text: for example ``2026-11-26T11:26:54.628Z`` or ``2026-11-26T12:26:54+01:00``.

    Returns:
        Milliseconds since the zero revision, truncated to the millisecond.

    Raises:
        ValueError: the text is not an RFC 3339 timestamp; the message says what is expected.
    """
    if type(text) is str and len(text) >= 20:
        base = _SECONDS.get(text[:19])
        if base is not None:  # a second seen before: only the fraction and the Z are left
            tail = text[19:]
            ms = _TAILS.get(tail)
            if ms is not None:
                return base + ms
            if 3 <= len(tail) <= 11 and tail[0] == "." and tail[-1] == "Z":
                digits = tail[1:-1]
                if digits.isascii() and digits.isdigit():
                    return base + int((digits + "00")[:3])
    m = _RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(
            f"invalid revision {text!r}: expected an RFC 3339 time such as "
            "'2026-11-26T11:26:54.628Z'"
        )
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour, minute, sec = int(m[4]), int(m[5]), int(m[6])
    if not (1 <= month <= 12 and 1 <= day <= _MDAYS[month - 1] and hour < 24 and minute < 60
            and sec < 60 and year >= 1):
        raise ValueError(f"invalid revision {text!r}: date or time out of range")
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        raise ValueError(f"invalid revision {text!r}: {year} is not a leap year")
    frac = m[7]
    ms = int((frac + "00")[:3]) if frac else 0
    total = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + sec
    total = total * 1000 + ms
    if m[9]:
        if int(m[10]) > 23 or int(m[11]) > 59:
            raise ValueError(f"invalid revision {text!r}: offset out of range")
        off = (int(m[10]) * 60 + int(m[11])) * 60000
        total = total - off if m[9] == "+" else total + off
    if total < 0:
        raise ValueError(f"invalid revision {text!r}: before 0001-01-01T00:00:00Z")
    if total > _MAX_REV:
        # an offset can push 9999-12-31 past the last time we can format
        raise ValueError(f"invalid revision {text!r}: after 9999-12-31T23:59:59.999Z")
    if m[8] == "Z":
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        _SECONDS[text[:19]] = total - ms
    return total


_MS_TEXT = ["Z"] + [("." + f"{ms:03d}".rstrip("0")) + "Z" for ms in range(1, 1000)]
_last_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def format_rev(rev: Rev) -> str:
    """Format a revision as daql does: UTC, ``Z``, milliseconds with trailing zeros dropped."""
    global _last_second
    if rev < 0 or rev > _MAX_REV:
        raise ValueError(f"revision {rev} out of range 0..{_MAX_REV}")
    sec, ms = divmod(rev, 1000)
    # revisions come in bursts within one second (a hub's commits, a batch's events): the
    # date and time part is built once per second (datetime arithmetic cost ~2 µs a call)
    last = _last_second  # one tuple, read and replaced whole: safe across threads
    if last[0] != sec:
        dt = _EPOCH0 + timedelta(seconds=sec)
        last = (sec, f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
                     f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
        _last_second = last
    return last[1] + _MS_TEXT[ms]


def from_datetime(dt: datetime) -> Rev:
    """Convert an aware datetime to a revision (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH0) // timedelta(milliseconds=1)


def to_datetime(rev: Rev) -> datetime:
    """Convert a revision to an aware UTC datetime."""
    return _EPOCH0 + timedelta(milliseconds=rev)


def now_rev() -> Rev:
    """The current wall-clock time as a revision (not yet made unique: see :func:`next_rev`)."""
    return time.time_ns() // 1_000_000 + _UNIX_OFFSET_MS


def unix_rev(seconds: float) -> Rev:
    """A Unix time (seconds since 1970, as ``time.time()`` gives) as a revision."""
    return int(seconds * 1000) + _UNIX_OFFSET_MS


def next_rev(last: Rev, now: Rev | None = None) -> Rev:
    """The revision for the next transaction after ``last``.

    ``now`` truncated to milliseconds if it is after ``last``, else ``last + 1 ms``: a clock
    that jumps back never breaks the order.
    """
    if now is None:
        now = now_rev()
    return now if now > last else last + 1


DATETIME_TEXT = re.compile(
    r"\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[ Tt]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?)?"
    r"\s*(?:(UTC|utc|Z|z)|([+-])([0-9]{2}):?([0-9]{2}))?\s*\Z", re.ASCII)
"""A date and time as a user writes it (the app's date box, ``outpost pub``, a CSV cell):
the date, then optionally the time (seconds and a fraction if you like) and ``UTC``/``Z``
or an offset (``+02:00``, ``+0200``; only after a time). Groups: year, month, day, hour,
minute, second, fraction, UTC, offset sign, offset hours, offset minutes."""

DATETIME_FORMS = ("YYYY-MM-DD HH:MM, in UTC or with an offset (2026-11-27 10:30 UTC, "
                  "2026-11-27 10:30 +02:00; seconds and milliseconds if you like: "
                  "2026-11-27 10:30:00.000 UTC; the date also as day.month.year: "
                  "27.11.2026 10:30), or RFC 3339 (2026-11-27T10:30:00Z)")
"""How :func:`read_datetime` wants a date and time written (said in its errors)."""


_DOTTED_DAY = re.compile(r"\s*([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})(?![0-9])", re.ASCII)
"""A date written day.month.year at the start of a date and time (``21.11.2026 07:15``, as
a spreadsheet in de-CH/fr-CH saves a date-time cell): unambiguous with dots."""


def says_zone(text: str) -> bool:
    """Whether a date and time as :func:`read_datetime` reads it names its zone (``UTC``,
    ``Z`` or an offset); one that does not (``2026-11-27 10:30``, a date alone) is read as
    UTC, which an import says (review 16: silently, so a sheet typed in local time moved by
    the zone's offset). A text neither reads is said to name one (it is refused anyway)."""
    if d := _DOTTED_DAY.match(text):
        text = f"{d[3]}-{d[2]}-{d[1]}{text[d.end():]}"
    m = DATETIME_TEXT.match(text)
    return m is None or bool(m[8] or m[9])


def read_datetime(text: str) -> Rev:
    """The revision of a date and time written as :data:`DATETIME_TEXT` (the app shows
    ``2026-11-27 10:30:00.000 UTC``) or as RFC 3339 (:func:`parse_rev`): UTC unless an offset
    is given. One parser for the app, ``outpost pub`` and CSV import (merge review 11: the app
    showed what a CSV cell refused). The date may be written day.month.year
    (``21.11.2026 07:15``, ``21.11.2026 07:15:30``: user review 13, a spreadsheet's
    date-time cell was refused where its date cell ``21.11.2026`` was read): it is read as
    ``2026-11-21 07:15``, by the same pattern.

    Raises:
        ValueError: not a date and time, or out of range; the message ("not a date and
            time…") names the forms.
    """
    if d := _DOTTED_DAY.match(text):
        text = f"{d[3]}-{d[2]}-{d[1]}{text[d.end():]}"
    m = DATETIME_TEXT.match(text)
    if m is None or (m[9] and m[4] is None):  # an offset only after a time
        try:
            return parse_rev(text.strip())
        except ValueError:
            raise ValueError(f"not a date and time: write it as {DATETIME_FORMS}") from None
    zone = "Z" if m[9] is None else f"{m[9]}{m[10]}:{m[11]}"
    iso = (f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}T{int(m[4] or 0):02d}:{m[5] or '00'}:"
           f"{m[6] or '00'}{'.' + m[7] if m[7] else ''}{zone}")
    try:
        return parse_rev(iso)
    except ValueError as exc:
        why = str(exc).rpartition(": ")[2]  # "date or time out of range", "not a leap year"
        raise ValueError(f"not a date and time ({why}): write it as {DATETIME_FORMS}") from None


DATE_TEXT = re.compile(r"\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})\s*\Z", re.ASCII)
"""A date as a user writes it (the app's date box, ``outpost pub``, a CSV cell): year,
month, day; the month and day may have one digit (``2026-3-13``). Groups: year, month, day."""

DATE_DOTS = re.compile(r"\s*([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})"
                       r"(?:[ T]+00:00(?::00(?:\.0+)?)?)?\s*\Z", re.ASCII)
"""A date as day.month.year (``21.11.2026``: how de-CH/fr-CH spreadsheets save one, and how
people there write it; unambiguous with dots, unlike ``11/21/2026``), also with a midnight
time as :data:`DATE_MIDNIGHT` (``21.11.2026 00:00``: such a sheet's date-time cell; session
14). Groups: day, month, year."""

DATE_MIDNIGHT = re.compile(r"\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[ T]00:00(?::00(?:\.0+)?)?"
                           r"\s*\Z", re.ASCII)
"""A date with a midnight time (``2026-11-21 00:00:00``: a spreadsheet's date-time cell).
Groups: year, month, day."""

DATE_FORM = "YYYY-MM-DD, e.g. 2026-11-27 (or 27.11.2026)"
"""How :func:`read_date` wants a date written (said in its errors)."""


def read_date(text: str) -> str:
    """The ``date`` value (``YYYY-MM-DD``) of a date written as :data:`DATE_TEXT`
    (``2026-3-13`` is ``2026-03-13``), :data:`DATE_DOTS` (``13.3.2026``, ``13.3.2026 00:00``)
    or :data:`DATE_MIDNIGHT` (``2026-03-13 00:00:00``). One parser for the app's date box,
    ``outpost pub`` and CSV import (user review 12: the app's date box took ``2026-3-13``, a
    CSV cell and ``outpost pub`` refused it; session 13: CSV import alone read the other two
    forms), as :func:`read_datetime` is for date-times.

    Raises:
        ValueError: not a date, or no such day; the message ("not a date…") names the form.
    """
    m = DATE_TEXT.match(text) or DATE_MIDNIGHT.match(text)
    ymd = (m[1], m[2], m[3]) if m is not None else None
    if ymd is None and (d := DATE_DOTS.match(text)) is not None:
        ymd = (d[3], d[2], d[1])
    if ymd is None:
        raise ValueError(f"not a date: write it as {DATE_FORM}")
    try:
        return date(int(ymd[0]), int(ymd[1]), int(ymd[2])).isoformat()
    except ValueError as exc:  # "day is out of range for month"
        raise ValueError(f"not a date ({exc}): write it as {DATE_FORM}") from None
