"""The server installation of docs/deployment.md: the systemd units in ``assets/deploy`` name
the real entry point and options the CLI accepts, and run as systemd would run them (the
hub drains on SIGHUP and SIGTERM; the backup unit backs up, rotates and verifies, and its
backup restores); a wheel installed outside the clone, without the desktop extra, runs the
hub and says what the app needs. Real processes, files and sockets on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from core.satellite.client import hub_error
from core.schema import load_project
from hubserver.cli import DEMO_SCHEMA, _parser, main, open_hub_ledger, seed_demo

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "assets" / "deploy"
ENTRY = "/opt/outpost/bin/outpost-hub"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# -- reading a unit as systemd does (the parts these units use) -------------------------------

def unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> its values in order; continuation lines (a trailing backslash) are
    joined with a space, comment lines dropped, as systemd reads a unit file."""
    out: dict[str, list[str]] = {}
    section, pending = "", ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def unit_env(u: dict[str, list[str]], env_file: Path | None = None) -> dict[str, str]:
    """Environment=, then the EnvironmentFile's assignments over them (systemd's order)."""
    env: dict[str, str] = {}
    for value in u.get("Service.Environment", []):
        for word in shlex.split(value):
            k, _, v = word.partition("=")
            env[k] = v
    if env_file is not None and env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                k, _, v = line.partition("=")
                env[k.strip()] = " ".join(shlex.split(v))
    return env


def exec_argv(line: str, env: dict[str, str]) -> list[str]:
    """One ExecStart= as the argv systemd runs: words split with its quoting, ``%%`` -> ``%``,
    ``$$`` -> ``$``, ``${VAR}`` replaced within its word, a word that is ``$VAR`` alone
    split at whitespace into words (none when empty)."""
    assert not re.search(r"%[^%]", line.replace("%%", "")), "a specifier other than %%"
    argv: list[str] = []
    for word in shlex.split(line):
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            argv.extend(env.get(alone[1], "").split())
            continue
        parts = word.split("$$")
        parts = [re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m[1], ""), p)
                 for p in parts]
        argv.append("$".join(parts).replace("%%", "%"))
    return argv


def relocate(argv: list[str], places: dict[str, Path]) -> list[str]:
    """The argv with the unit's paths in ``places`` (a test directory each) and the venv's
    outpost-hub this tree's ``python -m hubserver.cli``."""
    hub = f"{shlex.quote(sys.executable)} -m hubserver.cli"
    out = []
    for i, word in enumerate(argv):
        if i == 0 and word == ENTRY:
            out += [sys.executable, "-m", "hubserver.cli"]
            continue
        word = word.replace(ENTRY, hub)
        for old, new in places.items():
            word = word.replace(old, str(new))
        out.append(word)
    return out


def places(tmp_path: Path) -> dict[str, Path]:
    p = {"/var/lib/outpost": tmp_path / "lib", "/var/backups/outpost": tmp_path / "backups",
         "/etc/outpost": tmp_path / "etc"}
    for d in p.values():
        d.mkdir()
    shutil.copy(DEMO_SCHEMA, p["/etc/outpost"] / "schema.toml")
    return p


HUB = unit(DEPLOY / "outpost-hub.service")
BACKUP = unit(DEPLOY / "outpost-hub-backup.service")


# -- the hub's unit ---------------------------------------------------------------------------

@pytest.mark.parametrize("hub_env", ["", "OUTPOST_HUB_OPTS=--max-connections 500 "
                                         "--idle-timeout 60 --trusted-proxy 127.0.0.1\n"
                                         "OUTPOST_DB=postgresql://outpost@"
                                         "db.internal/outpost\nOUTPOST_USERS=/var/lib/"
                                         "outpost/users.db\n"])
def test_hub_unit_runs_the_entry_point_with_options_serve_accepts(tmp_path: Path,
                                                                  hub_env: str) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["outpost-hub"] == "hubserver.cli:main"
    (tmp_path / "hub.env").write_text(hub_env)
    env = unit_env(HUB, tmp_path / "hub.env")
    (start,) = HUB["Service.ExecStart"]
    argv = exec_argv(start, env)
    assert argv[0] == ENTRY and argv[1] == "serve"
    args = _parser().parse_args(argv[1:])  # argparse exits (SystemExit) on an unknown option
    assert args.cmd == "serve" and args.host == "127.0.0.1"
    assert args.db == env["OUTPOST_DB"] and args.users == env["OUTPOST_USERS"]
    assert args.schema == "/etc/outpost/schema.toml"
    if hub_env:
        assert args.max_connections == 500 and args.idle_timeout == 60
        assert args.trusted_proxy == ["127.0.0.1"]  # nginx's address, as docs/deployment.md
    else:
        assert args.trusted_proxy == []  # off by default
    # the proxy's upstream is this port
    nginx = (DEPLOY / "nginx-outpost.conf").read_text()
    assert f"server 127.0.0.1:{args.port};" in nginx
    # it forwards the client's address, which --trusted-proxy 127.0.0.1 reads
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx
    # the Caddy example proxies to the same port (caddy validate: docs/deployment.md, 4b)
    caddy = [ln.split() for ln in (DEPLOY / "Caddyfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert ["reverse_proxy", f"127.0.0.1:{args.port}"] in caddy
    # the hub writes in its state directory only, and that is writable under ProtectSystem
    assert HUB["Service.ProtectSystem"] == ["strict"]
    writable = HUB["Service.ReadWritePaths"][0].split()
    assert HUB["Service.StateDirectory"] == ["outpost"] and "/var/lib/outpost" in writable
    if not env["OUTPOST_DB"].startswith("postgresql"):
        assert str(Path(env["OUTPOST_DB"]).parent) in writable
    assert str(Path(env["OUTPOST_USERS"]).parent) in writable
    # stop: SIGTERM drains; the drain (<= ~13 s) fits before systemd's SIGKILL
    assert HUB["Service.KillSignal"] == ["SIGTERM"]
    assert int(HUB["Service.TimeoutStopSec"][0]) >= 20
    assert "Service.ExecReload" not in HUB  # SIGHUP is no reload: it drains too
    assert HUB["Service.Restart"] == ["on-failure"]
    assert HUB["Service.User"] == ["outpost"] and HUB["Service.NoNewPrivileges"] == ["yes"]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_hub_unit_serves_and_drains_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    where = places(tmp_path)
    argv = relocate(exec_argv(HUB["Service.ExecStart"][0], unit_env(HUB)), where)
    argv[argv.index("--port") + 1] = "0"  # a free port: tests run side by side
    assert main(["user", "add", "ann", "--db", str(where["/var/lib/outpost"] / "hub.sqlite")]) \
        == 0
    # systemd starts a service with every signal at its default; a test run under `nohup`
    # (SIGHUP ignored, inherited) would start a hub that keeps ignoring SIGHUP, as meant
    # for `nohup outpost-hub serve`: the child sets SIGHUP back to its default, then execs
    dfl = ("import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
           "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", dfl, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=where["/var/lib/outpost"])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost-hub ready: ws://127.0.0.1:"), line
        assert f"users {where['/var/lib/outpost']}/hub.sqlite.users.db" in line
        url = line.split()[2].replace("ws://", "http://")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as r:
            assert r.status == 200 and r.read().strip() == b"ok"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=int(HUB["Service.TimeoutStopSec"][0]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"shutting down ({sig.name})" in err and "stopped" in err


# -- the backup unit --------------------------------------------------------------------------

def test_backup_unit_backs_up_rotates_verifies_and_the_backup_restores(tmp_path: Path) -> None:
    where = places(tmp_path)
    lib, backups = where["/var/lib/outpost"], where["/var/backups/outpost"]
    env = unit_env(BACKUP)
    assert env == {k: v for k, v in unit_env(HUB).items() if k != "OUTPOST_HUB_OPTS"}
    db = lib / "hub.sqlite"
    ledger = open_hub_ledger(str(db), load_project(DEMO_SCHEMA))
    try:
        assert seed_demo(ledger) > 0
        rev = ledger.rev()
    finally:
        ledger.close()
    assert main(["user", "add", "ann", "--db", str(db)]) == 0
    old = []
    for day in range(1, 16):  # 15 older backups: with the new one, two more than the 14 kept
        f = backups / f"outpost-2026-01-{day:02d}T023000Z.ledger"
        f.write_bytes(b"")
        os.utime(f, (time.time() - 86400 * (40 - day),) * 2)
        old.append(f)
    run_env = {**ENV, **{k: v.replace("/var/lib/outpost", str(lib)).replace(
        "/etc/outpost", str(where["/etc/outpost"])) for k, v in env.items()}}
    starts = BACKUP["Service.ExecStart"]
    assert len(starts) == 2 and " backup " in starts[0] and " verify " in starts[1]
    for line in starts:  # Type=oneshot: in order, each must succeed
        argv = relocate(exec_argv(line, env), where)
        if argv[0] != sys.executable:
            assert argv[1] == "-ec" and "backup" in argv[2]
        r = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=tmp_path,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    kept = sorted(backups.glob("outpost-*.ledger"))
    new = [f for f in kept if f not in old]
    assert len(kept) == 14 and len(new) == 1
    assert re.fullmatch(r"outpost-\d{4}-\d\d-\d\dT\d{6}Z\.ledger", new[0].name)
    assert not old[0].exists() and not old[1].exists() and old[2].exists()
    # the restore steps of docs/deployment.md: into a new file, users carried over
    target = tmp_path / "restored" / "hub.sqlite"
    target.parent.mkdir()
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "restore", str(new[0]), "--db",
                        str(target), "--schema", str(where["/etc/outpost"] / "schema.toml")],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "users: copied the 1 users" in r.stdout + r.stderr
    restored = open_hub_ledger(str(target), load_project(DEMO_SCHEMA))
    try:
        assert restored.rev() == rev
    finally:
        restored.close()


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed: apt install systemd (Debian's; CI has it)"
    exe = Path(sys.executable).parent / "outpost-hub"
    assert exe.exists(), "the venv's outpost-hub console script"
    names = ["outpost-hub.service", "outpost-hub-backup.service", "outpost-hub-backup.timer"]
    for name in names:
        text = (DEPLOY / name).read_text().replace(ENTRY, str(exe))
        (tmp_path / name).write_text(text)
    r = subprocess.run([analyze, "verify", *names], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# -- installed outside the clone, without the desktop extra -----------------------------------

def test_server_install_needs_no_qt() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [d.split(">")[0].split("[")[0].lower() for d in project["dependencies"]]
    assert not [d for d in deps if d.startswith(("pyside6", "qasync", "shiboken"))]
    desktop = [d.lower() for d in project["optional-dependencies"]["desktop"]]
    assert any(d.startswith("pyside6") for d in desktop)
    assert any(d.startswith("qasync") for d in desktop)
    assert "desktop" in (ROOT / "Makefile").read_text().split("pip install -q -e '.[")[1]


def test_the_clone_links_its_assets_to_the_package_data() -> None:
    """`make demo`, the docs' `assets/demo-schema.toml` and benches given an older tree keep
    their paths: the clone's assets are links to the package data."""
    from desktop.icons import ICON_DIR
    from hubserver.cli import DEMO_DATA

    assert DEMO_SCHEMA.is_file() and DEMO_SCHEMA.parent == ROOT / "hubserver" / "data"
    assert (ROOT / "assets" / "demo-schema.toml").resolve() == DEMO_SCHEMA.resolve()
    assert (ROOT / "assets" / "demo-data.json").resolve() == DEMO_DATA.resolve()
    assert (ROOT / "assets" / "icons").resolve() == ICON_DIR.resolve()
    assert ICON_DIR == ROOT / "desktop" / "data" / "icons" and (ICON_DIR / "app.svg").is_file()


def build_backend_here() -> str | None:
    """Why this environment cannot build the wheel offline, or None when it can: pip's
    ``--no-build-isolation`` uses this venv's setuptools (the dev extra's, ``make venv``)
    instead of fetching ``[build-system].requires`` from the package index; 70.1 or later
    builds wheels without the ``wheel`` package."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "no setuptools in this venv"
    major_minor = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if not (70, 1) <= major_minor < (81, 0):
        return f"setuptools {version} here, the dev extra asks >=70.1,<81"
    return None


def qt_packages() -> list[Path]:
    """This environment's PySide6, shiboken6 and qasync (the desktop extra)."""
    return [e for e in Path(sysconfig.get_paths()["purelib"]).iterdir()
            if e.name.lower().startswith(("pyside6", "shiboken6", "qasync"))]


class Installed:
    """The wheel built from a copy of the sources and installed in a new venv outside the
    clone: ``py``/``bin`` are its interpreter and scripts, ``env`` runs them with nothing of
    this tree on the path and Qt offscreen, ``qt_env`` adds the desktop extra's packages
    (this environment's, linked: as ``pip install 'WHEEL[desktop]'`` would)."""

    def __init__(self, tmp: Path, wheel: Path, venv: Path, site: Path, env: dict[str, str],
                 qt_env: dict[str, str], took: float):
        self.tmp, self.wheel, self.venv, self.site = tmp, wheel, venv, site
        self.py, self.bin = venv / "bin" / "python", venv / "bin"
        self.env, self.qt_env, self.took = env, qt_env, took
        self.out = tmp / "run"  # the working directory: outside the clone

    def run(self, *argv: object, qt: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              env=self.qt_env if qt else self.env, cwd=self.out,
                              timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources, offline with this venv's setuptools
    (``--no-build-isolation --no-index``: no package index mid-run), install it with
    --no-deps in a new venv whose dependencies are this environment's minus
    PySide6/shiboken6/qasync (the install asks no registry either)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("core", "hubserver", "desktop"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    t0 = time.monotonic()
    why = build_backend_here()
    if os.environ.get("CI"):  # CI's venv is `make venv`'s: it never fetches mid-run
        assert why is None, f"{why}: run `make venv` (the dev extra has the build backend)"
    # offline with this venv's setuptools; else (an older venv, outside CI) as an operator's
    # pip does: setuptools from the package index in an isolated build environment
    offline = ["--no-build-isolation", "--no-index"] if why is None else []
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline,
                        "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    if why is not None:
        print(f"the wheel was built with setuptools from the package index: {why}")
    (wheel,) = (tmp / "dist").glob("outpost-*.whl")
    venv = tmp / "opt" / "outpost"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True,
                               timeout=60).stdout.strip())
    deps = tmp / "deps"  # this environment's packages, the desktop ones left out
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        low = entry.name.lower()
        if low.startswith(("pyside6", "shiboken6", "qasync", "outpost", "__editable__", "_")) \
                or low.endswith(".pth") or low in ("core", "hubserver", "desktop"):
            continue
        (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    qt = tmp / "qt"  # the desktop extra's packages, on the path only where asked
    qt.mkdir()
    for entry in qt_packages():
        (qt / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no tree on the path
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_DATA_HOME"], env["XDG_CONFIG_HOME"] = str(tmp / "xdg"), str(tmp / "config")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                        "--no-deps", "--no-index", str(wheel)], capture_output=True,
                       text=True, timeout=300, env=env, cwd=tmp)
    assert r.returncode == 0 and (venv / "bin" / "outpost-hub").exists(), r.stdout + r.stderr
    took = time.monotonic() - t0
    (tmp / "run").mkdir()
    print(f"wheel built ({'offline' if why is None else 'index'}) and installed in {took:.1f} s")
    return Installed(tmp, wheel, venv, site, env, {**env, "PYTHONPATH": str(qt)}, took)


def demo_counts() -> dict[str, int]:
    """Records per topic of the demo data: each ``new`` makes one, each ``del`` removes one."""
    import json

    counts: dict[str, int] = {}
    for t in json.loads((ROOT / "hubserver" / "data" / "demo-data.json").read_text())[
            "transactions"]:
        for a in t["acts"]:
            counts[a["top"]] = counts.get(a["top"], 0) + {"new": 1, "del": -1}.get(a["cmd"], 0)
    return counts


def exported_rows(inst: Installed, data: Path, topic: str, check: bool = True) -> int:
    """``outpost export``'s rows (-1 when it failed and not ``check``)."""
    import csv

    r = inst.run(inst.bin / "outpost", "export", topic, "--data", data)
    if not check and r.returncode != 0:
        return -1
    assert r.returncode == 0, r.stderr
    return len(list(csv.reader(r.stdout.splitlines()))) - 1  # the header


@pytest.mark.xdist_group("wheel")
@pytest.mark.timeout(600)
def test_a_built_wheel_runs_the_hub_outside_the_clone_without_qt(installed: Installed) -> None:
    inst, tmp = installed, installed.tmp
    r = inst.run(inst.py, "-c", "import core, hubserver, importlib.util as u; "
                 "print(hubserver.__file__, u.find_spec('PySide6'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(str(inst.site / "hubserver")) and r.stdout.split()[1] == "None"
    r = inst.run(inst.bin / "outpost-hub", "serve", "--help")
    assert r.returncode == 0 and "--tls-cert" in r.stdout and "--users" in r.stdout
    schema = tmp / "schema.toml"
    shutil.copy(DEMO_SCHEMA, schema)
    r = inst.run(inst.bin / "outpost-hub", "user", "add", "ann", "--db", tmp / "h.sqlite")
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([str(inst.bin / "outpost-hub"), "serve", "--port", "0",
                             "--db", str(tmp / "h.sqlite"), "--schema", str(schema)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=inst.env, cwd=inst.out)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost-hub ready: ws://127.0.0.1:"), line
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0 and "PySide6" not in err
    r = inst.run(inst.bin / "outpost", "status", "--help")  # headless commands: no Qt
    assert r.returncode == 0, r.stderr
    for app in ([], ["app"], ["demo"]):  # the app says what to install, no traceback
        r = inst.run(inst.bin / "outpost", *app)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "pip install 'SRC[desktop]'" in r.stderr and "no PySide6" in r.stderr


@pytest.mark.xdist_group("wheel")
@pytest.mark.timeout(600)
def test_a_built_wheel_holds_the_demo_data_and_icons(installed: Installed) -> None:
    """Package data: the demo schema and data and the icons are in the wheel, and the
    installed programs use them from there (before session 14 only a clone had them)."""
    inst, tmp = installed, installed.tmp
    import zipfile

    names = set(zipfile.ZipFile(inst.wheel).namelist())
    icons = sorted(p.name for p in (ROOT / "desktop" / "data" / "icons").glob("*.svg"))
    assert "app.svg" in icons
    assert {f"desktop/data/icons/{n}" for n in icons} <= names
    assert {"hubserver/data/demo-schema.toml", "hubserver/data/demo-data.json"} <= names
    r = inst.run(inst.bin / "outpost", "demo", "--help", qt=True)
    assert r.returncode == 0 and "--two" in r.stdout, r.stderr
    # the demo's hub, as `outpost demo` starts it (desktop.demo.start_hub: serve --seed-demo
    # with the default schema), then a headless satellite syncs the demo data from it
    want = demo_counts()
    assert want["field.site"] == 60 and want["field.obs"] > 0
    hub_dir, sat = tmp / "demo-hub", tmp / "sat"
    proc = subprocess.Popen([str(inst.py), "-c", "import sys, time; from pathlib import Path; "
                             "from desktop.demo import start_hub; "
                             "h = start_hub(Path(sys.argv[1])); print(h.url, flush=True); "
                             "sys.stdin.read(); h.stop()", str(hub_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=inst.env, cwd=inst.out)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url + (proc.stderr.read() if
                                                          proc.poll() is not None else "")
        r = inst.run(inst.bin / "outpost", "connect", url, "--data", sat)
        assert r.returncode == 0, r.stderr
        r = inst.run(inst.bin / "outpost", "sync", "--once", "--timeout", "60", "--data", sat)
        assert r.returncode == 0, r.stderr
        _, err = proc.communicate(timeout=30)  # its stdin closed: the hub is stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    for topic, n in want.items():
        assert exported_rows(inst, sat, topic) == n, topic
    # the app's icons, from the installed package, drawn by Qt
    r = inst.run(inst.py, "-c", "from PySide6.QtGui import QGuiApplication; "
                 "app = QGuiApplication([]); from desktop.icons import ICON_DIR, icon; "
                 "import sys; names = sys.argv[1:]; "
                 "print(ICON_DIR); print(sum(not icon(n).pixmap(16, 16).isNull() "
                 "for n in names))", *[n[:-4] for n in icons], qt=True)
    assert r.returncode == 0, r.stderr
    icon_dir, drawn = r.stdout.split()
    assert icon_dir == str(inst.site / "desktop" / "data" / "icons")
    assert int(drawn) == len(icons)
    # an installation that lost the demo schema (removed by hand; a wheel built before
    # session 14) is told to give one, and nothing is created
    (inst.site / "hubserver" / "data" / "demo-schema.toml").rename(tmp / "kept.toml")
    try:
        r = inst.run(inst.bin / "outpost-hub", "serve", "--port", "0", "--db",
                     tmp / "none.sqlite")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "no --schema given" in r.stderr and "--schema FILE" in r.stderr
        assert "missing from this installation" in r.stderr
        # verify of no ledger needs no schema: it says there is none (session 14)
        r = inst.run(inst.bin / "outpost-hub", "verify", "--db", tmp / "none.sqlite")
        assert r.returncode == 2 and "no such file" in r.stderr, r.stderr
        assert not (tmp / "none.sqlite").exists()
    finally:
        (tmp / "kept.toml").rename(inst.site / "hubserver" / "data" / "demo-schema.toml")


@pytest.mark.xdist_group("wheel")
@pytest.mark.timeout(600)
def test_outpost_demo_from_a_built_wheel(installed: Installed) -> None:
    """``outpost demo`` itself, from the wheel with the desktop extra: the window's replica
    receives the demo data, SIGTERM closes it."""
    inst, tmp = installed, installed.tmp
    base = tmp / "demo"
    proc = subprocess.Popen([str(inst.bin / "outpost"), "demo", "--data", str(base)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=inst.qt_env, cwd=inst.out)
    want = demo_counts()["field.site"]
    rows = -1
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("outpost demo: hub at ws://127.0.0.1:"), line + (
            proc.stderr.read() if proc.poll() is not None else "")
        for _ in range(60):  # bounded: 60 reads, each a new process, ~1 s apart
            # (refused until the window made its data directory)
            rows = exported_rows(inst, base / "satellite-1", "field.site", check=False)
            if rows == want:
                break
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert rows == want
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]


# -- satellites behind TLS --------------------------------------------------------------------

def test_a_certificate_for_another_name_says_so(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub behind a proxy whose certificate names hub.example.org, reached as 127.0.0.1
    with the certificate trusted: the fix is the name, not trusting it again."""
    import asyncio
    import ssl

    from core.satellite.client import fetch_hub
    from tests.hub.test_cli import start, stop

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hub.example.org", "-addext",
                    "subjectAltName=DNS:hub.example.org", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, as docs/deployment.md says
    proc, url = start(tmp_path, "--auth", "none", "--tls-cert", str(cert), "--tls-key",
                      str(key), scheme="wss")
    try:
        with pytest.raises(Exception) as ei:
            asyncio.run(fetch_hub(url))
    finally:
        stop(proc)
    msg = str(ei.value)
    assert "certificate for another name than '127.0.0.1'" in msg, msg
    assert "wss://NAME:PORT" in msg and "SSL_CERT_FILE" not in msg
    # an untrusted one still names the trust store and SSL_CERT_FILE
    e = ssl.SSLCertVerificationError(1, "verify failed")
    e.verify_code, e.verify_message = 18, "self-signed certificate"
    assert "SSL_CERT_FILE" in str(hub_error(url, e))
