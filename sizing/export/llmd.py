"""Helm values for llm-d's ``llm-d-modelservice`` chart, one release per deployment of a plan (``aicap export --to llm-d``).

llm-d serves vLLM pods behind its inference scheduler (Gateway API Inference Extension). Each
deployment of the plan becomes one values document: the model (``modelArtifacts``, from Hugging Face),
``decode`` pods with the plan's replicas and tensor parallelism (``parallelism.tensor``; the chart
requests that many devices per pod and adds ``--tensor-parallel-size``, the model, ``--port`` and
``--served-model-name`` itself), the instance type (or GKE TPU slice) as ``nodeSelector``, and the rest of the plan's
vLLM settings as ``args`` (running-request cap, step budget, memory fraction, context length,
formats, prefix caching, speculative decoding), spelled by the vLLM flag map. The routing sidecar is
off and ``prefill.create`` false: aicap plans aggregated serving, not a prefill/decode split.

What the chart cannot express is left out and named: a replica that spans pipeline stages or
instances (the chart's single-node pods request ``tensor × data`` devices only), a device with no
chart accelerator type. Replicas are fixed at the plan's; llm-d's workload-variant autoscaler is not
configured.
"""

from __future__ import annotations

import math
import re

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import Deployment, runs_format
from aicap.sizing.core.dtypes import BYTES_PER_ELEMENT
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.specs.launch import FlagMap, KubernetesFacts, LlmdChart
from aicap.sizing.core.specs.model import GenericModel
from aicap.sizing.export.kubernetes import SHM, node_selector
from aicap.sizing.export.launch import Settings, launch
from aicap.sizing.perf import memory

#: Extra room on the model volume over the weights (tokenizer, configs, partial downloads) [-].
VOLUME_HEADROOM = 1.2


def _label(text: str) -> str:
    """A Kubernetes label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("-._") or "model"


def checkpoint_gib(cat: CatalogueLike, model_id: str) -> float:
    """GiB of the model's checkpoint as downloaded: its weights in the format released (or its checkpoint's bytes)."""
    model = cat.model(model_id)
    if isinstance(model, GenericModel):
        return model.published_params * BYTES_PER_ELEMENT[model.native_dtype] / memory.GIB
    stored = model.checkpoint_dtype or model.native_dtype
    dev = next((d for d in cat.devices.values() if runs_format(d, stored)), next(iter(cat.devices.values())))
    dep = Deployment(model, dev, cat.efficiency_for(dev), cat.runtime_for("generic", dev), weights_dtype=stored)
    return memory.total_weight_bytes(dep) / memory.GIB


def values(s: Settings, fmap: FlagMap, chart: LlmdChart, cat: CatalogueLike, facts: KubernetesFacts) -> tuple[dict[str, object], list[str]]:
    """The chart values of one deployment and the notes on what they leave out.

    The model volume holds ``⌈1.2·W⌉`` GiB, ``W`` the checkpoint (:func:`checkpoint_gib`). Raises
    :class:`InputError` when the chart cannot run the deployment at all (a replica over several
    pipeline stages or instances, a device without an accelerator type).
    """
    weights_gib = checkpoint_gib(cat, str(s.values["served_model_name"]))
    dev = cat.device(s.hardware)
    inst = cat.instance(s.instance_type)
    pp = int(str(s.values.get("pipeline_parallel", 1)))
    if pp > 1 or s.devices_per_replica > inst.devices:
        raise InputError(f"{s.name}: a replica of {s.devices_per_replica} devices over {pp} pipeline stage(s) on {s.instance_type} "
                         f"({inst.devices} devices per instance); the llm-d chart's pods hold tensor-parallel devices only: "
                         "export it with --to k8s (LeaderWorkerSet)")  # fmt: skip
    accelerator = chart.accelerator(dev.vendor, dev.kind)
    if accelerator is None:
        raise InputError(f"{s.name}: the llm-d chart has no accelerator type for {dev.id} ({dev.vendor} {dev.kind})")
    if s.values.get("attention_data_parallel"):  # the chart sets the tensor-parallel flag from parallelism.tensor itself
        raise InputError(f"{s.name}: data-parallel attention over {s.values['data_parallel']} groups is not spelled for the llm-d "
                         "chart (it sets --tensor-parallel-size from parallelism.tensor): export it with --to vllm or k8s")  # fmt: skip
    run = launch(s, fmap, omit=frozenset(chart.chart_managed_fields))
    args = run.argv[run.command_words :]
    notes = list(run.notes)
    repo, name = str(s.values["model"]), str(s.values["served_model_name"])
    port = run.port
    container: dict[str, object] = {
        "name": "vllm", "image": chart.image.name, "modelCommand": "vllmServe", "args": args,
        "ports": [{"containerPort": port, "name": "vllm", "protocol": "TCP"}], "mountModelVolume": True,
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
        "readinessProbe": {"httpGet": {"path": run.health_path, "port": port}, "periodSeconds": 5, "failureThreshold": 3},
    }  # fmt: skip
    doc: dict[str, object] = {
        "multinode": False,
        "modelArtifacts": {"uri": f"hf://{repo}", "name": name, "size": f"{max(1, math.ceil(VOLUME_HEADROOM * weights_gib))}Gi",
                           "authSecretName": "llm-d-hf-token",
                           "labels": {"llm-d.ai/inferenceServing": "true", "llm-d.ai/model": _label(name)}},
        "routing": {"servicePort": port, "proxy": {"enabled": False}},
        "accelerator": {"type": accelerator},
        "decode": {"create": True, "replicas": s.replicas, "parallelism": {"tensor": int(str(s.values["tensor_parallel"])), "data": 1},
                   "nodeSelector": node_selector(s, cat, facts), "containers": [container],
                   "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM}}]},
        "prefill": {"create": False},
    }  # fmt: skip
    notes.append(f"replicas fixed at the plan's {s.replicas}; llm-d's workload-variant autoscaler is not configured")
    return doc, notes


def pd_values(prefill: Settings, decode: Settings, fmap: FlagMap, chart: LlmdChart, cat: CatalogueLike,
              facts: KubernetesFacts) -> tuple[dict[str, object], list[str]]:  # fmt: skip
    """One release for a disaggregated workload's pools: ``decode`` and ``prefill`` pods behind llm-d's routing sidecar.

    The decode pods' vLLM listens behind the sidecar (``routing.proxy.targetPort``), which fetches each
    prompt's KV cache from a prefill pod over the connector; the prefill pods listen on the service port.
    """
    doc, notes = values(decode, fmap, chart, cat, facts)
    pre, pre_notes = values(prefill, fmap, chart, cat, facts)
    if pre["accelerator"] != doc["accelerator"]:
        raise InputError(f"{decode.workload}: prefill on {prefill.hardware} and decode on {decode.hardware} need two accelerator types; "
                         "the llm-d chart takes one per release")  # fmt: skip
    target = chart.proxy.target_port
    routing = doc["routing"]
    assert isinstance(routing, dict)
    doc["routing"] = {"servicePort": routing["servicePort"], "proxy": {"enabled": True, "connector": chart.proxy.connector,
                                                                       "targetPort": target}}  # fmt: skip
    dec = doc["decode"]
    assert isinstance(dec, dict)
    (container,) = dec["containers"]
    container["ports"] = [{"containerPort": target, "name": "vllm", "protocol": "TCP"}]
    container["readinessProbe"]["httpGet"]["port"] = target
    pre_pods = pre["decode"]
    assert isinstance(pre_pods, dict)
    doc["prefill"] = pre_pods
    return doc, [f"decode pool: {n}" for n in notes] + [f"prefill pool: {n}" for n in pre_notes]


def releases(settings: list[Settings]) -> tuple[list[tuple[Settings, Settings | None]], list[str]]:
    """The chart releases of a plan's deployments, and why some disaggregated workloads were left out.

    A release is ``(deployment, None)`` for an aggregated deployment and ``(decode, prefill)`` for a
    disaggregated workload's pools; a workload with more than one layout per role is left out.
    """
    out: list[tuple[Settings, Settings | None]] = []
    pools: dict[str, dict[str, list[Settings]]] = {}
    for s in settings:
        role = s.values.get("disaggregation_role")
        if isinstance(role, str):
            pools.setdefault(s.workload.rsplit(".", 1)[0], {}).setdefault(role, []).append(s)
        else:
            out.append((s, None))
    left: list[str] = []
    for base, roles in pools.items():
        pre, dec = roles.get("prefill", []), roles.get("decode", [])
        if len(pre) == 1 and len(dec) == 1:
            out.append((dec[0], pre[0]))
        else:
            left.append(f"{base}: {len(pre)} prefill and {len(dec)} decode layouts; the llm-d chart takes one of each per release "
                        "(size with --single-type, or export --to k8s)")  # fmt: skip
    return out, left
