"""The app's start-up with bad settings: a clear error that names the fix, and nothing changed
(no directory made, no config written, no profile remembered)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError, HubError
from core.satellite.config import DataDir, SatConfig
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.app import WindowSpec, open_satellite
from desktop.settings import Profile
from desktop.widgets.connect import ConnectDialog
from tests.support.procs import reap

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "ws://127.0.0.1:9"  # nothing listens on the discard port


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "127.0.0.1:8765", "ws://",
                                 "ws://host:port", "ws://host name:8765",
                                 "ws://host:8765/x\ty", "ws://host\n:8765"])
def test_a_bad_hub_url_is_refused_before_anything_is_made(tmp_path: Path, url: str) -> None:
    d = tmp_path / "sat"
    with pytest.raises(ConfigError, match="is not a hub URL"):
        asyncio.run(open_satellite(WindowSpec(d, hub=url)))
    assert not d.exists()


@pytest.mark.parametrize("url", ["ws://alice:s3cret@127.0.0.1:8765", "ws://alice@host:1"])
def test_a_hub_url_with_a_password_is_refused(tmp_path: Path, url: str) -> None:
    """It would be stored in config.json and shown by `outpost status` and in errors."""
    d = tmp_path / "sat"
    with pytest.raises(ConfigError, match="no user name or password") as err:
        asyncio.run(open_satellite(WindowSpec(d, hub=url)))
    assert "s3cret" not in str(err.value) and "--token" in str(err.value)
    assert not d.exists()


def test_an_unreachable_hub_leaves_the_directory_as_it_was(tmp_path: Path,
                                                           project: Project) -> None:
    d = tmp_path / "sat"
    with pytest.raises(HubError):
        asyncio.run(open_satellite(WindowSpec(d, hub=NOWHERE)))
    assert not d.exists()  # a new profile's directory is made once the schema is here
    # a directory without a schema yet (made by hand): no config.json is written into it
    d.mkdir()
    with pytest.raises(HubError):
        asyncio.run(open_satellite(WindowSpec(d, hub=NOWHERE, token="t0k3n")))
    assert not (d / "config.json").exists()
    # with its schema, the profile's hub is stored and the app opens offline
    Satellite(d, project).close()
    sat = asyncio.run(open_satellite(WindowSpec(d, hub=NOWHERE)))
    try:
        assert sat.config.hub == NOWHERE
    finally:
        sat.close()


def test_a_file_as_data_directory_or_a_bad_config_is_named(tmp_path: Path,
                                                           project: Project) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a file, not a data directory"):
        asyncio.run(open_satellite(WindowSpec(f, hub=NOWHERE)))
    assert f.read_text(encoding="utf-8") == "x"
    d = tmp_path / "sat"
    Satellite(d, project).close()
    DataDir(d).save_config(SatConfig(hub=NOWHERE))
    (d / "config.json").write_text('{"hub": ', encoding="utf-8")
    before = _tree(d)
    with pytest.raises(ConfigError, match=r"config\.json is not a valid config"):
        asyncio.run(open_satellite(WindowSpec(d, hub="ws://127.0.0.1:10")))
    assert _tree(d) == before


def test_the_connect_dialog_refuses_a_bad_url_or_data_directory(qtbot: Any,
                                                                 tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    for hub, data, want in (("ws://", "", "is not a hub URL"),
                            ("ws://host:port", "", "is not a hub URL"),
                            ("http://host:8765", "", "is not a hub URL"),
                            ("ws://host:8765", str(f), "is a file")):
        dlg = ConnectDialog(Profile("p", hub, "", data))
        qtbot.addWidget(dlg)
        dlg._accept()
        assert want in dlg.error.text() and dlg.result() == 0, (hub, data)
    dlg = ConnectDialog(Profile("p", "ws://host:8765", "", str(tmp_path / "new")))
    qtbot.addWidget(dlg)
    dlg._accept()
    assert dlg.error.text() == "" and dlg.result() == 1


@pytest.mark.parametrize("args, want", [
    (["--hub", "http://host:8765"], "is not a hub URL"),
    (["--data", "FILE"], "is a file, not a data directory"),
])
def test_outpost_app_with_bad_settings_remembers_no_profile(tmp_path: Path, args: list[str],
                                                            want: str) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [a.replace("FILE", str(f)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "app", *argv], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and want in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    saved = [p for p in (tmp_path / "config").rglob("*") if p.is_file()]
    assert saved == []  # the profile was not stored with the typo in it


async def test_a_hub_that_never_answers_is_a_hub_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    import core.satellite.client as client_mod

    real = client_mod.fetch_project

    async def quick(url: str, token: str = "", timeout: float = 10.0) -> Project:
        return await real(url, token, 1.0)

    monkeypatch.setattr("desktop.app.fetch_project", quick)

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(silent, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        d = tmp_path / "sat"
        with pytest.raises(HubError, match="did not answer in time"):
            await open_satellite(WindowSpec(d, hub=f"ws://127.0.0.1:{port}"))
        assert not d.exists()


async def _synced(d: Path, project: Project, url: str) -> Satellite:
    """A satellite in ``d`` with one record, synced with the hub at ``url`` (its hub)."""
    import random

    from core.model import Action, Cmd
    from core.satellite.client import SyncClient

    sat = Satellite(d, project)
    sat.config = sat.config.with_hub(url)
    DataDir(d).save_config(sat.config)
    sat.pub([Action("field.site", "s1", Cmd.NEW, {"name": "Ridge"})])
    await SyncClient(sat, url, rnd=random.Random(0)).sync_once(10)
    return sat


async def test_the_app_refuses_a_hub_behind_the_replica(tmp_path: Path,
                                                        project: Project) -> None:
    """`outpost app --hub URL` (or the connection settings) on a synced replica: a hub that
    cannot hold the replica's ledger is refused with the fix, and config.json is kept: a
    hub of another ledger (its id differs), even one ahead of the replica, and a hub that
    serves no id (daql, an older Outpost) behind it."""
    from core.ledger.memory import MemLedger
    from core.model import Action, Cmd, Trans
    from hubserver.server import Hub

    d = tmp_path / "sat"
    async with Hub(MemLedger(project), port=0) as first:
        (await _synced(d, project, first.url)).close()
        before = (d / "config.json").read_bytes()
        ahead = MemLedger(project)  # same schema, another ledger, ahead of the replica
        for i in range(3):
            ahead.publish(Trans((Action("field.site", f"o{i}", Cmd.NEW, {"name": "x"}),)))
        assert ahead.rev() > first.ledger.rev()
        async with Hub(ahead, port=0) as other:
            with pytest.raises(ConfigError, match="came from another ledger") as err:
                await open_satellite(WindowSpec(d, hub=other.url))
        assert ahead.ledger_id in str(err.value) and first.ledger.ledger_id in str(err.value)
        assert "new --data DIR" in str(err.value)
        no_id = MemLedger(project)
        no_id.ledger_id = ""  # served by a hub without ids: checked by revision only
        async with Hub(no_id, port=0) as old:
            with pytest.raises(ConfigError, match="behind the replica"):
                await open_satellite(WindowSpec(d, hub=old.url))
        assert (d / "config.json").read_bytes() == before
        again = await open_satellite(WindowSpec(d, hub=first.url))  # its own hub: fine
        again.close()


async def test_outpost_app_remembers_no_profile_for_a_refused_hub(tmp_path: Path,
                                                                 project: Project) -> None:
    """`outpost app --hub OTHER` on a synced replica is refused, and the profile does not
    remember OTHER (every later start would fail the same way; review)."""
    from core.ledger.memory import MemLedger
    from hubserver.server import Hub

    d = tmp_path / "sat"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    async with Hub(MemLedger(project), port=0) as first, \
            Hub(MemLedger(project), port=0) as other:
        (await _synced(d, project, first.url)).close()
        code = ("import sys; from pathlib import Path; "
                "from PySide6.QtWidgets import QMessageBox; "  # the error dialog, on stderr
                "QMessageBox.critical = staticmethod(lambda *a: print(a[2], file=sys.stderr)); "
                "from desktop.launch import launch; "
                "sys.exit(launch(data=Path(sys.argv[1]), hub=sys.argv[2]))")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, str(d), other.url,
            env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await reap(proc, 120)
    assert proc.returncode == 1 and "came from another ledger" in err.decode(), \
        err.decode()[-2000:]
    saved = "".join(p.read_text(errors="replace") for p in (tmp_path / "config").rglob("*")
                    if p.is_file())
    assert other.url not in saved


async def test_connection_settings_refuse_a_hub_behind_the_replica(
        qtbot: Any, tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """File → Connection settings in the running app: a new hub that cannot hold the
    replica's ledger is not saved; the status bar says why."""
    from core.ledger.memory import MemLedger
    from desktop import launch as L
    from desktop.mainwindow import MainWindow
    from hubserver.server import Hub

    d = tmp_path / "sat"
    saved: list[Profile] = []
    monkeypatch.setattr(L, "save_profile", saved.append)
    async with Hub(MemLedger(project), port=0) as first, \
            Hub(MemLedger(project), port=0) as other:
        sat = await _synced(d, project, first.url)
        w = MainWindow(sat, None)
        qtbot.addWidget(w)
        current = Profile("p", first.url, "", str(d))
        for hub, ok in ((other.url, False), (first.url.replace("127.0.0.1", "localhost"),
                                             True)):
            monkeypatch.setattr(L, "_ask", lambda *_a, h=hub, **_k: (Profile("p", h, "", str(d)),
                                                               False))
            monkeypatch.setattr(L, "QTimer", type("T", (), {"singleShot": staticmethod(
                lambda *_a: None)}))
            L._settings(w, current)
            for _ in range(100):  # bounded: 100 × 50 ms
                if not L._settings_jobs:
                    break
                await asyncio.sleep(0.05)
            assert [p.hub for p in saved] == ([hub] if ok else []), hub
            if not ok:
                assert "came from another ledger" in w.status.currentMessage()
        # the same hub, another data directory whose replica came from another ledger
        saved.clear()
        (await _synced(tmp_path / "sat2", project, other.url)).close()
        monkeypatch.setattr(L, "_ask", lambda *_a, **_k: (
            Profile("p", first.url, "", str(tmp_path / "sat2")), False))
        L._settings(w, current)
        for _ in range(100):  # bounded: 100 × 50 ms
            if not L._settings_jobs:
                break
            await asyncio.sleep(0.05)
        assert saved == [] and "came from another ledger" in w.status.currentMessage()
        sat.close()


def test_a_token_the_hub_refuses_replaces_nothing(tmp_path: Path, project: Project) -> None:
    """User review 8, finding 7: the app stored a token the hub refuses over the working one,
    and told a person at the app to run `outpost connect URL --token T`. Now nothing is
    stored and the message says where a valid token goes in the app; a hub out of reach is
    still taken as given (offline first)."""
    import random

    from core.ledger.memory import MemLedger
    from core.satellite.client import SyncClient
    from desktop.app import check_other_hub
    from hubserver.auth import Users
    from hubserver.server import Hub

    users = Users(tmp_path / "users.db")
    good = users.add("alice")
    d = tmp_path / "sat"

    async def main() -> None:
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            sat = await open_satellite(WindowSpec(d, hub=hub.url, token=good))
            await SyncClient(sat, hub.url, good, rnd=random.Random(0)).sync_once(10)
            sat.close()
            before = _tree(d)
            for spec in (WindowSpec(d, hub=hub.url, token="badtoken"),
                         WindowSpec(tmp_path / "new", hub=hub.url, token="badtoken")):
                with pytest.raises(ConfigError) as err:
                    await open_satellite(spec)
                text = str(err.value)
                assert "refused the token (HTTP 401)" in text
                # at start the box shows before any window: no menu to point to, but the
                # start that fixes it (review 8b: it said File → Connection settings)
                assert "File → Connection settings" not in text and "outpost connect" not in text
                assert f"outpost app --hub {hub.url} --token TOKEN" in text
            assert _tree(d) == before and not (tmp_path / "new").exists()
            # the connection settings' check (File → Connection settings: another token)
            with pytest.raises(ConfigError, match="Nothing was changed") as err:
                await check_other_hub(DataDir(d), WindowSpec(d, hub.url, "badtoken"), hub.url,
                                      in_window=True)
            assert "File → Connection settings" in str(err.value)
            await check_other_hub(DataDir(d), WindowSpec(d, hub.url, good), hub.url)
        await check_other_hub(DataDir(d), WindowSpec(d, NOWHERE, "x"), hub.url)  # offline

    try:
        asyncio.run(main())
    finally:
        users.close()
    assert DataDir(d).load_config().token == good


async def test_a_new_token_is_checked_while_the_window_is_open(
        qtbot: Any, tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the app after a token change asked the hub first, before any window: up to
    10 s when the hub was out of reach. The window opens at once now; the hub is asked in
    the background and the status bar says the outcome. A token the hub refuses is still
    never stored (nor the profile remembered); one out of reach is taken as given."""
    from PySide6.QtCore import QSettings
    from websockets.asyncio.server import ServerConnection, serve

    from core.ledger.memory import MemLedger
    from desktop import settings as app_settings
    from desktop.app import close_window, open_windows
    from hubserver.auth import Users
    from hubserver.server import Hub
    from tests.desktop.test_status import until

    monkeypatch.setattr(app_settings, "settings", lambda: QSettings(
        str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    users = Users(tmp_path / "users.db")
    good, good2 = users.add("alice"), users.add("bob")
    d = tmp_path / "sat"
    kept: list[int] = []

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    try:
        # a hub that takes the connection and never answers: the window does not wait
        async with serve(silent, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
            Satellite(d, project).close()
            DataDir(d).save_config(SatConfig(hub=url, token="old"))
            [w] = await open_windows([WindowSpec(d, url, "new")], on_kept=lambda: kept.append(1))
            qtbot.addWidget(w)
            check = w.token_check  # type: ignore[attr-defined]
            assert w.isVisible() and not check.done()
            assert w.status.currentMessage().startswith("Checking the new token")
            assert w.status.conn.isVisible()  # the status stays in view beside it
            await close_window(w)  # closed while asking: nothing stored, nothing started
            w.close()
            assert check.cancelled() and DataDir(d).load_config().token == "old"
            assert kept == []
        # out of reach: taken as given (offline first), and said
        DataDir(d).save_config(SatConfig(hub=NOWHERE, token="old"))
        [w] = await open_windows([WindowSpec(d, NOWHERE, "new")], on_kept=lambda: kept.append(1))
        qtbot.addWidget(w)
        assert await w.token_check is True  # type: ignore[attr-defined]
        assert "Hub out of reach" in w.status.currentMessage()
        assert DataDir(d).load_config().token == "new"
        await until(lambda: kept == [1], "the profile remembered")
        await close_window(w)
        w.close()
        kept.clear()

        async with Hub(MemLedger(project), port=0, users=users) as hub:
            e = tmp_path / "synced"
            sat = await open_satellite(WindowSpec(e, hub=hub.url, token=good))
            sat.close()
            # refused: nothing stored, the profile not remembered, sync with the one that worked
            [w] = await open_windows([WindowSpec(e, hub.url, "badtoken")],
                                     on_kept=lambda: kept.append(1))
            qtbot.addWidget(w)
            assert await w.token_check is False  # type: ignore[attr-defined]
            msg = w.status.currentMessage()
            assert "refused the token (HTTP 401)" in msg and "File → Connection settings" in msg
            await asyncio.sleep(0.1)  # the checks' callback has run
            assert DataDir(e).load_config().token == good and kept == []
            await until(lambda: w.sat.status().online, "online with the token that worked")
            await close_window(w)
            w.close()
            # accepted: stored, remembered, used
            [w] = await open_windows([WindowSpec(e, hub.url, good2)],
                                     on_kept=lambda: kept.append(1))
            qtbot.addWidget(w)
            assert await w.token_check is True  # type: ignore[attr-defined]
            assert w.status.currentMessage() == "The hub accepted the new token"
            assert DataDir(e).load_config().token == good2
            await until(lambda: kept == [1], "the profile remembered")
            await until(lambda: w.sat.status().online, "online with the new token")
            assert w.sync_handle.client.token == good2  # type: ignore[attr-defined]
            await close_window(w)
            w.close()
    finally:
        users.close()


async def test_a_new_token_accepted_while_syncing_is_used_at_once(
        qtbot: Any, tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync started during the check (Sync now) connected with the old token and kept
    that connection until the next reconnect: edits went out as the old token's user. Once
    the new token is accepted the sync reconnects with it."""
    from PySide6.QtCore import QSettings

    from core.ledger.memory import MemLedger
    from core.model import Action, Cmd
    from desktop import app as app_mod
    from desktop import settings as app_settings
    from hubserver.auth import Users
    from hubserver.server import Hub
    from tests.desktop.test_status import until

    monkeypatch.setattr(app_settings, "settings", lambda: QSettings(
        str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    gate = asyncio.Event()
    real = app_mod.check_other_hub

    async def held(*args: Any, **kw: Any) -> bool:
        await gate.wait()  # the hub answers once the sync is online with the old token
        return await real(*args, **kw)

    monkeypatch.setattr(app_mod, "check_other_hub", held)
    users = Users(tmp_path / "users.db")
    old, new = users.add("alice"), users.add("bob")
    e = tmp_path / "sat"
    try:
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            sat = await open_satellite(WindowSpec(e, hub=hub.url, token=old))
            sat.close()
            [w] = await app_mod.open_windows([WindowSpec(e, hub.url, new)])
            qtbot.addWidget(w)
            w.sync_handle.start()  # type: ignore[attr-defined]  # Sync now, during the check
            await until(lambda: w.sat.status().online, "online with the old token")
            gate.set()
            assert await w.token_check is True  # type: ignore[attr-defined]
            w.sat.pub([Action("field.site", "n1", Cmd.NEW, {"name": "New"})])
            await until(lambda: w.sat.status().pending == 0 and w.sat.status().online,
                        "the edit sent")
            assert [h.usr for h in w.sat.history("field.site", "n1")] == ["bob"]
            await app_mod.close_window(w)
            w.close()
    finally:
        users.close()
