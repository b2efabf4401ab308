"""Identifiers made on the client: UUIDv7 record keys and transaction uids.

Records are created offline, so their keys must be unique without asking the hub. UUIDv7
(RFC 9562) puts a millisecond timestamp in front of 74 random bits: keys are unique, and sort
roughly by creation time, which keeps B-tree inserts local.
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_key", "new_uid", "uuid7"]


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
