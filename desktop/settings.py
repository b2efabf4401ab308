"""Profiles in QSettings: hub URL, token and data directory per profile, and the last one used.
The "Work offline" choice is kept in the data directory (``Satellite.work_offline``); until
session 9 it was kept here, by the directory's path: :func:`take_kept_offline` moves it.

The token is stored like the satellite stores it (the user's own settings); it is never
logged: :class:`Profile`'s ``repr`` hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings

from core.satellite.config import default_data_dir

__all__ = ["Profile", "last_profile", "load_profile", "save_profile", "settings",
           "take_kept_offline"]

ORG = "outpost"


def settings() -> QSettings:
    return QSettings(ORG, "outpost")


@dataclass(frozen=True)
class Profile:
    """Where one satellite lives and which hub it talks to."""

    name: str
    hub: str = ""
    token: str = field(default="", repr=False)
    data_dir: str = ""

    def __repr__(self) -> str:
        return (f"Profile(name={self.name!r}, hub={self.hub!r}, "
                f"token={'***' if self.token else ''!r}, data_dir={self.data_dir!r})")

    @property
    def path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir() / self.name


def _names(s: QSettings) -> list[str]:
    v = s.value("profiles/names", [])
    if isinstance(v, str):  # QSettings gives a lone string for a one-item list in INI files
        return [v]
    return [str(x) for x in v] if isinstance(v, list) else []


def load_profile(name: str) -> Profile | None:
    s = settings()
    if name not in _names(s):
        return None
    s.beginGroup(f"profile/{name}")
    try:
        return Profile(name, str(s.value("hub", "")), str(s.value("token", "")),
                       str(s.value("data_dir", "")))
    finally:
        s.endGroup()


def save_profile(p: Profile, *, last: bool = True) -> None:
    s = settings()
    names = _names(s)
    if p.name not in names:
        names.append(p.name)
    s.setValue("profiles/names", names)
    s.beginGroup(f"profile/{p.name}")
    s.setValue("hub", p.hub)
    s.setValue("token", p.token)
    s.setValue("data_dir", p.data_dir)
    s.endGroup()
    if last:
        s.setValue("profiles/last", p.name)
    s.sync()


def last_profile() -> Profile | None:
    name = settings().value("profiles/last", "")
    return load_profile(str(name)) if name else None


_OFFLINE = "offline/dirs"


def _offline_dirs(s: QSettings) -> list[str]:
    v = s.value(_OFFLINE, [])
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v] if isinstance(v, list) else []


def _dir_key(path: Path) -> str:
    return str(Path(path).expanduser().resolve())


def take_kept_offline(path: Path) -> bool:
    """Whether the user's settings kept "Work offline" for the data directory ``path`` (as
    sessions 5-8 did); the entry is removed, so the choice moves once into the directory
    (``Satellite.work_offline``), which keeps it from then on."""
    s = settings()
    dirs = _offline_dirs(s)
    key = _dir_key(path)
    if key not in dirs:
        return False
    dirs.remove(key)
    if dirs:
        s.setValue(_OFFLINE, dirs)
    else:
        s.remove(_OFFLINE)
    s.sync()
    return True
