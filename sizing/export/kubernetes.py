"""Kubernetes manifests for the deployments of a plan (``aicap export --to k8s|kserve``).

Per deployment (``<workload>-<index>``):

* a ``Deployment`` (``apps/v1``) of the plan's replicas, or a ``LeaderWorkerSet``
  (``leaderworkerset.x-k8s.io/v1``) where one replica spans instances (a leader and ``n − 1`` workers,
  one pod per instance). Each pod requests the device's extended resource (``nvidia.com/gpu``,
  ``amd.com/gpu``, ``google.com/tpu``, ``habana.ai/gaudi``) for the devices it holds, is pinned to the
  instance type with the well-known ``node.kubernetes.io/instance-type`` label (GKE TPU slices with
  ``cloud.google.com/gke-tpu-accelerator``), mounts a memory-backed ``/dev/shm`` and is probed on the
  engine's health path (resource names and label values are sourced data, ``KubernetesFacts``);
* a ``Service`` on the engine's port;
* a KEDA ``ScaledObject`` (``keda.sh/v1alpha1``) for engines whose queue gauges are known (vLLM):
  scaling on requests running plus waiting, with the threshold the plan's in-flight requests per
  replica at capacity, Little's law ``L = λ·W`` with ``λ`` the capacity per replica and
  ``W = TTFT + (O − 1)·TPOT`` at the planned percentile, between 1 and the plan's replicas;
* a ``ConfigMap`` for an engine's options file (TensorRT-LLM's ``--extra_llm_api_options``).

``kserve`` writes an ``InferenceService`` (``serving.kserve.io/v1beta1``) with the same container as
its predictor instead of the Deployment and Service. Apply-ready for a cluster whose nodes carry those
labels and device plugins; the manifests say in annotations what they assume.
"""

from __future__ import annotations

import math

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs.launch import KubernetesFacts
from aicap.sizing.export.launch import Launch, Settings

INSTANCE_LABEL = "node.kubernetes.io/instance-type"
TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
#: Prometheus gauges of requests running and waiting, per engine (only where known).
QUEUE_GAUGES = {"vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting")}
SHM = "2Gi"  # vLLM's Kubernetes guide mounts a 2 GiB memory-backed /dev/shm for tensor-parallel workers
OPTIONS_DIR = "/etc/aicap"


def node_selector(s: Settings, cat: CatalogueLike, facts: KubernetesFacts) -> dict[str, str]:
    """The node label a deployment's pods select: the GKE TPU accelerator for TPU slices, else the instance type."""
    tpu = facts.label(TPU_LABEL)
    value = tpu.values.get(cat.device(s.hardware).id) if tpu is not None and tpu.values else None
    return {TPU_LABEL: value} if isinstance(value, str) else {INSTANCE_LABEL: s.instance_type}


def _pod(launch: Launch, cat: CatalogueLike, facts: KubernetesFacts, devices: int) -> dict[str, object]:
    """The pod template of one pod holding ``devices`` devices."""
    s = launch.settings
    dev = cat.device(s.hardware)
    resource = facts.resource(dev.vendor, dev.kind)
    limits: dict[str, object] = {resource: devices} if resource else {}
    selector = node_selector(s, cat, facts)
    argv = list(launch.argv)
    mounts: list[dict[str, object]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, object]] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM}}]
    if launch.options_file is not None and launch.options_flag is not None:
        argv += [launch.options_flag, f"{OPTIONS_DIR}/{s.name}.yaml"]
        mounts.append({"name": "options", "mountPath": OPTIONS_DIR, "readOnly": True})
        volumes.append({"name": "options", "configMap": {"name": f"{s.name}-options"}})
    container: dict[str, object] = {
        "name": "engine", "image": launch.image, "command": argv, "ports": [{"name": "http", "containerPort": launch.port}],
        "readinessProbe": {"httpGet": {"path": launch.health_path, "port": launch.port}, "initialDelaySeconds": 60, "periodSeconds": 10},
        "volumeMounts": mounts,
    }  # fmt: skip
    if limits:
        container["resources"] = {"limits": limits, "requests": dict(limits)}
    return {"metadata": {"labels": {"app": s.name}}, "spec": {"nodeSelector": selector, "containers": [container], "volumes": volumes}}


def _in_flight(plan: Plan, workload: str, index: int, mean_output: float) -> float:
    """Requests one replica holds at capacity: ``λ·(TTFT + (O − 1)·TPOT)`` (Little's law), at least 1."""
    pw = next(w for w in plan.workloads if w.name == workload)
    d = pw.deployments[index]
    rate = d.capacity_requests_per_s / d.replicas
    seconds = (d.ttft_ms + max(mean_output - 1.0, 0.0) * (d.tpot_ms or 0.0)) / 1e3
    return max(rate * seconds, 1.0)


def manifests(launches: list[Launch], plan: Plan, cat: CatalogueLike, facts: KubernetesFacts, *,
              kserve: bool = False) -> list[list[dict[str, object]]]:  # fmt: skip
    """Kubernetes documents for each launch (one list per deployment, in plan order); see the module docstring.

    ``facts`` are the device resource names and node labels (``hardware_db/export/kubernetes.yaml``).
    """
    inputs = {w.name: w for w in plan.inputs.workloads}
    out: list[list[dict[str, object]]] = []
    for launch in launches:
        s = launch.settings
        inst = cat.instance(s.instance_type)
        per_pod = min(s.devices_per_replica, inst.devices)
        pods = math.ceil(s.devices_per_replica / inst.devices)
        notes = {"aicap/instance-type": s.instance_type, "aicap/devices-per-replica": str(s.devices_per_replica),
                 "aicap/engine": s.engine}  # fmt: skip
        meta = {"name": s.name, "labels": {"app": s.name, "aicap/workload": s.workload}, "annotations": notes}
        docs: list[dict[str, object]] = []
        if launch.options_file is not None:
            import yaml

            text = yaml.safe_dump(launch.options_file, sort_keys=True)
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{s.name}-options"},
                         "data": {f"{s.name}.yaml": text}})  # fmt: skip
        template = _pod(launch, cat, facts, per_pod)
        if kserve:
            spec = template["spec"]
            assert isinstance(spec, dict)
            predictor: dict[str, object] = {"minReplicas": s.replicas, "maxReplicas": s.replicas, **spec}
            docs.append({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": meta,
                         "spec": {"predictor": predictor}})  # fmt: skip
            out.append(docs)
            continue
        if pods > 1:
            notes["aicap/multi-node"] = (f"one replica spans {pods} instances: start the engine's multi-node runtime (e.g. a Ray "
                                         "cluster for vLLM) from the leader and workers before serving")  # fmt: skip
            docs.append({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta,
                         "spec": {"replicas": s.replicas, "leaderWorkerTemplate": {"size": pods, "leaderTemplate": template,
                                                                                   "workerTemplate": template}}})  # fmt: skip
        else:
            docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                         "spec": {"replicas": s.replicas, "selector": {"matchLabels": {"app": s.name}}, "template": template}})  # fmt: skip
        port = {"name": "http", "port": launch.port, "targetPort": launch.port}
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s.name, "labels": {"app": s.name}},
                     "spec": {"selector": {"app": s.name}, "ports": [port]}})  # fmt: skip
        gauges = QUEUE_GAUGES.get(s.engine)
        if gauges is not None:
            threshold = _in_flight(plan, s.workload, s.index, inputs[s.workload].mean_output)
            query = " + ".join(f'sum({g}{{pod=~"{s.name}-.*"}})' for g in gauges)
            trigger = {"serverAddress": "http://prometheus:9090", "query": query, "threshold": f"{threshold:.3g}"}
            docs.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                         "metadata": {"name": s.name, "annotations": {"aicap/in-flight-per-replica-at-capacity": f"{threshold:.3g}"}},
                         "spec": {"scaleTargetRef": {"name": s.name, **({"apiVersion": "leaderworkerset.x-k8s.io/v1",
                                                                          "kind": "LeaderWorkerSet"} if pods > 1 else {})},
                                  "minReplicaCount": 1, "maxReplicaCount": s.replicas,
                                  "triggers": [{"type": "prometheus", "metadata": trigger}]}})  # fmt: skip
        out.append(docs)
    return out
