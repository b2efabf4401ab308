"""Profiles in QSettings: hub URL, token and data directory per profile, and the last one used;
the data directories the user chose "Work offline" for (kept across restarts).

The token is stored like the satellite stores it (the user's own settings); it is never
logged: :class:`Profile`'s ``repr`` hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings

from core.satellite.config import default_data_dir

__all__ = ["Profile", "keep_offline", "kept_offline", "last_profile", "load_profile",
           "save_profile", "settings"]

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


def kept_offline(path: Path) -> bool:
    """The user chose "Work offline" for the data directory ``path`` (and did not untick it):
    the app opens it offline."""
    return _dir_key(path) in _offline_dirs(settings())


def keep_offline(path: Path, offline: bool) -> None:
    """Remember the user's "Work offline" choice for the data directory ``path``."""
    s = settings()
    dirs = _offline_dirs(s)
    key = _dir_key(path)
    if offline and key not in dirs:
        dirs.append(key)
    elif not offline and key in dirs:
        dirs.remove(key)
    else:
        return
    s.setValue(_OFFLINE, dirs)
    s.sync()
