"""Length histograms of hardware_db/traffic/datasets.yaml from per-request lengths, by that file's method.

Bins are cut at the quantiles 0, 0.075, ..., 0.9, 0.95, 0.98, 0.99, 1 of the values (a value on an edge
goes to the bin above it, the largest to the last bin); each bar sits at the rounded mean of its bin and
weighs its share of the requests; bars that round to the same length are merged. ``stats`` are taken on
the raw values (``p50``/``p90``/``p99`` by numpy's linear interpolation, rounded).

Run: python docs/tools/length_histogram.py RESULT.json [--max-total N]
where RESULT.json is a vLLM benchmark_serving result file (``input_lens``, ``output_lens``), or a pickle of
``(input, output)`` length pairs (``.pkl``: the vLLM paper's artifact ships ShareGPT's lengths so; it is read
by an unpickler that builds nothing but lists, tuples and numbers). ``--max-total N`` keeps the requests of
at most ``N`` tokens, prompt and output together (``sharegpt-first-turn-unfiltered``: 2048). It prints the
``requests``, ``stats``, ``input_tokens`` and ``output_tokens`` lines of a datasets.yaml entry.
"""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np

QUANTILES = (*np.round(np.arange(0.0, 0.9 + 1e-9, 0.075), 3), 0.95, 0.98, 0.99, 1.0)


def histogram(values: list[int]) -> list[tuple[int, float]]:
    """``(tokens, weight)`` bars of ``values`` (module docstring)."""
    v = np.sort(np.asarray(values, dtype=float))
    edges = np.quantile(v, QUANTILES)
    k = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    bars: dict[int, float] = {}
    for b in np.unique(k):
        members = v[k == b]
        tokens = max(round(float(members.mean())), 1)
        bars[tokens] = bars.get(tokens, 0.0) + members.size / v.size
    return sorted(bars.items())


def stats(values: list[int]) -> str:
    """The ``{mean, p50, p90, p99, max}`` mapping of ``values``."""
    v = np.asarray(values, dtype=float)
    p50, p90, p99 = (round(float(np.percentile(v, q))) for q in (50, 90, 99))
    return f"{{mean: {v.mean():.1f}, p50: {p50}, p90: {p90}, p99: {p99}, max: {int(v.max())}}}"


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global: a file of lists, tuples and numbers loads, code does not run."""

    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain length pairs are read")


def lengths(path: str) -> tuple[list[int], list[int]]:
    """Prompt and output lengths of a benchmark result file or a pickle of length pairs (module docstring)."""
    if path.endswith(".pkl"):
        with open(path, "rb") as fb:
            pairs = _PlainUnpickler(fb).load()
        return [int(p[0]) for p in pairs], [int(p[1]) for p in pairs]
    with open(path, encoding="utf-8") as f:
        run = json.load(f)
    return list(run["input_lens"]), list(run["output_lens"])


def main() -> None:
    """Print the entry's lines for the file named on the command line."""
    lin, lout = lengths(sys.argv[1])
    if len(sys.argv) == 4 and sys.argv[2] == "--max-total":
        cap = int(sys.argv[3])
        kept = [(i, o) for i, o in zip(lin, lout, strict=True) if i + o <= cap]
        lin, lout = [i for i, _ in kept], [o for _, o in kept]
    print(f"  requests: {len(lin)}")
    print(f"  stats: {{input: {stats(lin)}, output: {stats(lout)}}}")
    for name, vals in (("input_tokens", lin), ("output_tokens", lout)):
        bars = ", ".join(f"{{tokens: {t}, weight: {w:.5f}}}" for t, w in histogram(vals))
        print(f"  {name}: [{bars}]")


if __name__ == "__main__":
    main()
