"""Identifiers made on the client: UUIDv7 record keys and transaction uids; and
:func:`clean_key`, for identifiers a user types or pastes.

Records are created offline, so their keys must be unique without asking the hub. UUIDv7
(RFC 9562) puts a millisecond timestamp in front of 74 random bits: keys are unique, and sort
roughly by creation time, which keeps B-tree inserts local.
"""

from __future__ import annotations

import os
import time
import unicodedata
import uuid

__all__ = ["clean_key", "new_key", "new_uid", "uuid7"]


def uuid7(ms: int | None = None, rand: int | None = None) -> uuid.UUID:
    """A version 7 UUID for the given Unix time in milliseconds (default: now).

    Args:
        ms: Unix time in milliseconds.
        rand: 80 random bits (default: from ``os.urandom``); pass them only to make
            deterministic keys, e.g. for demo data made from a seeded generator.
    """
    if ms is None:
        ms = time.time_ns() // 1_000_000
    if rand is None:
        rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b: 62 bits
    return uuid.UUID(int=value)


def new_key() -> str:
    """A new record key: a UUIDv7 in canonical text form."""
    return str(uuid7())


def new_uid() -> str:
    """A new transaction uid (made when the user makes the edit)."""
    return str(uuid7())


def _invisible(c: str) -> bool:
    """A character that shows as nothing: a space of any kind, a control or a format
    character (zero-width space U+200B, byte-order mark U+FEFF, ...)."""
    return c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def clean_key(text: str) -> str:
    """A key (or a transaction uid) typed or pasted by the user without the spaces and
    invisible characters around it: a spreadsheet's stray ones made a look-alike new record.

    The one place every user-typed identifier goes through: ``outpost pub``'s KEY, a CSV's
    keys, a ``ref`` field's text (:meth:`core.schema.Field.parse_text`), ``outpost show`` /
    ``history``'s KEY and ``outpost resolve``'s UID. Keys that come from the hub or the
    replica are never cleaned (a record whose key has such characters stays reachable)."""
    if text and "!" <= text[0] <= "~" and "!" <= text[-1] <= "~":
        return text  # visible ASCII at both ends: the common case, nothing to look up
    i, j = 0, len(text)
    while i < j and _invisible(text[i]):
        i += 1
    while j > i and _invisible(text[j - 1]):
        j -= 1
    return text[i:j]
