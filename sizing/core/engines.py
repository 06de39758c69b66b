"""The serving engine a deployment runs on: its profile, runtime conventions and efficiency key, resolved once.

``--engine`` (and a fleet's ``engine`` fields) name a profile of ``hardware_db/data/engines/``; no name
means the catalogue's default engine (``runtime.default_engine``), and ``generic`` the catalogue's own
``runtime`` section as written. See :mod:`aicap.sizing.core.specs.engine` for what a profile holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment
from aicap.sizing.core.dtypes import KV_DTYPES, WEIGHT_DTYPES
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.model import AnyModel
from aicap.sizing.core.speculative import Speculative


class PlannedLayout(Protocol):
    """What a plan records of a deployment's layout (a plan's ``Deployment``, a period plan's ``UsedDeployment``)."""

    @property
    def hardware(self) -> str:
        """The device id."""
        ...

    @property
    def tp(self) -> int:
        """Devices of one pipeline stage."""
        ...

    @property
    def pp(self) -> int:
        """Pipeline stages."""
        ...

    @property
    def dp_attention(self) -> int:
        """Attention data-parallel groups per replica."""
        ...

    @property
    def weights_dtype(self) -> str:
        """Storage format of the weights."""
        ...

    @property
    def kv_dtype(self) -> str:
        """Storage format of the KV cache."""
        ...


@dataclass(frozen=True)
class Engine:
    """A resolved engine: its profile (``None`` for ``generic``) and the runtime conventions it implies.

    ``runtime`` holds the engine's base defaults; :meth:`on` gives them on one device (engines such as
    vLLM pick scheduler limits by device). ``eager``: the engine runs without CUDA graphs, which :meth:`on`
    applies on GPUs (the setting means nothing to a TPU's or a CPU's engine).
    """

    runtime: RuntimeSpec
    spec: EngineSpec | None
    base: RuntimeSpec | None = None  # the catalogue's own conventions the profile applies to
    eager: bool = False

    @property
    def id(self) -> str:
        """The profile id (``generic`` without a profile)."""
        return self.runtime.engine

    def on(self, device: DeviceSpec) -> RuntimeSpec:
        """The runtime conventions on ``device``."""
        rt = self.runtime if self.spec is None or self.base is None else self.spec.runtime(self.base, device)
        if self.eager and device.kind == "gpu":
            return rt.model_copy(update={"eager": True})
        return rt

    @property
    def label(self) -> str:
        """Name and version for people (``vLLM 0.11.0``)."""
        return "generic runtime conventions" if self.spec is None else f"{self.spec.name} {self.spec.version}"

    @property
    def efficiency_key(self) -> str | None:
        """The framework key of this engine's own efficiency factors, if any."""
        return None if self.spec is None else self.spec.efficiency_key

    def efficiency(self, cat: CatalogueLike, device: DeviceSpec) -> EfficiencySpec:
        """The efficiency factors of ``device`` under this engine (its own where the catalogue has them, times its multipliers)."""
        eff = cat.efficiency_for(device, self.efficiency_key)
        return eff if self.spec is None else self.spec.adjust(eff)

    def planned(self, cat: CatalogueLike, model: AnyModel, d: PlannedLayout, speculative: Speculative | None = None) -> Deployment:
        """The performance model's deployment of a planned layout ``d`` under this engine.

        A plan splits experts over all ``tp`` devices only with data-parallel attention (``ep = tp``), else not at all.
        """
        dev = cat.device(d.hardware)
        ep = d.tp if d.dp_attention > 1 else 1
        return Deployment(model, dev, self.efficiency(cat, dev), self.on(dev), d.tp, d.pp, ep, d.weights_dtype, d.kv_dtype,
                          speculative=speculative, dp_attention=d.dp_attention)  # fmt: skip

    def check(self, device: DeviceSpec, weights_dtype: str, kv_dtype: str) -> None:
        """Raise :class:`InputError` when the engine does not serve ``device`` in these formats."""
        s = self.spec
        if s is None:
            return
        if not s.serves(device):
            raise InputError(f"--engine {s.id}: {s.name} does not run on {device.id} ({device.vendor} {device.kind}); "
                             f"it runs on: {', '.join(s.runs_on)} (a vendor's accelerators, not its CPUs)")  # fmt: skip
        if weights_dtype in WEIGHT_DTYPES and weights_dtype not in s.weights_dtypes:  # unknown formats: Deployment.check says
            raise InputError(f"--weights-dtype {weights_dtype}: {s.name} serves weights in {', '.join(s.weights_dtypes)}")
        if kv_dtype in KV_DTYPES and kv_dtype not in s.kv_dtypes:
            raise InputError(f"--kv-dtype {kv_dtype}: {s.name} keeps the KV cache in {', '.join(s.kv_dtypes)}")


def engine_for(cat: CatalogueLike, ref: str | None, *, eager: bool = False) -> Engine:
    """Resolve an engine id (``None``: the catalogue's default; ``generic``: no profile), run eagerly on GPUs if ``eager``."""
    runtime = cat.runtime_for(ref)
    if runtime.engine == "generic":
        return Engine(runtime, None, eager=eager)
    return Engine(runtime, cat.engine(runtime.engine), cat.runtime_for("generic"), eager=eager)


def generic_runtime(cat: CatalogueLike) -> RuntimeSpec:
    """The catalogue's own runtime conventions, whatever the default engine (training uses these)."""
    return cat.runtime_for("generic")


def engine_for_framework(cat: CatalogueLike, framework: str | None) -> Engine:
    """The profile whose ``frameworks`` name ``framework`` (a published case's stack), else ``generic``."""
    for spec in cat.engines.values():
        if framework is not None and framework in spec.frameworks:
            return engine_for(cat, spec.id)
    return engine_for(cat, "generic")
