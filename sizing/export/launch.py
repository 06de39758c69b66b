"""Engine launch commands for the deployments of a plan (``aicap export --to vllm|sglang|trtllm``).

Each deployment of a plan fixes the settings an engine launch needs: the model checkpoint, tensor
and pipeline parallelism, the formats, the most requests one replica runs (``max_running``, the KV
slots the plan counted), the step token budget and memory fraction of the engine profile on that
device, the longest context of the workload, and speculative decoding. :func:`deployment_settings`
collects them as plan *fields*; :func:`launch` spells them with an engine's flag map
(:class:`~aicap.sizing.core.specs.launch.FlagMap`, data with the source of every flag). A setting the
engine cannot express is left out and said in ``notes``, never guessed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.deployment import group_runtime
from aicap.sizing.core.engines import engine_for
from aicap.sizing.core.errors import InputError
from aicap.sizing.core.plan import Plan
from aicap.sizing.core.specs.launch import FlagMap, MultiNode, MultiNodeFlags, QueueGauges
from aicap.sizing.core.speculative import speculative_for

_HF_REPO = re.compile(r"^https://huggingface\.co/([^/]+/[^/]+)/")
#: Weight formats an engine loads as a ``dtype``; the others are a ``quantization`` method.
_SIXTEEN_BIT = {"bf16", "fp16", "fp32"}
#: Engines that launch the way the ``generic`` runtime conventions assume (vLLM 0.11's defaults).
GENERIC_LAUNCHES_AS = "vllm"


@dataclass(frozen=True)
class Settings:
    """What one deployment of a plan fixes, as plan fields (see :data:`~aicap.sizing.core.specs.launch.FIELDS`).

    ``values`` maps a field to its value (``True`` for a switch that is on); ``name`` is
    ``<workload>-<deployment index>`` (the name the manifests and autoscalers use).
    """

    name: str
    workload: str
    index: int  # of the deployment within its workload
    engine: str
    instance_type: str
    hardware: str
    replicas: int
    devices_per_replica: int
    values: dict[str, object]
    notes: list[str] = field(default_factory=list)
    profile: str = ""  # the engine profile the plan was made with ("generic" launches as GENERIC_LAUNCHES_AS); "" = engine
    checkpoint_dtype: str | None = None  # the format the model's checkpoint is released in (None: not known)
    platform: str = "nvidia"  # "tpu", "cpu", or the accelerator's vendor: which build of the engine's image runs there

    @property
    def planned_with(self) -> str:
        """The engine profile the deployment was planned with, as a note names it."""
        if self.profile == "generic":
            return f"the generic profile ({GENERIC_LAUNCHES_AS}'s defaults)"
        return f"{self.profile or self.engine}'s limits"


@dataclass(frozen=True)
class Launch:
    """One deployment's launch: ``argv`` (the command), an options file where the engine takes one, and notes."""

    settings: Settings
    image: str
    port: int
    health_path: str
    metrics_path: str
    argv: list[str]
    options_file: dict[str, object] | None
    options_flag: str | None
    notes: list[str]
    command_words: int = 1  # leading words of ``argv`` that are the command itself (``vllm serve``)
    queue_gauges: QueueGauges | None = None  # the engine's Prometheus gauges of running and waiting requests
    multi_node: MultiNode | None = None  # how a replica starts across a LeaderWorkerSet's pods
    multi_node_flags: MultiNodeFlags | None = None  # what each machine's serving command adds where the engine starts so

    def spread(self) -> MultiNodeFlags | None:
        """The flags a replica of this launch adds on each of its machines, where the engine starts it so (``None``: it does not).

        SGLang starts any replica over several machines by flags; vLLM a data-parallel-attention one (its tensor- and
        pipeline-parallel replicas start a Ray cluster: :attr:`multi_node`).
        """
        f = self.multi_node_flags
        if f is None:
            return None
        dpa = self.settings.values.get("attention_data_parallel") is True
        return f if f.scope == "any" or dpa else None

    def groups(self) -> int:
        """Attention groups of a replica (1 without data-parallel attention)."""
        d = self.settings.values.get("data_parallel") if self.settings.values.get("attention_data_parallel") is True else None
        return d if isinstance(d, int) else 1


def dns_label(text: str) -> str:
    """A Kubernetes object and helm release name (RFC 1123 label): lower-case letters, digits and '-', at most 53 characters.

    Workload names may hold dots and capitals (``llama-3.1-8b``, ``chat.prefill``); a Service name may not.
    """
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:53].strip("-") or "deployment"


#: The KV connector a disaggregated pool's vLLM moves the cache with (NIXL, as llm-d's P/D guide runs it).
KV_CONNECTOR = "NixlConnector"


def checkpoint(cat: CatalogueLike, model_id: str) -> tuple[str, str | None]:
    """The Hugging Face repository a catalogue model's config was read from, or the id itself with a note."""
    m = cat.model(model_id)
    source = getattr(m, "source", "") or ""
    found = _HF_REPO.match(source)
    if found:
        return found.group(1), None
    return model_id, f"{model_id}: no Hugging Face repository in the catalogue's source ({source or 'none'}); replace the model argument"


def deployment_settings(plan: Plan, cat: CatalogueLike) -> list[Settings]:
    """The launch settings of every deployment of ``plan`` (in plan order)."""
    inputs = {w.name: w for w in plan.inputs.workloads}
    out: list[Settings] = []
    for pw in plan.workloads:
        w = inputs[pw.name]
        model = cat.model(w.model)
        resolved = engine_for(cat, pw.engine, eager=pw.eager)
        engine = GENERIC_LAUNCHES_AS if resolved.id == "generic" else resolved.id
        repo, note = checkpoint(cat, w.model)
        spec = speculative_for(cat, model, w.speculative, f"workload '{w.name}': speculative")
        for k, d in enumerate(pw.deployments):
            dev = cat.device(d.hardware)
            rt = resolved.on(dev)
            notes = [note] if note else []
            limit = getattr(model, "max_context", None)
            if isinstance(limit, int) and w.max_context < limit:
                notes.append(f"context length {w.max_context:,} is the longest request the plan was sized for (workload "
                             f"'{w.name}': input + output); the engine refuses longer ones. Declare the long tail in the fleet's "
                             f"length histogram (up to {limit:,} tokens) to size and launch for it")  # fmt: skip
            v: dict[str, object] = {"model": repo, "served_model_name": w.model, "host": "0.0.0.0", "tensor_parallel": d.tp,
                                    "max_running_requests": d.max_running, "max_prefill_tokens": rt.max_prefill_tokens,
                                    "memory_fraction": rt.usable_memory_fraction, "context_length": w.max_context}  # fmt: skip
            if d.pp > 1:
                v["pipeline_parallel"] = d.pp
            if d.ep > 1:
                v["expert_parallel"] = d.ep
            if d.dp_attention > 1:  # the stage's figures and a group's step budget; launch() spells them as the target engine counts them
                dom = dev.interconnect.domain_size
                if d.tp % d.dp_attention or d.tp // d.dp_attention > dom:
                    raise InputError(f"workload '{w.name}': deployment {k}: dp_attention {d.dp_attention} with tp {d.tp}: attention groups "
                                     f"split tp evenly and stay within {dev.id}'s fast-link domain of {dom} devices; size the plan "
                                     "again rather than edit it")  # fmt: skip
                v.update(data_parallel=d.dp_attention, attention_data_parallel=True,
                         max_prefill_tokens=group_runtime(rt, d.dp_attention).max_prefill_tokens)  # fmt: skip
            if d.weights_dtype in _SIXTEEN_BIT:
                v["dtype"] = d.weights_dtype
            else:
                v["quantization"] = d.weights_dtype
            stored = getattr(model, "checkpoint_dtype", None) or getattr(model, "native_dtype", None)
            # A 16-bit checkpoint is quantised to fp8 as it loads (the engines' online fp8); any other format needs a copy
            # of the checkpoint in it (vLLM and SGLang load modelopt_fp4, int4 or mxfp4 weights, they do not make them).
            online = stored in _SIXTEEN_BIT and (d.weights_dtype in _SIXTEEN_BIT or d.weights_dtype == "fp8")
            if stored is not None and d.weights_dtype != stored and not online:
                # The release would not start in the plan's format (or would serve other weights than it sized): the model
                # argument is a placeholder that fails loudly until a copy in that format replaces it.
                placeholder = f"<{d.weights_dtype} checkpoint of {repo}>"
                v["model"] = placeholder
                notes.append(f"weights {d.weights_dtype}: {repo} is released in {stored}, and an engine loads a checkpoint in its "
                             f"own format: replace the placeholder '{placeholder}' with a copy of it in {d.weights_dtype}")  # fmt: skip
            if d.kv_dtype not in _SIXTEEN_BIT and model.kind == "decoder":  # an encoder keeps no KV cache to format
                v["kv_cache_dtype"] = d.kv_dtype
            if rt.eager:  # the plan was sized for an engine without CUDA graphs: launch it so
                v["eager"] = True
            if w.prefix_cached_share > 0 and w.disaggregated_role != "decode":  # a decode pool's "cached" prompts arrive by transfer
                v["prefix_caching"] = True
            if w.disaggregated_role is not None:
                v["disaggregation_role"] = w.disaggregated_role
                v["kv_connector"] = KV_CONNECTOR
            if spec is not None:
                v["speculative_method"] = spec.method
                v["speculative_draft_tokens"] = spec.draft_tokens
                if spec.draft_model is not None:
                    v["speculative_draft_model"] = checkpoint(cat, spec.draft_model)[0]
                elif spec.method in ("eagle", "eagle3"):  # the engines load the EAGLE head's weights; no catalogue names one
                    v["speculative_draft_model"] = f"<{spec.method.upper()} head for {repo}>"
                    notes.append(f"{spec.method}: the engine loads an {spec.method.upper()} head trained for {repo}; replace the "
                                 f"placeholder '<{spec.method.upper()} head for {repo}>' with its path or Hugging Face id")  # fmt: skip
            out.append(Settings(dns_label(f"{pw.name}-{k}"), pw.name, k, engine, d.instance_type, d.hardware, d.replicas, d.tp * d.pp,
                                v, notes, resolved.id, stored, dev.kind if dev.kind in ("tpu", "cpu") else dev.vendor))  # fmt: skip
    return _unique_names(out)


def _unique_names(settings: list[Settings]) -> list[Settings]:
    """Settings whose object names are distinct: two workload names that clean up alike get a short hash each.

    ``Chat_Bot`` and ``chat-bot``, or two names alike in their first 53 characters, made one name, and the second
    Deployment replaced the first; each of those now ends in ``-`` and six hex digits of its own name.
    """
    import hashlib
    from collections import Counter

    seen = Counter(s.name for s in settings)
    out = []
    for s in settings:
        if seen[s.name] > 1:
            tag = hashlib.sha1(f"{s.workload}-{s.index}".encode()).hexdigest()[:6]
            s = dataclasses.replace(s, name=f"{s.name[:46].rstrip('-')}-{tag}")
        out.append(s)
    return out


def _dp_attention(values: dict[str, object], fmap: FlagMap) -> str | None:
    """Data-parallel attention as ``fmap``'s engine counts it (:class:`~aicap.sizing.core.specs.launch.DpAttentionFlags`).

    The settings carry the stage's tensor-parallel size and the replica's running requests; an engine whose
    flags count a group's divides them by the group count, and one that switches it on by data parallelism
    of an expert-parallel model alone drops the switch. Without a rule the values stay, and go out as they are or as notes.
    """
    groups = values.get("data_parallel")
    rule = fmap.dp_attention
    if values.get("attention_data_parallel") is not True or not isinstance(groups, int):
        return None
    if rule is None:
        return (f"data-parallel attention over {groups} groups: the {fmap.engine} {fmap.version} flag map does not say whether its "
                "tensor-parallel and running-request flags count one group or the whole stage; they are given for the stage")  # fmt: skip
    if rule.tensor_parallel == "group" and isinstance(tp := values.get("tensor_parallel"), int):
        values["tensor_parallel"] = tp // groups
    if rule.max_running == "per_group" and isinstance(running := values.get("max_running_requests"), int):
        values["max_running_requests"] = max(running // groups, 1)
    if rule.step_budget == "replica" and isinstance(budget := values.get("max_prefill_tokens"), int):
        values["max_prefill_tokens"] = budget * groups  # the engine divides it over the groups
    names = {f.field for f in fmap.flags} | {k.field for k in (fmap.extra_options_file.keys if fmap.extra_options_file else [])}
    if "attention_data_parallel" not in names:
        del values["attention_data_parallel"]
    if "data_parallel" not in names:  # the engine takes the group count from its tensor-parallel size: one group per device
        if rule.tensor_parallel != "stage" or values.get("tensor_parallel") != groups:
            raise InputError(f"data-parallel attention over {groups} groups of {values.get('tensor_parallel')} devices: {fmap.engine} "
                             f"{fmap.version} runs one attention group per device (its group count is its tensor-parallel size); "
                             f"size the workload with --engine {fmap.engine}, or export it to an engine that splits groups")  # fmt: skip
        del values["data_parallel"]
    return None


def _spelled(fmap: FlagMap, fld: str, kind: str, value: object) -> str | None:
    """The text of ``value`` for a flag of ``kind`` (``None``: the engine has no spelling for it)."""
    if kind == "choice":
        return fmap.choice(fld, str(value))
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return f"{float(str(value)):g}"
    return str(value)


def _nest(doc: dict[str, object], dotted: str, value: object) -> None:
    """Set ``doc[a][b][c] = value`` for ``dotted = "a.b.c"``."""
    *head, last = dotted.split(".")
    node = doc
    for part in head:
        child = node.setdefault(part, {})
        assert isinstance(child, dict)
        node = child
    node[last] = value


def launch(s: Settings, fmap: FlagMap, port: int | None = None, omit: frozenset[str] = frozenset()) -> Launch:
    """Spell ``s`` with ``fmap``: the command line, an options file for what only it takes, and what was left out.

    Fields in ``omit`` are neither spelled nor noted (a launcher that sets them itself, as llm-d's chart does).
    """
    values = dict(s.values)
    values["port"] = port or fmap.default_port
    dpa_note = _dp_attention(values, fmap)
    spelled = {f.field for f in fmap.flags} | ({k.field for k in fmap.extra_options_file.keys} if fmap.extra_options_file else set())
    for fld in [f for f, v in values.items() if v is True and f not in spelled and f"{f}_off" in spelled]:
        del values[fld]  # on by default in this engine, which spells only the off form (SGLang's radix prefix cache)
    k = values.get("speculative_draft_tokens")
    if isinstance(k, int) and "speculative_verify_tokens" in spelled:
        # SGLang drafts EAGLE-style (EAGLE, MTP, a draft model) k steps deep, one candidate a step, and counts the token
        # the drafts extend among its draft tokens (k + 1 at top-k 1); spelled alone, k would run another speculation than
        # the plan's. Its n-gram drafter takes the draft tokens alone.
        del values["speculative_draft_tokens"]
        if values.get("speculative_method") == "ngram":
            values["speculative_verify_tokens"] = k
        else:
            values.update(speculative_num_steps=k, speculative_eagle_topk=1, speculative_verify_tokens=k + 1)
    quant_note = _unquantizable(s, values, spelled, fmap)
    if any(f.field == "metrics" for f in fmap.flags):
        values.setdefault("metrics", True)  # an engine whose /metrics is opt-in (SGLang): the autoscaler reads it
    if values.get("expert_parallel") is not None and any(f.field == "expert_parallel" and f.value == "bool-switch" for f in fmap.flags):
        values["expert_parallel"] = True  # vLLM: a switch; the EP group is the TP group
    argv = list(fmap.command)
    notes = list(s.notes) + ([dpa_note] if dpa_note else []) + ([quant_note] if quant_note else [])
    done: set[str] = set(omit)
    for f in fmap.flags:
        if f.field not in values or f.field in done:
            continue
        value = values[f.field]
        if f.value == "bool-switch":
            if value is True:
                argv.append(f.flag)
                done.add(f.field)
            continue
        text = _spelled(fmap, f.field, f.value, value)
        if text is None:
            continue
        argv += [text] if f.positional else [f.flag, text]
        done.add(f.field)
    options: dict[str, object] = {}
    extra = fmap.extra_options_file
    if extra is not None:
        for key in extra.keys:
            if key.field not in values or key.field in done:
                continue
            text = _spelled(fmap, key.field, key.value, values[key.field])
            if text is None:
                continue
            typed: object = values[key.field] if key.value in ("int", "float", "bool") else text
            _nest(options, key.key, typed)
            done.add(key.field)
    for fld, value in values.items():
        if fld not in done and fld not in ("host",):
            notes.append(f"{fld} {value}: {fmap.engine} {fmap.version} has no documented way to set it; not passed")
    image = fmap.platform_images.get(s.platform, fmap.image).name
    if s.platform != "nvidia" and s.platform not in fmap.platform_images:
        notes.append(f"image {image}: {fmap.engine}'s CUDA build; {s.hardware} ({s.platform}) needs the engine's own build for it, "
                     "which aicap has no sourced name for: replace the image")  # fmt: skip
    return Launch(s, image, int(str(values["port"])), fmap.health_path, fmap.metrics_path, argv, options or None,
                  extra.flag if extra is not None and options else None, notes, len(fmap.command), fmap.queue_gauges,
                  fmap.multi_node, fmap.multi_node_flags)  # fmt: skip


def _unquantizable(s: Settings, values: dict[str, object], spelled: set[str], fmap: FlagMap) -> str | None:
    """Point a launch at a placeholder checkpoint where the engine cannot quantize the 16-bit one as it loads; say why.

    TensorRT-LLM's PyTorch backend takes FP8 or NVFP4 weights only from a checkpoint already in that format (made with
    NVIDIA Model Optimizer) and has no flag for it: passed the 16-bit release, it would serve 16-bit weights, which the
    plan did not size memory or speed for. The model argument becomes ``<FORMAT checkpoint of REPO>``, so the server
    fails to start until a copy in the plan's format replaces it; ``quantization`` is dropped (``values`` is edited).
    Returns the note, or ``None`` where the engine quantizes as it loads (a ``quantization`` flag) or the checkpoint is
    already in some other known format.
    """
    q = values.get("quantization")
    if not isinstance(q, str) or "quantization" in spelled or s.checkpoint_dtype not in _SIXTEEN_BIT:
        return None
    repo = str(values.get("model"))
    if repo.startswith("<"):  # already a placeholder for a format no engine makes as it loads (:func:`settings` noted it)
        del values["quantization"]
        return None
    placeholder = f"<{q} checkpoint of {repo}>"
    values["model"] = placeholder
    del values["quantization"]
    return (f"weights {q}: {fmap.engine} {fmap.version} reads the weight format from the checkpoint and quantizes none as it loads, "
            f"and {repo} is released in {s.checkpoint_dtype}: replace the placeholder '{placeholder}' with a copy of it in {q} "
            "(NVIDIA Model Optimizer's llm_ptq example exports one)")  # fmt: skip


def check_spread(launches: list[Launch], cat: CatalogueLike, target: str) -> None:
    """Refuse a launch whose replica spans machines in a way the target (an engine, ``k8s`` or ``kserve``) cannot start.

    A replica with data-parallel attention over ``n`` machines needs its groups split evenly over them and the engine's
    multi-node flags (:meth:`Launch.spread`); a KServe InferenceService runs one pod per replica, so it takes none that spans.

    Raises
    ------
    InputError
        Naming the deployment and the way out.
    """
    for x in launches:
        s = x.settings
        inst = cat.instances.get(s.instance_type)  # a plan may name types this catalogue lacks: placement judges those
        n = 1 if inst is None else -(-s.devices_per_replica // inst.devices)
        if n <= 1:
            continue
        if target == "kserve":
            raise InputError(f"{s.name}: a replica spans {n} instances of {s.instance_type}; a KServe InferenceService runs one pod "
                             "per replica: export --to k8s (a LeaderWorkerSet per replica)")  # fmt: skip
        groups = x.groups()
        engine = s.engine if target in ("k8s", "kserve") else target
        if groups > 1 and groups % n:
            raise InputError(f"{s.name}: {groups} attention groups do not split evenly over the {n} machines of a replica; "
                             "size the plan again rather than edit it")  # fmt: skip
        if groups > 1 and x.spread() is None:
            raise InputError(f"{s.name}: a replica with data-parallel attention spans {n} machines, and {engine}'s flag map records no "
                             "multi-node start for it: export it --to vllm or --to sglang, or size it on one instance")  # fmt: skip
        if groups == 1 and x.spread() is None and x.multi_node is None:
            raise InputError(f"{s.name}: a replica of {s.devices_per_replica} devices spans {n} instances of {s.instance_type}, and "
                             f"{engine}'s flag map records no multi-node start (its launch would see one machine's devices): export it "
                             "--to vllm or --to sglang, or size it to fit one instance (a larger type or weight format)")  # fmt: skip
