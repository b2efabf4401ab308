"""The app's leftovers of session 15 (tokens): a window opened with a one-off ``--data DIR``
saved the profile with DIR when its Connection settings were saved (the next plain start
opened DIR); the profile now keeps its own directory unless another one is chosen there.
Real Qt widgets (offscreen), a real hub on 127.0.0.1, real data directories."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.satellite.config import DataDir
from core.schema import Project
from desktop import launch as launch_mod
from desktop.app import WindowSpec, close_window, open_satellite
from desktop.settings import Profile, last_profile, save_profile
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_launch14 import user_dirs  # noqa: F401
from tests.desktop.test_launch15 import _start
from tests.desktop.test_status import until


async def _save_settings(monkeypatch: pytest.MonkeyPatch, w: Any, given: Profile) -> None:
    """File → Connection settings of ``w``, the dialog answered with ``given``, until saved."""
    monkeypatch.setattr(launch_mod, "_ask", lambda *_a, **_k: (given, False))
    monkeypatch.setattr(launch_mod, "QTimer", type("T", (), {"singleShot": staticmethod(
        lambda *_a: None)}))  # no modal box "takes effect when you restart"
    w._settings()
    for _ in range(400):  # bounded: 20 s
        if not launch_mod._settings_jobs:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the settings were never saved")


async def test_settings_of_a_one_off_data_window_keep_the_profiles_directory(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users(tmp_path / "users.db")
    try:
        tok = users.add("alice")
        async with Hub(MemLedger(project), port=0, users=users) as hub, \
                Hub(MemLedger(project), port=0, users=users) as other_hub:
            mine, other = tmp_path / "mine", tmp_path / "other"
            for d in (mine, other):
                (await open_satellite(WindowSpec(d, hub.url, tok))).close()
            save_profile(Profile("default", hub.url, "", str(mine)))
            [w] = await _start(monkeypatch, data=other)  # DIR this once
            qtbot.addWidget(w)
            await until(lambda: w.sat.status().online, "online")
            # a new token for DIR: used at once, kept in DIR; the profile keeps `mine`
            bob = users.add("bob")
            await _save_settings(monkeypatch, w, Profile("default", hub.url, bob, str(other)))
            await until(lambda: w.sat.config.token == bob, "the new token in use")
            said = w.status.currentMessage()
            assert f"Connection settings saved for {other} only" in said, said
            assert f"your profile keeps its own data directory, {mine}" in said, said
            assert DataDir(other).load_config().token == bob
            p = last_profile()
            assert p is not None and p.path == mine and p.hub == hub.url, p  # before: other
            assert DataDir(mine).load_config().token == tok
            # another hub for DIR: no profile keeps it, so nothing is saved, and said how
            await _save_settings(monkeypatch, w, Profile("default", other_hub.url, bob,
                                                         str(other)))
            err = w.status.currentMessage()
            assert "Connection settings not saved" in err and "--data this once" in err, err
            p = last_profile()
            assert p is not None and p.path == mine and p.hub == hub.url, p
            # another directory chosen there: the profile's, as always
            await _save_settings(monkeypatch, w, Profile("default", hub.url, bob,
                                                         str(tmp_path / "third")))
            p = last_profile()
            assert p is not None and p.path == tmp_path / "third", p
            await close_window(w)
            w.close()
    finally:
        users.close()
