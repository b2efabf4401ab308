"""Fixtures for the desktop tests: a fake satellite (our own interface) over a MemLedger hub."""

from __future__ import annotations

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from tests.desktop.fakes import FakeSatellite


@pytest.fixture
def hub(project: Project) -> MemLedger:
    hub = MemLedger(project)
    hub.publish(Trans((
        Action("field.site", "s1", Cmd.NEW, {"name": "Alder Creek", "region": "North"}),
        Action("field.site", "s2", Cmd.NEW, {"name": "Birch Hill", "region": "South"}),
        Action("field.obs", "o1", Cmd.NEW, {"site": "s1", "species": "Heron", "count": 3,
                                             "condition": "good"}),
    )), "office")
    return hub


@pytest.fixture
def fake_sat(project: Project, hub: MemLedger) -> FakeSatellite:
    sat = FakeSatellite(project, hub)
    sat.sync()
    sat.online = False
    return sat
