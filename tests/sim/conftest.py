"""Fixtures of the simulation: a template satellite data directory (tables made once)."""

from __future__ import annotations

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
