"""Kubernetes manifests for the deployments of a plan (``aicap export --to k8s|kserve``).

Per deployment (``<workload>-<index>``):

* a ``Deployment`` (``apps/v1``) of the plan's replicas, or a ``LeaderWorkerSet``
  (``leaderworkerset.x-k8s.io/v1``) where one replica spans instances (a leader and ``n − 1`` workers,
  one pod per instance; the leader starts the engine's cluster and serves, the workers join it, as
  ``FlagMap.multi_node`` says; the Service selects the leader). Each pod requests the device's extended resource (``nvidia.com/gpu``,
  ``amd.com/gpu``, ``google.com/tpu``, ``habana.ai/gaudi``) for the devices it holds, is pinned to the
  instance type with the well-known ``node.kubernetes.io/instance-type`` label (GKE TPU slices with
  ``cloud.google.com/gke-tpu-accelerator`` and, where recorded for the slice's chip count,
  ``cloud.google.com/gke-tpu-topology``), mounts a memory-backed ``/dev/shm`` and is probed on the
  engine's health path (resource names and label values are sourced data, ``KubernetesFacts``), and reads a gated
  checkpoint's Hugging Face token from the Secret ``KubernetesFacts.model_token`` names (``hf-token-secret``, key
  ``token``; optional, so an open checkpoint's pod starts without it);
* a ``Service`` on the engine's port;
* a KEDA ``ScaledObject`` (``keda.sh/v1alpha1``) for engines whose queue gauges are known (vLLM, SGLang:
  ``FlagMap.queue_gauges``):
  scaling on requests running plus waiting, with the threshold the plan's in-flight requests per
  replica at capacity, Little's law ``L = λ·W`` with ``λ`` the capacity per replica and
  ``W = TTFT + (O − 1)·TPOT`` at the planned percentile, between 1 and the plan's replicas;
* a ``ConfigMap`` for an engine's options file (TensorRT-LLM's ``--extra_llm_api_options``).

``kserve`` writes an ``InferenceService`` (``serving.kserve.io/v1beta1``) with the same container as
its predictor instead of the Deployment and Service. Apply-ready for a cluster whose nodes carry those
labels and device plugins; the manifests say in annotations what they assume (``aicap/notes``: the launch's
notes, as the launch script prints them, e.g. a placeholder checkpoint to replace).
"""

from __future__ import annotations

import copy
import math
import shlex

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs.launch import KubernetesFacts
from aicap.sizing.export.launch import Launch, Settings

INSTANCE_LABEL = "node.kubernetes.io/instance-type"
TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
SHM = "2Gi"  # vLLM's Kubernetes guide mounts a 2 GiB memory-backed /dev/shm for tensor-parallel workers
OPTIONS_DIR = "/etc/aicap"


def node_selector(s: Settings, cat: CatalogueLike, facts: KubernetesFacts) -> dict[str, str]:
    """The node labels a deployment's pods select: the instance type, or for a GKE TPU slice its accelerator and topology.

    The topology is the node pool's: the recorded one whose chip count (the product of its dimensions)
    is the instance's, or the replica's where a replica spans instances (a multi-host slice): ``2x4``
    for 8 v6e chips. None is set where no recorded topology has that count.
    """
    dev = cat.device(s.hardware)
    tpu = facts.label(TPU_LABEL)
    value = tpu.values.get(dev.id) if tpu is not None and tpu.values else None
    if not isinstance(value, str):
        return {INSTANCE_LABEL: s.instance_type}
    out = {TPU_LABEL: value}
    topo = facts.label(TOPOLOGY_LABEL)
    shapes = topo.values.get(dev.id) if topo is not None and topo.values else None
    for shape in shapes if isinstance(shapes, list) else []:
        if math.prod(int(x) for x in shape.split("x") if x.isdigit()) == max(s.devices_per_replica, cat.instance(s.instance_type).devices):
            out[TOPOLOGY_LABEL] = shape
            break
    return out


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
    if (token := facts.model_token) is not None:  # a gated checkpoint's token from the user's Secret, if it exists (optional)
        container["env"] = [{"name": token.env, "valueFrom": {"secretKeyRef": {"name": token.secret, "key": token.key, "optional": True}}}]
    if limits:
        container["resources"] = {"limits": limits, "requests": dict(limits)}
    return {"metadata": {"labels": {"app": s.name}}, "spec": {"nodeSelector": selector, "containers": [container], "volumes": volumes}}


def _multi_node(launch: Launch, template: dict[str, object], pods: int,
                notes: dict[str, str]) -> tuple[dict[str, object], dict[str, object]]:  # fmt: skip
    """Leader and worker pod templates of a replica over ``pods`` pods.

    With the engine's multi-node start (``FlagMap.multi_node``, vLLM's Ray cluster) the leader runs its
    prefix then the serving command and the workers join it (no HTTP, so no readiness probe); without
    one, both run the serving command and an annotation says what is missing.
    """
    mn = launch.multi_node
    leader = copy.deepcopy(template)
    worker = copy.deepcopy(template)
    lmeta, lspec = leader["metadata"], leader["spec"]
    wspec = worker["spec"]
    assert isinstance(lmeta, dict) and isinstance(lspec, dict) and isinstance(wspec, dict)
    lmeta["labels"] = {**lmeta["labels"], "role": "leader"}
    spread = launch.spread()
    if spread is not None:  # every pod runs the serving command with its own flags (LWS's index and the leader's address)
        lead, work = lspec["containers"][0], wspec["containers"][0]
        local = launch.groups() // pods
        head = spread.flags(rank=0, nodes=pods, local=local, start=0, address="$(LWS_LEADER_ADDRESS)")
        # $(LWS_WORKER_INDEX) is expanded by Kubernetes; $$(( )) reaches the shell as $(( )), its arithmetic on LWS's variable
        tail = spread.flags(rank="$(LWS_WORKER_INDEX)", nodes=pods, local=local, start=f"$$((LWS_WORKER_INDEX * {local}))",
                            address="$(LWS_LEADER_ADDRESS)")  # fmt: skip
        lead["command"] = ["sh", "-c", f"exec {shlex.join(lead['command'])} {head}"]
        work["command"] = ["sh", "-c", f"exec {shlex.join(work['command'])} {tail}"]
        work.pop("readinessProbe", None)
        work.pop("ports", None)
        notes["aicap/multi-node"] = (f"one replica spans {pods} instances: each pod runs the engine with its node's flags; the leader "
                                     "serves HTTP")  # fmt: skip
        return leader, worker
    assert mn is not None, "a spanning replica without a multi-node start is refused by check_spread"
    lead, work = lspec["containers"][0], wspec["containers"][0]
    lead["command"] = ["sh", "-c", f"{mn.leader}; {shlex.join(lead['command'])}"]  # the serving command, options file included
    work["command"] = ["sh", "-c", mn.worker]
    work.pop("readinessProbe", None)
    work.pop("ports", None)
    notes["aicap/multi-node"] = f"one replica spans {pods} instances: the leader starts the engine's cluster, workers join it"
    return leader, worker


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
        notes = {"aicap/instance-type": s.instance_type, "aicap/instance-devices": str(inst.devices),
                 "aicap/devices-per-replica": str(s.devices_per_replica), "aicap/engine": s.engine}  # fmt: skip
        role = s.values.get("disaggregation_role")
        if isinstance(role, str):
            notes["aicap/disaggregation"] = (f"the {role} pool of a disaggregated workload: a prefill/decode router sends each request "
                                             "to a prefill then a decode replica (llm-d's routing sidecar: export --to llm-d)")  # fmt: skip
        if launch.notes:  # what the launch script prints as '# note:' lines travels with the manifest
            notes["aicap/notes"] = "\n".join(launch.notes)
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
        selector: dict[str, str] = {"app": s.name}
        if pods > 1:
            leader, worker = _multi_node(launch, template, pods, notes)
            selector["role"] = "leader"
            docs.append({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta,
                         "spec": {"replicas": s.replicas, "leaderWorkerTemplate": {"size": pods,
                                  "restartPolicy": "RecreateGroupOnPodRestart", "leaderTemplate": leader,
                                  "workerTemplate": worker}}})  # fmt: skip
        else:
            docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                         "spec": {"replicas": s.replicas, "selector": {"matchLabels": {"app": s.name}}, "template": template}})  # fmt: skip
        port = {"name": "http", "port": launch.port, "targetPort": launch.port}
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s.name, "labels": {"app": s.name}},
                     "spec": {"selector": selector, "ports": [port]}})  # fmt: skip
        gauges = None if launch.queue_gauges is None else (launch.queue_gauges.running, launch.queue_gauges.waiting)
        if gauges is None:
            notes["aicap/autoscaler"] = (f"none: {s.engine} publishes no gauge of running and waiting requests that aicap has a "
                                         "source for; replicas stay at the plan's")  # fmt: skip
        if gauges is not None:
            threshold = _in_flight(plan, s.workload, s.index, inputs[s.workload].mean_output)
            query = " + ".join(f'sum({g}{{pod=~"{s.name}-.*"}})' for g in gauges)
            trigger = {"serverAddress": "http://prometheus:9090", "query": query, "threshold": f"{threshold:.3g}"}
            docs.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                         "metadata": {"name": s.name, "annotations": {"aicap/in-flight-per-replica-at-capacity": f"{threshold:.3g}"}},
                         "spec": {"scaleTargetRef": {"name": s.name, **({"apiVersion": "leaderworkerset.x-k8s.io/v1",
                                                                          "kind": "LeaderWorkerSet"} if pods > 1 else {})},
                                  "minReplicaCount": _floor(plan, s.workload, s.replicas, inputs[s.workload].min_replicas),
                                  "maxReplicaCount": s.replicas,
                                  "triggers": [{"type": "prometheus", "metadata": trigger}]}})  # fmt: skip
        out.append(docs)
    return out


def _floor(plan: Plan, workload: str, replicas: int, min_replicas: int) -> int:
    """The autoscaler's floor for one deployment: its share of the workload's ``min_replicas``, at least one.

    ``⌈m·r/R⌉`` for a floor ``m`` over the workload's ``R`` replicas, ``r`` of them here (at most ``r``): the shares
    add up to at least ``m``, so scaling in never goes below the availability floor the plan is sized and costed for
    (``minReplicaCount: 1`` let a ``min_replicas: 3`` workload scale to one replica).
    """
    total = sum(d.replicas for w in plan.workloads if w.name == workload for d in w.deployments)
    return max(1, min(replicas, -(-min_replicas * replicas // max(total, 1))))
