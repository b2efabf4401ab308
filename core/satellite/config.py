"""The satellite's data directory and its settings.

Layout of a data directory (default: the platform's user data directory for ``outpost``)::

    config.json     hub URL, token, authoritative topics   (mode 0600: it holds the token)
    schema.json     the project the replica follows (fetched from the hub, or given)
    satellite.db    the replica and the local queue (SQLite, WAL)
    outpost.lock    held while a process has the satellite open (:meth:`DataDir.lock`)

The token is never logged and never shown: :meth:`SatConfig.__repr__` masks it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from core.errors import ConfigError, SchemaError
from core.revision import Rev, now_rev
from core.schema import Project, parse_project

__all__ = ["CLOCK_OFFSET_ENV", "DataDir", "SatConfig", "clock_offset_ms", "default_data_dir",
           "sat_clock"]

APP = "outpost"

CLOCK_OFFSET_ENV = "OUTPOST_CLOCK_OFFSET_MS"
"""Environment variable: milliseconds added to the satellite's wall clock (tests, and to
reproduce a field laptop whose clock is wrong). Read here only; the hub never reads it."""


def clock_offset_ms() -> int:
    """The satellite clock's offset from ``OUTPOST_CLOCK_OFFSET_MS`` (0 when unset).

    Raises:
        ConfigError: the value is not an integer.
    """
    raw = os.environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{CLOCK_OFFSET_ENV}={raw!r}: expected an integer number of "
                          "milliseconds, e.g. 86400000 for one day ahead or -86400000 for one "
                          "day behind; unset it to use the system clock") from exc


def sat_clock() -> Rev:
    """The satellite's wall clock as a revision: the system clock plus
    ``OUTPOST_CLOCK_OFFSET_MS``. It only stamps ``created`` of local transactions and the
    status times; the hub orders everything with its own clock (DESIGN §5: satellite clocks
    are never trusted for ordering)."""
    return now_rev() + clock_offset_ms()


def default_data_dir() -> Path:
    """The user data directory for Outpost (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


@dataclass(frozen=True)
class SatConfig:
    """Settings of one satellite."""

    hub: str = ""
    token: str = field(default="", repr=False)
    auth_topics: tuple[str, ...] = ()

    def __repr__(self) -> str:
        tok = "***" if self.token else ""
        return f"SatConfig(hub={self.hub!r}, token={tok!r}, auth_topics={self.auth_topics!r})"

    def with_hub(self, hub: str, token: str | None = None) -> SatConfig:
        return replace(self, hub=hub, token=self.token if token is None else token)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DataDir:
    """A satellite's data directory (created on first use)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_data_dir()

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def schema_file(self) -> Path:
        return self.path / "schema.json"

    @property
    def db_file(self) -> Path:
        return self.path / "satellite.db"

    @property
    def lock_file(self) -> Path:
        return self.path / "outpost.lock"

    def lock(self) -> FileLock:
        """Take the directory for this process: one process at a time writes a satellite.

        The satellite keeps the replica's revision and the open part of the queue in memory,
        so a second process writing the same directory (the app and ``outpost sync`` at once)
        would leave the first one's view, and the base revision of its next edits, stale. The
        operating system drops the lock when the process ends, even on ``kill -9``. Release
        it with ``release()``.

        Raises:
            ConfigError: another process has the directory open.
        """
        self.ensure()
        # thread_local=False: a satellite may be closed on another thread than it was opened
        lk = FileLock(self.lock_file, timeout=0, thread_local=False)
        try:
            lk.acquire()
        except Timeout:
            raise ConfigError(
                f"the data directory {self.path} is in use by another Outpost process (the "
                "app, or `outpost sync`): close it first, or pass --data DIR to use another "
                "satellite") from None
        except PermissionError as exc:
            raise ConfigError(f"the data directory {self.path} is not writable for this user "
                              f"({exc.strerror}): make it writable, or pass --data DIR to use "
                              "another satellite (the read-only commands status, show, "
                              "history, conflicts and export work here)") from exc
        except OSError as exc:
            raise ConfigError(f"cannot lock {self.lock_file}: {exc}; check the directory's "
                              "permissions, or pass --data DIR") from exc
        return lk

    def check_readable(self) -> None:
        """For readers, which create nothing: the directory must exist already.

        Raises:
            ConfigError: it does not exist, or is a file.
        """
        if self.path.is_dir():
            return
        self._not_a_file()
        raise ConfigError(f"there is no data directory {self.path}: run `outpost connect URL "
                          f"--data {self.path}` to make one, or pass --data DIR with an "
                          "existing satellite's directory")

    def _not_a_file(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a data directory: pass --data DIR "
                              "with a directory (it is created when missing)")

    def ensure(self) -> None:
        self._not_a_file()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the data directory {self.path}: {exc}; "
                              "choose another with --data DIR") from exc

    def load_config(self) -> SatConfig:
        """The stored settings (defaults when there is no config file)."""
        try:
            raw = self.config_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SatConfig()
        except OSError as exc:
            raise ConfigError(f"cannot read {self.config_file}: {exc.strerror or exc}: check "
                              "its permissions (it is private to the user who made it), or "
                              "pass --data DIR") from exc
        try:
            data: Any = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return SatConfig(str(data.get("hub", "")), str(data.get("token", "")),
                             tuple(str(t) for t in data.get("auth_topics", ())))
        except ValueError as exc:
            raise ConfigError(f"{self.config_file} is not a valid config ({exc}): fix it or "
                              "delete it and run `outpost connect URL` again") from exc

    def save_config(self, cfg: SatConfig) -> None:
        """Store the settings with mode 0600 (the file holds the token)."""
        self.ensure()
        data = {"hub": cfg.hub, "token": cfg.token, "auth_topics": list(cfg.auth_topics)}
        try:
            _write_private(self.config_file, json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {self.config_file}: {exc}") from exc

    def load_project(self) -> Project | None:
        """The stored schema, or ``None`` when the satellite has none yet."""
        try:
            raw = self.schema_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.schema_file}: {exc.strerror or exc}: check "
                              "its permissions (it is private to the user who made it), or "
                              "pass --data DIR") from exc
        try:
            return parse_project(json.loads(raw), str(self.schema_file))
        except (ValueError, SchemaError) as exc:
            raise ConfigError(f"{self.schema_file} holds no valid schema ({exc}): delete it "
                              "and run `outpost connect URL` to fetch the hub's") from exc

    def save_project(self, project: Project) -> None:
        self.ensure()
        try:
            _write_private(self.schema_file, json.dumps(project.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {self.schema_file}: {exc}") from exc
