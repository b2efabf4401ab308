"""Turning field values and revisions into text people read (one place, used by every view)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.revision import ZERO_REV, Rev, to_datetime
from core.schema import Field

__all__ = ["compact_rev", "display_value", "readable_rev", "short_rev"]


def readable_rev(rev: Rev) -> str:
    """A revision as local time, ``2026-11-26 12:26:54``; "never" for the zero revision."""
    if rev == ZERO_REV:
        return "never"
    return to_datetime(rev).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def compact_rev(rev: Rev) -> str:
    """A revision as local time; only the time of day when it is today."""
    if rev == ZERO_REV:
        return "never"
    dt = to_datetime(rev).astimezone()
    if dt.date() == datetime.now().astimezone().date():
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M")


def short_rev(rev: Rev) -> str:
    """A revision as local time with milliseconds (for history lists)."""
    if rev == ZERO_REV:
        return "-"
    dt = to_datetime(rev).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


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
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
