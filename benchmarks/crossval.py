"""Out-of-sample accuracy: leave one published source out, fit on the rest, score the held-out source.

The built-in factors are fitted on all public cases, so `aicap validate` reports in-sample error. This
script answers the honest question, how wrong aicap is on a stack it was not fitted on, over every public
set (aicap.sizing.calibrate.crossval says what each set refits per fold):

* published — serving without load: every family's efficiency factors refitted without the source (a full
  calibration per source, some five to ten minutes each on a 2-core machine; ``benchmarks/bench_calibrate.py``
  times the loss a calibration repeats);
* server — serving under load, simulated: each engine's per-request overhead refitted without the source
  (about a minute);
* training — the training factors refitted without the source (seconds).

It prints one row per held-out source, a line per set and one for all public cases together.

Run: python benchmarks/crossval.py [--sets published,server,training] [--save FILE] [--reuse FILE] [--list-above PCT]

``--save`` writes every fold's measured and predicted values (JSON); ``--reuse`` reads such a file for the
sets that ``--sets`` leaves out, so a change that moves only the server cases reruns the minute-long server
folds and keeps the published folds of the last full run (they do not depend on it). ``--list-above 40``
then lists every metric off by more than 40% (case id, metric, measured and predicted), worst first: the
metrics issue 13's p90 counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate import crossval
from aicap.sizing.calibrate.validation import load_cases

SETS = ("published", "server", "training")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {', '.join(SETS)}")
    ap.add_argument("--save", type=Path, help="write every fold's measured and predicted values here (JSON)")
    ap.add_argument("--reuse", type=Path, help="take the sets not in --sets from a file --save wrote")
    ap.add_argument("--list-above", type=float, metavar="PCT", help="then list every metric off by more than PCT %% out of sample")
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in SETS]
    if bad:
        ap.error(f"--sets: unknown {', '.join(bad)}; valid: {', '.join(SETS)}")
    cat = load_catalogue()

    def note(msg: str) -> None:
        print(f"  ... {msg}", file=sys.stderr, flush=True)

    held: dict[str, list[crossval.HeldOut]] = {}
    for name in sets:
        if name == "published":
            held[name] = crossval.published(load_cases(which="published"), cat, note)
        elif name == "server":
            held[name] = crossval.server(load_cases(which="server"), cat, progress=note)
        else:
            held[name] = crossval.training(cat)
    if args.reuse is not None:
        kept = json.loads(args.reuse.read_text())
        for name in SETS:
            if name not in held and name in kept:
                held[name] = [crossval.HeldOut(h["case_set"], h["source"], tuple(h["measured"]), tuple(h["predicted"]),
                                               tuple(h.get("labels", ()))) for h in kept[name]]  # fmt: skip
                note(f"{name}: {len(held[name])} folds reused from {args.reuse}")
        held = {name: held[name] for name in SETS if name in held}
    if args.save is not None:
        fields = ("case_set", "source", "measured", "predicted", "labels")
        doc = {name: [{k: getattr(h, k) for k in fields} for h in rows] for name, rows in held.items()}
        args.save.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{'set':10s} {'held-out source':22s} {'metrics':>7s} {'median %':>9s} {'p90 %':>7s} {'max %':>7s} {'within 2x':>10s}")
    for name, rows in held.items():
        for h in rows:
            s = crossval.Summary.of(h.errors_pct)
            print(f"{name:10s} {h.source:22s} {s.n:7d} {s.median:9.1f} {s.p90:7.1f} {s.max:7.1f} {h.within_2x:5d}/{s.n}")
        s = crossval.summary(rows)
        print(f"{name:10s} {'all of the set':22s} {s.n:7d} {s.median:9.1f} {s.p90:7.1f} {s.max:7.1f}")
    every = [h for rows in held.values() for h in rows]
    s = crossval.summary(every)
    worst = max(every, key=lambda h: float(np.median(h.errors_pct)) if h.errors_pct.size else 0.0)
    print(f"{'all':10s} {'(out of sample)':22s} {s.n:7d} {s.median:9.1f} {s.p90:7.1f} {s.max:7.1f}")
    print(f"worst source at its median: {worst.case_set}/{worst.source} {float(np.median(worst.errors_pct)):.1f}%")
    if args.list_above is not None:
        off = crossval.worst(every, args.list_above)
        print(f"\n{len(off)} metrics off by more than {args.list_above:g}% out of sample, worst first:")
        for err, h, k in off:
            label = h.labels[k] if k < len(h.labels) else f"metric {k + 1}"
            print(f"{err:7.1f}%  {h.case_set:9s} {h.source:22s} {label}  measured {h.measured[k]:,.4g}, predicted {h.predicted[k]:,.4g}")


if __name__ == "__main__":
    main()
