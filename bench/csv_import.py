"""``outpost import`` benchmark: the time and peak memory (max RSS) of importing a CSV of
``--rows`` rows of ``field.site`` (key, name, region, lat, lon, notes: about 65 bytes a row,
13 MB for 200,000) into a fresh data directory.

The data directory is made once with ``outpost connect`` against a real ``outpost-hub serve``
(the schema; nothing is synced), then copied for every run, so each run queues every row.
``--rev old|now`` imports a file as ``outpost export --rev`` writes it, with a ``_rev`` column:
the template's replica then holds the ``--rows`` records (stored straight into it, at a first
revision, then every 100th record changed at a second one) and the file is every record with
every 10th name edited; ``old``: ``_rev`` is the first revision (the records as of then are
folded from their events), ``now``: the second (the replica's), ``plain``: the same file
without the ``_rev`` column (what the others cost more than it). ``--ref DIR`` runs the same
import with a reference checkout (``core/``, ``desktop/``: e.g.
``git archive BASE core desktop | tar -x -C DIR``) back to back with ours, ``--rounds``
pairs, and prints medians. Never passes or fails on time. Usage::

    .venv/bin/python bench/csv_import.py [--rows N] [--rounds N] [--rev old|now] [--ref DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, cpu_model, start_hub, stop_hub


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("key,name,region,lat,lon,notes\n")
        for i in range(n):
            f.write(f"s{i:07d},Site number {i},Region {i % 17},{(i % 90) + 0.25},"
                    f"{(i % 180) - 89.5},\"note {i}, checked\"\n")


def fill_replica(data: Path, n: int) -> tuple[str, str]:
    """Store ``n`` records of field.site in the satellite in ``data`` as if synced: all new at
    a first revision, every 100th changed at a second one. Returns both revisions as text."""
    sys.path.insert(0, str(ROOT))
    from core.model import Cmd, Event
    from core.revision import format_rev, now_rev
    from core.satellite.satellite import Satellite

    sat = Satellite(data)
    try:
        r1 = max(now_rev() - 60_000, sat.rev() + 1)
        r2 = r1 + 1000
        evs = [Event(i + 1, r1, "field.site", f"s{i:07d}", Cmd.NEW,
                     {"name": f"Site number {i}", "region": f"Region {i % 17}",
                      "lat": (i % 90) + 0.25, "lon": (i % 180) - 89.5,
                      "notes": f"note {i}, checked"}) for i in range(n)]
        for lo in range(0, n, 50_000):
            sat.replica.apply(r1, evs[lo:lo + 50_000])
        mods = [Event(n + 1 + j, r2, "field.site", f"s{i:07d}", Cmd.MOD,
                      {"region": f"Moved {i}"}) for j, i in enumerate(range(0, n, 100))]
        sat.replica.apply(r2, mods)
    finally:
        sat.close()
    return format_rev(r1), format_rev(r2)


def write_rev_csv(path: Path, n: int, rev: str) -> None:
    """The file ``outpost export --rev`` writes of :func:`fill_replica`'s records (as of the
    first revision), every 10th name edited."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("key,name,region,lat,lon,notes" + (",_rev\n" if rev else "\n"))
        tail = f",{rev}\n" if rev else "\n"
        for i in range(n):
            name = f"Edited {i}" if i % 10 == 0 else f"Site number {i}"
            f.write(f"s{i:07d},{name},Region {i % 17},{(i % 90) + 0.25},"
                    f"{(i % 180) - 89.5},\"note {i}, checked\"{tail}")


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop.headless", *args], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, text=True,
                          capture_output=True, check=False)


def one(root: Path, template: Path, src: Path, work: Path) -> tuple[float, float, float]:
    """One import with ``root``'s code into a copy of ``template``: seconds, peak MB, CPU
    seconds (user + system)."""
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(template, data)
    code = ("import resource, sys; from desktop.headless import main; rc = main(sys.argv[1:]); "
            "u = resource.getrusage(resource.RUSAGE_SELF); "
            "print('RSS', u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, "import", "--data", str(data), "--json",
                        "field.site", str(src)], cwd=root, text=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(root)}, check=False)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"import failed ({root}): {p.stderr[-2000:]}")
    rss, cpu = next(ln.split()[1:] for ln in p.stderr.splitlines() if ln.startswith("RSS "))
    return secs, int(rss) / 1024, float(cpu)  # ru_maxrss: KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rev", choices=("old", "now", "plain"), default=None,
                    help="a file with a _rev column (see the module docstring)")
    ap.add_argument("--ref", type=Path, default=None,
                    help="a reference checkout (core/, desktop/) run back to back with ours")
    a = ap.parse_args()
    print(f"machine: {platform.machine()} {cpu_model()}, {os.cpu_count()} CPUs; "
          f"Python {platform.python_version()}; {load()}")
    with tempfile.TemporaryDirectory(prefix="outpost-bench-import-") as tmp:
        work = Path(tmp)
        src = work / "sites.csv"
        proc, url = start_hub(work / "hub.db")
        try:
            template = work / "template"
            r = cli(ROOT, "connect", url, "--data", str(template))
            if r.returncode != 0:
                raise SystemExit(f"connect failed: {r.stderr}")
        finally:
            stop_hub(proc)
        if a.rev is None:
            write_csv(src, a.rows)
        else:
            old, now = fill_replica(template, a.rows)
            write_rev_csv(src, a.rows, {"old": old, "now": now, "plain": ""}[a.rev])
            print(f"replica: {a.rows:,} records at {old}, every 100th changed at {now}; "
                  f"_rev {a.rev}")
        print(f"{src.name}: {a.rows:,} rows, {src.stat().st_size / 1e6:.1f} MB")
        sides = [("ours", ROOT)] + ([("ref", a.ref)] if a.ref is not None else [])
        res: dict[str, list[tuple[float, float, float]]] = {}
        for i in range(a.rounds):
            for name, root in sides:
                secs, mb, cpu = one(root, template, src, work)
                res.setdefault(name, []).append((secs, mb, cpu))
                print(f"round {i + 1} {name:4}: {secs:6.2f} s ({cpu:6.2f} s CPU), peak RSS "
                      f"{mb:6.0f} MB; {load()}", flush=True)
        print("medians:")
        for name, xs in res.items():
            print(f"  {name:4}: {statistics.median(x[0] for x in xs):6.2f} s "
                  f"({statistics.median(x[2] for x in xs):6.2f} s CPU), peak RSS "
                  f"{statistics.median(x[1] for x in xs):6.0f} MB")


if __name__ == "__main__":
    main()
