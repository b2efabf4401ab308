"""Opening the app on a profile: the last one, a named one, or a first-run dialog."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer

from core.errors import ConfigError, HubError, OutpostError
from core.satellite.client import token_refused
from core.satellite.config import DataDir, DataDirUnusable, check_hub_url, default_data_dir
from desktop.app import (
    SchemaNeeded,
    SchemaOutOfReach,
    WindowSpec,
    check_other_hub,
    ensure_app,
    open_windows,
    run_app,
    use_token,
)
from desktop.mainwindow import MainWindow
from desktop.settings import (
    Profile,
    dir_token,
    last_profile,
    load_profile,
    opened_before,
    save_profile,
    token_over,
)

__all__ = ["launch"]


def _ask(profile: Profile | None, first_run: bool) -> tuple[Profile | None, bool]:
    """The connection dialog as File → Connection settings of a running window opens it
    (``first_run`` False: with its schema file row, session 12); the first-run dialog is
    :func:`_first_run`'s (session 14: it stays open while Connect is tried)."""
    from desktop.widgets.connect import ConnectDialog

    dlg = ConnectDialog(profile, first_run=first_run, in_window=not first_run)
    if not dlg.exec():
        return None, False
    return dlg.profile(), dlg.wants_demo


def _ask_schema(profile: Profile, error: str, schema: Path | None
                ) -> tuple[Profile | None, Path | None]:
    """The connection dialog again, for a hub that serves no schema (daql): ``error`` said,
    and a schema file asked for; (None, None) when cancelled."""
    from desktop.widgets.connect import ConnectDialog

    dlg = ConnectDialog(profile, schema_error=error, schema=schema)
    if not dlg.exec():
        return None, None
    return dlg.profile(), dlg.schema()


def _saved(p: Profile | None) -> Profile | None:
    """A remembered profile as a start uses it: its token (one given in Connection
    settings, not applied to its directory yet) only while the directory still holds the
    token it held then (:func:`token_over`). A newer one there (`outpost connect
    --token=NEW` since) wins: the profile's older one would be checked and, with the hub out
    of reach, stored over it."""
    if p is not None and p.token and (held := dir_token(p)) and token_over(p.name) != held:
        return replace(p, token="")
    return p


def _cli_default() -> Profile | None:
    """The default data directory when `outpost connect` set it up (no profile yet): the app
    opens that replica instead of asking (its token stays in the directory's config.json)."""
    dd = DataDir(default_data_dir())
    if not dd.config_file.is_file():
        return None
    hub = dd.load_config().hub
    return Profile("default", hub) if hub else None


def _own_hub(data: Path) -> str:
    """The hub the data directory ``data`` is connected to (its ``config.json``; "" when
    none: a new directory, or one never connected)."""
    dd = DataDir(data)
    return dd.load_config().hub if dd.config_file.is_file() else ""


def _same_dir(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one data directory."""
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def _given(data: Path | None, hub: str, token: str, profile: str) -> Profile | None:
    """The profile a start opens: the named or last one, with ``--data``/``--hub``/
    ``--token`` over it (None: none yet, and none given)."""
    p = _saved(load_profile(profile) if profile else last_profile())
    if data is None and not hub:
        if not token:
            return p
        # --token alone: for the profile's hub and directory, as File → Connection settings
        # would take it (session 15: it was ignored without a word), checked with the hub
        # while the window opens; none set yet: refused, nothing to use it with
        base = p or (None if profile else _cli_default())
        if base is None or not base.hub:
            where = f"the profile {profile!r} has no hub yet" if profile else \
                "no hub is set yet"
            raise ConfigError(
                f"--token without --hub: {where} to use this token with; nothing was "
                "changed: give the hub too, `outpost app --hub ws://HOST:PORT "
                "--token=TOKEN`, or run `outpost` and enter both in the connection dialog")
        return replace(base, token=token)
    # checked before the profile remembers them: a typo changes nothing
    if hub:
        check_hub_url(hub)
    if data is not None:
        DataDir(data).check_not_file()
    base = p or Profile(profile or "default")
    # --data DIR connected to a hub before: its own hub and token (config.json), not the
    # profile's (session 14: the last profile's hub was checked against DIR's replica);
    # a directory not connected yet takes the profile's
    own = _own_hub(data) if data is not None and not _same_dir(data, base.path) else ""
    use = hub or own or base.hub
    p = Profile(base.name, use,
                token or (base.token if use == base.hub and not own else ""),
                str(data) if data is not None else base.data_dir,
                # the profile's schema file is its hub's: not for another hub
                base.schema if use == base.hub and not own else "")
    return p


def _remembers(data: Path | None, profile: str) -> bool:
    """Whether a start keeps what it opens as the profile (the next plain ``outpost`` opens
    it): always, except ``--data DIR`` without ``--profile`` over a profile (or a replica
    `outpost connect` set up) that has another directory: DIR is opened this once (session
    15: it replaced the profile's directory, so the next plain start opened DIR)."""
    if data is None or profile:
        return True
    saved = last_profile() or _cli_default()
    return saved is None or _same_dir(data, saved.path)


def launch(data: Path | None = None, hub: str = "", token: str = "", profile: str = "",
           schema: Path | None = None) -> int:
    """Open the app: ``--data``/``--hub`` given, else the named or last profile, else ask.
    ``schema``: the hub's schema for a directory that has none (a daql hub serves none).
    ``--data DIR`` alone opens DIR this once (:func:`_remembers`)."""
    ensure_app()
    remember = _remembers(data, profile)
    # the profile a plain start opens, when DIR is opened this once: Connection settings
    # saved in its window leave it as it is (session 16: they made DIR its directory)
    own = None if remember else (last_profile() or _cli_default())
    p = _given(data, hub, token, profile)
    if p is None:
        p = _cli_default()
    first_run = p is None  # the connection dialog asks, in the app's loop (session 14)
    chosen = p or Profile("default")
    # --schema, else the schema file the profile keeps (File → Connection settings)
    given = schema if schema is not None else Path(chosen.schema) if chosen.schema else None
    demo: list[bool] = []

    async def open_chosen() -> list[MainWindow]:
        spec = WindowSpec(chosen.path, chosen.hub, chosen.token, chosen.name, given)
        # remembered once its satellite opened and its settings are stored: settings that
        # were refused (a hub that cannot hold the replica's ledger, an unreachable hub for
        # a new profile) would make every later start fail the same way; a new token is
        # checked while the window is open, and a refused one is not remembered
        return await open_windows(
            [spec], on_settings=lambda w, now=chosen: _settings(w, now, own),
            on_kept=lambda now=chosen: remember and save_profile(now, opened=True))

    async def attempt(p: Profile, picked: Path | None) -> list[MainWindow]:
        nonlocal chosen, given
        chosen, given = p, picked
        return await open_chosen()

    async def start() -> list[MainWindow]:
        nonlocal chosen, given
        if first_run:
            wins, wants_demo = await _first_run(attempt)
            if wants_demo:
                demo.append(True)
            return wins
        make = False  # "Start a new one here": a missing directory is made (_missing)
        for _ in range(100):  # bounded: each round is the user's answer in the dialog
            if not make and _missing(chosen):
                answer, picked = _ask_missing(chosen)
                if answer == "quit":
                    return []  # nothing made, nothing remembered
                if answer == "choose" and picked is not None:
                    chosen = replace(chosen, data_dir=str(picked))
                make = answer == "new"
                continue  # looked at again: still missing, it is asked again
            try:
                return await open_chosen()
            except SchemaNeeded as exc:
                # a daql hub serves no schema: the connection dialog asks for its file (the
                # same checks as --schema FILE); nothing was made or remembered meanwhile
                p, picked = _ask_schema(chosen, exc.in_dialog(), given)
                if p is None:
                    return []  # cancelled: the app ends, nothing changed
                chosen, given = p, picked
        return []

    code = run_app(start)
    if demo and code == 0:  # "Start the demo" in the first-run dialog
        from desktop.demo import run_demo

        return run_demo()
    return code


def _missing(p: Profile) -> bool:
    """Whether ``p``'s data directory is missing although the app opened it for ``p``
    before (:func:`opened_before`): a drive not plugged in, a folder moved or renamed. A
    start must not make a new, empty one there (session 16: it did, synced the hub's data
    and showed "Pending: 0", and the edits not yet sent, in the missing folder, were not
    mentioned); a first start still makes it."""
    return not p.path.exists() and opened_before(p)


def _ask_missing(p: Profile) -> tuple[str, Path | None]:
    """Ask what to do about ``p``'s missing data directory (:func:`_missing`): ``"retry"``
    (the drive plugged in), ``"choose"`` with the folder picked, ``"new"`` (start a new,
    empty one there) or ``"quit"`` (nothing made)."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    box = QMessageBox(QMessageBox.Icon.Warning, "Outpost", missing_text(p))
    retry = box.addButton("Try again", QMessageBox.ButtonRole.AcceptRole)
    choose = box.addButton("Choose the folder…", QMessageBox.ButtonRole.ActionRole)
    new = box.addButton("Start a new one here", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(retry)
    box.exec()
    hit = box.clickedButton()
    if hit is retry:
        return "retry", None
    if hit is new:
        return "new", None
    if hit is choose:
        start = next((str(a) for a in p.path.parents if a.is_dir()), "")
        got = QFileDialog.getExistingDirectory(None, "Where is the data directory now?", start)
        return ("choose", Path(got)) if got else ("retry", None)
    return "quit", None


def missing_text(p: Profile) -> str:
    """What the start says about ``p``'s missing data directory (:func:`_ask_missing`)."""
    return (f"The data directory of the profile {p.name!r}, {p.path}, is missing (it was "
            "opened here before). It holds this profile's replica and any edits not yet "
            "sent to the hub. Nothing was made or changed.\n\n"
            "- On a drive that is not plugged in: plug it in, then Try again.\n"
            "- Moved or renamed: Choose the folder where it is now.\n"
            f"- Start a new one here: a new, empty replica at {p.path}, filled from the "
            "hub; the edits in the missing folder are not in it (open that folder later, "
            "`outpost app --data DIR`, to send them).")


RETRY_MS = 5000
"""How often the first-run dialog tries a hub out of reach again (ms) while it is open."""


async def _first_run(open_profile: Callable[[Profile, Path | None],
                                            Awaitable[list[MainWindow]]]
                     ) -> tuple[list[MainWindow], bool]:
    """The first-run connection dialog, in the app's loop: Connect opens the window while
    the dialog stays open, and a failure is said in it, as a malformed URL is (session 14:
    the dialog closed first; a wrong token or a hub not running ended the app, exit 1, with
    a box telling a GUI user to run `outpost app --hub … --token TOKEN`). A hub out of reach
    is tried again every :data:`RETRY_MS` ms (a new data directory needs its schema once);
    a daql hub gets the schema file row. Gives the windows opened (none: cancelled) and
    whether the demo was chosen. Ctrl+C / SIGTERM close the dialog (``run_app``)."""
    from desktop.widgets.connect import ConnectDialog

    opened: list[MainWindow] = []

    async def attempt(p: Profile) -> str:
        try:
            opened[:] = await open_profile(p, dlg.schema())
        except SchemaNeeded as exc:
            dlg.ask_schema(exc.in_dialog())
            return exc.in_dialog()
        except OutpostError as exc:
            return _said_in_dialog(exc, dlg)
        return ""

    dlg = ConnectDialog(None, first_run=True, attempt=attempt)
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    dlg.finished.connect(lambda r: done.done() or done.set_result(r))
    dlg.open()
    try:
        await done
    finally:
        if dlg.isVisible():  # the start was cancelled (a signal): closed as Cancel
            dlg.reject()
        dlg.deleteLater()
    return opened, dlg.wants_demo


def _said_in_dialog(exc: OutpostError, dlg: Any) -> str:
    """A failed Connect of the first-run dialog, said for the person at the dialog: its
    fix is in the dialog (not `outpost app --token`); a hub out of reach is tried again."""
    cause = exc.__cause__
    for e in (exc, cause):
        if isinstance(e, DataDirUnusable):  # its fix is the dialog's data directory row
            return f"{e.in_dialog()} (nothing was made or remembered)"
    if isinstance(cause, HubError) and token_refused(cause):
        return f"{cause}: enter a valid token above (nothing was made or remembered)"
    if isinstance(exc, SchemaOutOfReach):
        dlg.retry_after(RETRY_MS)
        return (f"{exc.why}. Nothing was made: a new data directory needs the hub's schema "
                f"once before it can work offline. Trying again every {RETRY_MS // 1000} s "
                "while this dialog is open.")
    return str(exc)


def _at_restart(here: Path, chosen: Profile, hub_now: str) -> str:
    """What of the settings ``chosen`` in File → Connection settings waits for the next
    start, said precisely ("": nothing: a new token for the window's own hub is used at
    once). Another hub or data directory means another replica to open: the window keeps
    its own until Outpost is started again."""
    parts = []
    if not _same_dir(chosen.path, here):
        parts.append(f"the data directory {chosen.path}")
    if chosen.hub != hub_now:
        parts.append(f"the hub {chosen.hub}" if chosen.hub else "no hub")
    if not parts:
        return ""
    what = " and ".join(parts)
    return (f"Saved. {what[0].upper()}{what[1:]} "
            + ("take" if len(parts) > 1 else "takes") + " effect when you restart Outpost "
            "(File → Quit, then `outpost`): this window keeps its replica"
            + (f" and syncs with {hub_now}" if hub_now else "") + " until then.")


def _settings(w: MainWindow, current: Profile, own: Profile | None = None) -> None:
    """File → Connection settings of the window ``w`` opened on ``current``. ``own``: the
    profile a plain start opens, when ``w``'s directory was opened this once (``--data DIR``
    alone): settings that keep DIR are DIR's alone (its token is used at once and kept in
    DIR), and the profile keeps its own directory (session 16: saved with DIR, so the next
    plain start opened DIR); another directory chosen there is the profile's, as always."""
    from PySide6.QtWidgets import QMessageBox

    if not current.token:  # the directory holds it (save_profile): shown, and kept as is
        current = replace(current, token=dir_token(current))
    p, _ = _ask(current, first_run=False)
    if p is None:
        return
    chosen = p
    here = w.sat.data.path
    once = own is not None and _same_dir(chosen.path, here)
    kept = f"your profile keeps its own data directory, {own.path}" if own is not None else ""

    async def check_and_save() -> None:
        if once and chosen.hub != w.sat.config.hub:
            # no profile keeps DIR's hub: saved, it would have gone nowhere (or to the
            # profile's own directory)
            w.show_error(
                f"Connection settings not saved: {here} was opened with --data this once, "
                f"so no profile keeps its hub; to connect it to {chosen.hub or 'no hub'}, "
                f"start `outpost app --data {here} --hub URL`; {kept}")
            return
        # the same check as a start with --hub: a hub that cannot hold this replica's
        # ledger is refused before the profile remembers it
        answered = True
        try:
            if chosen.hub and (chosen.hub != current.hub or chosen.path != current.path
                               or chosen.token != current.token):
                # another hub, another directory (its replica may come from elsewhere) or
                # another token (a token the hub refuses replaces nothing)
                dd = DataDir(chosen.path)
                before = dd.load_config().hub if dd.path.is_dir() else ""
                answered = await check_other_hub(
                    dd, WindowSpec(chosen.path, chosen.hub, chosen.token), before,
                    in_window=True)
            # another token for this window's own hub and directory: used at once (session
            # 14: it waited for a restart, and Sync now (F5) was still refused)
            now = (_same_dir(chosen.path, w.sat.data.path) and chosen.hub == w.sat.config.hub
                   and bool(chosen.token) and chosen.token != w.sat.config.token)
            if now:
                await use_token(w, chosen.token)
        except OutpostError as exc:
            w.show_error(f"Connection settings not saved: {exc}")
            return
        if once:  # DIR's own settings (its token, stored in DIR by use_token): not the profile
            w.status.showMessage(
                f"Connection settings saved for {here} only (opened with --data this once"
                + ("; the hub accepted the new token, the sync uses it now" if now and answered
                   else "; the hub is out of reach: the new token is kept and used once it "
                   "answers" if now else "") + f"): {kept}", 15000)
            return
        save_profile(chosen)
        later = _at_restart(w.sat.data.path, chosen, w.sat.config.hub)
        if now and not later:
            w.status.showMessage(
                "Connection settings saved: the hub accepted the new token, the sync uses it "
                "now" if answered else
                f"Connection settings saved: the hub at {chosen.hub} is out of reach: the new "
                "token is kept and used once it answers", 15000)
        elif later:
            QTimer.singleShot(0, lambda: QMessageBox.information(w, "Outpost", later))
        else:
            w.status.showMessage("Connection settings saved", 10000)

    job = asyncio.ensure_future(check_and_save())
    _settings_jobs.add(job)
    job.add_done_callback(_settings_jobs.discard)


_settings_jobs: set[asyncio.Future[None]] = set()
