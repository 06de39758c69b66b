"""Compressed variants of a catalogue model for what-ifs: 2:4-sparse and width-pruned models.

A variant is just another model spec, with an id of its own, that the sizer costs like any other; a
:class:`WithModels` catalogue adds the variants to the catalogue the what-if sizes against.

* :func:`sparse` — the same shapes with ``sparsity: "2:4"`` (two of every four linear-layer weights
  kept, as SparseGPT and Neural Magic's Sparse-Llama publish them). What it saves depends on the
  engine and device (:mod:`aicap.sizing.perf.sparsity`).
* :func:`pruned` — structured width pruning of the MLP: every MLP (dense, routed and shared experts)
  keeps ``r`` of its intermediate channels so that the model's parameters fall by ``f``:
  ``P − (1 − r)·M = (1 − f)·P``, i.e. ``r = 1 − f·P/M`` with ``P`` all parameters and ``M`` those of
  the MLPs. Weights and linear FLOPs fall with the channels; attention, the KV cache and the
  embeddings are kept, so the saving is what MLP pruning alone buys (Minitron's width pruning also
  trims heads and embedding channels; it would save more KV cache). Unstructured pruning to the same
  fraction saves nothing on the dense kernels engines ship, so aicap models pruning as structured.
"""

from __future__ import annotations

from collections.abc import Mapping

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec, InstanceSpec, ModelSpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.model import DecoderModel
from aicap.sizing.core.specs.speculative import SpeculativeDefault
from aicap.sizing.perf.params import inventory

#: The least share of its intermediate channels an MLP keeps (pruning past it is not width pruning).
MIN_KEPT = 0.1


def sparse(model: DecoderModel) -> DecoderModel:
    """``model`` with 2:4-sparse linear layers, id ``<id>-2of4``."""
    return model.model_copy(update={"id": f"{model.id}-2of4", "name": f"{model.name} (2:4 sparse)", "sparsity": "2:4",
                                    "checkpoint_bytes": None})  # fmt: skip


def max_prune(model: DecoderModel) -> float:
    """Largest fraction of the parameters MLP width pruning can remove: ``(1 − MIN_KEPT)·M/P``."""
    inv = inventory(model)
    return (1.0 - MIN_KEPT) * _mlp(model) / inv.total


def pruned(model: DecoderModel, fraction: float) -> DecoderModel:
    """``model`` with its MLP channels pruned so that its parameters fall by ``fraction`` (0-1), id ``<id>-pruned<NN>``.

    Raises :class:`InputError` when ``fraction`` is outside ``(0, max_prune(model)]``.
    """
    limit = max_prune(model)
    if not 0.0 < fraction <= limit:
        raise InputError(f"pruning {fraction:.0%} of {model.id}: MLP width pruning removes between 0% and {limit:.0%} of its parameters "
                         f"(every MLP keeps at least {MIN_KEPT:.0%} of its channels)")  # fmt: skip
    r = 1.0 - fraction * inventory(model).total / _mlp(model)
    update: dict[str, object] = {
        "id": f"{model.id}-pruned{round(100 * fraction)}",
        "name": f"{model.name} (MLP width pruned {fraction:.0%})",
        "intermediate_size": _keep(model.intermediate_size, r),
        "published_params": None,
        "published_params_source": None,
        "published_active_params": None,
        "checkpoint_bytes": None,
    }
    if model.moe is not None:
        moe = model.moe
        shared = None if moe.shared_expert_intermediate_size is None else _keep(moe.shared_expert_intermediate_size, r)
        update["moe"] = moe.model_copy(update={"expert_intermediate_size": _keep(moe.expert_intermediate_size, r),
                                               "shared_expert_intermediate_size": shared})  # fmt: skip
    return model.model_copy(update=update)


def _keep(width: int, r: float) -> int:
    return max(1, round(width * r))


def _mlp(model: DecoderModel) -> float:
    """Parameters of the MLPs ``M``: dense layers' MLP plus routed and shared experts."""
    inv = inventory(model)
    return inv.dense_layers * inv.mlp_per_layer + inv.moe_layers * (inv.num_experts * inv.expert + inv.shared_per_layer)


class WithModels:
    """A catalogue with extra models (variants) beside its own; everything else is the base catalogue's."""

    def __init__(self, base: CatalogueLike, extra: Mapping[str, ModelSpec]) -> None:
        self._base = base
        self._extra = dict(extra)

    @property
    def instances(self) -> Mapping[str, InstanceSpec]:
        """Instance types by name."""
        return self._base.instances

    @property
    def devices(self) -> Mapping[str, DeviceSpec]:
        """Devices by id."""
        return self._base.devices

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """The base catalogue's models and the extra ones."""
        return {**self._base.models, **self._extra}

    @property
    def efficiency(self) -> Mapping[str, EfficiencySpec]:
        """Efficiency factors by device family."""
        return self._base.efficiency

    @property
    def version(self) -> str:
        """The base catalogue's content hash."""
        return self._base.version

    @property
    def price_dates(self) -> tuple[str, str]:
        """Oldest and newest instance price dates."""
        return self._base.price_dates

    @property
    def runtime_spec(self) -> RuntimeSpec:
        """Runtime conventions of the default engine."""
        return self._base.runtime_spec

    @property
    def engines(self) -> Mapping[str, EngineSpec]:
        """Serving-engine profiles by id."""
        return self._base.engines

    @property
    def speculative(self) -> Mapping[str, SpeculativeDefault]:
        """Speculative-decoding defaults by method."""
        return self._base.speculative

    def engine(self, ref: str) -> EngineSpec:
        """An engine profile by id."""
        return self._base.engine(ref)

    def runtime_for(self, engine: str | None, device: DeviceSpec | None = None) -> RuntimeSpec:
        """Runtime conventions of ``engine`` on ``device``."""
        return self._base.runtime_for(engine, device)

    def model(self, ref: str) -> ModelSpec:
        """An extra model by id, else the base catalogue's."""
        return self._extra[ref] if ref in self._extra else self._base.model(ref)

    def device(self, ref: str) -> DeviceSpec:
        """A device by id."""
        return self._base.device(ref)

    def instance(self, ref: str) -> InstanceSpec:
        """An instance type by name."""
        return self._base.instance(ref)

    def efficiency_for(self, device: DeviceSpec, framework: str | None = None) -> EfficiencySpec:
        """The efficiency factors of a device's family."""
        return self._base.efficiency_for(device, framework)
