"""``aicap simulate --disaggregate``: one disaggregated deployment simulated end to end (prefill pool, KV link, decode pool)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aicap.cli.commands.estimate_cmd import disaggregated_pair
from aicap.cli.render import Format, Table, View, emit
from aicap.cli.state import catalogue

if TYPE_CHECKING:
    from aicap.sizing.sim.engine import Requests


def simulate_disaggregated(model: str, hardware: str, decode_hardware: str, reqs: Requests, *, devices: int | None, tp: int | None,
                           pp: int | None, prefill_replicas: int, replicas: int,
                           transfer_gbps: float | None, engine: str | None, weights_dtype: str | None, kv_dtype: str | None,
                           policy: str, router: Any, percentile: str, ttft_ms: float | None, tpot_ms: float | None, seed: int,
                           fmt: Format) -> None:  # fmt: skip
    """Simulate ``reqs`` through ``prefill_replicas`` prefill replicas on ``hardware``, the link, and ``replicas`` decode replicas.

    Each pool's replica layout is the best ``estimate`` finds within ``devices`` (or the given ``tp``/``pp``).
    """
    import math

    import numpy as np

    from aicap.sizing.core.errors import InfeasibleError, InputError
    from aicap.sizing.core.fleet import PERCENTILES
    from aicap.sizing.core.specs.model import DecoderModel
    from aicap.sizing.serve.disaggregated import link_for, replica_transfer_ms
    from aicap.sizing.sim.comparison import DisaggregatedRun
    from aicap.sizing.sim.composed import chain
    from aicap.sizing.sim.replay import Setup
    from aicap.sizing.sim.report import Targets

    for flag, n in (("--prefill-replicas", prefill_replicas), ("--replicas", replicas)):
        if n < 1:
            raise InputError(f"{flag} {n}: must be >= 1")
    i_mean, o_mean = max(int(reqs.input_tokens.mean()), 2), max(int(reqs.output_tokens.mean()), 1)
    pre, dec = disaggregated_pair(model, hardware, decode_hardware, devices, tp, pp, 1, "auto", i_mean, o_mean, weights_dtype, kv_dtype,
                                  tpot_ms, engine)  # fmt: skip
    target = pre.deployment.model
    assert isinstance(target, DecoderModel)
    gbps = link_for(catalogue().instances.values(), {hardware, decode_hardware}, transfer_gbps)
    for role, e in (("prefill", pre), ("decode", dec)):
        if not e.fits:
            raise InfeasibleError(f"{role} replica of {model} on {e.deployment.device.id}: {e.shortfall}")
    move = replica_transfer_ms(pre.deployment, dec.deployment, int(reqs.input_tokens.max()), gbps)  # each device its share
    run = chain(Setup(pre.deployment, replicas=prefill_replicas, router=router), Setup(dec.deployment, replicas=replicas, router=router),
                reqs, move, policy=policy, seed=seed, targets=Targets(ttft_ms=ttft_ms, tpot_ms=tpot_ms))  # fmt: skip
    q = PERCENTILES[percentile]

    def ms(x: float) -> float | None:
        return None if not math.isfinite(x) else round(x * 1e3, 3)

    composed, p_ttft, d_ttft = ms(run.percentile(q)), ms(run.prefill.percentile("ttft", q)), ms(run.decode.percentile("ttft", q))
    tpot = ms(run.decode.percentile("tpot", q))
    stable = run.prefill.stable and run.decode.stable
    holds = stable and all(v is not None and (t is None or v <= t) for v, t in ((composed, ttft_ms), (tpot, tpot_ms)) if t is not None)
    layout = {r: {"hardware": e.deployment.device.id, "tp": e.deployment.tp, "pp": e.deployment.pp, "replicas": n}
              for r, e, n in (("prefill", pre, prefill_replicas), ("decode", dec, replicas))}  # fmt: skip
    doc = DisaggregatedRun.model_validate(
        {"schema_version": 1, "model": model, "percentile": percentile, "requests": len(reqs.arrival_s), **layout,
         "kv_transfer": {"link_gbps": gbps, "ms": round(move, 3)}, "prefill_ttft_ms": p_ttft, "decode_ttft_ms": d_ttft,
         "ttft_ms": composed, "tpot_ms": tpot, "ttft_target_ms": ttft_ms, "tpot_target_ms": tpot_ms,
         "finished_share": round(float(np.mean(run.decode.finished)), 4), "stable": stable, "holds": holds}
    ).model_dump(mode="json")  # the document aicap schema simulation-disaggregated describes  # fmt: skip
    rows: list[list[Any]] = [[f"{r} pool", f"{x['replicas']}× TP{x['tp']}·PP{x['pp']} {x['hardware']} "
                              f"({_count(int(x['replicas']) * int(x['tp']) * int(x['pp']), 'device')})"]
                             for r, x in doc.items() if r in ("prefill", "decode")]  # fmt: skip
    rows += [["KV transfer", f"{move:,.1f} ms at {gbps:g} Gbit/s (longest prompt)"],
             [f"prefill TTFT {percentile}", p_ttft], [f"decode TTFT {percentile} (after the hand-off)", d_ttft],
             [f"TTFT {percentile} users see", composed], [f"TPOT {percentile}", tpot],
             ["stable", "yes" if stable else "NO"], ["holds", "yes" if holds else "NO"]]  # fmt: skip
    # -f csv in the long format of a single run: scope (all, or the pool or link a figure belongs to), metric, statistic, value
    long = [[key, sub, "value", x] for key, v in doc.items() if isinstance(v, dict) for sub, x in v.items()]
    long += [["all", key, "value", v] for key, v in doc.items() if not isinstance(v, dict) and key != "schema_version"]
    emit(View(doc, [Table(f"Disaggregated simulation: {model}, prefill on {hardware}, decode on {decode_hardware} (ms)", ["", "value"],
                          rows, "Each request runs through the prefill pool, then the link, then the decode pool; its TTFT is the "
                          "sum of the three.", left=True)], csv=Table("", ["scope", "metric", "statistic", "value"], long)), fmt)  # fmt: skip
    if (ttft_ms is not None or tpot_ms is not None) and not holds:
        missed = [f"{name} {percentile} {v} ms > target {t:g} ms" for name, v, t in (("TTFT", composed, ttft_ms), ("TPOT", tpot, tpot_ms))
                  if t is not None and v is not None and v > t]  # fmt: skip
        if not stable:
            missed.append("a pool's queue grows without bound")
        raise InfeasibleError(f"the simulated run misses a target: {'; '.join(missed) or 'nothing served'}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
