"""Text for a terminal: control and format characters escaped.

Record keys made before session 15 (or on a daql hub) may hold ESC, BEL, newlines, tabs or
U+202E; printed raw, ``\\x1b]0;PWNED\\x07\\x1b[2J`` set the terminal's title and cleared
it, and ``line1\\nfake\\tconfirmed\\t{}`` forged a line of ``outpost show``'s tab-separated
output. New keys refuse them (``Model.check_key``); what exists is escaped when printed.
"""

from __future__ import annotations

import unicodedata

__all__ = ["BIDI_CONTROLS", "CONTROL_CATEGORIES", "escape_controls", "shown_key", "unsafe"]

CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
"""Control characters (ESC, BEL, tab, newline...), line and paragraph separators."""

BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
"""The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they
reorder the text printed after them ("Trojan source"). Other format characters are part of
normal writing and stay: the zero-width non-joiner of Persian spelling (U+200C), the joiner
of emoji sequences (U+200D), the soft hyphen, the left-to-right and right-to-left marks
(merge review 15c: every format character was refused, and ``می‌خواهم`` with it)."""


def unsafe(ch: str) -> bool:
    """``ch`` is a control character, a line or paragraph separator or a bidirectional
    embedding/override/isolate: refused in new keys, escaped when printed."""
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in CONTROL_CATEGORIES


def _esc(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with every character :func:`unsafe` finds (but those in ``keep``, e.g.
    ``"\\n\\t"`` for a command's whole output) written as a Python escape (``\\x1b``,
    ``\\u202e``); a backslash is left as it is. The common case (nothing to escape) costs
    one C-level ``isprintable`` per line."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in keep or not unsafe(ch):
            out.append(ch)
        else:
            out.append(_esc(ch))
    return "".join(out)


def shown_key(key: str) -> str:
    """A record key for one field of a line of text output: every character :func:`unsafe`
    finds escaped, tabs and newlines too."""
    return key if key.isprintable() else escape_controls(key)
