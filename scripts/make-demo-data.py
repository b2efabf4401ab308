#!/usr/bin/env python3
"""Write ``hubserver/data/demo-data.json`` (package data; ``assets/demo-data.json`` links to
it): a deterministic field survey for the demo schema.

About 60 ``field.site`` records in six regions and about 300 ``field.obs`` records of a summer
of surveys, as daql transactions: ``{"transactions": [{"acts": [action, ...]}, ...]}``. Sites
come first (one transaction per region), then one transaction per survey day and observer,
then a few corrections (``mod``) and removed duplicates (``del``).

Everything comes from one seeded generator and fixed timestamps, so running the script again
gives the same file byte for byte. Usage: ``python scripts/make-demo-data.py [OUT]``.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.ids import uuid7  # noqa: E402  (after the path fix above)

SEED = 20260401

# region: (lat, lon) of its centre, and place names in it
REGIONS: dict[str, tuple[float, float, list[str]]] = {
    "Engadin": (46.50, 9.85, ["Piz Lagrev", "Val Fex", "Muottas Muragl", "Val Roseg",
                              "Lej da Staz", "Piz Languard", "Val Bever", "Fuorcla Surlej"]),
    "Valais": (46.10, 7.60, ["Val d'Anniviers", "Lötschental", "Aletsch forest", "Val Ferret",
                             "Moiry dam", "Simplon pass", "Binntal", "Saas Fee moraine"]),
    "Bernese Oberland": (46.60, 7.90, ["Grosse Scheidegg", "Gasterntal", "Schynige Platte",
                                       "Oeschinen lake", "Kiental", "Lauterbrunnen wall",
                                       "Brienzer Rothorn", "Engstligen falls"]),
    "Jura": (47.20, 6.90, ["Creux du Van", "Chasseral", "Mont Soleil", "Étang de la Gruère",
                           "Dent de Vaulion", "Le Suchet", "Mont Racine", "Doubs gorge"]),
    "Ticino": (46.35, 8.75, ["Val Bavona", "Lucomagno", "Val Verzasca", "Monte Generoso",
                             "Val Piora", "Cardada", "Val Onsernone", "Ritom lake"]),
    "Graubünden": (46.75, 9.55, ["Schanfigg", "Val Sinestra", "Greina plain", "Albula pass",
                                 "Flüela pass", "Val Müstair", "Safiental", "Rheinwald"]),
}
FEATURES = ["north slope", "south slope", "ridge", "meadow", "scree", "bog", "forest edge",
            "cliff", "stream", "pasture"]

# species: the range of a typical count
SPECIES: dict[str, tuple[int, int]] = {
    "Alpine chough": (2, 40), "Golden eagle": (1, 2), "Bearded vulture": (1, 2),
    "Alpine ibex": (1, 25), "Chamois": (1, 18), "Red deer": (1, 12), "Alpine marmot": (1, 15),
    "Mountain hare": (1, 3), "Rock ptarmigan": (1, 6), "Black grouse": (1, 8),
    "Wallcreeper": (1, 2), "Alpine accentor": (1, 6), "White-winged snowfinch": (2, 20),
    "Eurasian lynx": (1, 1), "Red fox": (1, 3), "Common raven": (1, 5),
    "Spotted nutcracker": (1, 4), "Citril finch": (2, 12), "Water pipit": (1, 10),
    "Ring ouzel": (1, 6), "Edelweiss": (3, 60), "Gentiana acaulis": (5, 120),
}
OBSERVERS = ["Anna Rüegg", "Marco Bernasconi", "Léa Favre", "Jonas Meier", "Sofia Caflisch",
             "Luca Pedrazzini", "Nina Zurbriggen", "Tim Aebischer"]
SITE_NOTES = ["Access by the marked trail; last 200 m off path.", "Grazing cattle from July.",
              "Transect marked with orange poles.", "Avalanche debris until mid June.",
              "Permit needed: federal hunting reserve.", "Good view over the valley floor."]
OBS_NOTES = ["Seen through the scope at about 400 m.", "Heard first, then seen.",
             "Juveniles with the group.", "Tracks only, animal not seen.",
             "Fog came in; count is a minimum.", "Feeding on the scree below the ridge.",
             "Photographed; picture in the shared folder.", "Pair displaying.",
             "Disturbed by hikers, flew off north."]

SITES_PER_REGION = 10
SURVEY_DAYS = 38


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make(rng: random.Random) -> dict[str, Any]:
    def key(at: datetime) -> str:
        return str(uuid7(ms(at), rng.getrandbits(80)))

    transactions: list[dict[str, Any]] = []
    sites: list[tuple[str, str]] = []  # (key, region)
    created = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    for region, (lat0, lon0, places) in REGIONS.items():
        acts = []
        names: set[str] = set()
        while len(names) < SITES_PER_REGION:
            names.add(f"{rng.choice(places)} {rng.choice(FEATURES)}")
        for name in sorted(names):
            created += timedelta(minutes=rng.randint(1, 9))
            k = key(created)
            arg: dict[str, Any] = {
                "name": name,
                "region": region,
                "lat": round(lat0 + rng.uniform(-0.18, 0.18), 5),
                "lon": round(lon0 + rng.uniform(-0.25, 0.25), 5),
            }
            if rng.random() < 0.3:
                arg["notes"] = rng.choice(SITE_NOTES)
            acts.append({"top": "field.site", "key": k, "cmd": "new", "arg": arg})
            sites.append((k, region))
        transactions.append({"acts": acts})

    obs: list[tuple[str, dict[str, Any]]] = []
    day0 = datetime(2026, 5, 18, tzinfo=UTC)
    species = sorted(SPECIES)
    for d in range(SURVEY_DAYS):
        day = day0 + timedelta(days=d * 3 + rng.randint(0, 2))
        for observer in rng.sample(OBSERVERS, 2):
            region = rng.choice(list(REGIONS))
            region_sites = [k for k, r in sites if r == region]
            at = day + timedelta(hours=rng.randint(3, 6), minutes=rng.randint(0, 59))
            acts = []
            for _ in range(rng.randint(2, 6)):
                at += timedelta(minutes=rng.randint(5, 95))
                sp = rng.choice(species)
                lo, hi = SPECIES[sp]
                arg = {
                    "site": rng.choice(region_sites),
                    "species": sp,
                    "count": rng.randint(lo, hi),
                    "observed": rfc3339(at),
                    "observer": observer,
                    "condition": rng.choices(["good", "fair", "poor"], [6, 3, 1])[0],
                }
                if rng.random() < 0.2:
                    arg["notes"] = rng.choice(OBS_NOTES)
                k = key(at)
                acts.append({"top": "field.obs", "key": k, "cmd": "new", "arg": arg})
                obs.append((k, arg))
            transactions.append({"acts": acts})

    # back at the office: a few corrections and two duplicates removed
    picks = rng.sample(obs, 12)
    acts = []
    for k, arg in picks[:10]:
        if rng.random() < 0.5:
            acts.append({"top": "field.obs", "key": k, "cmd": "mod",
                         "arg": {"count": arg["count"] + rng.randint(1, 3)}})
        else:
            acts.append({"top": "field.obs", "key": k, "cmd": "mod",
                         "arg": {"condition": "poor", "notes": "Checked the photos: "
                                 "heat haze, identification uncertain."}})
    for k, _ in picks[10:]:
        acts.append({"top": "field.obs", "key": k, "cmd": "del"})
    transactions.append({"acts": acts})
    return {"transactions": transactions}


def dumps(data: dict[str, Any]) -> str:
    """JSON with one action per line: readable, and diffs stay small."""
    trans = []
    for t in data["transactions"]:
        acts = ",\n".join("   " + json.dumps(a, ensure_ascii=False) for a in t["acts"])
        trans.append(' {"acts": [\n' + acts + "\n ]}")
    return '{"transactions": [\n' + ",\n".join(trans) + "\n]}\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "hubserver" / "data" / "demo-data.json"
    data = make(random.Random(SEED))
    text = dumps(data)
    out.write_text(text, encoding="utf-8")
    n = [a["top"] for t in data["transactions"] for a in t["acts"] if a["cmd"] == "new"]
    print(f"wrote {out}: {len(data['transactions'])} transactions, "
          f"{n.count('field.site')} sites, {n.count('field.obs')} observations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
