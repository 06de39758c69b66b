"""``aicap export``: launch scripts and manifests of a plan, golden per target, flags and manifests checked.

Regenerate the golden exports after an intended change with::

    AICAP_UPDATE_GOLDEN=1 pytest tests/cli/test_export_cli.py
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from aicap.hardware_db.launch import LAUNCH_ENGINES, flag_map

HERE = Path(__file__).with_name("golden")
PLAN = HERE / "plans" / "chat-service.json"
TARGETS = ("vllm", "sglang", "trtllm", "k8s", "kserve", "llm-d")
K8S_VERSION = "1.33"


@pytest.mark.parametrize("target", TARGETS)
def test_export_matches_golden(aicap, target: str) -> None:
    r = aicap("export", str(PLAN), "--to", target)
    assert r.code == 0, r.stderr
    golden = HERE / "export" / f"chat-service.{'sh' if target in LAUNCH_ENGINES else 'yaml'}.{target}"
    if os.environ.get("AICAP_UPDATE_GOLDEN"):
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"export to {target} changed; regenerate with AICAP_UPDATE_GOLDEN=1 if intended"


SHELL_LINES = ("#", "set ", "machine=", "case ", "*)", "pids=", "trap ", "while ", "  ", "done")  # the script's own lines, not commands


def _argv(script: str) -> list[list[str]]:
    """The commands of an exported script (continuations joined; comments, heredocs, the machine dispatch, ``wait`` and each
    command's device variable and ``&`` dropped)."""
    text = script.replace("\\\n", " ")
    out, skip = [], False
    for line in text.splitlines():
        if skip:
            skip = line != "EOF"
            continue
        label = line.endswith(")") and " " not in line  # a machine's case label
        if line.startswith("cat >"):
            skip = True
        elif line and not line.startswith(SHELL_LINES) and line not in ("wait", ";;", "esac") and not label:
            words = shlex.split(line.removesuffix(" &"))
            out.append(words[1:] if "=" in words[0] else words)  # CUDA_VISIBLE_DEVICES=0,1 vllm serve ...
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


# DeepSeek-V3 in fp8 on H100: a replica spans two p5 instances (a LeaderWorkerSet).
DEEPSEEK_2X8 = ("--model", "deepseek-v3", "--rate", "0.5", "--hardware", "h100-sxm", "--precision", "fp8", "--cloud", "aws",
                "--ttft-ms", "5000")  # fmt: skip


def _tp_plan(aicap, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Llama-3.1-405B in bf16 (810 GB of weights) over two 8-GPU H100 instances as TP8·PP2, sized on vLLM, whose profile
    records a start over several machines (a Ray cluster); a dense model, so no data-parallel attention competes."""
    plan = tmp_path / "tp.json"
    r = aicap("size", "--model", "llama-3.1-405b", "--rate", "0.5", "--hardware", "h100-sxm", "--precision", "bf16", "--cloud", "aws",
              "--ttft-ms", "5000", "--engine", "vllm", "-o", str(plan), "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    doc = json.loads(plan.read_text())
    for w in doc["workloads"]:
        assert [(d["tp"], d["pp"], d["dp_attention"], d["instance_type"]) for d in w["deployments"]] == [(8, 2, 1, "p5.48xlarge")]
    return plan


def test_an_engine_without_a_multi_node_start_is_not_sized_over_instances(aicap) -> None:
    # TGI's profile records no start of a replica over machines: a model that outgrows one instance is infeasible on it,
    # and the message names the engines that span, rather than a plan its export would refuse.
    r = aicap("size", *DEEPSEEK_2X8, "--engine", "tgi", "-f", "json")
    assert r.code == 3 and r.stdout == ""
    assert "inside one instance (TGI's profile records no start of a replica over several machines" in r.stderr
    assert "engines that span instances: sglang, vllm" in r.stderr
    ok = aicap("size", *DEEPSEEK_2X8, "--engine", "sglang", "-f", "json")
    assert ok.code == 0 and json.loads(ok.stdout)["totals"]["instances"] == 2


def _k8s(aicap, tmp_path: Path, *size_args: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    """Size a one-workload plan with ``size_args`` and export it to Kubernetes manifests."""
    plan = tmp_path / "plan.json"
    r = aicap("size", *size_args, "-o", str(plan), "-f", "json")
    assert r.code == 0, r.stderr
    return list(yaml.safe_load_all(aicap("export", str(plan), "--to", "k8s").stdout))


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
    docs = list(yaml.safe_load_all(aicap("export", str(_tp_plan(aicap, tmp_path)), "--to", "k8s").stdout))
    lws = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"
    # vLLM's multi-node start: the leader forms the Ray cluster then serves, the worker joins it.
    lead = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    leader_cmd, worker_cmd = lead["spec"]["containers"][0]["command"], pod["containers"][0]["command"]
    assert leader_cmd[:2] == ["sh", "-c"]
    assert "multi-node-serving.sh leader --ray_cluster_size=$(LWS_GROUP_SIZE); vllm serve" in leader_cmd[2]
    assert "--tensor-parallel-size 8" in leader_cmd[2] and "--pipeline-parallel-size 2" in leader_cmd[2]
    assert "worker --ray_address=$(LWS_LEADER_ADDRESS)" in worker_cmd[2] and "readinessProbe" not in pod["containers"][0]
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"] == {"app": lws["metadata"]["name"], "role": "leader"}
    assert lead["metadata"]["labels"]["role"] == "leader"
    # every pod of a gated checkpoint (meta-llama) reads its token from the Secret vLLM's guide creates, if there is one
    token = {"name": "HUGGING_FACE_HUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token-secret", "key": "token", "optional": True}}}
    assert lead["spec"]["containers"][0]["env"] == [token] and pod["containers"][0]["env"] == [token]


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


def test_output_dir_writes_one_script_per_machine(aicap, tmp_path: Path) -> None:
    r = aicap("export", str(PLAN), "--to", "vllm", "--output-dir", str(tmp_path / "out"))
    assert r.code == 0 and r.stdout == ""
    plan = yaml.safe_load(PLAN.read_text())
    names = sorted(f"{i['instance_type']}-{k}.sh" for i in plan["instances"] for k in range(1, i["count"] + 1))
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".sh") == names
    assert json.loads((tmp_path / "out" / ".aicap-export.json").read_text())["files"] == sorted(names)
    for p in (tmp_path / "out").glob("*.sh"):
        text = p.read_text()
        assert text.startswith("#!/bin/sh\n") and "trap 'kill $pids" in text and text.rstrip().endswith("done")


def test_the_first_replica_to_fail_ends_the_script_and_stops_the_others(aicap, tmp_path: Path) -> None:
    """The script waited on its replicas in turn: with the first healthy and a later one failed, it blocked on the first."""
    import shutil
    import subprocess

    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    script = aicap("export", str(PLAN), "--to", "vllm").stdout
    tail = script[script.index("while :; do") : script.index("done\n;;") + 5]
    marker = tmp_path / "healthy.pid"
    test = tmp_path / "t.sh"
    test.write_text(f"set -eu\npids=\"\"\ntrap 'kill $pids 2>/dev/null || true' INT TERM EXIT\nsleep 60 &\npids=\"$pids $!\"\n"
                    f"echo $! > {marker}\nsh -c 'sleep 0.3; exit 7' &\npids=\"$pids $!\"\n{tail}")  # fmt: skip
    r = subprocess.run([sh, str(test)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 7 and "exited with status 7: stopping the others" in r.stderr
    stat = Path(f"/proc/{int(marker.read_text())}/stat")

    def stopped() -> bool:  # the trap stopped it: gone, or not yet reaped
        try:
            return stat.read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    deadline = time.monotonic() + 5.0  # the signal is delivered, not yet acted on, on a busy machine
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stopped()


def test_an_export_into_an_earlier_export_s_folder_leaves_none_of_the_old_plan(aicap, tmp_path: Path) -> None:
    # A second export into the same folder left the first plan's 21 scripts beside its own: 'sh *.sh' on each
    # machine started the old fleet too. What an earlier export wrote is removed; other files are named.
    out = tmp_path / "out"
    assert aicap("export", str(PLAN), "--to", "vllm", "--output-dir", str(out)).code == 0
    first = {p.name for p in out.glob("*.sh")}
    (out / "mine.txt").write_text("kept")
    small = tmp_path / "small.json"
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "1", "--hardware", "l4", "--cloud", "gcp", "-o", str(small)).code == 0
    r = aicap("export", str(small), "--to", "vllm", "--output-dir", str(out))
    second = {p.name for p in out.glob("*.sh")}
    assert r.code == 0 and len(second) == 1 and not (first - second) & {p.name for p in out.iterdir()}
    assert f"removed {len(first - second)} file(s) an earlier export wrote to {out}" in r.stderr
    assert (out / "mine.txt").read_text() == "kept" and "also holds 1 file(s) this export did not write (mine.txt)" in r.stderr
    assert aicap("-q", "export", str(small), "--to", "vllm", "--output-dir", str(out)).stderr == ""  # quiet is quiet


def test_an_export_of_another_kind_into_the_folder_keeps_the_first_kind(aicap, tmp_path: Path) -> None:
    # Kubernetes manifests, then launch scripts into one folder: the scripts' export removed the manifests, saying the
    # plan "does not have" them. Each kind replaces only its own kind (what `sh *.sh` or `kubectl apply -f` would start).
    out = tmp_path / "out"
    assert aicap("export", str(PLAN), "--to", "k8s", "--output-dir", str(out)).code == 0
    manifests = {p.name for p in out.glob("*.yaml")}
    r = aicap("export", str(PLAN), "--to", "vllm", "--output-dir", str(out))
    scripts = {p.name for p in out.glob("*.sh")}
    assert r.code == 0 and manifests and scripts and {p.name for p in out.glob("*.yaml")} == manifests
    assert "removed" not in r.stderr and "also holds" not in r.stderr, r.stderr
    assert json.loads((out / ".aicap-export.json").read_text())["files"] == sorted(manifests | scripts)
    small = tmp_path / "small.json"
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "1", "--hardware", "l4", "--cloud", "gcp", "-o", str(small)).code == 0
    again = aicap("export", str(small), "--to", "k8s", "--output-dir", str(out))  # the same kind again: the old manifests go
    assert again.code == 0 and "that this export does not write" in again.stderr
    now = {p.name for p in out.glob("*.yaml")}
    gone = manifests - now
    assert gone and all(name in again.stderr for name in gone) and {p.name for p in out.glob("*.sh")} == scripts
    assert json.loads((out / ".aicap-export.json").read_text())["files"] == sorted(now | scripts)


def test_a_machine_script_starts_its_replicas_on_their_own_devices_and_ports(aicap, tmp_path: Path) -> None:
    # The built-in example puts 3 chat replicas (TP2) and 2 summariser replicas (TP1) on one 8-GPU p5.48xlarge.
    plan = tmp_path / "plan.json"
    assert aicap("size", "-o", str(plan), "-f", "json").code == 0
    script = aicap("export", str(plan), "--to", "vllm").stdout
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "vllm"
    fake.write_text('#!/bin/sh\necho "$CUDA_VISIBLE_DEVICES $*"\nsleep 1\n')  # the first server to exit ends the script
    fake.chmod(0o755)
    (tmp_path / "run.sh").write_text(script)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    ran = subprocess.run(["sh", str(tmp_path / "run.sh"), "p5.48xlarge-1"], capture_output=True, text=True, env=env, check=True)
    started = sorted(ran.stdout.splitlines())
    assert [x.split()[0] for x in started] == ["0,1", "2,3", "4,5", "6", "7"]
    ports = sorted(x.split("--port ")[1].split()[0] for x in started)
    assert ports == ["8000", "8001", "8002", "8003", "8004"] and sum("Llama-3.1-70B" in x for x in started) == 3
    bad = subprocess.run(["sh", str(tmp_path / "run.sh"), "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "valid: g4dn.xlarge-1 p5.48xlarge-1" in bad.stderr
    fake.write_text("#!/bin/sh\nexit 3\n")  # a server that fails at start-up fails the machine's script
    failed = subprocess.run(["sh", str(tmp_path / "run.sh"), "p5.48xlarge-1"], capture_output=True, text=True, env=env)
    assert failed.returncode == 3


def _size_and_export(aicap, tmp_path: Path, example: str, target: str = "vllm", *extra: str) -> str:  # type: ignore[no-untyped-def]
    plan = tmp_path / f"{example}.json"
    assert aicap("size", str(Path(__file__).resolve().parents[2] / "examples" / f"{example}.yaml"), *extra, "-o", str(plan), "-f",
                 "json").code == 0  # fmt: skip
    r = aicap("export", str(plan), "--to", target)
    assert r.code == 0 and subprocess.run(["sh", "-n"], input=r.stdout, text=True).returncode == 0  # valid shell
    return str(r.stdout)


def test_cpu_replicas_sharing_a_machine_are_pinned_to_their_sockets(aicap, tmp_path: Path) -> None:
    script = _size_and_export(aicap, tmp_path, "cpu-only")
    pinned = [line for line in script.splitlines() if line.startswith("numactl")]
    assert pinned and len(set(pinned)) == len(pinned)  # each on its own NUMA node


def test_disaggregated_pools_on_one_machine_take_their_own_kv_ports(aicap, tmp_path: Path) -> None:
    # On Azure's 8-GPU H100 machines both pools share one (on AWS the prefill pool takes single-GPU p5.4xlarge machines).
    script = _size_and_export(aicap, tmp_path, "disaggregated-chat", "vllm", "--cloud", "azure", "--hardware", "h100-sxm")
    ports = [w.split("=")[1] for line in script.splitlines() for w in line.split() if w.startswith("VLLM_NIXL_SIDE_CHANNEL_PORT=")]
    assert len(ports) >= 2 and len(set(ports)) == len(ports) and all(int(p) % 32 == 5557 % 32 for p in ports)


def test_a_replica_spanning_machines_starts_its_cluster(aicap, tmp_path: Path) -> None:
    plan = _tp_plan(aicap, tmp_path)
    script = aicap("export", str(plan), "--to", "vllm").stdout
    assert "multi-node-serving.sh leader --ray_cluster_size=2" in script and 'worker --ray_address="${LEADER_ADDRESS:?' in script
    assert "$(LWS" not in script and subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    # SGLang starts a replica over machines by flags on each (benchmark/deepseek_v3/README.md: --dist-init-addr, --nnodes, --node-rank)
    sglang = aicap("export", str(plan), "--to", "sglang").stdout
    assert '--dist-init-addr "${LEADER_ADDRESS:?' in sglang
    assert "--nnodes 2 --node-rank 0" in sglang and "--nnodes 2 --node-rank 1" in sglang
    # TensorRT-LLM's multi-node start (MPI) is not recorded: its script would run trtllm-serve over one machine's 8 devices
    # for a 16-device replica, and exit 0 (it said so in a comment). Refused, with the way out.
    r = aicap("export", str(plan), "--to", "trtllm")
    assert r.code == 2 and r.stdout == ""
    assert "llama-3-1-405b-0: a replica of 16 devices spans 2 instances of p5.48xlarge, and trtllm" in r.stderr
    assert "export it --to vllm or --to sglang" in r.stderr


def test_an_engine_that_does_not_run_on_the_plans_device_is_refused(aicap, tmp_path: Path) -> None:
    # TensorRT-LLM and SGLang scripts were written for TPU and EPYC machines, exit 0
    tpu = _size_and_export(aicap, tmp_path, "tpu-only")
    assert tpu
    r = aicap("export", str(tmp_path / "tpu-only.json"), "--to", "trtllm")
    assert r.code == 2 and "--to trtllm: " in r.stderr and "(google tpu), and TensorRT-LLM does not run there" in r.stderr
    assert r.stderr.strip().endswith("export it --to vllm")
    _size_and_export(aicap, tmp_path, "cpu-only")
    r = aicap("export", str(tmp_path / "cpu-only.json"), "--to", "sglang")
    assert r.code == 2 and "(amd cpu), and SGLang does not run there" in r.stderr


def test_a_wide_ep_replica_starts_on_each_machine_with_its_attention_groups(aicap, tmp_path: Path) -> None:
    # Data-parallel attention over two 8-GPU machines (wide EP): each machine runs the server for its 8 attention groups.
    plan = tmp_path / "ds.json"
    assert aicap("size", *DEEPSEEK_2X8, "-o", str(plan), "-f", "json").code == 0
    d = json.loads(plan.read_text())["workloads"][0]["deployments"][0]
    assert (d["tp"], d["dp_attention"], d["ep"], d["replicas"]) == (16, 16, 16, 1)
    vllm = aicap("export", str(plan), "--to", "vllm").stdout.replace("\\\n  ", " ")
    assert subprocess.run(["sh", "-n"], input=vllm, text=True).returncode == 0
    head, worker = (part for part in vllm.split("case")[1].split(";;")[:2])
    for text in (head, worker):
        assert "--data-parallel-size 16" in text and "--tensor-parallel-size 1" in text and "--data-parallel-size-local 8" in text
        assert '--data-parallel-address "${LEADER_ADDRESS:?' in text and "--data-parallel-rpc-port 13345" in text
    assert "--headless" not in head and "--data-parallel-start-rank" not in head
    assert "--headless" in worker and "--data-parallel-start-rank 8" in worker
    sglang = aicap("export", str(plan), "--to", "sglang").stdout.replace("\\\n  ", " ")
    assert "--tensor-parallel-size 16" in sglang and "--enable-dp-attention" in sglang and "--node-rank 1" in sglang
    assert "LEADER_ADDRESS: the address of p5.48xlarge-1" in worker  # the machine whose address the others take
    for text in (vllm, aicap("export", str(plan), "--to", "sglang").stdout):  # bash, not only dash, reads the scripts
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    docs = _k8s(aicap, tmp_path, *DEEPSEEK_2X8)
    lws = next(x for x in docs if x["kind"] == "LeaderWorkerSet")
    tmpl = lws["spec"]["leaderWorkerTemplate"]
    lead, work = (tmpl[k]["spec"]["containers"][0] for k in ("leaderTemplate", "workerTemplate"))
    assert tmpl["size"] == 2 and lead["command"][:2] == work["command"][:2] == ["sh", "-c"]
    assert "--data-parallel-address $(LWS_LEADER_ADDRESS)" in lead["command"][2] and "--headless" not in lead["command"][2]
    assert "--data-parallel-start-rank $$((LWS_WORKER_INDEX * 8))" in work["command"][2] and "readinessProbe" not in work
    for doc in docs:
        if doc["kind"] in CRDS:
            _check_custom(doc)


def test_machine_names_are_safe_file_names_and_case_labels(aicap, tmp_path: Path) -> None:
    doc = yaml.safe_load(PLAN.read_text())
    for i in doc["instances"]:
        i["instance_type"] = "../my box;(x)*"
    for w in doc["workloads"]:
        for d in w["deployments"]:
            d["instance_type"] = "../my box;(x)*"
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(doc))
    r = aicap("export", str(odd), "--to", "vllm", "--output-dir", str(tmp_path / "out"))
    assert r.code == 0 and [p.name for p in (tmp_path / "out").glob("*.sh")] == ["-my-box--x---1.sh"]
    assert subprocess.run(["sh", "-n"], input=aicap("export", str(odd), "--to", "vllm").stdout, text=True).returncode == 0


def test_export_errors_are_one_line_exit_2(aicap, tmp_path: Path) -> None:
    fleet = Path(__file__).resolve().parents[2] / "examples" / "chat-service.yaml"
    r = aicap("export", str(fleet), "--to", "vllm")
    assert r.code == 2 and "a fleet file, not a plan" in r.stderr
    r = aicap("export", str(PLAN), "--to", "tgi")
    assert r.code == 2 and "tgi" in r.stderr
    r = aicap("export", str(tmp_path / "missing.json"), "--to", "k8s")
    assert r.code == 2 and "Traceback" not in r.stderr
    (tmp_path / "afile").write_text("")
    r = aicap("export", str(PLAN), "--to", "vllm", "--output-dir", str(tmp_path / "afile" / "sub"))  # a file on the path
    assert r.code == 2 and "--output-dir" in r.stderr and "cannot create it" in r.stderr and r.stderr.count("\n") == 1


def test_tpu_pods_request_tpus_and_select_the_gke_slice_label(aicap) -> None:
    docs = list(yaml.safe_load_all(aicap("export", str(HERE / "plans" / "tpu-only.json"), "--to", "k8s").stdout))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    assert pods
    for pod in pods:
        assert set(pod["nodeSelector"]) == {"cloud.google.com/gke-tpu-accelerator", "cloud.google.com/gke-tpu-topology"}
        assert pod["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"].startswith("tpu-v")
        assert set(pod["containers"][0]["resources"]["limits"]) == {"google.com/tpu"}
    # The topology is the node pool's: its chips (the product of its dimensions) are the instance's.
    for d in (d for d in docs if d["kind"] == "Deployment"):
        chips = math.prod(int(x) for x in d["spec"]["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"].split("x"))
        assert chips == int(d["metadata"]["annotations"]["aicap/instance-devices"])


def _paths(doc: object, listed: set[str], prefix: str = "") -> set[str]:
    """Dotted key paths of ``doc`` (``[]`` for list items), descending only below the prefixes of ``listed`` paths."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            out.add(path)
            if any(x.startswith((path + ".", path + "[]")) for x in listed):
                out |= _paths(v, listed, path)
    elif isinstance(doc, list):
        for item in doc:
            out |= _paths(item, listed, prefix + "[]")
    return out


def test_llm_d_values_use_only_the_charts_documented_keys_and_leave_its_own_flags_to_it(aicap) -> None:
    from aicap.hardware_db.launch import llmd_chart

    chart = llmd_chart()
    listed = {k.path for k in chart.keys}
    fmap = flag_map("vllm")
    known = {f.flag for f in fmap.flags if not f.positional}
    managed = {f.flag for f in fmap.flags if f.field in chart.chart_managed_fields and not f.positional}
    r = aicap("export", str(PLAN), "--to", "llm-d")
    assert r.code == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    plan = yaml.safe_load(PLAN.read_text())
    assert len(docs) == sum(len(w["deployments"]) for w in plan["workloads"])
    for doc, d in zip(docs, [d for w in plan["workloads"] for d in w["deployments"]], strict=True):
        unlisted = {p for p in _paths(doc, listed) if p not in listed and not any(x.startswith((p + ".", p + "[]")) for x in listed)}
        assert not unlisted, unlisted
        decode = doc["decode"]
        assert decode["replicas"] == d["replicas"] and decode["parallelism"]["tensor"] == d["tp"]
        args = decode["containers"][0]["args"]
        flags = {a for a in args if a.startswith("--")}
        assert flags <= known and not flags & managed, flags & managed
        assert args[args.index("--max-num-seqs") + 1] == str(d["max_running"])
        assert doc["prefill"] == {"create": False} and doc["modelArtifacts"]["uri"].startswith("hf://")


def test_llm_d_leaves_out_replicas_spanning_instances_and_says_so(aicap, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    r = aicap("size", *DEEPSEEK_2X8, "-o", str(plan), "-f", "json")
    assert r.code == 0, r.stderr
    r = aicap("export", str(plan), "--to", "llm-d")
    assert r.code == 2 and "no deployment of the plan fits the llm-d chart" in r.stderr and "--to k8s" in r.stderr
    assert r.stderr.count("\n") == 1
    tpu = aicap("export", str(HERE / "plans" / "tpu-only.json"), "--to", "llm-d")
    assert tpu.code == 0, tpu.stderr
    for doc in yaml.safe_load_all(tpu.stdout):
        assert doc["accelerator"]["type"] == "google" and "cloud.google.com/gke-tpu-accelerator" in doc["decode"]["nodeSelector"]


def test_every_accelerator_in_the_catalogue_has_a_resource_name_and_an_llm_d_type(cat) -> None:  # type: ignore[no-untyped-def]
    from aicap.hardware_db.launch import kubernetes_facts, llmd_chart

    facts, chart = kubernetes_facts(), llmd_chart()
    for dev in cat.devices.values():
        if dev.kind == "cpu":
            continue
        assert facts.resource(dev.vendor, dev.kind), dev.id
        assert chart.accelerator(dev.vendor, dev.kind), dev.id
    assert facts.resource("intel", cat.device("gaudi3").kind) == "habana.ai/gaudi"


def test_an_sglang_plan_autoscales_on_sglangs_own_gauges_and_turns_metrics_on(aicap, tmp_path: Path) -> None:
    docs = _k8s(aicap, tmp_path, "--model", "llama-3.1-8b", "--rate", "4", "--hardware", "h100-sxm", "--cloud", "aws", "--engine", "sglang")
    command = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--enable-metrics" in command
    query = next(d for d in docs if d["kind"] == "ScaledObject")["spec"]["triggers"][0]["metadata"]["query"]
    assert "sglang:num_running_reqs" in query and "sglang:num_queue_reqs" in query


def test_a_disaggregated_plan_exports_one_llm_d_release_with_both_pools(aicap, tmp_path: Path) -> None:
    import re

    from aicap.hardware_db.launch import llmd_chart

    plan = tmp_path / "pd.json"
    r = aicap("size", "--model", "llama-3.1-70b", "--rate", "4", "--input-tokens", "2000", "--output-tokens", "300", "--ttft-ms", "1500",
              "--tpot-ms", "40", "--cloud", "aws", "--disaggregate", "--transfer-gbps", "50", "--single-type", "-o", str(plan), "-f",
              "json")  # fmt: skip  # --single-type: one layout a pool, as the chart takes
    assert r.code == 0, r.stderr
    pools = {w["name"]: w["deployments"][0] for w in yaml.safe_load(plan.read_text())["workloads"]}
    (values,) = list(yaml.safe_load_all(aicap("export", str(plan), "--to", "llm-d").stdout))
    chart = llmd_chart()
    listed = {k.path for k in chart.keys}
    unlisted = {p for p in _paths(values, listed) if p not in listed and not any(x.startswith((p + ".", p + "[]")) for x in listed)}
    assert not unlisted, unlisted
    assert values["routing"]["proxy"] == {"enabled": True, "connector": "nixlv2", "targetPort": chart.proxy.target_port}
    dec, pre = values["decode"], values["prefill"]
    assert dec["replicas"] == pools["llama-3.1-70b.decode"]["replicas"] and pre["replicas"] == pools["llama-3.1-70b.prefill"]["replicas"]
    assert dec["containers"][0]["ports"][0]["containerPort"] == chart.proxy.target_port and pre["create"] is True
    d_args, p_args = dec["containers"][0]["args"], pre["containers"][0]["args"]
    assert d_args[d_args.index("--kv-transfer-config.kv_role") + 1] == "kv_consumer"
    assert p_args[p_args.index("--kv-transfer-config.kv_role") + 1] == "kv_producer"
    assert p_args[p_args.index("--kv-transfer-config.kv_connector") + 1] == "NixlConnector"
    for flag in ("--kv-cache-dtype", "--quantization", "--dtype"):  # the decode pool reads the cache the prefill pool writes
        assert (flag in d_args) == (flag in p_args) and (
            flag not in d_args or d_args[d_args.index(flag) + 1] == p_args[p_args.index(flag) + 1]
        )
    # Manifests of dotted workload names use valid object names (RFC 1123 labels).
    for m in yaml.safe_load_all(aicap("export", str(plan), "--to", "k8s").stdout):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", m["metadata"]["name"]), m["metadata"]["name"]


CRDS = yaml.safe_load((HERE.parent / "data" / "crd_shapes.yaml").read_text())


def _pod(meta: dict, spec: dict) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **({"labels": meta["labels"]} if "labels" in meta else {})},
            "spec": spec}  # fmt: skip


def _check_custom(doc: dict) -> None:  # type: ignore[type-arg]
    """A custom resource against its API's schema (tests/cli/data/crd_shapes.yaml); its pod templates against Kubernetes 1.33."""
    import jsonschema

    jsonschema.validate(doc, CRDS[doc["kind"]]["schema"])
    if doc["kind"] == "LeaderWorkerSet":
        t = doc["spec"]["leaderWorkerTemplate"]
        for template in (t["workerTemplate"], t.get("leaderTemplate", t["workerTemplate"])):
            kubernetes_validate.validate(_pod(template.get("metadata", {}), template["spec"]), K8S_VERSION, strict=True)
    elif doc["kind"] == "InferenceService":
        predictor = dict(doc["spec"]["predictor"])
        for key in CRDS["InferenceService"]["component_fields"]:
            predictor.pop(key, None)
        kubernetes_validate.validate(_pod({}, predictor), K8S_VERSION, strict=True)


@pytest.mark.parametrize("golden_plan", STATIC, ids=lambda p: p.stem)
def test_custom_resources_validate_against_their_apis(aicap, golden_plan: Path) -> None:
    for target in ("k8s", "kserve"):
        r = aicap("export", str(golden_plan), "--to", target)
        assert r.code == 0, r.stderr
        for doc in yaml.safe_load_all(r.stdout):
            if doc["kind"] in CRDS:
                _check_custom(doc)


def test_a_leader_worker_set_validates_against_its_api(aicap, tmp_path: Path) -> None:
    import jsonschema

    docs = [d for d in _k8s(aicap, tmp_path, *DEEPSEEK_2X8) if d["kind"] in CRDS]
    assert {d["kind"] for d in docs} == {"LeaderWorkerSet", "ScaledObject"}
    for doc in docs:
        _check_custom(doc)
    bad = next(d for d in docs if d["kind"] == "LeaderWorkerSet")
    bad["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"  # the schemas bite
    with pytest.raises(jsonschema.ValidationError):
        _check_custom(bad)


def test_an_engine_without_sourced_queue_gauges_gets_no_autoscaler_and_says_so(aicap, tmp_path: Path) -> None:
    docs = _k8s(aicap, tmp_path, "--model", "llama-3.1-8b", "--rate", "4", "--hardware", "h100-sxm", "--cloud", "aws", "--engine", "trtllm")
    assert not any(d["kind"] == "ScaledObject" for d in docs)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["annotations"]["aicap/autoscaler"].startswith("none: trtllm publishes no gauge")


def test_sglang_mtp_is_spelled_with_its_steps_top_k_and_the_root_token(aicap, tmp_path: Path) -> None:
    # One MTP draft token was "--speculative-num-draft-tokens 1" alone: SGLang counts the token the drafts extend
    # (k + 1 at top-k 1) and, left without steps and top-k, picks its own speculation. Its radix prefix cache is on by
    # default, which an export note called unsettable.
    plan = tmp_path / "p.json"
    r = aicap("-q", "size", "--model", "qwen3.5-9b", "--rate", "2", "--hardware", "h100-sxm", "--cloud", "aws", "--engine", "sglang",
              "--speculative", "mtp", "--prefix-cached", "0.5", "-f", "json", "--output", str(plan))  # fmt: skip
    assert r.code == 0, r.stderr
    r = aicap("export", str(plan), "--to", "sglang")
    assert r.code == 0, r.stderr
    argv = " ".join(r.stdout.split())
    assert "--speculative-algorithm NEXTN" in argv and "--speculative-num-steps 1" in argv
    assert "--speculative-eagle-topk 1" in argv and "--speculative-num-draft-tokens 2" in argv
    assert "prefix_caching" not in r.stdout + r.stderr and "--disable-radix-cache" not in argv


def test_an_eagle_launch_names_the_head_it_needs(aicap, tmp_path: Path) -> None:
    # vLLM's --speculative-config.method eagle and SGLang's EAGLE went out without the head's weights (.model,
    # --speculative-draft-model-path): the server could not start, and nothing said so.
    plan = tmp_path / "p.json"
    r = aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "h100-sxm", "--cloud", "aws", "--speculative", "eagle",
              "-f", "json", "--output", str(plan))  # fmt: skip
    assert r.code == 0, r.stderr
    head = "'<EAGLE head for meta-llama/Llama-3.1-8B>'"
    for target, flag in (("vllm", "--speculative-config.model"), ("sglang", "--speculative-draft-model-path")):
        r = aicap("export", str(plan), "--to", target)
        assert r.code == 0 and f"{flag} {head}" in " ".join(r.stdout.split())
        assert "replace the placeholder '<EAGLE head for meta-llama/Llama-3.1-8B>' with its path or Hugging Face id" in r.stderr


def test_a_format_the_checkpoint_does_not_ship_in_is_noted_and_a_generic_plan_says_so(aicap, tmp_path: Path) -> None:
    # nvfp4 weights of a bf16 checkpoint went out as "--quantization modelopt_fp4" without a word (only a quantised
    # checkpoint's other formats were noted); a plan made with the generic profile was said to use vLLM's limits.
    plan = tmp_path / "p.json"
    r = aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "b200", "--precision", "nvfp4", "-f", "json",
              "--output", str(plan))  # fmt: skip
    assert r.code == 0, r.stderr
    r = aicap("export", str(plan), "--to", "vllm")
    assert r.code == 0 and "--quantization modelopt_fp4" in r.stdout
    assert "weights nvfp4: meta-llama/Llama-3.1-8B is released in bf16" in r.stdout
    # The bf16 release was the model argument, so the server failed at start-up on a format it cannot make; every
    # target now names a placeholder that fails loudly until an nvfp4 copy replaces it, and says so.
    holder = "<nvfp4 checkpoint of meta-llama/Llama-3.1-8B>"
    assert f"'{holder}'" in r.stdout and "meta-llama/Llama-3.1-8B \\" not in r.stdout
    for target in ("sglang", "k8s", "kserve", "trtllm"):
        out = aicap("export", str(plan), "--to", target).stdout
        assert holder in out and f"<nvfp4 checkpoint of {holder}>" not in out, target
    docs = list(yaml.safe_load_all(aicap("export", str(plan), "--to", "k8s").stdout))
    notes = [d["metadata"]["annotations"]["aicap/notes"] for d in docs if d and d.get("kind") == "Deployment"]
    assert notes and f"replace the placeholder '{holder}' with a copy of it in nvfp4" in notes[0]
    r = aicap("export", str(plan), "--to", "sglang")
    assert "was planned with the generic profile (vllm's defaults)" in r.stderr
    fp8 = tmp_path / "f.json"
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "h100-sxm", "--precision", "fp8", "-f", "json",
                 "--output", str(fp8)).code == 0  # fmt: skip
    assert "released in" not in aicap("export", str(fp8), "--to", "vllm").stdout  # fp8 is quantised as a 16-bit checkpoint loads


def test_what_cannot_start_a_replica_over_machines_is_refused(aicap, tmp_path: Path) -> None:
    # A wide-EP replica exported where nothing starts it over machines was written as one 8-GPU server (review).
    plan = tmp_path / "ds.json"
    assert aicap("size", *DEEPSEEK_2X8, "-o", str(plan), "-f", "json").code == 0
    for target, needle in (("trtllm", "records no multi-node start"), ("kserve", "export --to k8s")):
        r = aicap("export", str(plan), "--to", target)
        assert r.code == 2 and needle in r.stderr and r.stderr.count("\n") == 1, (target, r.stderr)
    doc = json.loads(plan.read_text())
    doc["workloads"][0]["deployments"][0].update(tp=32, ep=32, dp_attention=2)  # hand-edited: groups of 16 over an 8-GPU domain
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    bad = aicap("export", str(tmp_path / "bad.json"), "--to", "vllm")  # its devices no longer add up: refused on reading
    assert bad.code == 2 and "TP32·PP1 hold 32 devices, not 16" in bad.stderr and "size it again" in bad.stderr
    # TensorRT-LLM runs one attention group per device: a plan with groups of 2 devices is not its to launch
    one = aicap("size", "-m", "deepseek-v3", "--rate", "1", "--hardware", "h200-sxm", "--precision", "fp8", "--cloud", "aws",
                "--ttft-ms", "5000", "-o", str(tmp_path / "h200.json"), "-f", "json")  # fmt: skip
    assert one.code == 0, one.stderr
    doc = json.loads((tmp_path / "h200.json").read_text())
    doc["workloads"][0]["deployments"][0].update(tp=8, ep=8, dp_attention=4)
    (tmp_path / "d4.json").write_text(json.dumps(doc))
    trt = aicap("export", str(tmp_path / "d4.json"), "--to", "trtllm")
    assert trt.code == 2 and "one attention group per device" in trt.stderr
    assert aicap("export", str(tmp_path / "d4.json"), "--to", "vllm").code == 0


def test_the_sizer_spreads_attention_groups_over_machines_only_for_engines_that_start_them(aicap) -> None:
    r = aicap("size", "-m", "deepseek-v3", "--rate", "20", "--input-tokens", "1000", "--output-tokens", "1000", "--tpot-ms", "100",
              "--hardware", "h100-sxm", "--precision", "fp8", "--cloud", "aws", "--engine", "trtllm", "-f", "json")  # fmt: skip
    # TensorRT-LLM's multi-node start (MPI) is not recorded: neither wide EP nor TP·PP over two H100 machines is weighed
    assert r.code == 3 and "inside one instance (TensorRT-LLM's profile records no start" in r.stderr
    h200 = aicap("size", "-m", "deepseek-v3", "--rate", "20", "--input-tokens", "1000", "--output-tokens", "1000", "--tpot-ms", "100",
                 "--hardware", "h200-sxm", "--precision", "fp8", "--cloud", "aws", "--engine", "trtllm", "-f", "json")  # fmt: skip
    assert h200.code == 0, h200.stderr
    assert all(d["tp"] * d["pp"] <= 8 for d in h200.json()["workloads"][0]["deployments"])


def test_workload_names_that_clean_up_alike_get_distinct_kubernetes_names(aicap, tmp_path: Path) -> None:
    # 'Chat_Bot' and 'chat-bot' both became chat-bot-0: the second Deployment replaced the first (exit 0)
    fleet = tmp_path / "f.yaml"
    fleet.write_text("workloads:\n"
                     "  - {name: Chat_Bot, model: llama-3.1-8b, requests_per_s: 1, input_tokens: 500, output_tokens: 100}\n"
                     "  - {name: chat-bot, model: qwen2.5-7b, requests_per_s: 1, input_tokens: 500, output_tokens: 100}\n"
                     "constraints: {clouds: [aws]}\n")  # fmt: skip
    plan = tmp_path / "p.json"
    assert aicap("-q", "size", str(fleet), "-o", str(plan), "-f", "json").code == 0
    out = tmp_path / "k8s"
    r = aicap("export", str(plan), "--to", "k8s", "--output-dir", str(out))
    assert r.code == 0, r.stderr
    names = {line.split(":", 1)[1].strip() for f in out.iterdir() for line in f.read_text().splitlines() if line.startswith("  name:")}
    deployments = [n for n in names if n.startswith("chat-bot-0")]
    assert len(deployments) == 2 and all(len(n) <= 53 for n in deployments), names


def test_an_encoder_is_launched_without_a_kv_cache_format(aicap, tmp_path: Path) -> None:
    plan = tmp_path / "e.json"  # an embedding model planned in fp8 went out with --kv-cache-dtype fp8_e4m3
    r = aicap("-q", "size", "--model", "bge-large-en", "--rate", "50", "--input-tokens", "256",
              "--hardware", "h100-sxm", "--precision", "fp8", "-o", str(plan), "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    for target in ("vllm", "sglang"):
        out = aicap("export", str(plan), "--to", target)
        assert out.code == 0 and "kv-cache-dtype" not in out.stdout and "--quantization fp8" in out.stdout, (target, out.stdout)


def test_trtllm_is_not_launched_on_16_bit_weights_for_a_plan_in_fp8(aicap, tmp_path: Path) -> None:
    """trtllm-serve cannot quantize as it loads: given the bf16 release of an fp8 plan it served bf16 weights (exit 0,
    a 'not passed' note), which the plan's memory and speed did not hold. It now names a placeholder to replace."""
    plan = tmp_path / "p.json"
    r = aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "h100-sxm", "--precision", "fp8",
              "--cloud", "aws", "-o", str(plan), "-f", "json")  # fmt: skip
    assert r.code == 0, r.stderr
    trt = aicap("export", str(plan), "--to", "trtllm")
    assert trt.code == 0, trt.stderr
    assert "'<fp8 checkpoint of meta-llama/Llama-3.1-8B>' \\" in trt.stdout  # the positional model argument
    assert "\n  meta-llama/Llama-3.1-8B \\" not in trt.stdout
    assert "trtllm 1.0 reads the weight format from the checkpoint and quantizes none as it loads" in trt.stderr
    assert "quantization fp8: trtllm 1.0 has no documented way" not in trt.stderr
    vllm = aicap("export", str(plan), "--to", "vllm")  # vLLM quantizes the bf16 release to fp8 as it loads it
    assert "meta-llama/Llama-3.1-8B" in vllm.stdout and "--quantization fp8" in vllm.stdout and "placeholder" not in vllm.stderr
    bf16 = tmp_path / "b.json"
    assert aicap("-q", "size", "--model", "llama-3.1-8b", "--rate", "2", "--hardware", "h100-sxm", "--precision", "bf16",
                 "--cloud", "aws", "-o", str(bf16), "-f", "json").code == 0  # fmt: skip
    plain = aicap("export", str(bf16), "--to", "trtllm")
    assert "\n  meta-llama/Llama-3.1-8B \\" in plain.stdout and "placeholder" not in plain.stderr


def test_another_command_s_report_is_named_for_what_it_is(aicap, tmp_path: Path) -> None:
    # A train report has 'instances', so it was taken for an old plan: "plan schema_version 1 is not supported".
    reports = {"train": ("train", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8", "--tokens", "1B"),
               "simulate": ("simulate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1", "--requests", "30"),
               "estimate": ("estimate", "-m", "llama-3.1-8b", "--hardware", "h100-sxm"),
               "whatif": ("whatif", "--model", "llama-3.1-8b", "--rate", "2")}  # fmt: skip
    for name, args in reports.items():
        path = tmp_path / f"{name}.json"
        path.write_text(aicap("-q", *args, "-f", "json").stdout)
        for cmd in (("export", str(path), "--to", "vllm"), ("diff", str(path), str(PLAN)), ("simulate", str(path))):
            r = aicap(*cmd)
            assert r.code == 2 and r.stderr == f"aicap: error: {path}: an `aicap {name}` report, not a plan; a plan is what " \
                                               "`aicap size --output` writes\n", (name, cmd)  # fmt: skip
        r = aicap("size", str(path))
        assert r.code == 2 and f"an `aicap {name}` report, not a fleet file" in r.stderr
    r = aicap("size", str(PLAN))  # a plan given where a fleet is read: "schema_version: Input should be 1, got 2 (and 26 more errors)"
    assert r.code == 2 and "a plan (what `aicap size --output` writes), not a fleet file" in r.stderr


def test_the_autoscaler_never_scales_below_the_workloads_min_replicas(aicap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # KEDA minReplicaCount was 1 whatever min_replicas said: a workload sized and costed for 3 replicas could scale to 1
    fleet = tmp_path / "floor.yaml"
    fleet.write_text(
        "workloads:\n  - {name: chat, model: llama-3.1-8b, requests_per_s: 0.5, input_tokens: 500, output_tokens: 200,\n"
        "     slo: {ttft_ms: 2000, tpot_ms: 60}, min_replicas: 3}\nconstraints: {clouds: [aws], hardware: [h100-sxm]}\n"
    )
    plan = tmp_path / "floor.json"
    assert aicap("size", str(fleet), "-o", str(plan), "-f", "json").code == 0
    doc = json.loads(plan.read_text())
    replicas = sum(d["replicas"] for d in doc["workloads"][0]["deployments"])
    assert replicas >= 3
    scaled = [d for d in yaml.safe_load_all(aicap("export", str(plan), "--to", "k8s").stdout) if d and d["kind"] == "ScaledObject"]
    assert sum(d["spec"]["minReplicaCount"] for d in scaled) >= 3
    assert all(d["spec"]["minReplicaCount"] <= d["spec"]["maxReplicaCount"] for d in scaled)


def test_tpu_and_cpu_deployments_are_not_given_the_cuda_image(aicap) -> None:  # type: ignore[no-untyped-def]
    # a TPU deployment ran vllm/vllm-openai (the CUDA build), which does not serve on TPU
    docs = list(yaml.safe_load_all(aicap("export", str(HERE / "plans" / "tpu-only.json"), "--to", "k8s").stdout))
    images = {c["image"] for d in docs if d and d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"vllm/vllm-tpu:latest"}
    r = aicap("export", str(HERE / "plans" / "cpu-only.json"), "--to", "vllm")
    assert r.code == 0 and "vllm's CUDA build; epyc-9654 (cpu) needs the engine's own build for it" in r.stdout
