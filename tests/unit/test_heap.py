"""core.heap: the garbage-collector settings of long-running processes (each test in a child
process: freezing is for the whole interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _child(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()


def test_settle_heap_freezes_start_up_and_collects_young_objects_less_often() -> None:
    out = _child("import gc; from core.heap import GC_YOUNG, settle_heap; import hubserver.cli; "
                 "before = gc.get_threshold(); settle_heap(GC_YOUNG); "
                 "print(before[0], gc.get_threshold()[0] == GC_YOUNG, "
                 "gc.get_freeze_count() > 1000, gc.get_threshold()[1:] == before[1:])")
    assert out == ["700", "True", "True", "True"]


def test_settle_heap_without_young_keeps_the_threshold() -> None:
    out = _child("import gc; from core.heap import settle_heap; import desktop.headless; "
                 "before = gc.get_threshold(); settle_heap(); "
                 "print(gc.get_threshold() == before, gc.get_freeze_count() > 1000)")
    assert out == ["True", "True"]
