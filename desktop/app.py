"""The app entry: one QApplication, one qasync event loop, a window per satellite.

This is the one place where asyncio meets Qt. Each window's :class:`SyncClient` runs as an
asyncio task on the qasync loop; the satellite notifies the window's models on that same
thread. Opening a satellite for the first time fetches the hub's schema (awaited on the loop,
so the UI stays responsive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from core.errors import ConfigError, HubError, OutpostError
from core.heap import settle_heap
from core.satellite.client import (
    NoProjectError,
    SyncClient,
    fetch_hub,
    fetch_project,
    hub_error,
    hub_history,
    token_refused,
)
from core.satellite.config import DataDir, check_hub_url, read_schema_file
from core.satellite.rehome import other_history, replica_last, same_ledger
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.icons import icon
from desktop.mainwindow import MainWindow
from desktop.settings import forget_kept_offline, kept_offline_before
from desktop.sync import ClientSync

__all__ = ["SchemaOutOfReach", "WindowSpec", "check_other_hub", "check_token", "close_window",
           "ensure_app", "open_satellite", "open_window", "open_windows", "run_app",
           "use_token"]

log = logging.getLogger("outpost.desktop")


@dataclass(frozen=True)
class WindowSpec:
    """One window: its satellite's data directory and hub."""

    data_dir: Path
    hub: str = ""
    token: str = field(default="", repr=False)
    title: str = ""
    schema: Path | None = None  # the hub's schema when it serves none (daql): --schema FILE


def ensure_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (created once)."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("Outpost")
    app.setOrganizationName("outpost")
    app.setWindowIcon(icon("app"))
    return app


async def open_satellite(spec: WindowSpec, project: Project | None = None, *,
                         token_later: bool = False) -> Satellite:
    """Open (or create) the satellite in ``spec.data_dir``; fetch the schema when it has none.

    Bad settings change nothing: a hub URL that is not ``ws://``/``wss://`` is refused first,
    a new directory is made only once the hub's schema is here, and the profile's hub is
    written into ``config.json`` only under the directory's lock, once the schema is known.

    ``token_later``: another token for the directory's own hub is not checked here (the
    hub is asked, up to 10 s when out of reach) and not stored: the caller checks it in the
    background (:func:`check_token`); ``sat.config`` keeps the token that worked.

    Raises:
        HubError: the schema had to be fetched and the hub could not be reached.
        ConfigError: no hub URL and no schema; a bad hub URL or data directory; the
            directory is in use by another process.
    """
    if spec.hub:
        check_hub_url(spec.hub)
    dd = DataDir(spec.data_dir)
    dd.check_not_file()
    if project is None and spec.schema is not None:
        project = read_schema_file(spec.schema)  # given: not fetched (a daql hub has none)
    fetched = False  # the hub gave its schema for this token just now
    if project is None and not dd.path.is_dir():
        project = await _fetch(spec)  # nothing is made for a hub that cannot give its schema
        fetched = True
    lock = dd.lock()  # first: a directory another process has open is left as it is
    try:
        if project is None and dd.load_project() is None:
            project = await _fetch(spec)
            fetched = True
        if spec.hub:
            cfg = dd.load_config()
            changed = cfg.hub != spec.hub or (spec.token and cfg.token != spec.token)
            # a new token for its own hub: checked while the window is open (check_token)
            later = token_later and not fetched and cfg.hub == spec.hub
            if changed and not later:
                if not fetched:
                    await check_other_hub(dd, spec, cfg.hub)
                dd.save_config(cfg.with_hub(spec.hub, spec.token or None))
        # the window appears before the overlay of a long queue is built (MainWindow)
        return Satellite(dd, project, lock=lock, overlay_later=True)
    except BaseException:
        lock.release()
        raise


async def check_other_hub(dd: DataDir, spec: WindowSpec, before: str,
                          in_window: bool = False) -> bool:
    """A replica pointed at another hub or given another token: refused when the hub
    refuses the token (nothing is stored: the settings that worked stay) or, for another
    hub, cannot hold the replica's ledger (:func:`core.satellite.rehome.same_ledger`). A hub
    out of reach is taken as given (the app works offline; its sync will say what it
    finds).

    Returns:
        True when the hub answered, False when it was out of reach.

    Raises:
        ConfigError: naming the problem and, for a person at the app, the fix.
    """
    try:
        proj, st = await fetch_hub(spec.hub, spec.token)
    except HubError as exc:
        if token_refused(exc):
            raise ConfigError(_token_fix(exc, spec.hub, in_window)) from exc
        return False
    except (TimeoutError, OSError):
        return False
    have = dd.load_project()
    if have is None or before == spec.hub or not dd.db_file.exists():
        return True
    assert st is not None
    same_ledger(dd, spec.hub, before, have, proj, st)
    held = replica_last(dd, proj)
    if held is not None:
        # the hub's history up to the replica's revision must be the replica's (a hub whose
        # file was rolled back and whose clock lags passes every revision check)
        try:
            hub = await hub_history(spec.hub, spec.token, held[0], held[1])
        except (HubError, TimeoutError, OSError):
            return True  # it answered evt.stat: its sync checks again
        if hub is not None:
            raise other_history(dd, spec.hub, before, proj, held[0], held[1], hub)
    return True


def _token_fix(exc: HubError, hub: str, in_window: bool = False) -> str:
    """The refused token's message and its fix: in a window, its Connection settings; at
    start (a box before any window: no menu to use), starting again with the right token
    (``--hub`` too: a ``--token`` alone does not replace the profile's)."""
    if in_window:
        return (f"{exc}. Nothing was changed: the connection settings that worked are kept. "
                "Enter a valid token in File → Connection settings")
    return (f"{exc}. Nothing was changed and no window opened: start again with a token "
            f"this hub accepts, `outpost app --hub {hub} --token TOKEN` (the profile then "
            "keeps it), or with no --hub/--token to open the last settings that worked (the "
            "connection dialog when there are none)")


class SchemaNeeded(HubError):
    """The hub answered ``evt.stat`` but not ``dom.project`` (a daql hub serves no schema):
    the schema must be given (``--schema FILE``, or the connection dialog's schema file)."""

    def __init__(self, hub: str, message: str):
        super().__init__(message)
        self.hub = hub

    def in_dialog(self) -> str:
        """The error as the connection dialog says it (its schema file row is the fix)."""
        return (f"the hub at {self.hub} answered evt.stat but not dom.project: it may be a "
                "daql hub, which does not serve its schema: choose its schema file below (the "
                "project's schema .toml, or a schema.json; ask the hub's operator for it)")


class SchemaOutOfReach(HubError):
    """A new data directory's schema could not be fetched: the hub is out of reach. No
    window can open without it, so "the satellite keeps working offline" (the hub error's
    own words) is not said (session 14: the box said it, and the app ended with exit 1).
    ``why``: the hub error without those words."""

    def __init__(self, why: str, data_dir: Path):
        super().__init__(f"{why}: no window opened: {data_dir} has no schema yet, and the "
                         "hub gives it once (from then on the satellite works offline too): "
                         "start Outpost again once the hub runs, or check the URL")
        self.why = why


def _out_of_reach(exc: HubError, spec: WindowSpec) -> HubError:
    cause = exc.__cause__
    if isinstance(cause, (OSError, TimeoutError)) and not isinstance(cause, ssl.SSLError):
        why = str(exc).removesuffix("; the satellite keeps working offline")
        return SchemaOutOfReach(why, spec.data_dir)
    return exc


async def _fetch(spec: WindowSpec) -> Project:
    if not spec.hub:
        raise ConfigError(f"{spec.data_dir} has no schema and no hub is set: connect to a hub "
                          "first (File → Connection settings, or `outpost connect URL`)")
    try:
        return await fetch_project(spec.hub, spec.token)
    except TimeoutError as exc:  # connected, but no dom.project reply in time
        raise _out_of_reach(hub_error(spec.hub, exc), spec) from exc
    except NoProjectError as exc:  # a daql hub: the app is told where the schema goes
        raise SchemaNeeded(spec.hub, f"{exc}: start the app with `outpost app --hub "
                           f"{spec.hub} --schema FILE` (or run `outpost connect URL --schema "
                           "FILE` first)") from exc
    except HubError as exc:
        if token_refused(exc):
            raise ConfigError(_token_fix(exc, spec.hub)) from exc
        out = _out_of_reach(exc, spec)
        if out is exc:
            raise
        raise out from exc.__cause__


def open_window(sat: Satellite, spec: WindowSpec,
                on_settings: Callable[[], None] | None = None) -> MainWindow:
    """A window on ``sat`` with its sync client started (when a hub is set and the user did
    not choose "Work offline" for its directory: that choice is kept in the directory,
    :attr:`Satellite.work_offline`).

    When ``spec`` gives another token for the directory's hub than ``sat.config`` holds
    (:func:`open_satellite` with ``token_later``), the window opens at once and the hub is
    asked in the background (:func:`check_token`, the task is ``w.token_check``); the sync
    starts once it answered (or was out of reach)."""
    w: MainWindow
    sync: ClientSync | None = None
    moved_error = ""
    if kept_offline_before(sat.data.path):  # kept in the user's settings until session 9
        try:
            sat.work_offline = True  # first: the settings' entry goes once it is stored
        except OutpostError as exc:  # e.g. a full disk: offline this run, moved next time
            sat.offline_mode = True
            moved_error = f"\"Work offline\" could not be moved into {sat.data.path}: {exc}"
        else:
            forget_kept_offline(sat.data.path)
    if sat.work_offline:
        sat.offline_mode = True  # before the window reads the status, and no sync starts
    if sat.config.hub:
        # batches of 1,000 events: the loop decodes nothing big itself, but each batch's notices
        # and status reads still run on it; measured with bench/desktop.py: lag p99 ~25 ms
        # (vs ~60-140 ms with 5,000) for the same catch-up time
        client = SyncClient(sat, sat.config.hub, sat.config.token, lim=1000)
        sync = ClientSync(client, on_error=lambda m: w.show_error(m))
    w = MainWindow(sat, sync, spec.title or sat.config.hub, on_settings=on_settings)
    w.sync_handle = sync  # type: ignore[attr-defined]
    # kept as it took effect: with no hub set the box flips back (nothing to go offline
    # from), and the directory must not open offline next time
    w.status.offline_toggled.connect(lambda _off: _keep_offline(w, sat))
    w.token_check = None  # type: ignore[attr-defined]
    if spec.token and spec.hub == sat.config.hub and spec.token != sat.config.token:
        w.status.showMessage(f"Checking the new token with the hub at {spec.hub}…")
        w.token_check = asyncio.ensure_future(  # type: ignore[attr-defined]
            check_token(w, sat, spec, sync))
    elif sync is not None:
        w.when_applied(sync.start)
    if moved_error:
        w.show_error(moved_error)
    return w


async def check_token(w: MainWindow, sat: Satellite, spec: WindowSpec,
                      sync: ClientSync | None) -> bool:
    """Ask the hub about the token ``spec`` gives for ``sat``'s hub while ``w`` is open, and
    say the outcome in its status bar: accepted, or the hub out of reach (taken as given,
    offline first), the token is stored and used; refused, nothing is stored and the sync
    goes on with the token that worked. Then the sync starts (unless "Work offline").

    Returns:
        True when the token was stored.
    """
    try:
        answered = await check_other_hub(sat.data, spec, sat.config.hub, in_window=True)
    except OutpostError as exc:  # refused: the settings that worked stay
        w.status.showMessage(f"New token not used: {exc}")
        kept = False
    else:
        try:
            if sync is not None and sync.running:
                # started during the check ("Sync now", "Work offline" unticked): its
                # connection was made with the old token (session 9: kept until the next
                # reconnect). Its edits sent are answered first, as in use_token (session
                # 15: it was stopped at once, and the new token's connection sent the edits
                # whose answer it lost again, as another user: false conflicts)
                sync.switching = spec.token
                await _settle(w, sync.client)
            cfg = sat.config.with_hub(spec.hub, spec.token)
            sat.data.save_config(cfg)
        except OutpostError as exc:
            w.status.showMessage(f"The new token could not be stored: {exc}"
                                 if not isinstance(exc, ConfigError) else
                                 f"New token not used: {exc}")
            kept = False
        else:
            sat.config = cfg
            if sync is not None:
                sync.client.token = spec.token
                if sync.running:
                    await sync.stop()  # a new connection uses the new one (started below)
            w.status.showMessage(
                "The hub accepted the new token" if answered else
                f"Hub out of reach ({spec.hub}): the new token is kept and used once it "
                "answers", 10000)
            kept = True
        finally:
            if sync is not None:
                sync.switching = ""
                sync.client.release()
    if sync is not None:
        w.when_applied(sync.start)
    w.refresh_status()
    return kept


SETTLE_S = 30.0
"""How long a new token waits for the hub's answers to the edits in flight (s)."""


async def use_token(w: MainWindow, token: str) -> None:
    """File → Connection settings gave another token for the window's own hub (the hub
    accepted it, or was out of reach): stored in the directory's ``config.json`` and used
    at once: a running sync reconnects with it, a stopped one (the hub refused the old
    token) starts again, unless "Work offline" is ticked (session 14: it waited for a
    restart, and Sync now was still refused). A running sync first sends no new edits and
    lets the hub answer those sent (:data:`SETTLE_S` s at most, said in the status bar),
    then reconnects: the switch is made whole at that point, or not at all.

    During the wait (session 15) a connection that drops is made again with the old token,
    which sends the edits whose answer it lost again, alone (the hub acks a resend from the
    same user; as the new token's user it was a false conflict), and Sync now keeps the
    connection (it restarted it, with the same loss); the window's hub tooltip names the
    token in use and the one waiting (:attr:`ClientSync.switching`).

    Raises:
        OutpostError: the token could not be stored, another change of token is waiting,
            "Work offline" was ticked during the wait, or the hub did not answer the edits
            in time (the connection goes on with the old token): nothing changed.
    """
    sat = w.sat  # type: ignore[attr-defined]
    sync: ClientSync | None = getattr(w, "sync_handle", None)
    client = sync.client if sync is not None and sync.running else None
    if sync is not None and sync.switching:
        raise ConfigError("another new token is waiting for the hub to answer the edits sent "
                          "with the old one (the status bar says how many): nothing was "
                          "changed; try again once it is in use")
    if sync is not None:
        sync.switching = token
    try:
        if client is not None:
            await _settle(w, client)
            if client.closing:
                return  # the window closed meanwhile: close_window keeps the token
        cfg = sat.config.with_hub(sat.config.hub, token)
        sat.data.save_config(cfg)
        sat.config = cfg
        if sync is not None:
            sync.client.token = token
            if sync.running:
                await sync.stop()  # edits still held: none goes out before it is closed
    finally:
        if sync is not None:
            sync.switching = ""
            sync.client.release()  # the old connection goes on (failed), or a new one
        if not (client is not None and client.closing):
            w.refresh_status()  # the token in use (the hub's tooltip)
    if sync is not None:
        sync.start()  # a new run: edits go out again with the new token


async def _settle(w: MainWindow, client: SyncClient) -> None:
    """The edits sent with the old token answered, or :class:`ConfigError`."""
    n = client.machine.edits_in_flight
    if n:
        w.status.showMessage(
            f"Waiting for the hub to answer the {n:,} edit{'s' if n != 1 else ''} sent "
            f"with the old token before using the new one (up to {SETTLE_S:g} s)…",
            int(SETTLE_S * 1000))
    w.refresh_status()
    left = await client.settle(SETTLE_S)
    if not left or client.refused or client.closing:
        # refused: the hub takes the old token no more, nobody can have them answered for
        # its user: they go with the new token, as edits of a stopped sync do
        return
    edits = f"{left:,} edit{'s' if left != 1 else ''} sent with the old token"
    if client.sat.offline_mode:
        raise ConfigError(
            f"\"Work offline\" was ticked before the hub answered {edits}; nothing was "
            "changed: untick it, and enter the new token again once the status bar shows no "
            "edits being sent")
    raise ConfigError(
        f"the hub has not answered {edits} within {SETTLE_S:g} s; the window keeps "
        "syncing with the old token so that they are not sent again as another user's (the "
        "hub would refuse them as conflicts); nothing was changed: try again once the status "
        "bar shows no edits being sent")


def _keep_offline(w: MainWindow, sat: Satellite) -> None:
    try:
        sat.work_offline = sat.offline_mode
    except OutpostError as exc:  # e.g. the disk is full: the choice holds for this run
        w.show_error(f"\"Work offline\" not kept for the next start: {exc}")


async def open_windows(specs: Sequence[WindowSpec],
                       on_settings: Callable[[MainWindow], None] | None = None,
                       on_kept: Callable[[], None] | None = None,
                       ) -> list[MainWindow]:
    """Open and show a window per spec, in order (:func:`open_satellite`, :func:`open_window`).

    When one cannot be opened, those opened before it are closed again (sync stopped,
    satellite closed, its directory's lock released) and the error is raised: nothing is
    left open behind the error dialog. ``on_settings(window)``: File → Connection settings.

    A new token for a directory's own hub does not hold its window back (the hub was asked
    first: up to 10 s when out of reach): it is checked in the background (``token_check``).
    ``on_kept()`` is called once every spec's settings are stored: at once, or when the
    checks are over and no token was refused (to remember the profile).
    """
    wins: list[MainWindow] = []
    try:
        for spec in specs:
            sat = await open_satellite(spec, token_later=True)
            try:
                w = _window(sat, spec, on_settings)
            except BaseException:
                sat.close()
                raise
            wins.append(w)
            w.show()
    except BaseException:
        try:
            await close_windows(wins)
        finally:
            for w in wins:
                w.close()
        raise
    if on_kept is not None:
        checks = [c for w in wins if (c := getattr(w, "token_check", None)) is not None]
        if not checks:
            on_kept()
        else:
            def kept(_f: object) -> None:
                if all(c.done() and not c.cancelled() and c.exception() is None
                       and c.result() for c in checks):
                    on_kept()

            asyncio.gather(*checks, return_exceptions=True).add_done_callback(kept)
    return wins


def _window(sat: Satellite, spec: WindowSpec,
            on_settings: Callable[[MainWindow], None] | None) -> MainWindow:
    if on_settings is None:
        return open_window(sat, spec)
    w = open_window(sat, spec, on_settings=lambda: on_settings(w))
    return w


async def close_window(w: MainWindow) -> None:
    """Stop the window's sync and close its satellite. A new token waiting for the hub to
    answer the edits sent with the old one (:attr:`ClientSync.switching`, up to
    :data:`SETTLE_S` s) is kept in the data directory for the next start, and said on
    stderr (session 16: it was lost without a word); the edits whose answer did not come
    are sent again with it then, and those the hub had applied are answered as accepted."""
    sync = getattr(w, "sync_handle", None)
    waiting = sync.switching if isinstance(sync, ClientSync) else ""
    if waiting:
        sync.client.closing = True  # type: ignore[union-attr]  # the wait ends: not saved there
    check = getattr(w, "token_check", None)
    if check is not None and not check.done():  # nothing is stored or started after this
        check.cancel()
        await asyncio.wait({check})
    try:
        if sync is not None:
            await sync.stop()
        if waiting:
            _keep_waiting_token(w.sat, waiting)  # type: ignore[attr-defined]
    finally:
        w.sat.close()  # type: ignore[attr-defined]


def _keep_waiting_token(sat: Satellite, token: str) -> None:
    """Store ``token``, waiting to be used, in ``sat``'s data directory as it closes."""
    where = sat.data.path
    try:
        sat.data.save_config(sat.config.with_hub(sat.config.hub, token))
    except OutpostError as exc:
        print(f"outpost: the new token could not be kept for {where}: {exc}; enter it again "
              "in File → Connection settings after the next start", file=sys.stderr,
              flush=True)
        return
    print(f"outpost: the window closed before the hub answered the edits sent with the old "
          f"token: the new token is kept for {where} and used from the next start (the "
          "edits not answered are sent again with it; those the hub had applied are taken "
          "as accepted)", file=sys.stderr, flush=True)


async def close_windows(windows: Sequence[MainWindow]) -> None:
    """Stop the sync and close the satellite of every window (each one even when another
    fails; the first error is raised)."""
    first: BaseException | None = None
    for w in windows:
        try:
            await close_window(w)
        except BaseException as exc:  # the others are closed first
            first = first or exc
    if first is not None:
        raise first


def run_app(start: Callable[[], Awaitable[list[MainWindow]]],
            cleanup: Callable[[], None] | None = None) -> int:
    """Run the Qt app on a qasync loop: ``start`` opens the windows; returns the exit code.

    The app ends once the last window closed (File → Quit, the window's close button,
    Ctrl+C, SIGTERM) *and* every window's sync stopped and satellite closed
    (:func:`close_windows`: the last sync and hub revision stored, ``status.json`` marked
    closed). Qt does not quit by itself when the last window closes: until session 11 it did
    (``quitOnLastWindowClosed``), which stopped the loop before the windows were closed, so
    every quit while online ended in "Event loop stopped before Future completed" (exit 1)
    with the satellite never closed."""
    import qasync  # type: ignore[import-untyped]

    app = ensure_app()
    app.setQuitOnLastWindowClosed(False)  # main() ends the loop, once the windows are closed
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    windows: list[MainWindow] = []
    code = 0
    quit_event = asyncio.Event()
    starting: list[asyncio.Future[list[MainWindow]]] = []  # start(), until it is done
    stopped: list[int] = []  # the signal that ended the start

    async def main() -> None:
        nonlocal code
        app.lastWindowClosed.connect(quit_event.set)
        task = asyncio.ensure_future(start())
        starting.append(task)
        try:
            windows.extend(await task)
        except asyncio.CancelledError:
            if not stopped:
                raise
            # a signal before any window opened (the hub slow to give its schema): start
            # made nothing it did not undo (open_windows, open_satellite); the usual exit 0
            print(f"outpost: {signal.Signals(stopped[0]).name} before a window opened: "
                  "stopped, nothing changed", file=sys.stderr, flush=True)
            return
        except OutpostError as exc:
            QMessageBox.critical(None, "Outpost", str(exc))
            code = 1
            return
        finally:
            starting.clear()
        if not windows:
            return
        settle_heap()
        await quit_event.wait()
        await close_windows(windows)

    # Ctrl+C / SIGTERM close the windows (see on_quit_signal), so the sync tasks stop and
    # ``cleanup`` runs (the demo hub is stopped) once the last one closed. Python handles
    # signals only when it runs: a timer lets it. The handler only schedules the work on
    # the event loop: run inside the handler, the question Ctrl+C asks (a nested event loop)
    # kept the handler running, a second Ctrl+C's handler ran inside it, and after that a
    # SIGTERM from outside the process was never handled (session 11: 4 runs of 4).
    # Before the windows are open (start() fetching the schema from a slow hub), there is
    # nothing to close and the signal was lost (session 11): start() is cancelled instead.
    def on_signal(sig: int, _frame: Any) -> None:
        QTimer.singleShot(0, lambda: on_start_signal(sig) or on_quit_signal(sig, windows))

    def on_start_signal(sig: int) -> bool:
        if not starting or starting[0].done():
            return False
        modal = QApplication.activeModalWidget()
        if modal is not None:  # a question of the start (the schema file): answered Cancel
            modal.close()
        stopped.append(sig)
        starting[0].cancel()
        return True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    ticker = QTimer()
    ticker.start(200)
    ticker.timeout.connect(lambda: None)
    try:
        with loop:
            loop.run_until_complete(main())
    finally:
        ticker.stop()
        for s, h in old.items():
            signal.signal(s, h)
        if cleanup is not None:
            cleanup()
    return code


@contextlib.contextmanager
def signals_cancel_dialogs() -> Iterator[list[int]]:
    """While a dialog runs before :func:`run_app` (the first-run connection dialog): Ctrl+C
    and SIGTERM close it as Cancel (session 11: Qt's loop left Python no moment to handle
    Ctrl+C, so it did nothing). Gives the signals that came."""
    got: list[int] = []

    def on_signal(sig: int, _frame: Any) -> None:
        got.append(sig)
        QTimer.singleShot(0, _cancel_dialog)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    ticker = QTimer()  # Python handles signals only when it runs: a timer lets it
    ticker.timeout.connect(lambda: None)
    ticker.start(200)
    try:
        yield got
    finally:
        ticker.stop()
        for s, h in old.items():
            signal.signal(s, h)


def _cancel_dialog() -> None:
    modal = QApplication.activeModalWidget()
    if modal is not None:
        modal.close()


def on_quit_signal(sig: int, windows: Sequence[MainWindow]) -> None:
    """Ctrl+C (SIGINT) or SIGTERM: close every window; the app ends when the last one closed
    (``lastWindowClosed``) and the windows' satellites are closed, not before.

    - SIGINT comes from the terminal the user typed in: each window with unsaved typing asks
      Save / Discard / Cancel, as closing it does; Cancel keeps it (and the app) open. Until
      session 10 the app quit whatever the answer. A second Ctrl+C while a question (or any
      modal dialog) is open does nothing: the question stays for the user to answer (until
      session 11 it closed the question as Cancel).
    - SIGTERM comes from a session manager (logging out, shutting down) or ``kill``: nobody
      may be there to answer, and a question would hold the logout until the process is
      killed. The unsaved typing is kept as drafts in the data directory (nothing saved or
      sent: :mod:`desktop.drafts`) and put back in the form at the next start; the windows
      close without asking. A question already open is answered Cancel first. When the
      drafts cannot be written (a full disk), the window asks as for Ctrl+C rather than
      drop the typing.
    """
    modal = QApplication.activeModalWidget()
    if sig == signal.SIGTERM:
        for w in windows:
            try:
                w.keep_drafts()
            except OutpostError as exc:
                print(f"outpost: {exc}: the window asks what to do with them", file=sys.stderr)
        if modal is not None:  # a question open: answered Cancel, the close comes next
            modal.close()
            QTimer.singleShot(0, _close_all)
            return
    elif modal is not None:
        print("outpost: a question is open in the window: answer it there (Ctrl+C again "
              "does nothing; SIGTERM ends the app, keeping unsaved typing as a draft)",
              file=sys.stderr)
        return
    _close_all()


def _close_all() -> None:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        app.closeAllWindows()


def place_side_by_side(windows: Sequence[Any]) -> None:
    """Tile windows left to right on the primary screen."""
    screen = QApplication.primaryScreen()
    if screen is None or not windows:
        return
    geo = screen.availableGeometry()
    width = geo.width() // len(windows)
    for i, w in enumerate(windows):
        w.resize(min(width, 1200), min(geo.height(), 750))
        w.move(geo.x() + i * width, geo.y())
