"""Published training runs as aicap inputs: each case's model, device, fabric and :class:`TrainSetup`.

Cases live in ``hardware_db/validation/training_cases.yaml`` (copied with sources from the shared
validation set), with architectures and devices outside the catalogue in ``training_specs.yaml``.
A case's ``layout`` is read as the source states it; what a source leaves unstated takes the
framework default named in :func:`setup_of` (and a case's own ``setup`` key, read from its recipe
file, wins over both).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.documents import load_yaml
from aicap.sizing.core.specs import DeviceSpec, ModelSpec
from aicap.sizing.core.specs.model import AnyModel
from aicap.sizing.train.fabric import best_instance, fabric_of
from aicap.sizing.train.setup import Method, Precision, TrainSetup
from aicap.sizing.train.step import Fabric

_MODEL: TypeAdapter[AnyModel] = TypeAdapter(ModelSpec)
#: Catalogue ids of models the shared cases spell differently.
MODEL_ALIASES = {"gpt3-175b": "gpt-3-175b"}
TASK_METHOD: dict[str, Method] = {"pretrain": "full", "finetune_full": "full", "lora": "lora", "qlora": "qlora"}


@dataclass(frozen=True)
class TrainingCase:
    """One published measurement, resolved to aicap's inputs."""

    id: str
    source: str
    task: str
    model: AnyModel
    device: DeviceSpec
    fabric: Fabric
    setup: TrainSetup
    devices: int | None
    tokens: float | None
    metrics: dict[str, float | bool]


def _read(name: str) -> dict[str, Any]:
    node = resources.files("aicap.hardware_db").joinpath(f"validation/{name}")
    raw = load_yaml(Path(f"hardware_db/validation/{name}"), node.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


@lru_cache(maxsize=1)
def _specs() -> tuple[dict[str, AnyModel], dict[str, DeviceSpec], dict[str, float]]:
    raw = _read("training_specs.yaml")
    models = {m["id"]: _MODEL.validate_python(m) for m in raw["models"]}
    devices = {d["id"]: DeviceSpec.model_validate(d) for d in raw["devices"]}
    networks = {k: float(v["gbs_per_device"]) for k, v in raw.get("networks", {}).items()}
    return models, devices, networks


def _precision(text: str | None) -> Precision:
    t = (text or "bf16").lower()
    if "fp8" in t:
        return "fp8"
    if "fp16" in t and "bf16" not in t:
        return "fp16"
    return "bf16"


def setup_of(raw: dict[str, Any]) -> TrainSetup:
    """The :class:`TrainSetup` a case describes.

    Defaults for what a source leaves unstated: ``dp = devices / (tp · pp · cp)``; ZeRO-1 (Megatron's
    distributed optimizer, DeepSpeed's BF16 optimizer) unless the source names FSDP or a stage;
    recomputation ``none``; ``sequence_parallel`` on with ``tp > 1`` (NeMo/Megatron default);
    global batch of ``global_batch_sequences · seq_len`` when only sequences are given.
    """
    lay: dict[str, Any] = dict(raw.get("layout") or {})
    devices = raw.get("devices") or 1
    tp, pp, cp = int(lay.get("tp") or 1), int(lay.get("pp") or 1), int(lay.get("cp") or 1)
    dp = int(lay.get("dp") or max(1, devices // (tp * pp * cp)))
    fsdp_text = str(lay.get("fsdp") or "").lower()
    fsdp = "none"
    if fsdp_text:
        fsdp = "hybrid" if "hybrid" in fsdp_text else "full"
    seq = int(lay.get("seq_len") or 2048)
    gbt = lay.get("global_batch_tokens")
    if gbt is None and lay.get("global_batch_sequences"):
        gbt = int(lay["global_batch_sequences"]) * seq
    fields: dict[str, Any] = {
        "tp": tp, "pp": pp, "cp": cp, "dp": dp, "ep": int(lay.get("ep") or 1),
        "virtual_pipeline": int(lay.get("virtual_pipeline") or 1),
        "zero": int(lay["zero_stage"]) if lay.get("zero_stage") is not None else 1,
        "fsdp": fsdp,
        "recompute": lay.get("recompute") or "none",
        "micro_batch": int(lay.get("micro_batch") or 1),
        "seq_len": seq,
        "precision": _precision(raw.get("precision")),
        "method": TASK_METHOD[raw["task"]],
    }  # fmt: skip
    if lay.get("sequence_parallel") is not None:
        fields["sequence_parallel"] = bool(lay["sequence_parallel"])
    if gbt is not None and int(gbt) >= dp * fields["micro_batch"] * seq:
        fields["global_batch_tokens"] = int(gbt)
    if fields["ep"] > 1 and (dp * cp) % fields["ep"]:
        fields["ep"] = 1
    fields.update(raw.get("setup") or {})
    return TrainSetup.model_validate(fields)


def load_cases(cat: CatalogueLike) -> list[TrainingCase]:
    """All training cases resolved against ``cat`` and ``training_specs.yaml``."""
    models, devices, networks = _specs()
    out = []
    for raw in _read("training_cases.yaml")["cases"]:
        ref = raw["model"] if isinstance(raw["model"], str) else raw["model"]["name"]
        ref = MODEL_ALIASES.get(ref, ref)
        model = models[ref] if ref in models else cat.model(ref)
        hw = raw["hardware"]
        device = devices[hw] if hw in devices else cat.device(hw)
        fabric = fabric_of(device, best_instance(device, cat.instances.values()))
        if hw in networks:
            fabric = Fabric(fabric.link_gbs, fabric.domain, 8, networks[hw])
        out.append(TrainingCase(
            id=raw["id"], source=raw["source_key"], task=raw["task"], model=model, device=device, fabric=fabric,
            setup=setup_of(raw), devices=raw.get("devices"), tokens=raw.get("tokens"),
            metrics={k: v for k, v in (raw.get("metrics") or {}).items() if v is not None},
        ))  # fmt: skip
    return out
