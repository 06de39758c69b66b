"""Reading demand profiles from files: a CSV of hourly rates, or a trace bucketed by hour.

The formats are stated in :mod:`aicap.sizing.core.profile`; errors name ``file:line``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from aicap.sizing.core.documents import read_text
from aicap.sizing.core.errors import InputError, excerpt
from aicap.sizing.core.profile import PROFILE_HOURS, SECONDS_PER_HOUR


def read_csv_profile(path: Path) -> list[float]:
    """Hourly rates of a CSV ``hour,requests_per_s`` (every hour once, 0…23 or 0…167)."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if header[:2] != ["hour", "requests_per_s"]:
        raise InputError(f"{path}:1: expected the header hour,requests_per_s, got {excerpt(','.join(header))}")
    reader.fieldnames = header
    rates: dict[int, float] = {}
    for rec in reader:
        where = f"{path}:{reader.line_num}"
        try:
            hour, rate = int(str(rec["hour"]).strip()), float(str(rec["requests_per_s"]).strip())
        except (TypeError, ValueError):
            raise InputError(f"{where}: expected a whole hour and a number of requests/s, got hour {excerpt(rec['hour'])}, "
                             f"requests_per_s {excerpt(rec['requests_per_s'])}") from None  # fmt: skip
        if hour in rates or not 0 <= hour < max(PROFILE_HOURS):
            raise InputError(f"{where}: hour {hour} is repeated or outside 0…167")
        if not (math.isfinite(rate) and rate >= 0):
            raise InputError(f"{where}: requests_per_s {excerpt(rec['requests_per_s'])} must be a finite number >= 0")
        rates[hour] = rate
    n = len(rates)
    if n not in PROFILE_HOURS or sorted(rates) != list(range(n)):
        span = next((h for h in PROFILE_HOURS if max(rates, default=0) < h), max(PROFILE_HOURS))
        missing = [h for h in range(span) if h not in rates]
        why = f"; missing hour(s) {', '.join(map(str, missing[:5]))}{' …' if len(missing) > 5 else ''}" if missing else ""
        if rates and min(rates) == 1 and max(rates) == n:
            why = f"; hours run 1…{n}: they count from 0 (0…{n - 1})"
        raise InputError(f"{path}: a profile has every hour 0…23 or 0…167 once; got {n} hours{why}")
    return [rates[h] for h in range(n)]


def profile_from_trace(path: Path) -> list[float]:
    """Hourly rates of a trace file's arrivals (module docstring)."""
    from aicap.sizing.sim.traffic import load_trace

    raw = load_trace(path, shift=False).arrival_s
    arrivals = raw - math.floor(float(raw.min()) / SECONDS_PER_HOUR) * SECONDS_PER_HOUR  # the trace's own hours (module docstring)
    spans = max(math.ceil(float(arrivals.max()) / SECONDS_PER_HOUR - 1e-9), 1)
    hours = next((h for h in PROFILE_HOURS if spans <= h), 0)  # a day or a week; quiet last hours count as zero demand
    if not hours or spans < hours - 1:
        first = float(raw.min())  # the first arrival as written; its whole hour is where the profile's hours start
        origin = first - float(arrivals.min())
        raise InputError(f"{path}: the trace spans {spans} clock hour(s) from {origin:,.0f} s, the whole hour of its first arrival "
                         f"({first:,.0f} s), to its last ({float(raw.max()):,.0f} s); a profile needs 24 or 168: cut the trace to "
                         "a day or a week of whole hours")  # fmt: skip
    counts = np.bincount(np.minimum((arrivals // SECONDS_PER_HOUR).astype(np.int64), hours - 1), minlength=hours)
    return [float(c) / SECONDS_PER_HOUR for c in counts]
