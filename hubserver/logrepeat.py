"""A logging filter that keeps one failure from flooding the hub's log.

On a full disk every publish is refused with the same warning (an operator counted 1,418
identical lines in about a second). :class:`RepeatLimit` lets the first warning (or error)
of a kind through, drops the same text (connection numbers aside) for ``window`` seconds, then
lets the next one through with ``(N more like it in the last M s)``; :meth:`flush` logs the
counts still held (at shutdown), each by the logger that dropped them and saying when they
happened, as past events: ``earlier: … (N more like it from HH:MM:SS to HH:MM:SS, held back
by the repeat limit)`` (before session 10 they were logged by ``outpost.hub`` as if the
failure were current). Records below WARNING pass untouched, and so do records marked
``state_change`` (the database failing / working again: one line per change). A peer's port
is not part of what makes a line the same (``from 10.0.0.7:51234``: every connection has its
own).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["RepeatLimit"]

_CONN = re.compile(r"\bconn \d+")
_PORT = re.compile(r"\b(from \S+):\d+\b")
_MAX_KEYS = 1000


class RepeatLimit(logging.Filter):
    """Drop a warning repeated within ``window`` seconds; count it instead."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self._clock = clock
        # (logger, level, text) -> [time of the line let through, repeats dropped since,
        # the last one dropped, wall time of the first and of the last one dropped]
        self._seen: dict[tuple[str, int, str], list[Any]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "state_change", False):
            # a change of state (the database failing / working again) is said each time:
            # logged once per change already, and a dropped "failing" after "works again"
            # left the log's last word wrong (ops review 12)
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        key = (record.name, record.levelno, _PORT.sub(r"\1:N", _CONN.sub("conn N", text)))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            seen[2] = text
            if seen[1] == 1:
                seen[3] = time.time()
            seen[4] = time.time()
            return False
        if seen is not None and seen[1]:
            record.msg = (f"{text} ({int(seen[1]):,} more like it in the last "
                          f"{now - seen[0]:.0f} s)")
            record.args = None
        if len(self._seen) >= _MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
        self._seen[key] = [now, 0, text, 0.0, 0.0]
        return True

    def flush(self) -> None:
        """Log the repeats dropped and not yet counted in a line: one line per kind, by the
        logger that dropped them, as past events with their time span."""
        held = [(k, v) for k, v in self._seen.items() if v[1]]
        self._seen.clear()
        for (name, level, _), (_t, n, text, first, last) in held:
            span = (f"at {_clock(first)}" if n == 1
                    else f"from {_clock(first)} to {_clock(last)}")
            logging.getLogger(name).log(
                level, "earlier: %s (%s more like it %s, held back by the repeat limit; "
                "logged at shutdown)", text, f"{int(n):,}", span)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))
