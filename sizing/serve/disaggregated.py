"""One disaggregated deployment: a prefill replica and a decode replica, the KV transfer between them, and their ratio.

The prefill replica computes each prompt and its first token (one output token); the prompt's KV cache
crosses the instance network, each device its own share over its own link, ``t_x = b_kv·I·8/(g·10⁹)`` seconds
for ``b_kv`` KV bytes per token on the busiest device and ``g`` Gbit/s per device (:func:`replica_transfer_ms`);
the decode replica admits the request with its prompt already cached and generates the
rest. An idle request sees ``TTFT = TTFT_prefill + t_x + TTFT_decode`` (the last one step of the decode
replica); TPOT is the decode replica's. To carry a rate ``λ`` the pools need ``λ/μ_p`` prefill and ``λ/μ_d``
decode replicas, ``μ`` each replica's requests/s at its batch: ``μ_d/μ_p`` prefill replicas per decode
replica. ``aicap size --disaggregate`` sizes the pools under load (:mod:`aicap.sizing.plan.disaggregate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import InstanceSpec
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.perf.memory import kv_bytes_per_token, state_bytes_per_sequence
from aicap.sizing.perf.params import kv_cache_bytes_per_token, sequence_state_bytes
from aicap.sizing.serve.estimate import EstimateResult

#: Scale-out networks that move a KV cache between instances without the host's TCP stack (what NIXL and
#: Mooncake transfer over), and TPU slices' data-centre network.
RDMA = frozenset({"efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo", "tpu-dcn"})


def transfer_ms(model: DecoderModel, kv_dtype: str, tokens: int, gbps: float) -> float:
    """Milliseconds to move a request's cache to the decode pool over ``gbps``: ``(b_kv·tokens + S)·8/(g·10⁹)·10³``.

    ``S`` is a hybrid model's recurrent state (:func:`~aicap.sizing.perf.params.sequence_state_bytes`; 0 otherwise).
    """
    state = sequence_state_bytes(model)
    return (kv_cache_bytes_per_token(model, BYTES_PER_ELEMENT[kv_dtype]) * tokens + state) * 8.0 / (gbps * 1e9) * 1e3


def replica_transfer_ms(prefill: Deployment, decode: Deployment, tokens: int, gbps: float) -> float:
    """Milliseconds to move one prompt's cache from a prefill replica to a decode replica, each device over its own link.

    Each device of the prefill replica sends the share of the cache it holds and each device of the decode replica
    receives the share it will hold, at once (NIXL and Mooncake move a rank's KV blocks to its peers directly), so the
    busiest device bounds it: ``max(B_p, B_d)·8/(g·10⁹)·10³``, ``B`` a device's KV bytes of ``tokens`` tokens (its
    heaviest pipeline stage; heads split over ``tp/dp_attention``, replicated past the KV heads; MLA's latent whole on
    every device) plus a hybrid's recurrent state. :func:`transfer_ms`, the whole cache over one link, is this at
    TP1·PP1, and bounds it above.
    """

    def per_device(dep: Deployment) -> float:
        own = dataclasses.replace(dep, speculative=None)  # a drafter's cache is not handed over
        return float(kv_bytes_per_token(own, dep.tp, dep.pp, tokens)) + float(state_bytes_per_sequence(own, dep.tp, dep.pp))

    return max(per_device(prefill), per_device(decode)) * 8.0 / (gbps * 1e9) * 1e3


def rdma_tiers(insts: Iterable[InstanceSpec], devices: set[str] | None = None) -> list[float]:
    """Per-device RDMA-class network speeds (Gbit/s) of ``insts`` (of ``devices`` only, when given), slowest first."""
    return sorted({i.network.gbps / i.devices for i in insts
                   if i.network is not None and i.network.kind in RDMA and (not devices or i.device in devices)})  # fmt: skip


def link_for(insts: Iterable[InstanceSpec], devices: set[str], given: float | None) -> float:
    """The KV link per device (Gbit/s): ``given``, else the slowest RDMA-class network of ``devices``' instance types.

    Raises :class:`InputError` for a non-positive ``given``, or when none is given and no instance type of
    ``devices`` has a sourced RDMA-class network.
    """
    if given is not None:
        if not given > 0:
            raise InputError(f"--transfer-gbps {given}: must be positive")
        return given
    tiers = rdma_tiers(insts, devices)
    if not tiers:
        raise InputError(f"no instance type of {', '.join(sorted(devices))} has a sourced RDMA-class network: give --transfer-gbps")
    return tiers[0]


@dataclass
class DisaggregatedEstimate:
    """A prefill and a decode estimate of one model and the KV transfer between them (module docstring)."""

    prefill: EstimateResult
    decode: EstimateResult
    link_gbps: float

    @property
    def transfer_ms(self) -> float:
        """KV transfer of one prompt [ms], each device's share over its own link (:func:`replica_transfer_ms`)."""
        return replica_transfer_ms(self.prefill.deployment, self.decode.deployment, self.prefill.request.input_tokens, self.link_gbps)

    @property
    def prefill_per_decode(self) -> float:
        """Prefill replicas per decode replica at full batches: ``μ_d/μ_p``."""
        return float(self.decode.metrics.requests_per_s) / max(float(self.prefill.metrics.requests_per_s), 1e-12)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document: both estimates, the transfer, the idle TTFT, the TPOT and the pool ratio."""
        p, d = self.prefill, self.decode
        ttft = float(p.metrics.ttft_s) + self.transfer_ms / 1e3 + float(d.metrics.ttft_s)
        dev_p, dev_d = p.deployment.devices, d.deployment.devices
        ratio = self.prefill_per_decode
        both = p.fits and d.fits  # the composed figures need both replicas: none where either does not fit
        return {
            "schema_version": 1,
            "model": p.deployment.model.id,
            "input_tokens": p.request.input_tokens,
            "output_tokens": d.request.output_tokens,
            "prefill": p.to_dict(),
            "decode": d.to_dict(),
            "kv_transfer": {"link_gbps": self.link_gbps, "ms": round(self.transfer_ms, 3)},
            "ttft_s": round(ttft, 6) if both else None,
            "tpot_s": d.to_dict()["tpot_s"] if both else None,
            "prefill_replicas_per_decode_replica": round(ratio, 4) if both else None,
            "requests_per_s_per_device": round(float(d.metrics.requests_per_s) / (dev_d + ratio * dev_p), 4) if both else None,
            "fits": both,
        }
