"""The record form's load (each click on a row): a 20-field record holding every odd value of
``tests/desktop/test_form_values.py``, 200 loads per round, rounds alternating between this
tree's ``RecordForm`` and another version's, in one process.

    git show 6bde89e:desktop/widgets/form.py > /tmp/form_old.py
    .venv/bin/python bench/desktop_form.py /tmp/form_old.py

The load's CPU time (``time.process_time``) is printed beside the wall time: on the shared
machine the wall time follows the load. ``ROUNDS=N`` (default 5). Another tree's whole
app (its ``core`` too: the form reads the satellite) is compared by running this script
from that tree's root with ``PYTHONPATH`` set to it, in alternation.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(os.environ.get("OUTPOST_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))  # before bench/, whose desktop.py is not the package
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from core.model import Action, Cmd  # noqa: E402
from core.satellite.satellite import Satellite  # noqa: E402
from core.schema import parse_project  # noqa: E402
from tests.desktop.test_form_values import ODD, SCHEMA  # noqa: E402

TOP = "t.rec"
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def module(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main() -> None:
    app = QApplication([])
    project = parse_project(SCHEMA)
    with tempfile.TemporaryDirectory() as tmp:
        sat = Satellite(Path(tmp) / "s", project)
        # values the old spin boxes could hold (they raised on the others)
        rec = {**ODD, "count": 5, "big": 7, "low": -7, "site": None}
        sat.pub([Action(TOP, "r1", Cmd.NEW, rec)])
        rv = sat.record(TOP, "r1")
        versions = {"ours": module(str(ROOT / "desktop/widgets/form.py"), "form_ours")}
        if len(sys.argv) > 1:
            versions["other"] = module(sys.argv[1], "form_other")
        forms: dict[str, Any] = {k: m.RecordForm(sat, project.model(TOP))
                                 for k, m in versions.items()}
        times: dict[str, list[float]] = {k: [] for k in forms}
        cpu: dict[str, list[float]] = {k: [] for k in forms}
        for rnd in range(ROUNDS):
            for k in (list(forms) if rnd % 2 == 0 else list(reversed(forms))):
                t, c = time.perf_counter(), time.process_time()
                for _ in range(200):
                    forms[k].load(rv)
                times[k].append((time.perf_counter() - t) / 200 * 1e3)
                cpu[k].append((time.process_time() - c) / 200 * 1e3)
        for k, v in times.items():
            print(f"{k}: load median {statistics.median(v):.2f} ms "
                  f"(range {min(v):.2f}-{max(v):.2f}); CPU median "
                  f"{statistics.median(cpu[k]):.2f} ms (range {min(cpu[k]):.2f}-"
                  f"{max(cpu[k]):.2f})")
        if "other" in times:
            print("other/ours per round:",
                  ", ".join(f"{o / n:.2f}" for o, n in zip(times["other"], times["ours"],
                                                          strict=True)))
        sat.close()
    app.quit()


if __name__ == "__main__":
    main()
