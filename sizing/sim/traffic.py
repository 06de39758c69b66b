"""What the simulator replays: request lengths (fixed, histogram, named dataset), arrivals, trace files.

A :class:`TrafficSpec` turns into :class:`~aicap.sizing.sim.engine.Requests` deterministically for its
seed: arrivals from :func:`~aicap.sizing.sim.arrivals.arrival_times` (seed ``s``), input lengths
(seed ``s + 1``), output lengths (``s + 2``) and priority classes (``s + 3``) drawn independently.
Named datasets are length histograms shipped in ``aicap/hardware_db/traffic/datasets.yaml``, each with
its source. Trace files are CSV with the header ``arrival_s,input_tokens,output_tokens[,priority]`` or
JSON Lines with those keys, one request per line; arrivals in seconds (any origin, any order).
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from aicap.sizing.core.documents import load_yaml, read_text
from aicap.sizing.core.errors import InputError, UnknownIdError, excerpt
from aicap.sizing.core.fleet import check_prefix_cached
from aicap.sizing.core.json_doc import json_line
from aicap.sizing.sim.arrivals import ArrivalKind, arrival_times, sample_lengths
from aicap.sizing.sim.engine import Requests

MAX_TRACE_BYTES = 512 * 1024 * 1024  # a trace of ~20 million requests
MAX_TOKENS = 10**9  # longest request length a trace may give (no model comes near)
MAX_PRIORITY = 999  # largest priority class a trace may give (the simulator keeps state per class up to the largest)
MAX_ARRIVAL_S = 1e10  # largest |arrival_s| [s]: epoch timestamps (1.7e9) keep microseconds; at 1e308 a late request's gaps were 0
#: Most synthetic requests one simulation draws: the simulator keeps about 1.3 KB per request (3 million
#: took 3.9 GB), so this bounds a run to about 7 GB of memory; a longer horizon is a trace or several seeds.
MAX_REQUESTS = 5_000_000
TRACE_FIELDS = ("arrival_s", "input_tokens", "output_tokens")
T = TypeVar("T", int, NDArray[np.int64])


@dataclass(frozen=True)
class ContextLimit:
    """The longest request a model serves: its prompt, plus its output for a decoder, at most ``tokens``.

    A server refuses a longer one (vLLM: "This model's maximum context length is ..."), so a run that would
    replay it is refused, naming where it is, rather than simulated as if the model could hold it.
    """

    model: str
    tokens: int
    counts_output: bool = True

    def length(self, input_tokens: T, output_tokens: T) -> T:
        """What a request asks of the context [tokens]: ``I + O`` (a decoder) or ``I``; of one request or an array of them."""
        return input_tokens + output_tokens if self.counts_output else input_tokens

    def check_row(self, input_tokens: int, output_tokens: int, where: str) -> None:
        """Refuse one trace row longer than the context, naming ``where`` (``file:line``)."""
        if (n := self.length(input_tokens, output_tokens)) > self.tokens:
            what = "input_tokens + output_tokens" if self.counts_output else "input_tokens"
            raise InputError(f"{where}: {what} = {n:,} tokens exceeds {self.model}'s max context of {self.tokens:,} "
                             "(a server rejects such a request): shorten it or use a model with a longer context")  # fmt: skip

    def check_drawn(self, requests: Requests, source: str) -> None:
        """Refuse drawn requests (``source``: e.g. ``--dataset sharegpt-8k``) of which any is longer than the context."""
        need = self.length(requests.input_tokens, requests.output_tokens)
        over = int(np.count_nonzero(need > self.tokens))
        if over:
            what = "prompt + output" if self.counts_output else "prompt"
            raise InputError(f"{source}: {over:,} of the {len(need):,} requests drawn ({what} up to {int(need.max()):,} tokens) exceed "
                             f"{self.model}'s max context of {self.tokens:,}, and a server rejects them: use a model with a longer "
                             "context, or shorter lengths")  # fmt: skip


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution: ``values[j]`` with probability ``weights[j]/Σ weights``."""

    values: tuple[int, ...]
    weights: tuple[float, ...]

    @classmethod
    def fixed(cls, tokens: int) -> Lengths:
        """Every request ``tokens`` long."""
        return cls((int(tokens),), (1.0,))

    @property
    def mean(self) -> float:
        """``Σ v_j w_j / Σ w_j`` [tokens]."""
        return float(np.dot(self.values, self.weights) / np.sum(self.weights))

    @property
    def largest(self) -> int:
        """The longest request [tokens]."""
        return max(self.values)

    def draw(self, n: int, seed: int) -> NDArray[np.int64]:
        """``n`` independent lengths [tokens]."""
        if len(self.values) == 1:
            return np.full(n, self.values[0], dtype=np.int64)
        return sample_lengths(np.array(self.values, dtype=np.int64), np.array(self.weights), n, seed=seed)


@dataclass(frozen=True)
class Dataset:
    """A named length distribution with its provenance."""

    name: str
    description: str
    source: str
    input_tokens: Lengths
    output_tokens: Lengths


@cache
def _datasets() -> dict[str, Dataset]:
    node = resources.files("aicap.hardware_db").joinpath("traffic/datasets.yaml")
    raw = load_yaml(Path("hardware_db/traffic/datasets.yaml"), node.read_text(encoding="utf-8"))
    out = {}
    for name, d in raw.items():
        lengths = [Lengths(tuple(int(b["tokens"]) for b in d[k]), tuple(float(b["weight"]) for b in d[k]))
                   for k in ("input_tokens", "output_tokens")]  # fmt: skip
        out[name] = Dataset(name, " ".join(str(d["description"]).split()), " ".join(str(d["source"]).split()), lengths[0], lengths[1])
    return out


def dataset_names() -> list[str]:
    """Names of the shipped datasets."""
    return sorted(_datasets())


def dataset(name: str) -> Dataset:
    """The shipped dataset ``name``.

    Raises
    ------
    UnknownIdError
        If there is none of that name (the message lists the valid names).
    """
    ds = _datasets()
    if name not in ds:
        raise UnknownIdError("dataset", name, sorted(ds))
    return ds[name]


@dataclass(frozen=True)
class TrafficSpec:
    """Synthetic traffic: ``requests`` arrivals of a renewal process (or a closed loop) with random lengths.

    Attributes
    ----------
    requests : int
        Requests to simulate.
    input_tokens, output_tokens : Lengths
        Length distributions [tokens]; an output of 0 is an encoder request.
    rate_per_s : float or None
        Mean arrival rate [requests/s] (open loop); ``None`` with ``concurrency``.
    concurrency : int or None
        Closed loop: clients, each sending its next request when the previous one finishes.
    arrival : {"poisson", "gamma", "constant"}
        Inter-arrival distribution (open loop; see :mod:`aicap.sizing.sim.arrivals`).
    cv : float
        Coefficient of variation of the gaps (``gamma`` only).
    class_shares : tuple of float or None
        Share of requests in priority class 0, 1, …; ``None``: one class.
    seed : int
        Seed of every draw.
    """

    requests: int
    input_tokens: Lengths
    output_tokens: Lengths
    rate_per_s: float | None = None
    concurrency: int | None = None
    arrival: ArrivalKind = "poisson"
    cv: float = 1.0
    class_shares: tuple[float, ...] | None = None
    seed: int = 0
    cached_share: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise InputError(f"requests must be from 1 to {MAX_REQUESTS:,} (about 1.3 KB of memory each), got {self.requests:,}")
        if (self.rate_per_s is None) == (self.concurrency is None):
            raise InputError("give exactly one of a request rate (open loop) and a concurrency (closed loop)")
        if self.rate_per_s is not None and not (self.rate_per_s > 0 and np.isfinite(self.rate_per_s)):
            raise InputError(f"rate must be a positive number of requests/s, got {excerpt(self.rate_per_s)}")
        check_prefix_cached(self.cached_share)
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.arrival == "gamma" and not self.cv > 0:
            raise InputError(f"gamma arrivals need a coefficient of variation > 0, got {self.cv}")
        shares = self.class_shares
        if shares is not None and (not shares or any(not s >= 0 for s in shares) or sum(shares) <= 0):
            raise InputError(f"class shares must be numbers >= 0, not all 0, got {excerpt(list(shares))}")

    def build(self) -> Requests:
        """The requests, deterministic for ``seed`` (closed loop: arrivals are set by the simulator)."""
        n, s = self.requests, self.seed
        if self.rate_per_s is not None:
            cv = 0.0 if self.arrival == "constant" else 1.0 if self.arrival == "poisson" else self.cv
            arrivals = arrival_times(self.rate_per_s, n, cv=cv, seed=s, kind=self.arrival)
        else:
            arrivals = np.zeros(n)
        prio = None
        if self.class_shares is not None and len(self.class_shares) > 1:
            w = np.array(self.class_shares, dtype=float)
            prio = sample_lengths(np.arange(w.size, dtype=np.int64), w, n, seed=s + 3)
        prompts = np.maximum(self.input_tokens.draw(n, s + 1), 1)
        return Requests(arrivals, prompts, self.output_tokens.draw(n, s + 2), prio, cached_prefix(prompts, self.cached_share))


def cached_prefix(prompts: NDArray[np.int64], share: float) -> NDArray[np.int64] | None:
    """Tokens of each prompt found in the prefix cache: ``⌊share·I⌋``, at most ``I − 1`` (``None`` without caching)."""
    if share <= 0.0:
        return None
    return np.asarray(np.minimum(np.floor(prompts * share), prompts - 1), dtype=np.int64)


def _int(value: object, what: str, where: str, low: int, high: int = MAX_TOKENS) -> int:
    try:
        x = float(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: {what} {excerpt(value)} is not a number") from None
    if not (np.isfinite(x) and x == int(x) and low <= x <= high):
        raise InputError(f"{where}: {what} {excerpt(value)} must be a whole number from {low} to {high:,}")
    return int(x)


def _row(rec: dict[str, object], where: str, limit: ContextLimit | None = None, min_output: int = 0) -> tuple[float, int, int, int]:
    missing = [k for k in TRACE_FIELDS if rec.get(k) in (None, "")]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)} (a trace row needs {', '.join(TRACE_FIELDS)}[, priority])")
    try:
        t = float(str(rec["arrival_s"]).strip())
    except ValueError:
        raise InputError(f"{where}: arrival_s {excerpt(rec['arrival_s'])} is not a number of seconds") from None
    if not (np.isfinite(t) and abs(t) <= MAX_ARRIVAL_S):
        raise InputError(f"{where}: arrival_s {excerpt(rec['arrival_s'])} must be a finite number of seconds, at most "
                         f"{MAX_ARRIVAL_S:.0e} in size (epoch seconds or seconds from the start)")  # fmt: skip
    prio = rec.get("priority")
    i, o = _int(rec["input_tokens"], "input_tokens", where, 1), _int(rec["output_tokens"], "output_tokens", where, min_output)
    if limit is not None:
        limit.check_row(i, o, where)
    return (t, i, o, 0 if prio in (None, "") else _int(prio, "priority", where, 0, MAX_PRIORITY))


def _unknown(keys: list[str], where: str) -> None:
    """Refuse a column or key the trace format does not have (a misspelt ``priority`` was ignored, every request class 0)."""
    known = (*TRACE_FIELDS, "priority")
    bad = [k for k in keys if k not in known]
    if bad:
        near = difflib.get_close_matches(bad[0], known, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise InputError(f"{where}: unknown field {excerpt(bad[0])}{hint} (a trace has {', '.join(TRACE_FIELDS)} and an optional priority)")


def load_trace(path: Path, *, shift: bool = True, limit: ContextLimit | None = None, min_output: int = 0) -> Requests:
    """Requests of a trace file (module docstring); arrivals shifted so the first is at 0 s (``shift``), else as written.

    ``min_output``: the fewest output tokens a row may ask for (1 for a decoder, which emits at least its first token;
    0 for an encoder, whose rows carry 0).

    Raises
    ------
    InputError
        For an unreadable file, a bad header or a bad value, or a request longer than ``limit``, naming ``file:line``
        and what was expected.
    """
    text = read_text(path, MAX_TRACE_BYTES)
    if not text.strip():
        raise InputError(f"{path}: the file is empty; a trace is a CSV with header {','.join(TRACE_FIELDS)}[,priority] "
                         "or JSONL objects with those keys")  # fmt: skip
    rows: list[tuple[float, int, int, int]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{"):
        for k, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            rec = json_line(line, f"{path}:{k}")
            if not isinstance(rec, dict):
                raise InputError(f"{path}:{k}: expected a JSON object with {', '.join(TRACE_FIELDS)}, got {excerpt(rec)}")
            _unknown([str(x) for x in rec], f"{path}:{k}")
            if text_values := [f for f in (*TRACE_FIELDS, "priority") if isinstance(rec.get(f), str | bool)]:
                f = text_values[0]  # CSV cells are text; a JSON trace writes numbers as numbers, as YAML documents do
                kind = "text (write it without quotes)" if isinstance(rec[f], str) else "a boolean"
                shown = excerpt(rec[f]) if isinstance(rec[f], str) else str(rec[f]).lower()  # as the JSON wrote it
                raise InputError(f"{path}:{k}: {f} {shown}: expected a number, not {kind}")
            rows.append(_row(rec, f"{path}:{k}", limit, min_output))
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in reader.fieldnames or []]
        if not set(TRACE_FIELDS) <= set(header):
            lacks = ", ".join(f for f in TRACE_FIELDS if f not in header)
            cased = [h for h in header if h.lower() in (*TRACE_FIELDS, "priority") and h != h.lower()]
            hint = f" (column names are lower case: {excerpt(cased[0])} is {cased[0].lower()})" if cased else ""
            raise InputError(f"{path}:1: CSV header {excerpt(','.join(header))} lacks {lacks}; "
                             f"expected {','.join(TRACE_FIELDS)}[,priority]{hint}")  # fmt: skip
        _unknown(header, f"{path}:1")
        reader.fieldnames = header
        for rec in reader:
            if rec.get(None):  # DictReader keeps fields beyond the header under None
                raise InputError(f"{path}:{reader.line_num}: more fields than the header's {len(header)} "
                                 f"({','.join(header)}); a 4th is read only under a priority column")  # fmt: skip
            rows.append(_row(dict(rec), f"{path}:{reader.line_num}", limit, min_output))
    if not rows:
        raise InputError(f"{path}: the trace has no requests")
    a = np.array(rows, dtype=np.float64)
    prio = a[:, 3].astype(np.int64)
    start = a[:, 0].min() if shift else 0.0
    return Requests(a[:, 0] - start, a[:, 1].astype(np.int64), a[:, 2].astype(np.int64), prio if prio.any() else None)
