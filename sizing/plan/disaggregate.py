"""Disaggregated prefill and decode: one decoder workload served by two pools sized to the same demand.

A workload with ``disaggregation`` is split, before sizing, into two workloads the sizer packs like any
other (so each pool takes the cheapest instances that meet its share of the targets, on any allowed
device type or on the ones ``prefill_hardware``/``decode_hardware`` name):

* ``<name>.prefill`` — the same requests with one output token: the pool computes each prompt and its
  first token. Its TTFT target is ``T_p = T − d·T − t_x``;
* the KV cache of the prompt crosses the instance network: ``t_x = b_kv·I_max·8 / (g·10⁹)`` seconds, with
  ``b_kv`` the model's KV-cache bytes per token at the workload's KV format (16 bit unless it names
  one), ``I_max`` the longest prompt and ``g`` the link in Gbit/s per device. Both pools use only
  instance types with at least ``g`` of sourced RDMA-class network per device (EFA, InfiniBand, RoCE,
  GPUDirect-TCPX, TPU DCN), so the transfer holds wherever they land (one device's share: a lower bound
  on what a tensor-parallel replica has). The whole cache is costed over one device's link, an upper bound:
  the devices of a replica each move their own share at once, as ``estimate`` and ``simulate --disaggregate``
  cost it for a known layout (:func:`~aicap.sizing.serve.disaggregated.replica_transfer_ms`), but the target is
  split here before the layouts are chosen. ``g`` is ``transfer_gbps``, else the cheapest of the allowed
  types' network tiers, each sized with the workload alone (a faster tier leaves prefill more time but
  admits fewer instance types);
* ``<name>.decode`` — the same requests with their prompts already in the KV cache (a cached share of
  ``1 − 1/I_min``: one token of each prompt is computed, memory holds all of it) and the TPOT target.
  Its TTFT target ``d·T`` is the decode pool's admission wait and first step.

The workload's TTFT promise is the sum of the two pools' TTFT percentiles and the transfer, at most
``T``; its TPOT is the decode pool's. Percentiles do not add in general (a quantile of a sum can exceed
the sum of quantiles when rare long waits coincide), so the sum is the plan's promise, not a proof:
``aicap simulate PLAN`` pairs the pools' simulated requests and checks the composed percentile against
``T`` (:mod:`aicap.sizing.sim.composed`); ``size --verify`` checks each pool against its share. The packing may put both pools on one
instance, where the cache moves over the fast link instead (faster than costed). What this leaves out:
the transfer's queueing on a shared link, and the first token's hand-off from the prefill pool.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT, storage_formats
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.fleet import Fleet, KvDtype, Workload
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.plan import row_memo
from aicap.sizing.plan.problem import DEFAULT_TPOT_SCALE_MS, DEFAULT_TTFT_SCALE_MS
from aicap.sizing.serve.disaggregated import RDMA, rdma_tiers
from aicap.sizing.serve.disaggregated import transfer_ms as serve_transfer_ms

PREFILL, DECODE = ".prefill", ".decode"


def _down(ms: float) -> float:
    """``ms`` rounded down to a microsecond, so the pools' shares never add up to more than the target."""
    return math.floor(ms * 1e3) / 1e3


def transfer_ms(w: Workload, model: DecoderModel, gbps: float, kv_dtype: str | None = None) -> float:
    """Milliseconds to move the longest prompt's KV cache over ``gbps``.

    At ``kv_dtype`` (the format the plan's prefill pool runs), else the workload's, else 16 bit: before the
    formats are chosen, the TTFT target is split for the largest KV cache a pool may hold.
    """
    return serve_transfer_ms(model, kv_dtype or w.kv_dtype or "bf16", w.max_input, gbps)


def link_tiers(w: Workload, insts: list[InstanceSpec]) -> list[float]:
    """The per-device RDMA-class network speeds (Gbit/s) among ``insts`` the pools may use, slowest first."""
    d = w.disaggregation
    assert d is not None
    shares = rdma_tiers(insts, set(d.prefill_hardware or []) | set(d.decode_hardware or []) | set(w.hardware or []))
    if not shares:
        raise InputError(f"workload '{w.name}': disaggregation moves the KV cache over the instance network and no allowed instance "
                         "type has a sourced RDMA-class one (EFA, InfiniBand, RoCE, GPUDirect-TCPX): give disaggregation.transfer_gbps "
                         "(--transfer-gbps) to allow slower links")  # fmt: skip
    return shares


def link_gbps(w: Workload, fleet: Fleet, cat: CatalogueLike, insts: list[InstanceSpec]) -> tuple[float, int]:
    """The KV link per device (Gbit/s) and how many tiers were weighed: ``transfer_gbps``, else the cheapest tier.

    A faster link leaves the prefill pool more of the TTFT target but admits fewer instance types, so
    each tier of :func:`link_tiers` is sized with the workload alone and the cheapest plan's tier wins
    (the faster on a tie).
    """
    d = w.disaggregation
    assert d is not None
    if d.transfer_gbps is not None:
        return d.transfer_gbps, 1
    tiers = link_tiers(w, insts)
    key = f"{cat.version}|{w.model_dump_json()}|{fleet.constraints.model_dump_json()}"
    memo = row_memo.current()
    chosen = {} if memo is None else memo.link_tiers  # per (catalogue, workload, constraints): one search's re-solves weigh them once
    if key not in chosen:
        from aicap.sizing.core.errors import InfeasibleError
        from aicap.sizing.plan.sizer import size

        best: tuple[float, float] | None = None
        last: Exception | None = None
        for g in tiers:
            one = w.model_copy(update={"disaggregation": d.model_copy(update={"transfer_gbps": g})})
            try:
                usd = size(fleet.model_copy(update={"workloads": [one]}), cat, alternatives=False).totals.usd_per_month
            except (InfeasibleError, InputError) as exc:
                last = exc
                continue
            if best is None or (usd, -g) < (best[0], -best[1]):
                best = (usd, g)
        if best is None:
            assert last is not None
            raise last
        chosen[key] = best[1]
    return chosen[key], len(tiers)


def _rank(plan: Plan, objective: str) -> tuple[float, float]:
    """A plan's place by the fleet's objective, lower first: cost then latency, latency then cost, or most served then cost.

    Latency is the sum over the plan's workloads of ``TTFT/TTFT* + TPOT/TPOT*`` at their promises (1 s and 100 ms where a
    workload has no target), the score the integer program weighs (:func:`~aicap.sizing.plan.problem.latency_scores`).
    """
    usd = plan.totals.usd_per_month
    lat = sum((w.ttft_ms or 0.0) / (w.ttft_target_ms or DEFAULT_TTFT_SCALE_MS)
              + (w.tpot_ms or 0.0) / (w.tpot_target_ms or DEFAULT_TPOT_SCALE_MS) for w in plan.workloads)  # fmt: skip
    if objective == "throughput":
        return -sum(w.served_requests_per_s for w in plan.workloads), usd
    return (lat, usd) if objective == "latency" else (usd, lat)


def _kv_for(w: Workload, model: DecoderModel, p: str) -> str | None:
    """The KV-cache format of ``w``'s pools in weight format ``p``: the workload's ``kv_dtype``, else the format's own rule.

    The rule is read on a device with every float path (its fallback, fp16, is the device's); fp32 weights give ``None``:
    a workload names no fp32 cache, and it follows the weights everywhere.
    """
    from aicap.sizing.plan.generate import kv_of

    kv = w.kv_dtype or kv_of(model, p) or storage_formats(p, dict.fromkeys(("fp32", "bf16", "fp16", "fp8"), 1.0))[1]
    return kv if kv in get_args(KvDtype) else None


def _pinned(w: Workload, p: str, kv: str | None) -> Workload:
    """``w`` allowed the one weight format ``p`` and the KV-cache format ``kv``."""
    return w.model_copy(update={"precisions": [p], "kv_dtype": kv})


def pool_format(w: Workload, fleet: Fleet, model: DecoderModel, cat: CatalogueLike, derate: Mapping[str, float] | None = None,
                chosen: Mapping[str, tuple[str, str | None]] | None = None) -> tuple[str, str | None, int]:  # fmt: skip
    """The one weight format and KV-cache format both pools of ``w`` run, and how many formats were weighed.

    The decode pool reads the KV cache the prefill pool writes, so the two hold it in one format (a connector moves
    the cache's blocks as they are), and they serve one checkpoint: a prefill pool in fp8 handing its cache to a bf16
    decode pool is a pairing no engine launches. The whole fleet is sized once for each format the workload allows
    (:meth:`~aicap.sizing.core.fleet.Workload.allowed_precisions`), both pools pinned to it and to its KV format (the
    workload's ``kv_dtype``, else the format's own rule: :func:`~aicap.sizing.plan.generate.kv_of`,
    :func:`~aicap.sizing.core.dtypes.storage_formats`), with the plan's own ``derate``; the plan that ranks first by the
    fleet's objective (:func:`_rank`) gives the format, the first listed on a tie. Sizing the whole fleet, not the
    workload alone, keeps fleet-wide constraints (``single_type``, instance caps) in the choice. A device without bf16
    keeps a 16-bit cache in fp16: pools that mix such a device with one that has bf16 are not prevented here.

    The fleet's other disaggregated workloads are held at one format each while ``w``'s is chosen: the format already
    chosen for them (``chosen``: name to weight and KV format, as :func:`split` collects them in the fleet's order), else
    the first they allow. So the workloads' formats are chosen one after another and the fleet is sized as many times
    as the sum of their formats, not the product (each trial would otherwise search the others' formats again). Where
    no format of ``w`` serves with the later workloads held at their first format (one their engine or devices cannot
    run), the formats are weighed again with the later workloads free to choose their own.
    """
    allowed = w.allowed_precisions(model.checkpoint_dtype)
    if len(allowed) == 1:
        return allowed[0], _kv_for(w, model, allowed[0]), 1
    done = dict(chosen or {})
    others: dict[str, Workload] = {}
    for x in fleet.workloads:
        if x.name == w.name or x.disaggregation is None:
            continue
        xm = cat.model(x.model)
        if x.name in done:
            others[x.name] = _pinned(x, *done[x.name])
        elif isinstance(xm, DecoderModel):  # split refuses the others itself
            first = x.allowed_precisions(xm.checkpoint_dtype)[0]
            others[x.name] = _pinned(x, first, _kv_for(x, xm, first))
    key = f"{cat.version}|{w.name}|{fleet.model_dump_json()}|{sorted(done.items())}|{sorted((derate or {}).items())}"
    memo = row_memo.current()
    formats = {} if memo is None else memo.pool_formats  # per (catalogue, workload, fleet, choices, derating), as link_gbps keeps tiers
    if key not in formats:
        from aicap.sizing.core.errors import InfeasibleError
        from aicap.sizing.plan.sizer import size

        best: tuple[tuple[float, float], str] | None = None
        last: Exception | None = None
        later = {n for n in others if n not in done}  # held at their first format, which may not serve
        for held in (others, {n: x for n, x in others.items() if n not in later}):  # then, if none served, the later ones free
            for p in allowed:
                mine = {**held, w.name: _pinned(w, p, _kv_for(w, model, p))}
                pinned = fleet.model_copy(update={"workloads": [mine.get(x.name, x) for x in fleet.workloads]})
                try:
                    plan = size(pinned, cat, alternatives=False, derate=derate)
                except (InfeasibleError, InputError) as exc:
                    last = exc
                    continue
                rank = _rank(plan, fleet.constraints.objective)
                if best is None or rank < best[0]:
                    best = (rank, p)
            if best is not None or not later:
                break
        if best is None:
            assert last is not None
            raise last
        formats[key] = best[1], _kv_for(w, model, best[1])
    return (*formats[key], len(allowed))


def split(fleet: Fleet, cat: CatalogueLike, insts: list[InstanceSpec],
          derate: Mapping[str, float] | None = None) -> tuple[Fleet, list[str]]:  # fmt: skip
    """``fleet`` with each disaggregated workload replaced by its prefill and decode pools, and a note on each (module docstring).

    ``derate`` is the plan's (``size --verify``): the pools' format is chosen under it (:func:`pool_format`).

    Raises :class:`InputError` for a workload that is not a decoder, has no TTFT target to split, or whose
    target the transfer alone uses up.
    """
    if not any(w.disaggregation for w in fleet.workloads):
        return fleet, []
    doc: dict[str, Any] = fleet.model_dump(mode="json", exclude_none=True)
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    chosen: dict[str, tuple[str, str | None]] = {}  # the formats chosen so far (pool_format)
    for w, raw in zip(fleet.workloads, doc["workloads"], strict=True):
        d = w.disaggregation
        if d is None:
            out.append(raw)
            continue
        for h in [*(d.prefill_hardware or []), *(d.decode_hardware or [])]:
            cat.device(h)  # an unknown id is an input error naming the valid ones
        model = cat.model(w.model)
        if not isinstance(model, DecoderModel):
            raise InputError(f"workload '{w.name}': disaggregation splits prefill from decode; {model.id} is not a decoder")
        ttft = w.slo.ttft_ms
        if ttft is None:
            raise InputError(f"workload '{w.name}': disaggregation splits the TTFT target between the pools: give slo.ttft_ms (--ttft-ms)")
        precision, kv_dtype, formats = pool_format(w, fleet, model, cat, derate, chosen)
        chosen[w.name] = precision, kv_dtype
        gbps, weighed = link_gbps(w.model_copy(update={"precisions": [precision], "kv_dtype": kv_dtype}), fleet, cat, insts)
        move = transfer_ms(w, model, gbps, kv_dtype or precision)  # an fp32 model's cache: fp32, as its weights
        prefill_ttft = ttft * (1.0 - d.decode_ttft_share) - move
        if prefill_ttft <= 0:
            raise InputError(f"workload '{w.name}': moving the KV cache of {w.max_input:,} tokens at {gbps:g} Gbit/s takes {move:.0f} ms, "
                             f"more than the prefill pool's share of the {ttft:g} ms TTFT target")  # fmt: skip
        base = {k: v for k, v in raw.items() if k not in ("disaggregation", "tokens_per_s", "requests_per_s", "speculative", "hardware")}
        base["requests_per_s"] = raw.get("requests_per_s", w.rate)
        base["precisions"] = [precision]
        if kv_dtype is not None:
            base["kv_dtype"] = kv_dtype
        i_min = w.input_tokens if isinstance(w.input_tokens, int) else min(b.tokens for b in w.input_tokens)
        q = w.slo.percentile
        pre = {
            **base,
            "name": w.name + PREFILL,
            "disaggregated_role": "prefill",
            "output_tokens": 1,
            "slo": {"ttft_ms": _down(prefill_ttft), "percentile": q},
        }
        dec = {**base, "name": w.name + DECODE, "disaggregated_role": "decode",
               "prefix_cached_share": max(w.prefix_cached_share, 1.0 - 1.0 / max(i_min, 2)),
               "slo": {"ttft_ms": _down(ttft * d.decode_ttft_share), "tpot_ms": w.slo.tpot_ms, "percentile": q}}  # fmt: skip
        if w.speculative is not None:
            dec["speculative"] = raw["speculative"]
        for pool, hw in ((pre, d.prefill_hardware or w.hardware), (dec, d.decode_hardware or w.hardware)):
            pool["min_network_gbps"] = max(gbps, w.min_network_gbps or 0.0)
            if d.transfer_gbps is None:  # the tier is an RDMA-class network's: an Ethernet of that speed is not it
                pool["network_kinds"] = sorted(RDMA)
            if hw:
                pool["hardware"] = list(hw)
            if pool["slo"].get("tpot_ms") is None:
                pool["slo"].pop("tpot_ms", None)
        out += [pre, dec]
        kv = f"{kv_dtype or precision} KV cache"
        notes.append(f"'{w.name}' is served disaggregated: prefill pool '{w.name}{PREFILL}' (TTFT ≤ {prefill_ttft:.0f} ms), KV transfer "
                     f"{move:.1f} ms at {gbps:g} Gbit/s ({kv}), decode pool '{w.name}{DECODE}' (TTFT ≤ {ttft * d.decode_ttft_share:.0f} ms"
                     f"{f', TPOT ≤ {w.slo.tpot_ms:g} ms' if w.slo.tpot_ms else ''}); its TTFT is the sum, ≤ {ttft:g} ms; both pools "
                     f"run {precision} weights and the {kv}, the one the decode pool reads"
                     + (f" (of the {formats} formats it allows, the one whose plan of the fleet ranks first by its "
                        f"{fleet.constraints.objective} objective)" if formats > 1 else "")
                     + (f"; the {gbps:g} Gbit/s link tier was the cheapest of {weighed} (--transfer-gbps fixes one)"
                        if weighed > 1 else ""))  # fmt: skip
    doc["workloads"] = out
    return Fleet.model_validate(doc), notes


def user_ttfts(plan: Plan, cat: CatalogueLike) -> dict[str, float]:
    """The promised TTFT users see per workload of the fleet as given [ms]: a pool pair's is prefill + transfer + decode.

    Workloads that were not split keep their own promise; the pools of a disaggregated workload are
    reported once, under its name.
    """
    by_name = {w.name: w for w in plan.workloads}
    out: dict[str, float] = {}
    for w in plan.inputs.workloads:
        pw = by_name.get(w.name)
        if pw is None or pw.ttft_ms is None:
            continue
        if w.disaggregated_role is None:
            out[w.name] = pw.ttft_ms
        elif w.disaggregated_role == "prefill":
            base = w.name.removesuffix(PREFILL)
            dec = by_name.get(base + DECODE)
            model = cat.model(w.model)
            if dec is None or dec.ttft_ms is None or not isinstance(model, DecoderModel):
                continue
            kv = max((d.kv_dtype for d in pw.deployments), key=lambda k: BYTES_PER_ELEMENT.get(k, 2.0), default=None)
            out[base] = round(pw.ttft_ms + transfer_ms(w, model, w.min_network_gbps or math.inf, kv) + dec.ttft_ms, 2)
    return out
