"""Drafts: a form's unsaved typing kept in the data directory (``drafts.json``), written a
moment after each edit (and when the app is told to stop by SIGTERM: a session manager logging
out, a shutdown, ``kill``, where nobody may be there to answer Save / Discard / Cancel), and
removed once the form is saved or reverted. The next start, after a SIGTERM or a crash (kill
-9, a flat battery), puts it back in the form, unsaved. No Qt here.

Why a draft, not a save: a save publishes an edit the user did not confirm (it goes to the
hub at the next sync, and may not even be valid yet); dropping the typing loses work. A
draft loses nothing and sends nothing: the user sees it again and decides.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import StorageError

__all__ = ["DRAFTS_FILE", "Draft", "load_drafts", "save_drafts"]

DRAFTS_FILE = "drafts.json"


@dataclass(frozen=True)
class Draft:
    """One form's unsaved typing: its topic and key, whether it is a new record, the
    revision it was loaded at (``base``, ``format_rev``: the save's base, so a change made
    meanwhile is a conflict), the fields the user changed (as the form gives them), and
    the text typed in fields whose value is not valid yet (``raw``: "46.1x" in a number
    field; kept as typed since review 10, it was dropped)."""

    topic: str
    key: str
    new: bool
    base: str
    fields: dict[str, Any]
    raw: dict[str, str] = field(default_factory=dict)


def save_drafts(path: Path, drafts: list[Draft]) -> None:
    """Write ``drafts`` to ``path`` atomically (mode 0600; none: the file is removed).

    Raises:
        StorageError: it cannot be written (e.g. a full disk).
    """
    if not drafts:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    text = json.dumps([asdict(d) for d in drafts], ensure_ascii=False, default=str)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        raise StorageError(f"cannot keep the unsaved changes in {path}: "
                           f"{exc.strerror or exc}") from exc


def load_drafts(path: Path) -> list[Draft]:
    """The drafts kept in ``path`` ([] when none, or when the file cannot be read: it is
    left as it is for the user to look at)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        return [Draft(str(d["topic"]), str(d["key"]), bool(d["new"]), str(d["base"]),
                      dict(d["fields"]), {str(k): str(v) for k, v in d.get("raw", {}).items()})
                for d in items]
    except (OSError, ValueError, KeyError, TypeError):
        return []
