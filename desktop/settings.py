"""Profiles in QSettings: hub URL and data directory per profile, and the last one used.
The "Work offline" choice is kept in the data directory (``Satellite.work_offline``); until
session 9 it was kept here, by the directory's path: :func:`kept_offline_before` says so once.

Tokens are not in QSettings (its file is world-readable on Linux, mode 0644): they are kept in
``tokens.json`` beside it with mode 0600, as the satellite keeps its own in ``config.json``;
a token an older Outpost left in QSettings moves there on first read. A token is never
logged: :class:`Profile`'s ``repr`` hides it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from PySide6.QtCore import QSettings

from core.errors import ConfigError
from core.satellite.config import (
    DataDir,
    data_root,
    default_data_dir,
    other_default_replica,
    write_private,
)

__all__ = [
    "Profile",
    "dir_token",
    "forget_kept_offline",
    "kept_offline_before",
    "last_profile",
    "load_profile",
    "opened_before",
    "save_profile",
    "settings",
    "token_over",
    "tokens_file",
]

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
    # the hub's schema file when it serves none (a daql hub): read when the data directory
    # has no schema yet, as `outpost app --schema FILE` (File → Connection settings, session 12)
    schema: str = ""

    def __repr__(self) -> str:
        return (f"Profile(name={self.name!r}, hub={self.hub!r}, "
                f"token={'***' if self.token else ''!r}, data_dir={self.data_dir!r}"
                + (f", schema={self.schema!r}" if self.schema else "") + ")")

    @property
    def path(self) -> Path:
        """The data directory: the one given, else the "default" profile's is the CLI's
        default (``outpost`` without ``--data``), another profile's ``ROOT/NAME``. Where the
        app and the CLI each made a default replica before session 9 (``ROOT/default`` and
        ``ROOT``), the app keeps its own: it never switches to another replica unasked (the
        CLI names the two, with ``outpost carry`` to join them)."""
        if self.data_dir:
            return Path(self.data_dir)
        if self.name != "default":
            return data_root() / self.name
        return other_default_replica() or default_data_dir()


def _names(s: QSettings) -> list[str]:
    v = s.value("profiles/names", [])
    if isinstance(v, str):  # QSettings gives a lone string for a one-item list in INI files
        return [v]
    return [str(x) for x in v] if isinstance(v, list) else []


def tokens_file(s: QSettings | None = None) -> Path:
    """Where the profiles' tokens are kept (mode 0600): beside the settings file, or in the
    user config directory where the settings are no file (the Windows registry)."""
    s = s or settings()
    f = Path(s.fileName())
    if f.is_absolute() and f.parent.is_dir():
        return f.with_name("tokens.json")
    import platformdirs

    return Path(platformdirs.user_config_dir(ORG, appauthor=False)) / "tokens.json"


def _read_tokens(path: Path) -> dict[str, dict[str, Any]]:
    """Each profile's token not yet applied to its directory, and ``over``: the token its
    directory held when it was saved (None: unknown, as for one moved out of QSettings)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the app's tokens in {path} ({exc}): delete the file "
                          "and give the token again in File → Connection settings") from exc
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for k, v in data.items():
        if isinstance(v, str):
            v = {"token": v, "over": None}
        if isinstance(v, dict) and isinstance(v.get("token"), str):
            over = v.get("over")
            out[str(k)] = {"token": v["token"], "over": over if isinstance(over, str) else None}
    return out


TOKENS_LOCK_WAIT = 10.0
"""Seconds a save of ``tokens.json`` waits for another process's save to finish."""


def _store_token(s: QSettings, name: str, token: str, over: str | None) -> None:
    """Set (or with ``token`` "" remove) profile ``name``'s entry of ``tokens.json``: read,
    changed and replaced atomically (:func:`write_private`) under a lock on
    ``tokens.json.lock``, so two app processes saving at once do not drop one's entry (a
    read-modify-write without it kept only the last writer's view, session 9)."""
    path = tokens_file(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(path.name + ".lock"), timeout=TOKENS_LOCK_WAIT,
                    thread_local=False)
    try:
        with lock:
            tokens = _read_tokens(path)
            want = {"token": token, "over": over} if token else None
            if tokens.get(name) == want:
                return
            if want is not None:
                tokens[name] = want
            else:
                tokens.pop(name, None)
            write_private(path, json.dumps(tokens, indent=2) + "\n")
    except Timeout as exc:
        raise ConfigError(f"cannot save the app's tokens: {path} stayed locked by another "
                          f"Outpost process for {TOKENS_LOCK_WAIT:.0f} s: try again, or close "
                          "the other Outpost windows") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write the app's tokens to {path}: {exc}") from exc


def token_over(name: str) -> str | None:
    """The token profile ``name``'s directory held when the profile's own token was saved
    (None: unknown). A start applies the profile's token only while the directory still
    holds that one: `outpost connect --token=NEW` since makes the directory's the newer."""
    entry = _read_tokens(tokens_file()).get(name)
    return None if entry is None else entry["over"]


def _move_old_tokens(s: QSettings) -> None:
    """Tokens an older Outpost kept in QSettings, in a file others can read: every
    profile's is moved to :func:`tokens_file`, then removed."""
    names = [n for n in _names(s) if s.contains(f"profile/{n}/token")]
    if not names:
        return
    tokens = _read_tokens(tokens_file(s))
    for n in names:
        legacy = str(s.value(f"profile/{n}/token", ""))
        if legacy and not tokens.get(n):
            _store_token(s, n, legacy, None)
            tokens[n] = {"token": legacy, "over": None}
        s.remove(f"profile/{n}/token")
    s.sync()


def load_profile(name: str) -> Profile | None:
    s = settings()
    if name not in _names(s):
        return None
    _move_old_tokens(s)
    s.beginGroup(f"profile/{name}")
    try:
        hub, data_dir = str(s.value("hub", "")), str(s.value("data_dir", ""))
        schema = str(s.value("schema", ""))
    finally:
        s.endGroup()
    entry = _read_tokens(tokens_file(s)).get(name)
    return Profile(name, hub, entry["token"] if entry else "", data_dir, schema)


def dir_token(p: Profile) -> str:
    """The token of the profile's data directory (``config.json``; "" when none)."""
    dd = DataDir(p.path)
    if not dd.config_file.is_file():
        return ""
    try:
        return dd.load_config().token
    except ConfigError:
        return ""


def _opened_key(path: Path) -> str:
    """How :func:`save_profile` records a directory it opened (absolute, not resolved: a
    missing directory resolves to nothing it was)."""
    return str(Path(path).expanduser().absolute())


def opened_before(p: Profile) -> bool:
    """Whether profile ``p``'s data directory is the one the app last opened for it (so a
    missing one is a drive not plugged in or a folder moved, not a first start): recorded
    by :func:`save_profile` with ``opened`` (session 16; a profile saved before then has
    no record: False)."""
    got = settings().value(f"profile/{p.name}/opened", "")
    return bool(got) and str(got) == _opened_key(p.path)


def save_profile(p: Profile, *, last: bool = True, opened: bool = False) -> None:
    """Remember ``p``. Its token is kept only until its data directory holds it: from then
    on the directory's ``config.json`` is the one token (``outpost connect --token`` there
    changes it for the app too), and a profile never pushes an old token over a newer one.
    ``opened``: its data directory was just opened (:func:`opened_before`)."""
    s = settings()
    held = dir_token(p)
    token = "" if p.token == held else p.token
    _store_token(s, p.name, token, held)  # first: a token that cannot be kept changes nothing
    names = _names(s)
    if p.name not in names:
        names.append(p.name)
    s.setValue("profiles/names", names)
    s.beginGroup(f"profile/{p.name}")
    s.setValue("hub", p.hub)
    s.remove("token")
    s.setValue("data_dir", p.data_dir)
    if p.schema:
        s.setValue("schema", p.schema)
    else:
        s.remove("schema")
    if opened:
        s.setValue("opened", _opened_key(p.path))
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


def kept_offline_before(path: Path) -> bool:
    """Whether the user's settings kept "Work offline" for the data directory ``path`` (as
    sessions 5-8 did): the choice moves once into the directory (``Satellite.work_offline``),
    which keeps it from then on; :func:`forget_kept_offline` once it is stored there."""
    return _dir_key(path) in _offline_dirs(settings())


def forget_kept_offline(path: Path) -> None:
    """Remove the settings' "Work offline" entry of ``path`` (moved into the directory)."""
    s = settings()
    dirs = _offline_dirs(s)
    key = _dir_key(path)
    if key not in dirs:
        return
    dirs.remove(key)
    if dirs:
        s.setValue(_OFFLINE, dirs)
    else:
        s.remove(_OFFLINE)
    s.sync()
