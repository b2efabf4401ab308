"""Identifiers made on the client: UUIDv7 record keys and transaction uids; and
:func:`clean_key`, for identifiers a user types or pastes.

Records are created offline, so their keys must be unique without asking the hub. UUIDv7
(RFC 9562) puts a millisecond timestamp in front of 74 random bits: keys are unique, and sort
roughly by creation time, which keeps B-tree inserts local.
"""

from __future__ import annotations

import os
import threading
import time
import unicodedata
import uuid

__all__ = ["clean_key", "new_key", "new_uid", "uuid7"]


_RAND_BITS = 74  # rand_a (12) and rand_b (62)
_RAND_MASK = (1 << _RAND_BITS) - 1
_STEP_BITS = 32  # the most a key made in the same millisecond adds to the last one's bits
_last = (0, 0)  # (ms, 74 random bits) of the last key made here from the clock
_last_lock = threading.Lock()


def uuid7(ms: int | None = None, rand: int | None = None) -> uuid.UUID:
    """A version 7 UUID for the given Unix time in milliseconds (default: now).

    Made from the clock (``ms`` not given), the keys of one process increase (RFC 9562,
    6.2, method 2, "monotonic random"): a key made in the same millisecond as the last one
    has that one's random bits plus a random step (1 to 2**32), and a clock set back (a
    laptop's, corrected; a DST change does not move Unix time) does not make keys sort
    before the last one: they stay at its millisecond, stepping on, until the clock catches
    up. Review 16: the records an import made in one millisecond sorted shuffled in key
    order (the table, ``show``, ``export``). Still unique: 74 random bits, or more than a
    2**41 keys in one millisecond before it carries into the next.

    Args:
        ms: Unix time in milliseconds (given: exactly that, not made monotonic).
        rand: 80 random bits (default: from ``os.urandom``); pass them only to make
            deterministic keys, e.g. for demo data made from a seeded generator.
    """
    global _last
    if ms is None:
        now = time.time_ns() // 1_000_000
        with _last_lock:
            last_ms, last_rand = _last
            if now > last_ms:
                ms = now
                bits = int.from_bytes(os.urandom(10), "big") if rand is None else rand
                # the top bit clear: room for 2**73 of steps in this millisecond
                r = bits & (_RAND_MASK >> 1)
            else:
                ms = last_ms
                step = int.from_bytes(os.urandom(4), "big") + 1 if rand is None else (
                    rand & ((1 << _STEP_BITS) - 1)) + 1
                r = last_rand + step
                if r > _RAND_MASK:  # the millisecond is full: the next one
                    ms, r = ms + 1, int.from_bytes(os.urandom(10), "big") & (_RAND_MASK >> 1)
            _last = (ms, r)
    else:
        if rand is None:
            rand = int.from_bytes(os.urandom(10), "big")
        r = rand & _RAND_MASK
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= (r >> 62) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # variant
    value |= r & 0x3FFF_FFFF_FFFF_FFFF  # rand_b: 62 bits
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
