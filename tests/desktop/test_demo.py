"""``outpost demo``'s start-up, run for real in a child process (offscreen Qt, a real demo hub
subprocess on 127.0.0.1): what it opened is closed again when a later step fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.errors import ConfigError
    from core.satellite.config import DataDir
    import desktop.app as app_mod
    from desktop.demo import run_demo

    base = Path(sys.argv[1])
    held = DataDir(base / "satellite-2").lock()  # the second satellite cannot be opened
    app_mod.QMessageBox.critical = lambda *a, **k: print("dialog:", a[2], flush=True)
    opened = []
    real_open_window = app_mod.open_window

    def spy(sat, spec, *a, **k):
        opened.append(sat)
        return real_open_window(sat, spec, *a, **k)

    app_mod.open_window = spy
    code = run_demo(two=True, data=base)
    try:
        DataDir(base / "satellite-1").lock().release()
        free = True
    except ConfigError:
        free = False
    sync = getattr(opened[0], "on_local", "?") if opened else "?"
    print("result", code, len(opened), free, sync is None, flush=True)
""")


def test_demo_two_closes_the_first_satellite_when_the_second_cannot_be_opened(
        tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "demo")],
                          capture_output=True, text=True, env=env, timeout=180, cwd=ROOT)
    assert "result" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "in use by another Outpost process" in proc.stdout  # the error was shown
    code, opened, free, stopped = proc.stdout.split("result", 1)[1].split()
    assert (code, opened) == ("1", "1")
    # the first window's satellite was closed (its directory's lock released) and its sync
    # stopped, before run_demo returned
    assert free == "True" and stopped == "True"


def test_demo_with_a_file_as_data_directory_says_so(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "demo", "--data", str(f)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "is a file, not a directory" in proc.stderr and "--data" in proc.stderr
    assert f.read_text(encoding="utf-8") == "x"
