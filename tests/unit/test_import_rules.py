"""The picture of the layers is the import graph (DESIGN.md §2).

``core`` imports neither Qt, qasync, ``desktop`` nor ``hubserver``; sockets (websockets) only in
the satellite's asyncio adapter ``core/satellite/client.py``; nothing but ``desktop`` imports Qt.
Each failure names the file, the line and how to fix it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QT = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "qasync", "pytestqt")
SOCKET_ADAPTER = Path("core/satellite/client.py")


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, also inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*base, mod]) if mod else ".".join(base)
            yield node.lineno, mod
            if not node.module:  # from . import x: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{mod}.{alias.name}"


def top(module: str) -> str:
    return module.split(".")[0]


def python_files(*dirs: str) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        base = ROOT / d
        if base.is_dir():
            out.extend(p for p in sorted(base.rglob("*.py")) if ".venv" not in p.parts)
    return out


def core_violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT)
    out = []
    for line, mod in imports(path):
        where = f"{rel}:{line}: imports {mod}"
        t = top(mod)
        if t in QT:
            out.append(f"{where}: core must not use Qt or qasync; move the Qt code to desktop/ "
                       "and pass plain data (or a callback) into core instead")
        elif t == "desktop":
            out.append(f"{where}: core must not import desktop/; move the shared code into "
                       "core and import it from desktop instead")
        elif t == "hubserver":
            out.append(f"{where}: core must not import hubserver/; move the shared code into "
                       "core and import it from hubserver instead")
        elif t == "websockets" and rel != SOCKET_ADAPTER:
            out.append(f"{where}: sockets belong only in the satellite's asyncio adapter "
                       f"{SOCKET_ADAPTER}; keep the logic sans-I/O (messages in, messages out) "
                       "and move the socket code there")
    return out


def qt_violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT)
    return [
        f"{rel}:{line}: imports {mod}: only desktop/ may use Qt or qasync; move this code to "
        "desktop/ and pass data in instead"
        for line, mod in imports(path) if top(mod) in QT
    ]


def test_core_imports_no_qt_ui_hub_or_sockets() -> None:
    files = python_files("core")
    assert len(files) >= 6, "the walk found no core modules: is ROOT right?"
    problems = [p for f in files for p in core_violations(f)]
    assert not problems, "\n".join(problems)


def is_ui_file(path: Path) -> bool:
    """Tests and benchmarks of the desktop app use Qt (pytest-qt, a window on qasync); they
    live under a ``desktop``, ``qt`` or ``ui`` directory or have one of those words in their
    file name."""
    words = ("desktop", "qt", "ui")
    rel = path.relative_to(ROOT)
    return any(w in rel.parts[:-1] for w in words) or any(w in rel.stem.split("_") for w in words)


def test_only_desktop_imports_qt() -> None:
    # scripts/ holds developer tools outside the package graph; one that drives the desktop
    # app (screenshots) may use Qt like desktop/ does
    files = [*python_files("core", "hubserver", "assets"),
             *(p for p in python_files("tests", "bench") if not is_ui_file(p))]
    files = [f for f in files if f.resolve() != Path(__file__).resolve()]
    problems = [p for f in files for p in qt_violations(f)]
    assert not problems, "\n".join(problems)


# --- the checker itself must be able to fail --------------------------------------------------


@pytest.fixture
def fake_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "core" / "satellite").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "source", "says"),
    [
        ("core/a.py", "import PySide6.QtCore\n", "core/a.py:1: imports PySide6.QtCore"),
        ("core/a.py", "x = 1\nfrom PySide6 import QtWidgets\n", "core/a.py:2:"),
        ("core/a.py", "def f():\n    import qasync\n", "core/a.py:2: imports qasync"),
        ("core/a.py", "from desktop.app import main\n", "must not import desktop/"),
        ("core/a.py", "import hubserver.cli\n", "must not import hubserver/"),
        ("core/a.py", "import websockets\n", "sockets belong only"),
        ("core/satellite/sync.py", "from websockets.asyncio.client import connect\n",
         "core/satellite/sync.py:1"),
        ("core/satellite/sync.py", "from ..satellite import client\n", None),
    ],
)
def test_checker_finds_violations(fake_core: Path, rel: str, source: str,
                                  says: str | None) -> None:
    path = fake_core / rel
    path.write_text(source, encoding="utf-8")
    problems = core_violations(path)
    if says is None:
        assert problems == []
    else:
        assert problems and says in problems[0], problems
        assert "move" in problems[0]  # says how to fix it


def test_checker_allows_sockets_in_the_adapter(fake_core: Path) -> None:
    path = fake_core / "core" / "satellite" / "client.py"
    path.write_text("import websockets\nfrom websockets.asyncio.client import connect\n",
                    encoding="utf-8")
    assert core_violations(path) == []
    path.write_text("import qasync\n", encoding="utf-8")
    assert core_violations(path)


def test_relative_imports_resolve(fake_core: Path) -> None:
    path = fake_core / "core" / "satellite" / "x.py"
    path.write_text("from .. import model\nfrom ..wire import dumps\nfrom . import client\n",
                    encoding="utf-8")
    assert [m for _, m in imports(path)] == [
        "core", "core.model", "core.wire", "core.satellite", "core.satellite.client"]


def test_qt_checker(fake_core: Path) -> None:
    path = fake_core / "core" / "h.py"
    path.write_text("from PySide6.QtCore import QObject\n", encoding="utf-8")
    assert "only desktop/ may use Qt" in qt_violations(path)[0]
