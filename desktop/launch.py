"""Opening the app on a profile: the last one, a named one, or a first-run dialog."""

from __future__ import annotations

from pathlib import Path

from core.satellite.config import DataDir, check_hub_url
from desktop.app import WindowSpec, ensure_app, open_windows, run_app
from desktop.mainwindow import MainWindow
from desktop.settings import Profile, last_profile, load_profile, save_profile

__all__ = ["launch"]


def _ask(profile: Profile | None, first_run: bool) -> tuple[Profile | None, bool]:
    from desktop.widgets.connect import ConnectDialog

    dlg = ConnectDialog(profile, first_run=first_run)
    if not dlg.exec():
        return None, False
    return dlg.profile(), dlg.wants_demo


def launch(data: Path | None = None, hub: str = "", token: str = "", profile: str = "") -> int:
    """Open the app: ``--data``/``--hub`` given, else the named or last profile, else ask."""
    ensure_app()
    p = load_profile(profile) if profile else last_profile()
    if data is not None or hub:
        # checked before the profile remembers them: a typo changes nothing
        if hub:
            check_hub_url(hub)
        if data is not None:
            DataDir(data).check_not_file()
        base = p or Profile(profile or "default")
        p = Profile(base.name, hub or base.hub, token or base.token,
                    str(data) if data is not None else base.data_dir)
        save_profile(p)
    if p is None:
        p, demo = _ask(None, first_run=True)
        if demo:
            from desktop.demo import run_demo

            return run_demo()
        if p is None:
            return 0
        save_profile(p)
    chosen = p

    async def start() -> list[MainWindow]:
        spec = WindowSpec(chosen.path, chosen.hub, chosen.token, chosen.name)
        return await open_windows([spec], on_settings=lambda w: _settings(w, chosen))

    return run_app(start)


def _settings(w: MainWindow, current: Profile) -> None:
    from PySide6.QtWidgets import QMessageBox

    p, _ = _ask(current, first_run=False)
    if p is None:
        return
    save_profile(p)
    QMessageBox.information(w, "Outpost", "Saved. The new settings apply when you restart "
                            "Outpost.")
