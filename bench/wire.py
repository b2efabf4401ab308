"""Wire codec benchmark: decode + encode of a 100-event ``evt.update`` batch.

Compares the stdlib ``json`` module with ``orjson`` (what ``core.wire`` uses) and, when it is
installed, ``msgspec`` (not a dependency). Each round trip parses the frame body to Python
objects, decodes them to typed values (``dec_update``), encodes them back (``enc_update``) and
serializes to JSON text, as the hub and the satellite do. Prints a table; never fails on time.

Usage: ``.venv/bin/python bench/wire.py [--events 100] [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from benchlib import cpu_model

from core.model import Cmd, Event, Update
from core.revision import parse_rev
from core.wire import dec_update, enc_update


def make_update(n: int) -> Update:
    """A realistic push: field observations, a few mods and a del, in a few transactions."""
    rng = random.Random(1)
    rev = parse_rev("2026-06-01T09:30:00.125Z")
    evs = []
    for i in range(1, n + 1):
        if i % 20 == 0:
            rev += rng.randint(1, 900)
        cmd = Cmd.DEL if i % 50 == 0 else Cmd.MOD if i % 7 == 0 else Cmd.NEW
        arg = None if cmd == Cmd.DEL else {
            "site": f"019d4812-1d80-7aed-a472-{rng.getrandbits(48):012x}",
            "species": rng.choice(["Alpine chough", "Chamois", "Alpine ibex", "Wallcreeper"]),
            "count": rng.randint(1, 40),
            "observed": "2026-06-01T07:12:00Z",
            "observer": "Léa Favre",
            "condition": rng.choice(["good", "fair", "poor"]),
            "notes": "Seen through the scope at about 400 m." if i % 3 == 0 else None,
        }
        evs.append(Event(1000 + i, rev, "field.obs",
                         f"019d4812-1d80-7aed-a472-{rng.getrandbits(48):012x}", cmd, arg))
    return Update(rev, tuple(evs))


def round_trip(loads: Callable[[Any], Any], dumps: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(body: Any) -> Any:
        return dumps(enc_update(dec_update(loads(body))))
    return run


def codecs() -> dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    out: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "json (stdlib)": (json.loads, lambda o: json.dumps(o, separators=(",", ":"))),
        "orjson": (orjson.loads, orjson.dumps),
    }
    try:
        import msgspec
    except ImportError:
        pass
    else:
        enc = msgspec.json.Encoder()
        dec = msgspec.json.Decoder()
        out["msgspec"] = (dec.decode, enc.encode)
    return out


def measure(fn: Callable[[Any], Any], arg: Any, seconds: float) -> float:
    """Best ops/s over 5 timed runs of about ``seconds / 5`` each."""
    fn(arg)
    n = 1
    while True:  # calibrate
        t0 = time.perf_counter()
        for _ in range(n):
            fn(arg)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            break
        n *= 2
    per_run = max(1, int(n * (seconds / 5) / dt))
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(per_run):
            fn(arg)
        best = max(best, per_run / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    opts = ap.parse_args()

    body = orjson.dumps(enc_update(make_update(opts.events)))
    text = body.decode()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")
    print(f"batch: evt.update with {opts.events} events, {len(body)} bytes of JSON\n")

    obj = json.loads(text)
    rows = []
    for name, (loads, dumps) in codecs().items():
        rows.append((
            name,
            measure(loads, text, opts.seconds),
            measure(dumps, obj, opts.seconds),
            measure(round_trip(loads, dumps), text, opts.seconds),
        ))
    base = rows[0][3]
    print(f"{'codec':<15} {'loads/s':>9} {'dumps/s':>9} {'decode+encode/s':>16} {'vs stdlib':>10}")
    for name, lo, du, both in rows:
        print(f"{name:<15} {lo:>9,.0f} {du:>9,.0f} {both:>16,.0f} {both / base:>9.2f}x")
    print("\none op = one whole batch. loads/dumps: JSON text <-> plain Python objects only;"
          "\ndecode+encode: text -> typed Update (dec_update) -> dict (enc_update) -> text.")


if __name__ == "__main__":
    main()
