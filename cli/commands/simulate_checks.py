"""Checks of ``aicap simulate``'s options and outcomes.

Number lists, prompts that an unchunked step cannot hold, and a policy comparison in which no policy meets the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aicap.sizing.sim.replay import PolicyRow
    from aicap.sizing.sim.report import SimulationReport


def floats(text: str | None, flag: str, *, positive: bool = False) -> tuple[float, ...] | None:
    """Comma-separated numbers of ``flag`` (``None`` when not given): each ``>= 0``, not all 0 (``> 0`` when ``positive``)."""
    from aicap.sizing.core.errors import InputError

    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 0.2,0.8") from None
    if not values or any(not (v >= 0 and v < float("inf")) for v in values) or sum(values) <= 0:
        raise InputError(f"{flag} {text!r}: expected numbers >= 0, not all 0")
    if positive and min(values) <= 0:
        raise InputError(f"{flag} {text!r}: every weight must be > 0")
    return values


def check_whole_prompts(chunked: bool, longest: int, budget: int) -> None:
    """Refuse a run whose longest prompt cannot be prefilled in one step of ``budget`` tokens without chunking (vLLM refuses such an engine at start-up)."""
    if not chunked and longest > budget:
        from aicap.sizing.core.errors import InfeasibleError

        raise InfeasibleError(f"without chunked prefill a prompt is prefilled in one step: the longest here ({longest:,} tokens to "
                              f"prefill) exceeds the step budget of {budget:,}; raise --max-batched-tokens or turn chunked prefill on")  # fmt: skip


def check_some_policy_holds(rows: Sequence[PolicyRow], percentile: str, replicas: int) -> None:
    """Exit 3 (after the table) when no policy meets the targets on ``replicas`` replicas.

    The message names the nearest policy (the highest SLO attainment, then the smallest worst miss) and the fewest
    replicas any policy needs (``replicas_for_slo``), or says that none does up to the search's limit.

    Raises
    ------
    InfeasibleError
        When every policy's run misses a target, is unstable or rejects requests.
    """
    from aicap.sizing.core.errors import InfeasibleError
    from aicap.sizing.sim.replay import holds, miss_ratio

    if not rows or any(holds(r.report, percentile) for r in rows):
        return
    best = min(rows, key=lambda r: (-(r.report.slo_attainment or 0.0), miss_ratio(r.report, percentile)))
    share = f", {best.report.slo_attainment:.1%} of requests within the targets" if best.report.slo_attainment is not None else ""
    needs = sorted((r.replicas_for_slo, r.policy) for r in rows if r.replicas_for_slo is not None)
    if needs:
        fewest = needs[0][0]
        who = ", ".join(p for n, p in needs if n == fewest)
        then = f"the fewest replicas that meet them: {fewest:,} ({who})"
    else:
        then = "no policy meets them with more replicas either (see the note under the table)"
    noun = "replica" if replicas == 1 else "replicas"
    raise InfeasibleError(f"no policy meets the targets at {percentile} on {replicas:,} {noun} "
                          f"(nearest: {best.policy}{share}); {then}")  # fmt: skip


def missed_targets(rep: SimulationReport, percentile: str) -> list[str]:
    """What a run misses, one phrase each: ``TTFT p99 665.8 ms > target 500 ms``, an unbounded queue, rejected requests."""
    from aicap.cli.commands.simulate_views import ms

    out = [f"{name} {percentile} {ms(st, percentile)} ms > target {target:g} ms"
           for name, st, target in (("TTFT", rep.ttft_ms, rep.slo.ttft_ms), ("TPOT", rep.tpot_ms, rep.slo.tpot_ms))
           if target is not None and (got := st.at(percentile)) is not None and got > target]  # fmt: skip
    if not rep.stable:
        out.append("the queue grows without bound")
    if rep.rejected:
        out.append(f"{rep.rejected:,} request(s) rejected")
    return out


SHORT_RUN = 100  # fewer measured requests: a p99 is no longer a percentile of the run (it needs 100 requests or more)


def note_short_run(requests: int, *, traced: bool) -> None:
    """Note on stderr a run whose statistics rest on fewer than ``SHORT_RUN`` requests after the warm-up.

    The percentiles of a few requests are their largest values, and the stability verdict compares the quarters of the
    run: both need a run long enough for the queue to settle.
    """
    from aicap.cli.state import info
    from aicap.sizing.sim.result import WARMUP

    measured = requests - int(WARMUP * requests)
    if measured >= SHORT_RUN:
        return
    longer = "a longer trace" if traced else "--requests 1,000 or more"
    noun = "request" if measured == 1 else "requests"
    info(f"aicap: note: the statistics rest on {measured:,} {noun} after the {WARMUP:.0%} warm-up: a p99 needs {SHORT_RUN} or "
         f"more, and the stability verdict a run long enough for the queue to settle; give {longer}")  # fmt: skip


def warn_unbounded(policies: str, replicas: int, *, served: float | None = None, traced: bool = False) -> None:
    """Warn on stderr that a run's queue grows without bound (the table says so; a script reads stderr and the exit code).

    Its latencies then grow with the run's length and describe no steady state; ``served`` (requests/s) is what the
    replicas completed, about their capacity under that policy. ``traced``: the arrivals are a trace's, which no flag slows.
    """
    from aicap.cli.state import info

    noun = "one replica" if replicas == 1 else f"{replicas:,} replicas"
    rate = "" if served is None else f"{served:,.3g}" if served < 1000 else f"{served:,.0f}"
    at = "" if served is None else f" ({'it' if replicas == 1 else 'they'} served {rate} req/s)"
    fix = "add --replicas or devices" if traced else "lower --rate or --concurrency, or add --replicas or devices"
    info(f"aicap: warning: the queue grows without bound under {policies}: more arrives than {noun} can serve{at}, so the latencies "
         f"grow with the run's length; {fix}")  # fmt: skip
