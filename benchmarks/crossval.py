"""Out-of-sample accuracy: leave one published source out, fit on the rest, score the held-out source.

The built-in efficiency factors are fitted on all public cases, so `aicap validate` reports in-sample
error. This script answers the honest question, how wrong aicap is on a serving stack it was not fitted
on: for each source (TensorRT-LLM 0.12, TensorRT-LLM 0.9, gpt-fast, Intel ITREX, JetStream), the factors
of every family are refitted from the priors without that source's cases, and the held-out cases are scored. A
family left with no case takes the factors its declared nearest family got in the same fold (``neighbours`` in
hardware_db/validation/efficiency_priors.yaml, the rule the catalogue applies to unmeasured families), or keeps
its prior where none is declared (CPUs). Takes about 35 minutes on a 2-core machine.

Run: python benchmarks/crossval.py
"""

from __future__ import annotations

import numpy as np

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.calibration import calibrate, held_out_factors, load_neighbours, load_priors
from aicap.sizing.calibrate.validation import load_cases, score


def main() -> None:
    cat = load_catalogue()
    cases = load_cases()
    sources = sorted({c["source_key"] for c in cases})
    priors, neighbours = load_priors(), load_neighbours()
    print(f"{'held-out source':18s} {'metrics':>7s} {'median %':>9s} {'p90 %':>7s} {'max %':>7s} {'within 2x':>9s}")
    allerr: list[float] = []
    for src in sources:
        train = [c for c in cases if c["source_key"] != src]
        test = [c for c in cases if c["source_key"] == src]
        fits = calibrate(train, cat, f"all sources but {src}")
        # Families left without training cases take their declared nearest family's factors as fitted in
        # this fold (the catalogue's rule for unmeasured families), else their priors; never the catalogue's
        # factors, which were fitted on every source including the held-out one.
        eff = held_out_factors({f.family: f.after for f in fits}, priors, neighbours)
        eff.update({k: v for k, v in cat.efficiency.items() if k not in eff and "@" not in k})
        rep = score(test, cat, eff)
        err = np.array([r.error_pct for r in rep.scored])
        ratio_ok = sum(1 for r in rep.scored if 0.5 <= r.predicted / r.measured <= 2.0)
        allerr += err.tolist()
        print(f"{src:18s} {err.size:7d} {np.median(err):9.1f} {np.percentile(err, 90):7.1f} {err.max():7.1f} {ratio_ok:5d}/{err.size}")
    a = np.array(allerr)
    print(f"{'all (out of sample)':18s} {a.size:7d} {np.median(a):9.1f} {np.percentile(a, 90):7.1f} {a.max():7.1f}")


if __name__ == "__main__":
    main()
