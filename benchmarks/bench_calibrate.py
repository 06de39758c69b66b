"""Speed of the calibration's loss: one scoring of a family's published cases, as ``aicap calibrate`` repeats it.

``aicap calibrate`` (and each fold of ``benchmarks/crossval.py``) minimises a loss that scores every published case
of a family with trial factors: a few thousand evaluations per family, so the time of one is the time of the whole
fit. Prints the time per evaluation for each fitted family and cases per second, against the floor the
leave-one-source-out run needs to finish in an hour on this 2-core machine (about 0.1 s per evaluation).

Run: python benchmarks/bench_calibrate.py
"""

from __future__ import annotations

import time
from pathlib import Path

from aicap.hardware_db import load_catalogue
from aicap.sizing.calibrate.calibration import load_priors
from aicap.sizing.calibrate.validation import load_cases, score, with_layout

ROOT = Path(__file__).resolve().parent.parent
FLOOR_S = 0.1
FAMILIES = ("nvidia-ampere", "nvidia-hopper", "nvidia-ada")


def main() -> None:
    cat = load_catalogue()
    cases = load_cases(ROOT / "hardware_db" / "validation" / "published_cases.yaml")
    priors = load_priors()
    for family in FAMILIES:
        prior = priors[family]
        mine = [c for c in cases if c.get("hardware") in cat.devices and cat.devices[c["hardware"]].family == family]
        pinned = [with_layout(c, cat, {prior.key: prior}) for c in mine if c.get("comparable", True) is not False]
        score(pinned, cat, {prior.key: prior})  # warm caches
        reps = 10
        t0 = time.perf_counter()
        for k in range(reps):  # a different factor each time, as the optimiser tries them
            score(pinned, cat, {prior.key: prior.model_copy(update={"memory": 0.7 + 0.01 * k})})
        dt = (time.perf_counter() - t0) / reps
        print(f"{family:14s} {len(pinned):3d} cases  {dt * 1e3:7.1f} ms per loss evaluation  ({len(pinned) / dt:6.0f} cases/s; "
              f"floor {FLOOR_S * 1e3:.0f} ms: {dt / FLOOR_S:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
