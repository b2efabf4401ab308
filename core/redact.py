"""A logging filter that keeps hub tokens and record values out of every log line, at every
level.

websockets logs the opening handshake's headers at DEBUG (``--log-level DEBUG``), the
``Authorization`` header included (``Bearer``, ``Token``, ``Basic``, ... and
``Proxy-Authorization``: the whole value is redacted, whatever its scheme); a token in a URL
(``?token=``) would be logged with the URL. It also logs every frame it sends and receives
(``> TEXT '<the first ~75 characters>' [N bytes]``): a data frame's body holds record values
(docs/protocol.md: bodies are never logged), so such lines keep only the frame's kind and
size (``> TEXT [N bytes]``). :class:`RedactTokens` rewrites such records before any handler
sees them.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "RedactTokens", "install", "redact"]

REDACTED = "[redacted]"

_PATTERNS = (
    # the header's whole value, whatever its scheme: "Authorization: Bearer T",
    # "Proxy-Authorization: Basic B64", "('Authorization', 'Token T')"
    (re.compile(r"(authorization['\"]?\s*[:,=]\s*['\"]?)[^\r\n'\"]+", re.I),
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


_DATA_FRAMES = ("TEXT", "BINARY", "CONT")


def _frame_line(record: logging.LogRecord) -> str | None:
    """A websockets frame line (``"> %s"`` with a Frame) of a data frame, without its body."""
    if record.msg not in ("> %s", "< %s") or not isinstance(record.args, tuple) \
            or len(record.args) != 1:
        return None
    frame = record.args[0]
    kind = getattr(getattr(frame, "opcode", None), "name", None)
    data = getattr(frame, "data", None)
    if kind not in _DATA_FRAMES or not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    fin = "" if getattr(frame, "fin", True) else " (continued)"
    return f"{str(record.msg)[0]} {kind} [{len(data)} bytes]{fin}"


class RedactTokens(logging.Filter):
    """Rewrite a record's message (and its exception text) without tokens, and a data
    frame's line without its body."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = _frame_line(record)
        if line is not None:
            record.msg, record.args = line, None
            return True
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
