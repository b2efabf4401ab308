"""core.satellite.order: the order SQLite gives a field (Satellite.confirmed_order) equals the
order Python computes for the same records (order.ordered_keys, used to place records with
pending edits), on awkward values: case, non-ASCII letters, NUL characters, empty texts, refs
of both kinds, numbers at their limits."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.model import Cmd, Event
from core.revision import now_rev
from core.satellite import order
from core.satellite.satellite import Satellite
from core.schema import Project

TOP = "field.obs"
TEXTS = ["", " ", "a", "A", "b", "B", "ß", "SS", "ss", "İ", "i", "I", "é", "É", "e\u0301",
         "😀", "a\x00b", "a\x00a", "a\x00", "A\x00zz", "a\x00é", "\x00", "Z", "z", "_", "[",
         "10", "9", "ǅ"]
REFS: list[object] = ["s1", "S1", "s10", "s9", 5, 10, -3, 0, 2**63 - 1, "é", "a\x00b",
                      "a\x00a", "_"]


@pytest.mark.parametrize("seed", range(3))
def test_sqlite_and_python_order_every_field_alike(tmp_path: Path, project: Project,
                                                    seed: int) -> None:
    rnd = random.Random(seed)
    sat = Satellite(tmp_path / "sat", project)
    try:
        rev = now_rev() - 1000
        evs = []
        for i in range(200):
            f = {"species": rnd.choice(TEXTS[1:]), "observer": rnd.choice([*TEXTS, None]),
                 "notes": rnd.choice([*TEXTS, None]), "site": rnd.choice([*REFS, None]),
                 "count": rnd.choice([None, 0, -1, 5, 2**62, -2**63])}
            evs.append(Event(i + 1, rev, TOP, f"k{rnd.randint(0, 99)}-{i}", Cmd.NEW, f))
        sat.replica.apply(rev, evs)
        recs = {r.key: r for chunk in sat.confirmed_scan(TOP) for r in chunk}
        assert len(recs) == 200
        for f in project.model(TOP).fields:
            for desc in (False, True):
                keys, vals = sat.confirmed_order(TOP, f.name, desc)
                mine = [(k, order.sort_value(f, (r.fields or {}).get(f.name)))
                        for k, r in recs.items()]
                assert order.ordered_keys(f, mine, desc) == keys, (f.name, desc)
                for k, v in zip(keys, vals, strict=True):  # the values SQL returns, too
                    assert order.order_key(f, v, k) == order.order_key(f, dict(mine)[k], k)
    finally:
        sat.close()
