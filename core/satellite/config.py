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
from urllib.parse import parse_qsl, urlsplit

from filelock import FileLock, Timeout

from core.errors import ConfigError, SchemaError
from core.redact import redact
from core.revision import Rev, now_rev
from core.satellite.machine import MAX_INCOMING, MAX_REPLY_MIB, MIB
from core.schema import Project, parse_project

__all__ = ["CLOCK_OFFSET_ENV", "TOKEN_ENV", "DataDir", "SatConfig", "check_hub_url",
           "clear_text_warning", "clock_offset_ms", "data_root", "default_data_dir",
           "given_token", "other_default_replica", "sat_clock", "write_private"]

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


_SECRET_KEYS = frozenset({"token", "access_token", "password", "auth", "bearer"})


def check_hub_url(url: str) -> None:
    """Check that ``url`` can name a hub (``ws://host[:port]`` or ``wss://...``), before
    anything is stored or created for it.

    Raises:
        ConfigError: it cannot.
    """
    try:
        u = urlsplit(url)
        ok = u.scheme in ("ws", "wss") and bool(u.hostname) and url.isprintable() \
            and not any(c.isspace() for c in url)
        _ = u.port  # ValueError when the port is not a number in 0-65535
    except ValueError:
        ok = False
    if ok and any(k.strip().lower() in _SECRET_KEYS
                  for k, _ in parse_qsl(u.query + "&" + u.fragment, keep_blank_values=True)):
        # never echoed: the URL holds a secret; it would be stored and shown, and hubs
        # take the token only in the Authorization header
        raise ConfigError("a hub URL carries no token (?token=...): give the URL as "
                          "ws://host:port and the token with --token=T")
    if ok and (u.username is not None or u.password is not None):
        # it would be stored in config.json and shown by `outpost status` and in errors
        raise ConfigError("a hub URL carries no user name or password: give the URL as "
                          "ws://host:port and the token with --token T")
    if not ok:
        raise ConfigError(f"{redact(url)!r} is not a hub URL: expected ws://host:port or "
                          "wss://host:port, e.g. ws://192.168.1.20:8765 (ask the hub's "
                          "operator for it)")


TOKEN_ENV = "OUTPOST_TOKEN"
"""Environment variable: the hub token for ``outpost connect`` and ``outpost app`` when
neither ``--token`` nor ``--token-file`` is given (kept out of ``ps`` and shell history)."""


def given_token(token: str | None, token_file: str | None, stdin: Any = None,
                env: dict[str, str] | None = None) -> str | None:
    """The token a command was given: ``--token T``; ``--token -`` (the first line of
    ``stdin``); ``--token-file FILE`` (its first line); else ``$OUTPOST_TOKEN``; else
    ``None``. Only ``--token T`` shows the token to other users of the machine (``ps``) and
    keeps it in the shell's history (security review 15).

    Raises:
        ConfigError: both options, an unreadable or empty file, nothing on stdin.
    """
    if token is not None and token_file is not None:
        raise ConfigError("--token and --token-file both given: give one")
    if token == "-":
        line = (stdin.readline() if stdin is not None else "").strip()
        if not line:
            raise ConfigError("--token -: no token on standard input: pipe it in, e.g. "
                              "`outpost connect URL --token - < token.txt`")
        return str(line)
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                line = f.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {token_file}: "
                              f"{getattr(exc, 'strerror', None) or exc}: give a readable "
                              "file holding the token on its first line") from exc
        if not line:
            raise ConfigError(f"the token file {token_file} is empty: put the token from "
                              "`outpost-hub user add NAME` on its first line")
        return line
    if token is not None:
        return token
    value = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    return value or None


def clear_text_warning(url: str, has_token: bool) -> str | None:
    """What to say when ``url`` sends a token unencrypted over a network (``ws://`` to a
    host that is not loopback), else ``None``."""
    if not has_token or not url.startswith("ws://"):
        return None
    import ipaddress

    host = urlsplit(url).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host.lower() == "localhost":
            return None
    return (f"warning: {redact(url)} is ws:// (no TLS): your token and every record cross "
            "the network in clear text, readable and changeable by anyone on the way; ask "
            "the hub's operator for a wss:// address (docs/deployment.md)")


def data_root() -> Path:
    """Outpost's folder in the user data directory (platformdirs): the default satellite,
    the app's other profiles (``ROOT/NAME``) and the demo (``ROOT/demo``) live in it."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


_DB_NAME = "satellite.db"


def default_data_dir() -> Path:
    """The default satellite's data directory: the same for the CLI (no ``--data``) and the
    app's "default" profile, so ``outpost connect`` followed by ``outpost`` opens one replica.

    It is the data root itself, or ``ROOT/default`` when only that holds a replica: the app
    kept its default profile there before session 9, and that replica stays in use.
    """
    root = data_root()
    legacy = root / "default"
    if (legacy / _DB_NAME).exists() and not (root / _DB_NAME).exists():
        return legacy
    return root


def other_default_replica() -> Path | None:
    """``ROOT/default`` when it holds a replica beside the data root's own: before session 9
    the CLI kept its replica in the data root and the app in ``ROOT/default``. The data
    root's is the default now; edits not synced in the other are not lost, but no command
    sees them until they are carried over (``outpost carry``)."""
    root = data_root()
    legacy = root / "default"
    if (root / _DB_NAME).exists() and (legacy / _DB_NAME).exists():
        return legacy
    return None


def read_schema_file(path: Path | str) -> Project:
    """The schema a user gives for a hub that serves none (``--schema FILE``: a daql hub):
    a schema file (TOML, docs/schema.md) or a ``schema.json`` as a data directory keeps it
    (the ``dom.project`` form), told apart by its first character.

    Raises:
        ConfigError: the file cannot be read or holds no valid schema (named, with the fix).
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: schema file not found; check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the schema file: {exc}") from exc
    fix = ("give the hub's schema (ask the hub's operator for it): a schema .toml "
           "(docs/schema.md) or a schema.json")
    try:
        if raw.lstrip().startswith("{"):
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return parse_project(data, str(p))
        return parse_project(raw, str(p))
    except (ValueError, SchemaError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigError(f"{p} holds no valid schema ({exc or type(exc).__name__}): "
                          f"{fix}") from exc


@dataclass(frozen=True)
class SatConfig:
    """Settings of one satellite."""

    hub: str = ""
    token: str = field(default="", repr=False)
    auth_topics: tuple[str, ...] = ()
    #: the largest message taken from the hub, in MiB (0: the default,
    #: ``machine.MAX_INCOMING``, 64 MiB); ``"max_reply_mib"`` in config.json, for a daql hub
    #: whose catch-up (one message, however big) is over it (docs/satellite.md)
    max_reply_mib: int = 0

    def __repr__(self) -> str:
        tok = "***" if self.token else ""
        more = f", max_reply_mib={self.max_reply_mib}" if self.max_reply_mib else ""
        return (f"SatConfig(hub={self.hub!r}, token={tok!r}, "
                f"auth_topics={self.auth_topics!r}{more})")

    @property
    def max_incoming(self) -> int:
        """The largest message taken from the hub, in bytes."""
        return self.max_reply_mib * MIB if self.max_reply_mib else MAX_INCOMING

    def with_hub(self, hub: str, token: str | None = None) -> SatConfig:
        return replace(self, hub=hub, token=self.token if token is None else token)


def write_private(path: Path, text: str) -> None:
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


class DataDirUnusable(ConfigError):
    """The data directory named cannot be one (a file, or it cannot be created). Its text
    advises ``--data DIR``; :meth:`in_dialog` names the connection dialog's data directory
    row instead (merge review 14: the first-run dialog said "choose another with --data
    DIR")."""

    def __init__(self, problem: str, cli_fix: str, dialog_fix: str, sep: str = ": "):
        super().__init__(f"{problem}{sep}{cli_fix}")
        self.problem = problem
        self.dialog_fix = dialog_fix
        self.sep = sep

    def in_dialog(self) -> str:
        """The error as a connection dialog says it: its fix is in the dialog."""
        return f"{self.problem}{self.sep}{self.dialog_fix}"


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
        return self.path / _DB_NAME

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
            ConfigError: another process has the directory open; a newer Outpost wrote it
                (:meth:`check_format`).
        """
        self.ensure()
        # thread_local=False: a satellite may be closed on another thread than it was opened
        lk = FileLock(self.lock_file, timeout=0, thread_local=False)
        try:
            lk.acquire()
        except Timeout:
            raise ConfigError(
                f"the data directory {self.path} is in use by another Outpost process (the "
                "app, `outpost sync`, or a command still running, e.g. an `outpost import`): "
                "wait for it to finish or close it, or pass --data DIR to use another "
                "satellite") from None
        except PermissionError as exc:
            raise ConfigError(f"cannot write in the data directory {self.path} "
                              f"({exc.strerror}: {exc.filename}): make it and its files "
                              "writable for this user (another user may have made them), or "
                              "pass --data DIR to use another satellite (the read-only "
                              "commands status, show, history, conflicts and export work "
                              "here)") from exc
        except OSError as exc:
            raise ConfigError(f"cannot lock {self.lock_file}: {exc}; check the directory's "
                              "permissions, or pass --data DIR") from exc
        try:
            self.check_format()  # with the lock: no newer Outpost writes it meanwhile
        except BaseException:
            lk.release()
            raise
        return lk

    def check_readable(self) -> None:
        """For readers, which create nothing: the directory must exist already.

        Raises:
            ConfigError: it does not exist, or is a file; a newer Outpost wrote it
                (:meth:`check_format`).
        """
        if self.path.is_dir():
            self.check_format()
            return
        self.check_not_file()
        raise ConfigError(f"there is no data directory {self.path}: run `outpost connect URL "
                          f"--data {self.path}` to make one, or pass --data DIR with an "
                          "existing satellite's directory")

    def check_format(self) -> None:
        """Refuse a directory a newer Outpost wrote in a data format this one does not know
        (:mod:`core.satellite.dataformat`), before anything is read or changed.

        Raises:
            ConfigError: naming the versions and the fix.
        """
        from core.satellite import dataformat

        dataformat.check(self.db_file)

    def check_not_file(self) -> None:
        """Raises ConfigError when the path names a file (a mistyped --data)."""
        if self.path.exists() and not self.path.is_dir():
            raise DataDirUnusable(f"{self.path} is a file, not a data directory",
                                  "pass --data DIR with a directory (it is created when "
                                  "missing)", "choose a directory above (it is created when "
                                  "missing)")

    def ensure(self) -> None:
        self.check_not_file()
        try:
            # 0700 (session 15): satellite.db holds every record, readable by any local
            # user in a 0755 directory; config.json (the token) was 0600 already. A
            # directory that exists keeps its mode (docs/satellite.md: chmod 700 DIR)
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirUnusable(f"cannot create the data directory {self.path}: {exc}",
                                  "choose another with --data DIR",
                                  "choose another data directory above", "; ") from exc

    def load_config(self) -> SatConfig:
        """The stored settings (defaults when there is no config file).

        Raises:
            ConfigError: the file cannot be read, or is not a config (JSON with ``hub`` and
                ``token`` strings and a list of ``auth_topics`` strings).
        """
        try:
            raw = self.config_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SatConfig()
        except OSError as exc:
            raise ConfigError(f"cannot read {self.config_file}: {exc.strerror or exc}: check "
                              "its permissions (it is private to the user who made it), or "
                              "pass --data DIR") from exc
        except UnicodeDecodeError as exc:
            raise self._bad_config(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        try:
            data: Any = json.loads(raw)
        except ValueError as exc:
            raise self._bad_config(str(exc)) from exc
        if not isinstance(data, dict):
            raise self._bad_config("expected a JSON object")
        hub, token, topics = data.get("hub", ""), data.get("token", ""), data.get("auth_topics", [])
        if not isinstance(hub, str):
            raise self._bad_config(f"hub is {hub!r}, expected a string such as "
                                   "\"ws://host:8765\"")
        if not isinstance(token, str):
            raise self._bad_config("token is not a string")  # never shown: it is a secret
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise self._bad_config(f"auth_topics is {topics!r}, expected a list of topic "
                                   "names such as [\"field.site\"]")
        big = data.get("max_reply_mib", 0)
        if type(big) is not int or not (big == 0 or 1 <= big <= MAX_REPLY_MIB):
            raise self._bad_config(f"max_reply_mib is {big!r}, expected a whole number of MiB "
                                   f"from 1 to {MAX_REPLY_MIB} (or 0: the default, "
                                   f"{MAX_INCOMING // MIB})")
        return SatConfig(hub, token, tuple(topics), big)

    def _bad_config(self, why: str) -> ConfigError:
        return ConfigError(f"{self.config_file} is not a valid config ({why}): fix it, or "
                           "delete it and run `outpost connect URL` again")

    def save_config(self, cfg: SatConfig) -> None:
        """Store the settings with mode 0600 (the file holds the token)."""
        self.ensure()
        data: dict[str, Any] = {"hub": cfg.hub, "token": cfg.token,
                                "auth_topics": list(cfg.auth_topics)}
        if cfg.max_reply_mib:
            data["max_reply_mib"] = cfg.max_reply_mib
        try:
            write_private(self.config_file, json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {self.config_file}: {exc}") from exc

    def load_project(self) -> Project | None:
        """The stored schema, or ``None`` when the satellite has none yet.

        Raises:
            ConfigError: the file cannot be read or holds no valid schema.
        """
        try:
            raw = self.schema_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.schema_file}: {exc.strerror or exc}: check "
                              "its permissions (it is private to the user who made it), or "
                              "pass --data DIR") from exc
        except UnicodeDecodeError as exc:
            raise self._bad_schema(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return parse_project(data, str(self.schema_file))
        # TypeError, AttributeError, KeyError: a value of the wrong type that parse_project
        # does not check itself (e.g. a number as a model's display field)
        except (ValueError, SchemaError, TypeError, AttributeError, KeyError) as exc:
            raise self._bad_schema(str(exc) or type(exc).__name__) from exc

    def _bad_schema(self, why: str) -> ConfigError:
        return ConfigError(f"{self.schema_file} holds no valid schema ({why}): delete it and "
                           "run `outpost connect URL` to fetch the hub's")

    def save_project(self, project: Project) -> None:
        self.ensure()
        try:
            write_private(self.schema_file, json.dumps(project.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {self.schema_file}: {exc}") from exc
