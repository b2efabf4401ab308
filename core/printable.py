"""Text for a terminal: control and format characters escaped.

Record keys made before session 15 (or on a daql hub) may hold ESC, BEL, newlines, tabs or
U+202E; printed raw, ``\\x1b]0;PWNED\\x07\\x1b[2J`` set the terminal's title and cleared
it, and ``line1\\nfake\\tconfirmed\\t{}`` forged a line of ``outpost show``'s tab-separated
output. New keys refuse them (``Model.check_key``); what exists is escaped when printed.
"""

from __future__ import annotations

import unicodedata

__all__ = ["CONTROL_CATEGORIES", "escape_controls", "shown_key"]

CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Control and format characters, line and paragraph separators."""


def _esc(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with every control or format character (but those in ``keep``, e.g.
    ``"\\n\\t"`` for a command's whole output) written as a Python escape (``\\x1b``,
    ``\\u202e``); a backslash is left as it is. The common case (nothing to escape) costs
    one C-level ``isprintable`` per line."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in keep or unicodedata.category(ch) not in CONTROL_CATEGORIES:
            out.append(ch)
        else:
            out.append(_esc(ch))
    return "".join(out)


def shown_key(key: str) -> str:
    """A record key for one field of a line of text output: every control or format
    character escaped, tabs and newlines too."""
    return key if key.isprintable() else escape_controls(key)
