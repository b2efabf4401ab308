"""The conflict inbox with many rejected transactions: what the conflicts view's "keep both"
lookups add (``Satellite.both_keys`` once per listed transaction, when the view opens), and
``resolve`` of each (keep theirs, keep both).

    PYTHONPATH=. .venv/bin/python bench/conflicts_view.py [REJECTED]    (default 1,000)

Half the rejected transactions create a record under a key the replica holds (a key clash),
half change a field (no clash). Prints seconds per phase, medians of 5 rounds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.ids import new_uid
from core.model import Action, Cmd, Conflict, Event, Trans
from core.satellite.api import Keep, ReceiptState
from core.satellite.satellite import Satellite
from core.schema import parse_project

ITEM = "inv.item"
PROJECT = parse_project("""
[project]
name = "bench"

[inv.item]
key = "int"

[inv.item.fields]
name = { type = "str", required = true }
""")
REV0 = 63931358000000  # a revision in 2026


def round_(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sat = Satellite(Path(tmp) / "s", PROJECT)
        evs = [Event(k, REV0 + k, ITEM, str(k), Cmd.NEW, {"name": f"n{k}"})
               for k in range(1, n + 1)]
        sat.replica.apply(evs[-1].rev, evs)
        items = []
        for k in range(1, n + 1):
            if k % 2:
                act = Action(ITEM, str(k), Cmd.NEW, {"name": f"mine {k}"})
                c = Conflict(ITEM, str(k), Cmd.NEW, "created", (), {"name": f"n{k}"},
                             REV0 + k, "them")
            else:
                act = Action(ITEM, str(k), Cmd.MOD, {"name": f"mine {k}"})
                c = Conflict(ITEM, str(k), Cmd.MOD, "field changed", ("name",),
                             {"name": f"n{k}"}, REV0 + k, "them")
            items.append((Trans((act,), base=REV0, created=REV0, uid=new_uid()), "",
                          "conflict", [c]))
        sat.carry_in(items)
        uids = [r.uid for r in sat.receipts([ReceiptState.REJECTED])]
        out: dict[str, float] = {}
        t = time.perf_counter()
        clashes = {u: sat.both_keys(u) for u in uids}
        out["both_keys, every listed transaction"] = time.perf_counter() - t
        assert sum(1 for v in clashes.values() if v) == (n + 1) // 2
        t = time.perf_counter()
        for u, keys in clashes.items():  # keys asked again: the one offered before is taken
            if keys:
                sat.resolve(u, Keep.BOTH, keys=sat.both_keys(u))
            else:
                sat.resolve(u, Keep.THEIRS)
        out["resolve each (both_keys + both / theirs)"] = time.perf_counter() - t
        sat.close()
        return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    rounds = [round_(n) for _ in range(5)]
    for name in rounds[0]:
        vals = sorted(r[name] for r in rounds)
        print(f"{n:,} rejected: {name}: median {statistics.median(vals):.3f} s "
              f"(min {vals[0]:.3f}, max {vals[-1]:.3f}); per transaction "
              f"{statistics.median(vals) / n * 1000:.2f} ms")


if __name__ == "__main__":
    main()
