"""The demo data fits the demo schema, replays cleanly and is what its script makes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd, Sig, apply_action
from core.schema import Project
from core.wire import dec_trans
from tests.conftest import DEMO_DATA, ROOT


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEMO_DATA.read_text(encoding="utf-8"))
    return loaded


def actions(data: dict[str, Any]) -> list[Action]:
    return [a for t in data["transactions"] for a in dec_trans(t).acts]


def test_shape(data: dict[str, Any]) -> None:
    assert set(data) == {"transactions"}
    assert all(set(t) == {"acts"} and t["acts"] for t in data["transactions"])
    news = [a.top for a in actions(data) if a.cmd == Cmd.NEW]
    assert 50 <= news.count("field.site") <= 70
    assert 250 <= news.count("field.obs") <= 350


def test_every_action_validates(project: Project, data: dict[str, Any]) -> None:
    for act in actions(data):
        project.check_action(act)


def test_replays_and_refs_point_to_existing_sites(data: dict[str, Any]) -> None:
    state: dict[Sig, dict[str, Any] | None] = {}
    for act in actions(data):
        state[act.sig] = apply_action(state.get(act.sig), act)
        if act.top == "field.obs" and act.arg and "site" in act.arg:
            assert state.get(Sig("field.site", act.arg["site"])) is not None, act
    live = [s for s, v in state.items() if v is not None]
    assert any(a.cmd == Cmd.DEL for a in actions(data))
    assert any(a.cmd == Cmd.MOD for a in actions(data))
    assert {s.top for s in live} == {"field.site", "field.obs"}


def test_keys_are_uuid7_and_unique(data: dict[str, Any]) -> None:
    news = [a for a in actions(data) if a.cmd == Cmd.NEW]
    keys = [a.key for a in news]
    assert len(set(keys)) == len(keys)
    assert all(uuid.UUID(k).version == 7 and str(uuid.UUID(k)) == k for k in keys)


def test_realistic_values(data: dict[str, Any]) -> None:
    sites = [a.arg for a in actions(data) if a.top == "field.site" and a.arg]
    assert all(45.5 < s["lat"] < 48 and 5.5 < s["lon"] < 11 for s in sites)
    assert len({s["region"] for s in sites}) >= 5
    obs = [a.arg for a in actions(data) if a.top == "field.obs" and a.cmd == Cmd.NEW and a.arg]
    assert {o["condition"] for o in obs} == {"good", "fair", "poor"}
    assert all(o["observed"].endswith("Z") and o["count"] >= 1 for o in obs)
    assert len({o["species"] for o in obs}) >= 15
    assert 0 < sum("notes" in o for o in obs) < len(obs)


def test_the_script_makes_this_file(tmp_path: Path) -> None:
    out = tmp_path / "demo-data.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-demo-data.py"), str(out)],
                   check=True, capture_output=True, timeout=60)
    assert out.read_bytes() == DEMO_DATA.read_bytes(), (
        "hubserver/data/demo-data.json is stale: run `python scripts/make-demo-data.py`")
