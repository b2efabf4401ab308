"""Fixtures of the simulation: a template satellite data directory (tables made once).

The ``slow`` tests here (long sessions on many seeds) are deselected in a plain run (``make
test``) and run with ``-m slow`` (``make soak``) or ``OUTPOST_SOAK=1``; ``-k replay_long`` with
``OUTPOST_SIM_SEED`` also selects them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.satellite.satellite import Satellite
from core.schema import Project


@pytest.fixture(scope="session")
def sat_template(tmp_path_factory: pytest.TempPathFactory, project: Project) -> Path:
    """An empty satellite data directory (schema and tables), copied for every satellite."""
    path = tmp_path_factory.mktemp("sim-template") / "sat"
    Satellite(path, project).close()
    return path


_HERE = str(Path(__file__).resolve().parent)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = ("slow" in (config.getoption("markexpr") or "")
              or os.environ.get("OUTPOST_SOAK", "") not in ("", "0")
              or (os.environ.get("OUTPOST_SIM_SEED") and "replay_long" in
                  (config.getoption("keyword") or "")))
    if wanted:
        return
    drop = [it for it in items
            if str(it.path).startswith(_HERE) and it.get_closest_marker("slow")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if it not in drop]
