"""``aicap export``: launch scripts and manifests of a plan, golden per target, flags and manifests checked.

Regenerate the golden exports after an intended change with::

    AICAP_UPDATE_GOLDEN=1 pytest tests/cli/test_export_cli.py
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from aicap.hardware_db.launch import LAUNCH_ENGINES, flag_map

HERE = Path(__file__).with_name("golden")
PLAN = HERE / "plans" / "chat-service.json"
TARGETS = ("vllm", "sglang", "trtllm", "k8s", "kserve")
K8S_VERSION = "1.33"


@pytest.mark.parametrize("target", TARGETS)
def test_export_matches_golden(aicap, target: str) -> None:
    r = aicap("export", str(PLAN), "--to", target)
    assert r.code == 0, r.stderr
    golden = HERE / "export" / f"chat-service.{'sh' if target in LAUNCH_ENGINES else 'yaml'}.{target}"
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"export to {target} changed; regenerate with AICAP_UPDATE_GOLDEN=1 if intended"


def _argv(script: str) -> list[list[str]]:
    """The commands of an exported script (continuations joined; comments, heredocs and shell lines dropped)."""
    text = script.replace("\\\n", " ")
    out, skip = [], False
    for line in text.splitlines():
        if skip:
            skip = line != "EOF"
            continue
        if line.startswith("cat >"):
            skip = True
        elif line and not line.startswith(("#", "set ")):
            out.append(shlex.split(line))
    return out


@pytest.mark.parametrize("engine", LAUNCH_ENGINES)
def test_every_emitted_flag_is_a_documented_flag_of_the_engine(aicap, engine: str) -> None:
    fmap = flag_map(engine)
    known = {f.flag for f in fmap.flags if not f.positional} | ({fmap.extra_options_file.flag} if fmap.extra_options_file else set())
    cmds = _argv(aicap("export", str(PLAN), "--to", engine).stdout)
    assert cmds
    for argv in cmds:
        assert argv[: len(fmap.command)] == fmap.command
        flags = [a for a in argv if a.startswith("--")]
        assert flags and set(flags) <= known, set(flags) - known
    plan = yaml.safe_load(PLAN.read_text())
    d = plan["workloads"][0]["deployments"][0]
    first = cmds[0]
    tp_flag = next(f.flag for f in fmap.flags if f.field == "tensor_parallel")
    seqs_flag = next(f.flag for f in fmap.flags if f.field == "max_running_requests")
    assert first[first.index(tp_flag) + 1] == str(d["tp"]) and first[first.index(seqs_flag) + 1] == str(d["max_running"])


STATIC = [p for p in sorted((HERE / "plans").glob("*.json")) if "periods" not in yaml.safe_load(p.read_text())]


@pytest.mark.parametrize("golden_plan", STATIC, ids=lambda p: p.stem)
def test_manifests_validate_against_the_kubernetes_schemas(aicap, golden_plan: Path) -> None:
    r = aicap("export", str(golden_plan), "--to", "k8s")
    assert r.code == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    plan = yaml.safe_load(golden_plan.read_text())
    assert sum(1 for d in docs if d["kind"] in ("Deployment", "LeaderWorkerSet")) == sum(len(w["deployments"]) for w in plan["workloads"])
    for doc in docs:
        if doc["kind"] in ("Deployment", "Service", "ConfigMap"):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        else:  # custom resources: kubernetes-validate ships no schema for them
            assert doc["apiVersion"] in ("leaderworkerset.x-k8s.io/v1", "keda.sh/v1alpha1"), doc["apiVersion"]


def test_a_replica_spanning_two_instances_is_a_leader_worker_set_of_two_pods(aicap, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    r = aicap("size", "--model", "deepseek-v3", "--rate", "0.5", "--hardware", "h100-sxm", "--precision", "fp8", "--cloud", "aws",
              "--ttft-ms", "5000", "-o", str(plan), "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    docs = list(yaml.safe_load_all(aicap("export", str(plan), "--to", "k8s").stdout))
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"


def test_the_autoscaler_threshold_is_the_in_flight_requests_at_capacity(aicap) -> None:
    docs = list(yaml.safe_load_all(aicap("export", str(PLAN), "--to", "k8s").stdout))
    plan = yaml.safe_load(PLAN.read_text())
    w, inputs = plan["workloads"][0], plan["inputs"]["workloads"][0]
    d = w["deployments"][0]
    out = inputs["output_tokens"] if isinstance(inputs["output_tokens"], int) else None
    scaled = next(x for x in docs if x["kind"] == "ScaledObject" and x["metadata"]["name"] == f"{w['name']}-0")
    threshold = float(scaled["spec"]["triggers"][0]["metadata"]["threshold"])
    if out is not None:
        want = d["capacity_requests_per_s"] / d["replicas"] * (d["ttft_ms"] + (out - 1) * d["tpot_ms"]) / 1e3
        assert threshold == pytest.approx(max(want, 1.0), rel=0.01)
    assert scaled["spec"]["maxReplicaCount"] == d["replicas"]


def test_output_dir_writes_one_file_per_deployment(aicap, tmp_path: Path) -> None:
    r = aicap("export", str(PLAN), "--to", "vllm", "--output-dir", str(tmp_path / "out"))
    assert r.code == 0 and r.stdout == ""
    plan = yaml.safe_load(PLAN.read_text())
    names = sorted(f"{w['name']}-{k}.sh" for w in plan["workloads"] for k in range(len(w["deployments"])))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names


def test_export_errors_are_one_line_exit_2(aicap, tmp_path: Path) -> None:
    fleet = Path(__file__).resolve().parents[2] / "examples" / "chat-service.yaml"
    r = aicap("export", str(fleet), "--to", "vllm")
    assert r.code == 2 and "a fleet file, not a plan" in r.stderr
    r = aicap("export", str(PLAN), "--to", "tgi")
    assert r.code == 2 and "tgi" in r.stderr
    r = aicap("export", str(tmp_path / "missing.json"), "--to", "k8s")
    assert r.code == 2 and "Traceback" not in r.stderr


def test_tpu_pods_request_tpus_and_select_the_gke_slice_label(aicap) -> None:
    docs = list(yaml.safe_load_all(aicap("export", str(HERE / "plans" / "tpu-only.json"), "--to", "k8s").stdout))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    assert pods
    for pod in pods:
        assert set(pod["nodeSelector"]) == {"cloud.google.com/gke-tpu-accelerator"}
        assert pod["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"].startswith("tpu-v")
        assert set(pod["containers"][0]["resources"]["limits"]) == {"google.com/tpu"}
