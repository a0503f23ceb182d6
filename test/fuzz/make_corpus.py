#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets from the simulator's own output.

Usage: python3 test/fuzz/make_corpus.py   (rewrites test/fuzz/corpus/*/sim-*)

The load curves are the bodies the simulator serves at GET /request/{id}/data
(curve_json(), the same function its HTTP handler calls), the R63 files those
its data server serves at an R63 request's dataUrl (payload_r63()), the date-times are
the instants it writes, the periods are those it writes and accepts. Files
whose names do not start with "sim-" (hand-made cases, and inputs that once
crashed a target) are left alone.
"""
import json
import os
import sys
from datetime import datetime, timedelta
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
import switchgrid_sim as sim  # noqa: E402


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "sim-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    home, workshop = sim.CATALOGUE[0], sim.CATALOGUE[1]
    day = lambda y, m, d: datetime(y, m, d, tzinfo=sim.PARIS).astimezone(sim.UTC)
    curves = {
        "native-30min": sim.curve_json(home, "CONSUMPTION", day(2024, 12, 9), day(2024, 12, 10)),
        "native-10min": sim.curve_json(workshop, "CONSUMPTION", day(2024, 6, 3), day(2024, 6, 4)),
        "injection-1h": sim.curve_json(workshop, "INJECTION", day(2024, 6, 3), day(2024, 6, 5), 3600),
        "p1d-march-dst": sim.curve_json(home, "CONSUMPTION", day(2024, 3, 28), day(2024, 4, 3), None),
        "p1d-october-dst": sim.curve_json(home, "CONSUMPTION", day(2024, 10, 25), day(2024, 10, 30), None),
        "spring-forward-30min": sim.curve_json(home, "CONSUMPTION", day(2024, 3, 31), day(2024, 4, 1)),
    }
    for name, doc in curves.items():
        write("loadcurve", name + ".json", json.dumps(doc))
    # several PRMs: {"<prm>": {...}, ...}, as the simulator answers for them
    multi = {m.prm: sim.curve_json(m, "CONSUMPTION", day(2024, 12, 9), day(2024, 12, 9) + timedelta(hours=3))
             for m in (home, workshop)}
    write("loadcurve", "multi-prm.json", json.dumps(multi))

    # R63 files as the dataUrl serves them: both DST days, a step that changes
    r63 = {
        "spring-30min": (home, day(2024, 3, 31), day(2024, 4, 1), "SOUTIRAGE"),
        "autumn-30min": (sim.CATALOGUE_BY_PRM["25946599093143"], day(2024, 10, 27), day(2024, 10, 28), "SOUTIRAGE"),
        "step-change": (sim.CATALOGUE_BY_PRM["33333333333333"], day(2024, 6, 4), day(2024, 6, 5), "SOUTIRAGE"),
        "injection-10min": (workshop, day(2024, 6, 3), day(2024, 6, 4), "INJECTION"),
    }
    for name, (meter, since, until, direction) in r63.items():
        req = SimpleNamespace(id="00000000-0000-0000-0000-000000000000", since=since, until=until,
                              direction=direction)
        write("r63", name + ".json", json.dumps(sim.payload_r63(req, [meter]), ensure_ascii=False))

    instants = [sim.iso(day(2024, 12, 10)), sim.iso_ms(1733871600123), sim.iso(day(2024, 3, 31)),
                "2024-12-10", "2024-12-10T00:00:00+01:00", "2024-12-10T00:00:00[Europe/Paris]"]
    for i, s in enumerate(instants):
        write("datetime", "%d.txt" % i, s)

    for name in list(sim.PERIODS) + [sim.period_name(600), sim.period_name(None), "PT30M", "PT1H"]:
        write("period", name + ".txt", name)


if __name__ == "__main__":
    main()
