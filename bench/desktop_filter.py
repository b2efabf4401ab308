"""The filter's worker read (``desktop.models.records._read_rows``: the SQL pre-filter, then
the Python match of each row it selects) on 100,000 ``field.obs`` records, each with a
whole-second ``observed`` time, for a few filter texts; CPU time (``time.process_time``),
median of ROUNDS (default 9). No Qt event loop: the read runs as on the worker thread.

    PYTHONPATH=. .venv/bin/python bench/desktop_filter.py [RECORDS]

Another tree (e.g. the one before a change) is measured by running this script with
``OUTPOST_ROOT=/that/tree``; run both in alternation (the machine is shared).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(os.environ.get("OUTPOST_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))  # before bench/, whose desktop.py is not the package

from core.model import Cmd, Event  # noqa: E402
from core.satellite.satellite import Satellite  # noqa: E402
from core.schema import load_project  # noqa: E402
from desktop.models import records  # noqa: E402

TOP = "field.obs"
FILTERS = ("heron 00", "2025-03-1", "07:36", "2025-03-14 07", "é")
ROUNDS = int(os.environ.get("ROUNDS", "9"))
REV0 = 63931358000000
START = datetime(2025, 3, 1, tzinfo=UTC)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    project = load_project(ROOT / "assets" / "demo-schema.toml")
    rnd = random.Random(7)
    species = ["Heron", "Grey heron", "Alpine chough", "Ptarmigan", "Écureuil", "Lynx"]
    with tempfile.TemporaryDirectory() as tmp:
        sat = Satellite(Path(tmp) / "s", project)
        evs = []
        for i in range(n):
            # 90 days from 2025-03-01: '2025-03-1' is in about one in nine
            at = START + timedelta(seconds=rnd.randrange(90 * 86_400))
            observed = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            evs.append(Event(i + 1, REV0 + i + 1, TOP, f"o{i:06d}", Cmd.NEW, {
                "species": rnd.choice(species), "count": rnd.randrange(50),
                "observed": observed, "observer": f"observer {i % 97}",
                "condition": rnd.choice(["good", "fair", "poor"]),
                "notes": f"note {i}"}))
        for i in range(0, n, 20_000):
            sat.replica.apply(evs[i + min(20_000, n - i) - 1].rev, evs[i:i + 20_000])
        fields = project.model(TOP).fields
        for text in FILTERS:
            q = records._Query(text.lower(), -1, False)
            got: list[float] = []
            found = 0
            for _ in range(ROUNDS):
                t = time.process_time()
                keys, _vals = records._read_rows(sat, TOP, fields, q, frozenset(), None)
                got.append(time.process_time() - t)
                found = len(keys)
            print(f"{text!r}: {found:,} matches, median {statistics.median(got) * 1e3:.0f} ms "
                  f"(range {min(got) * 1e3:.0f}-{max(got) * 1e3:.0f})")
        sat.close()


if __name__ == "__main__":
    main()
