"""A logging filter that keeps hub tokens out of every log line, at every level.

websockets logs the opening handshake's headers at DEBUG (``--log-level DEBUG``), the
``Authorization: Bearer <token>`` header included; a token in a URL (``?token=``) would be
logged with the URL. :class:`RedactTokens` rewrites such records before any handler sees
them.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "RedactTokens", "install", "redact"]

REDACTED = "[redacted]"

_PATTERNS = (
    # the header, whatever its scheme: "Authorization: Bearer T", "('Authorization', 'T')"
    (re.compile(r"(authorization['\"]?\s*[:,=]\s*['\"]?)(?:bearer\s+)?[^\s'\",)]+", re.I),
     r"\1" + REDACTED),
    (re.compile(r"(bearer\s+)[^\s'\",)]+", re.I), r"\1" + REDACTED),
    (re.compile(r"([?&]token=)[^\s&'\"#]+", re.I), r"\1" + REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every bearer token and ``token=`` value replaced by ``[redacted]``."""
    low = text.lower()
    if "bearer" not in low and "authorization" not in low and "token=" not in low:
        return text
    for pat, repl in _PATTERNS:
        text = pat.sub(repl, text)
    return text


class RedactTokens(logging.Filter):
    """Rewrite a record's message (and its exception text) without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactTokens()


def install(*loggers: logging.Logger | logging.Handler) -> None:
    """Add the filter to ``loggers`` (records made there) and handlers (every record they
    output, whichever logger made it); adding it twice is harmless."""
    for x in loggers:
        if _FILTER not in x.filters:
            x.addFilter(_FILTER)
