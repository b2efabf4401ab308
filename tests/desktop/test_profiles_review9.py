"""Where the app keeps its profiles (review 9): one default replica for the CLI and the app,
tokens out of the world-readable QSettings file, and a demo that starts no hub before Qt is
known to start."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from core.errors import StorageError
from core.satellite.config import (
    DataDir,
    SatConfig,
    data_root,
    default_data_dir,
    other_default_replica,
)
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import demo as demo_mod
from desktop import headless
from desktop import launch as launch_mod
from desktop import settings as app_settings
from desktop.settings import (
    Profile,
    kept_offline_before,
    load_profile,
    save_profile,
    tokens_file,
)


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data directory (platformdirs reads XDG_DATA_HOME) and the app's QSettings in
    the test's own files."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    ini = tmp_path / "config" / "outpost.conf"
    ini.parent.mkdir()
    monkeypatch.setattr(app_settings, "settings",
                        lambda: QSettings(str(ini), QSettings.Format.IniFormat))
    return ini


def _replica(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "satellite.db").write_bytes(b"")


def test_the_cli_and_the_apps_default_profile_share_one_data_directory(user_dirs: Path) -> None:
    root = data_root()
    assert root == user_dirs.parent.parent / "data" / "outpost"
    # review 9: the CLI used ROOT and the app ROOT/default: `outpost connect` then `outpost`
    # opened two replicas, the CLI's edit pending in one and missing from the other
    assert DataDir(None).path == Profile("default").path == root
    assert Profile("work").path == root / "work"
    assert Profile("default", data_dir="/elsewhere").path == Path("/elsewhere")


def test_an_old_apps_default_replica_stays_in_use_and_both_are_named(user_dirs: Path) -> None:
    root = data_root()
    _replica(root / "default")  # made by the app before session 9
    assert default_data_dir() == root / "default" == Profile("default").path
    assert DataDir(None).path == root / "default"
    assert other_default_replica() is None
    _replica(root)  # and one the CLI made in the data root
    assert default_data_dir() == root
    assert other_default_replica() == root / "default"
    # merge review 9: the app then switched to the CLI's replica without a word (its own
    # edits out of view, its hub and token pushed onto the CLI's directory): it keeps its own
    assert Profile("default").path == root / "default"


def test_the_cli_names_the_other_default_replica_and_the_fix(
        user_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = data_root()
    _replica(root / "default")
    headless._note_other_default()
    assert capsys.readouterr().err == ""  # one replica: nothing to say
    _replica(root)
    headless._note_other_default()
    err = capsys.readouterr().err
    assert str(root / "default") in err and f"outpost carry {root / 'default'}" in err


def test_a_profiles_token_is_not_in_the_settings_file(user_dirs: Path) -> None:
    save_profile(Profile("field", "ws://127.0.0.1:8765", "s3cret-token", ""))
    # review 9: QSettings wrote `field\token=s3cret-token` into a file of mode 0644
    assert "s3cret-token" not in user_dirs.read_text(encoding="utf-8")
    tokens = tokens_file()
    assert tokens.parent == user_dirs.parent
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert json.loads(tokens.read_text(encoding="utf-8")) == {
        "field": {"token": "s3cret-token", "over": ""}}
    p = load_profile("field")
    assert p is not None and p.token == "s3cret-token" and p.hub == "ws://127.0.0.1:8765"
    save_profile(Profile("field", "ws://127.0.0.1:8765", "", ""))  # cleared: removed
    assert json.loads(tokens.read_text(encoding="utf-8")) == {}


def test_a_token_an_older_outpost_left_in_the_settings_moves_out(user_dirs: Path) -> None:
    s = app_settings.settings()
    s.setValue("profiles/names", ["old"])
    s.setValue("profile/old/hub", "ws://127.0.0.1:9")
    s.setValue("profile/old/token", "legacy-token")
    s.sync()
    assert "legacy-token" in user_dirs.read_text(encoding="utf-8")
    p = load_profile("old")
    assert p is not None and p.token == "legacy-token"
    assert "legacy-token" not in user_dirs.read_text(encoding="utf-8")
    assert json.loads(tokens_file().read_text(encoding="utf-8")) == {
        "old": {"token": "legacy-token", "over": None}}
    again = load_profile("old")
    assert again is not None and again.token == "legacy-token"


def test_a_damaged_tokens_file_is_named_with_the_fix(user_dirs: Path) -> None:
    save_profile(Profile("field", "ws://127.0.0.1:8765", "t", ""))
    tokens_file().write_text("{not json", encoding="utf-8")
    with pytest.raises(app_settings.ConfigError) as err:
        load_profile("field")
    assert str(tokens_file()) in str(err.value) and "Connection settings" in str(err.value)


def test_the_app_opens_the_replica_outpost_connect_set_up(user_dirs: Path) -> None:
    assert launch_mod._cli_default() is None  # nothing set up: the first-run dialog asks
    dd = DataDir(default_data_dir())
    dd.save_config(SatConfig("ws://127.0.0.1:8765", "tok"))
    p = launch_mod._cli_default()
    assert p == Profile("default", "ws://127.0.0.1:8765")
    assert p is not None and p.path == dd.path


def test_the_demo_starts_no_hub_when_qt_cannot_start(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path] = []

    class QtCannotStart(RuntimeError):
        pass

    def no_qt() -> None:
        raise QtCannotStart("no display")  # Qt itself aborts the process (qFatal)

    monkeypatch.setattr("desktop.app.ensure_app", no_qt)
    monkeypatch.setattr(demo_mod, "start_hub", lambda base, **_k: started.append(base))
    with pytest.raises(QtCannotStart):
        demo_mod.run_demo(data=tmp_path / "demo")
    # review 9: the hub was started first and left running (ppid 1) after Qt aborted
    assert started == []


def test_every_profiles_old_token_moves_out_on_the_first_read(user_dirs: Path) -> None:
    s = app_settings.settings()
    s.setValue("profiles/names", ["work", "home"])
    s.setValue("profile/work/token", "SECRET-WORK")
    s.setValue("profile/home/token", "SECRET-HOME")
    s.sync()
    p = load_profile("work")
    assert p is not None and p.token == "SECRET-WORK"
    text = user_dirs.read_text(encoding="utf-8")
    assert "SECRET-WORK" not in text and "SECRET-HOME" not in text  # not only work's
    home = load_profile("home")
    assert home is not None and home.token == "SECRET-HOME"


def test_a_token_the_directory_holds_is_not_kept_twice(user_dirs: Path) -> None:
    d = default_data_dir()
    DataDir(d).save_config(SatConfig("ws://127.0.0.1:9", "T1"))
    save_profile(Profile("default", "ws://127.0.0.1:9", "T1"))
    assert app_settings._read_tokens(tokens_file()) == {}  # config.json has it
    save_profile(Profile("default", "ws://127.0.0.1:9", "T2"))  # not applied there yet
    assert app_settings._read_tokens(tokens_file()) == {"default": {"token": "T2", "over": "T1"}}


def test_a_start_never_pushes_a_profiles_old_token_over_the_directorys(user_dirs: Path) -> None:
    """Merge review 9 (HIGH): the profile kept OLD, `outpost connect --token=NEW` wrote NEW
    into the same directory; the next start checked OLD, and with the hub out of reach
    stored it over NEW."""
    save_profile(Profile("default", "ws://127.0.0.1:9", "OLD"))
    DataDir(default_data_dir()).save_config(SatConfig("ws://127.0.0.1:9", "NEW"))
    p = launch_mod._saved(load_profile("default"))
    assert p is not None and p.token == "" and p.hub == "ws://127.0.0.1:9"
    # a directory with no token yet (made, never connected): the profile's is still used
    other = Profile("work", "ws://127.0.0.1:9", "W")
    assert launch_mod._saved(other) == other


def test_work_offline_is_not_lost_when_its_move_fails(
        user_dirs: Path, tmp_path: Path, project: Project, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge review 9: the settings' entry was removed before the directory stored the
    choice; with that write failing (a full disk) no window opened, and the next start
    was online and synced."""
    from desktop.app import WindowSpec, open_window

    d = tmp_path / "sat"
    Satellite(d, project).close()
    s = app_settings.settings()
    s.setValue("offline/dirs", [str(d.resolve())])
    s.sync()
    sat = Satellite(d, project)
    try:
        def full(*_a: object, **_k: object) -> None:
            raise StorageError("database or disk is full")

        with monkeypatch.context() as m:
            m.setattr(sat.queue, "set_meta", full)
            w = open_window(sat, WindowSpec(d, "ws://127.0.0.1:9"))
            qtbot.addWidget(w)
        assert sat.offline_mode  # offline this run all the same
        assert "could not be moved" in w.status.message.text()
        assert kept_offline_before(d)  # still in the settings: moved on a later start
        w.close()
    finally:
        sat.close()
    sat = Satellite(d, project)
    try:
        w = open_window(sat, WindowSpec(d, "ws://127.0.0.1:9"))
        qtbot.addWidget(w)
        assert sat.work_offline and sat.offline_mode and not kept_offline_before(d)
        w.close()
    finally:
        sat.close()


def test_a_token_given_in_connection_settings_is_used_at_the_next_start(user_dirs: Path) -> None:
    """Final reread 9 (HIGH): Connection settings checked T2 with the hub and saved the
    profile, but the next start dropped the profile's token because the directory held T1:
    T1 stayed in use for ever."""
    DataDir(default_data_dir()).save_config(SatConfig("ws://127.0.0.1:9", "T1"))
    save_profile(Profile("default", "ws://127.0.0.1:9", "T2"))  # File → Connection settings
    p = launch_mod._saved(load_profile("default"))
    assert p is not None and p.token == "T2"  # applied (checked) at the start
    # `outpost connect --token=T3` since: the directory's is the newer one
    DataDir(default_data_dir()).save_config(SatConfig("ws://127.0.0.1:9", "T3"))
    p = launch_mod._saved(load_profile("default"))
    assert p is not None and p.token == ""


def test_two_saves_of_tokens_at_once_keep_both(user_dirs: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """tokens.json was read, changed and written without a lock: two app processes saving at
    once each wrote what it had read plus its own entry, and the later dropped the other's.
    Two threads (each flock is its own open file, as two processes' are) are held between
    their read and their write until both got there, or 2 s passed (under the lock the
    second cannot read before the first wrote)."""
    import contextlib
    import threading

    both_read = threading.Barrier(2, timeout=2.0)
    write = app_settings.write_private

    def held_write(path: Path, text: str) -> None:
        # broken: the other one is waiting for the lock, nothing to wait for
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        write(path, text)

    monkeypatch.setattr(app_settings, "write_private", held_write)
    errors: list[BaseException] = []

    def save(name: str) -> None:
        try:
            save_profile(Profile(name, "ws://127.0.0.1:8765", f"token-{name}", ""), last=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    kept = json.loads(tokens_file().read_text(encoding="utf-8"))
    assert {n: e["token"] for n, e in kept.items()} == {"alpha": "token-alpha",
                                                        "beta": "token-beta"}
    assert stat.S_IMODE(tokens_file().stat().st_mode) == 0o600
