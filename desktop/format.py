"""Turning field values and revisions into text people read (one place, used by every view)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from core.revision import ZERO_REV, Rev, parse_rev, to_datetime
from core.satellite.api import NOT_SENT
from core.satellite.machine import HUB_DB_DOWN
from core.schema import Field

__all__ = ["CatchupMeter", "compact_rev", "display_datetime", "display_value", "plural",
           "readable_rev", "short_rev", "sync_problem"]


def readable_rev(rev: Rev) -> str:
    """A revision in UTC, saying so, ``2026-11-26 11:26:54 UTC``; "never" for the zero
    revision. UTC, as the record form, the table and the command line show times (review 16:
    the laptop's zone without a label, so history and status disagreed with the form, and
    after a change of zone or a DST fall-back a newer change read earlier)."""
    if rev == ZERO_REV:
        return "never"
    return to_datetime(rev).strftime("%Y-%m-%d %H:%M:%S UTC")


def compact_rev(rev: Rev) -> str:
    """A revision in UTC to the minute (the status bar's; its tooltips say
    :func:`readable_rev`): only the time of day when it is today (in UTC), ``11:26 UTC``,
    else ``2026-11-26 11:26 UTC`` (the seconds gave way to "UTC": the bar is no wider)."""
    if rev == ZERO_REV:
        return "never"
    dt = to_datetime(rev)
    if dt.date() == datetime.now(UTC).date():
        return dt.strftime("%H:%M UTC")
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def short_rev(rev: Rev) -> str:
    """A revision in UTC with milliseconds (for history lists), ``2026-11-26 11:26:54.628
    UTC`` (:func:`readable_rev`)."""
    if rev == ZERO_REV:
        return "-"
    dt = to_datetime(rev)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d} UTC"


_UTC_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
"""A time stored in whole seconds, in UTC (how the app and the hub write them)."""


def display_datetime(value: str) -> str:
    """A ``datetime`` field's stored text as the record form shows it, in UTC:
    ``2026-09-02T07:36:00Z`` -> ``2026-09-02 07:36:00 UTC`` (the milliseconds, when not zero,
    after the seconds: ``07:36:12.345``); a value that is not RFC 3339 as it is.

    A value stored in whole seconds in UTC is its own text rearranged, once its date and
    time are checked (``datetime.fromisoformat``, in C): the filter formats every row it
    reads this way, and the parse and format took about 6 µs a row (a date text's filter
    1.59x slower in session 8). Others take the full parse (:func:`_display_parsed`)."""
    if len(value) == 20 and _UTC_SECONDS.fullmatch(value):
        try:
            datetime.fromisoformat(value)  # the ranges: month, day (leap years), 24:00, :60
        except ValueError:
            return value  # parse_rev refuses it too: shown as stored
        return f"{value[:10]} {value[11:19]} UTC"
    return _display_parsed(value)


def _display_parsed(value: str) -> str:
    """:func:`display_datetime` by a full parse (any offset, fraction or case)."""
    try:
        dt = to_datetime(parse_rev(value))
    except (ValueError, OverflowError):
        return value
    ms = dt.microsecond // 1000
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}{f'.{ms:03d}' if ms else ''} UTC")


def display_value(f: Field | None, value: Any) -> str:
    """One field value as a table cell."""
    if value is None:
        return ""
    if f is not None and f.type == "bool":
        return "yes" if value else "no"
    if f is not None and f.type == "text" and isinstance(value, str):
        line = value.splitlines()[0] if value else ""
        return line + (" …" if "\n" in value else "")
    if f is not None and f.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if f is not None and f.type == "datetime" and isinstance(value, str):
        return display_datetime(value)
    if isinstance(value, float):
        # the shortest text that reads back as this float, as the form shows it (46.50851,
        # 1e+16, -0.0): "%g" showed 6 significant digits, so 46.50851 and 46.50849 both
        # read 46.5085 (the conflicts view showed mine and theirs alike; session 11)
        return repr(value)
    return str(value)


# -- sync problems and progress, for the status bar and `outpost sync` ----------------------

_URL = re.compile(r"wss?://\S+?(?=:\s|[\s,;]|$)")
_UID = re.compile(r"(?:^|; )[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}: ")
CONFLICTS_KEY = "Ctrl+Shift+C"
"""The conflicts view's shortcut (the window's action; named in the rejection summary)."""


_MORE = re.compile(r"; and ([\d,]+) more: ")


def _named(text: str) -> int:
    """How many edits a rejection's text is about: those it names, and "and N more"
    (session 13: only the first is named, :data:`core.satellite.machine.MORE_REJECTED`)."""
    m = _MORE.search(text)
    return len(_UID.findall(text)) + (int(m.group(1).replace(",", "")) if m else 0)


BAD_HUB_VALUE = "the hub sent a value of the wrong type"
""":func:`stopped_for_good`'s words for a hub serving this schema whose values break it
(``HubDataError``): fixed on the hub, not by a new data directory (:func:`bad_value_steps`)."""


def bad_value_steps(pending: int) -> str:
    """The app's way out of a sync stopped on a hub's values of the wrong type
    (:data:`BAD_HUB_VALUE`): this directory is fine, the hub's data is not."""
    kept = (f", and your {plural(pending, 'edit')} not synced "
            f"{'stays' if pending == 1 else 'stay'} here" if pending else "")
    return ("In the app: nothing needs to change here (nothing of that reply was stored"
            f"{kept}): tell the hub's operator which event is wrong (named above); once the "
            "hub's data is fixed, Sync now (F5) syncs again. If something between this "
            "computer and the hub changes what it sends, use a wss:// hub URL (File → "
            "Connection settings).")


def stopped_for_good(err: str) -> str:
    """Why sync stopped for good with this data directory's hub, in a few words (``"the hub
    has another schema"``: the end of :func:`sync_problem`'s "Sync stopped: ..."), or ``""``
    (no error, or one that is retried or a token away)."""
    short = sync_problem(err)
    return short.removeprefix("Sync stopped: ") if short.startswith("Sync stopped: ") else ""


def new_dir_steps(err: str, old: str, pending: int) -> str:
    """The app's way out of a sync stopped for good (:func:`stopped_for_good` of ``err``):
    a new data directory (File → Connection settings, the token given again: each
    directory keeps its own, ``config.json``), then ``outpost carry`` of the ``pending``
    edits of ``old`` (the app has no carry; ``--accepted``/``--rejected`` as ``err``
    advises). Session 15: the app showed only the command line's words."""
    flags = "".join(f" {f}" for f in ("--accepted", "--rejected") if f" {f}" in err)
    return (
        "In the app: File → Connection settings…: set Data directory to a new, empty folder "
        "and enter your token again (each data directory keeps its own), Connect, then quit "
        "and start Outpost again: the new directory gets the hub's records. This one, "
        f"{old}, stays as it is"
        + (f", with your {pending:,} edit{'s' if pending != 1 else ''} not synced" if pending
           else "")
        + "; the app cannot carry edits yet: in a terminal, `outpost carry "
        f"{old} --data NEW_FOLDER{flags}` copies them into the new one "
        "(docs/guide.md, \"When a message appears\")")


def sync_problem(err: str, retry_in: float | None = None, rejected: int | None = None) -> str:
    """A sync error (``SatStatus.last_error``: the problem and the fix, often long) as one
    short plain line naming the problem: ``Hub unreachable: ws://h:8765 — retrying in 8 s``,
    ``1 edit rejected by the hub: see Conflicts (Ctrl+Shift+C)``. ``retry_in``: seconds
    until the next attempt (None: no retry waiting). ``rejected``: the rejected edits waiting
    in the conflicts inbox (``SatStatus.conflicts``), counted in a rejection's summary as
    "Conflicts: N" counts them (the error itself names only the last reply's); None: the
    edits the error names. "" when there is no error."""
    text = " ".join(err.split())
    if not text:
        return ""
    low = text.lower()
    m = _URL.search(text)
    url = m.group(0) if m else ""
    retry = retry_in is not None
    if low.startswith("rejected by the hub:"):
        n = rejected or _named(text[len("rejected by the hub:"):].lstrip())
        what = f"{n} edit{'s' if n != 1 else ''}" if n else "Edits"
        return f"{what} rejected by the hub: see Conflicts ({CONFLICTS_KEY})"
    if text.startswith(NOT_SENT.strip()):
        # found here, never sent (a daql hub would have overwritten a newer change): not
        # "rejected by the hub" (session 12)
        n = _named(text[len(NOT_SENT.strip()):].lstrip())
        what = f"{n} edit{'s' if n != 1 else ''}" if n else "Edits"
        return (f"{what} not sent: {'it conflicts' if n == 1 else 'they conflict'} with a "
                f"newer change; see Conflicts ({CONFLICTS_KEY})")
    if "refused the token" in low:
        short = "Hub refused the token: File → Connection settings"
    elif "cannot reach the hub" in low:
        short = f"Hub unreachable: {url}" if url else "Hub unreachable"
    elif "refused the connection" in low:
        code = re.search(r"HTTP \d+", text)
        short = "Hub refused the connection" + (f" ({code.group(0)})" if code else "")
    elif "did not answer" in low:
        short = "Hub not answering" + (f": {url}" if url else "")
    elif low.startswith("the connection to") and "closed" in low:
        short = "Connection to the hub closed"
    elif "schema version" in low and "differs" in low:
        short, retry = "Sync stopped: the hub has another schema", False
    elif "came from another ledger" in low:
        short, retry = "Sync stopped: the hub holds another ledger", False
    elif "the hub lost or reused" in low:
        short, retry = "Sync stopped: the hub lost revisions this replica holds", False
    elif "restored from a backup" in low:
        short, retry = "Sync stopped: the hub was restored from an older backup", False
    elif "with a value this satellite's schema refuses" in low:
        # HubDataError of a hub serving this schema: stopped for good, not a disk's error
        # (session 16: "Storage error on this computer", and pending records "waiting")
        short, retry = f"Sync stopped: {BAD_HUB_VALUE}", False
    elif "behind this replica" in low or "at which it accepted an edit of this replica" in low:
        short = "Hub is behind this replica"
    elif low.startswith("hub refused the edits"):
        # not "they stay pending": true until the user discards them (final review 10)
        short, retry = ("Hub refused your edits (read-only): discard them, or use a writer "
                        "token"), False
    elif low.startswith("hub refused"):
        short = "Hub refused the request"
    elif low.startswith("bad ") and "from the hub" in low:
        short = "Bad reply from the hub"
    elif low.startswith(HUB_DB_DOWN):
        short = "Hub's database unavailable: sync waits for it"
    elif "could not answer" in low:
        short = "Hub could not read its ledger"
    elif low.startswith("storing") and "failed" in low:
        short = "Storage error on this computer"
    else:
        head = text.split(": ", 1)[0]
        short = head[:1].upper() + head[1:]
        if len(short) > 60:
            short = short[:59].rstrip() + "…"
    if retry and retry_in is not None:
        short += f" — retrying in {max(1, round(retry_in))} s"
    return short


class CatchupMeter:
    """Progress of a catch-up from successive statuses: events so far, their rate, and the
    share done (:attr:`fraction`): events received of the events the hub said the catch-up
    holds (``total_max``, session 9), or, from a hub that does not say (daql, older Outpost),
    how far the replica got towards the hub's revision. Revisions are times, so that share is
    of the time span, not of the events (a burst of edits counts as an instant): until
    session 10 the bar moved by it even when the count was known. Feed it every status
    (:meth:`update`)."""

    def __init__(self) -> None:
        self.start: float | None = None   # clock time the catch-up began (seen syncing)
        self.start_rev: Rev = ZERO_REV
        self.done = 0
        self.total = 0                    # at most this many events (the hub said; 0: unknown)
        self.rate = 0.0                   # events a second (0 until a second has passed)
        self.fraction: float | None = None  # 0..1 of the events or the span; None: unknown

    def update(self, st: Any, now: float) -> bool:
        """Take a status (``SatStatus``) at clock time ``now`` (seconds); True while a
        catch-up runs."""
        if not st.syncing:
            if self.start is not None:  # the last reply's events count too
                self.done = max(self.done, st.progress[0])
                if st.progress[1]:  # caught up: all it held came ("of N" is what came)
                    self.total = st.progress[1]
            self.start = None
            return False
        if self.start is None:
            self.start, self.start_rev = now, st.rev
            self.done, self.total, self.rate, self.fraction = 0, 0, 0.0, None
        if self.start_rev == ZERO_REV:
            self.start_rev = st.rev  # an empty replica: the span starts at its first batch
        self.done = max(self.done, st.progress[0])
        self.total = max(self.total, st.progress[1]) if st.progress[1] else self.total
        elapsed = now - self.start
        self.rate = self.done / elapsed if elapsed >= 1.0 else 0.0
        if self.total:  # the hub said how many: the share of the events received
            self.fraction = min(1.0, self.done / self.total)
            return True
        span = st.hub_rev - self.start_rev
        self.fraction = (min(1.0, max(0.0, (st.rev - self.start_rev) / span))
                         if span > 0 and self.start_rev and self.done else None)
        return True

    def text(self) -> str:
        """``12,000 of 100,000 events, 3,400/s, about 26 s left``: "of N" when the hub said
        how many (its count is at most that many), the rate and the time left once known."""
        of = left = ""
        if self.total > self.done:  # all there: "600 events", not "600 of 600"
            of = f" of {self.total:,}"
            if self.rate:
                left = f", about {_duration((self.total - self.done) / self.rate)} left"
        rate = f", {self.rate:,.0f}/s" if self.rate else ""
        return f"{self.done:,}{of} event{'' if self.done == 1 and not of else 's'}{rate}{left}"

    def short(self) -> str:
        """``12,000 of 100,000 events · 26 s left``: :meth:`text` without the rate, for the
        status bar's narrow progress bar (the whole text is in its tooltip)."""
        if self.total > self.done:
            left = (f" · {_duration((self.total - self.done) / self.rate)} left"
                    if self.rate else "")
            return f"{self.done:,} of {self.total:,} events{left}"
        return f"{self.done:,} event{'' if self.done == 1 else 's'}"

    def shortest(self) -> str:
        """``12% · 26 s left``: for a bar too narrow for :meth:`short` (its share done)."""
        pct = f"{int((self.fraction or 0.0) * 100)}%"
        if self.total > self.done and self.rate:
            return f"{pct} · {_duration((self.total - self.done) / self.rate)} left"
        return pct

    def detail(self, st: Any) -> str:
        """The line for a tooltip or a terminal: events, rate, and the revision reached."""
        where = (f"; stored up to {readable_rev(st.rev)}, the hub is at "
                 f"{readable_rev(st.hub_rev)}" if st.rev and st.hub_rev else "")
        return f"catching up: {self.text()}{where}"


def _duration(s: float) -> str:
    """``26 s``, ``4 min``, ``1 h 5 min``: a time left, rounded up to what a reader needs."""
    if s < 90:
        return f"{max(1, math.ceil(s))} s"
    m = math.ceil(s / 60)
    return f"{m} min" if m < 90 else f"{m // 60} h {m % 60} min"


def plural(n: int, one: str, many: str = "") -> str:
    """``n`` and the word for that many: "1 row", "2 rows", "0 rows" (``many``: a plural
    that is not ``one`` + "s", e.g. "1 entry", "2 entries")."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"
