"""Measure a dense decoder's decode steps and GEMMs on the local GPU, for aicap's step model to be checked against.

Run on a machine with a CUDA GPU and PyTorch (not among aicap's dependencies; the device machine has both):

    python3 benchmarks/device_decode.py --model llama-3.1-8b --out "$OUT/decode.yaml"
    python3 benchmarks/device_decode.py --model llama-3.1-8b --dry-run      # the grid and its memory, no GPU

then, here: ``python benchmarks/decode_check.py benchmarks/data/decode-<device>-<model>.yaml`` prints aicap's
prediction beside each measurement and the per-sequence slopes of both.

What is timed. The model's shape is read from ``hardware_db/data/models/*.yaml`` (pyyaml only, so the
script runs where aicap's own dependencies are absent). Weights are random bf16; each layer is what a
Llama-style engine runs in a decode step: RMSNorm, the fused QKV GEMM, the new token's K and V written
into a contiguous per-sequence cache, attention over ``context + 1`` tokens, the O GEMM and the residual,
RMSNorm, the fused gate-up GEMM, SiLU times up, the down GEMM and the residual; after the layers the final
norm, the LM head and an argmax. Attention is PyTorch's ``scaled_dot_product_attention`` with the ``G``
query heads of a KV head laid along the query-length axis (``[B, H_kv, G, D]`` against ``[B, H_kv, C, D]``),
the grouping FlashAttention's decode path and FlashInfer use, so each KV head is read once per sequence.
Each (batch, context) step is captured in a CUDA graph and replayed: the time is the device's alone, with
no host scheduling, sampling or detokenisation, i.e. what aicap's step model calls the operator groups
plus the collectives (none on one GPU), without its per-step overhead. Not an engine's paged kernel:
an engine's attention reads its cache through a block table and may be slower or faster per byte.

Timing: CUDA events around ``--reps`` replays after ``--warmup`` replays; the median, 10th and 90th
percentile of the per-replay times are written. Each GEMM shape of a layer (QKV, O, gate-up, down) is
timed at every batch as one CUDA graph of up to 16 products, each on another layer's weights so that none
is served from L2, divided by the count; with its TFLOP/s and weight bytes per second.

Output (YAML, ``schema_version: 1``): the device, PyTorch, CUDA and driver versions, the date, the command,
the model's shape, ``steps`` (batch, context, ms) and ``gemms`` (name, m, n, k, ms, TFLOP/s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8, 32, 64, 128, 256)
CONTEXTS = (512, 2048, 8192)


def model_shape(model_id: str) -> dict[str, Any]:
    """The catalogue entry of ``model_id`` (a dense decoder), from the model YAML files."""
    for path in sorted(glob.glob(str(ROOT / "hardware_db" / "data" / "models" / "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        entries = doc.get("models", doc) if isinstance(doc, dict) else doc
        for m in entries or []:
            if isinstance(m, dict) and m.get("id") == model_id:
                special = [k for k in ("moe", "mla", "linear_attention") if m.get(k)]
                if m.get("kind") != "decoder" or special:
                    sys.exit(f"device_decode: {model_id}: a dense decoder with softmax attention is needed (kind {m.get('kind')!r}"
                             f"{', has ' + ', '.join(special) if special else ''})")  # fmt: skip
                return m
    sys.exit(f"device_decode: unknown model {model_id!r} in hardware_db/data/models/*.yaml")


def shape_of(m: dict[str, Any]) -> dict[str, int]:
    """Hidden size, heads, KV heads, head dimension, MLP width, vocabulary and layers of a catalogue entry."""
    hidden, heads = int(m["hidden_size"]), int(m["num_heads"])
    return {"hidden": hidden, "heads": heads, "kv_heads": int(m.get("num_kv_heads") or heads),
            "head_dim": int(m.get("head_dim") or hidden // heads), "intermediate": int(m["intermediate_size"]),
            "vocab": int(m["vocab_size"]), "layers": int(m["num_layers"])}  # fmt: skip


def weight_bytes(s: dict[str, int], layers: int) -> int:
    """bf16 bytes of the weights built: per layer QKV, O, gate-up, down and two norms; the LM head and final norm."""
    h, d = s["hidden"], s["head_dim"]
    qkv = h * (s["heads"] + 2 * s["kv_heads"]) * d
    per_layer = qkv + s["heads"] * d * h + 3 * h * s["intermediate"] + 2 * h
    return 2 * (layers * per_layer + h * s["vocab"] + h)


def kv_bytes(s: dict[str, int], layers: int, batch: int, context: int) -> int:
    """bf16 bytes of K and V for ``batch`` sequences of ``context + 1`` tokens over ``layers`` layers."""
    return 2 * 2 * layers * batch * (context + 1) * s["kv_heads"] * s["head_dim"]


def grid(s: dict[str, int], layers: int, budget: int, batches: tuple[int, ...], contexts: tuple[int, ...]) -> list[tuple[int, int]]:
    """The (batch, context) points whose KV cache fits ``budget`` bytes beside the weights."""
    room = budget - weight_bytes(s, layers)
    return [(b, c) for c in contexts for b in batches if kv_bytes(s, layers, b, c) <= room]


def _percentiles(times: list[float]) -> dict[str, float]:
    xs = sorted(times)

    def at(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]

    return {"ms_median": round(at(0.5), 4), "ms_p10": round(at(0.1), 4), "ms_p90": round(at(0.9), 4)}


def measure(args: argparse.Namespace, s: dict[str, int], layers: int, points: list[tuple[int, int]]) -> dict[str, Any]:  # pragma: no cover
    """Build the layers on the GPU and time every decode step of ``points`` and the GEMMs of each batch."""
    import torch
    import torch.nn.functional as fn

    dev = torch.device("cuda")
    torch.manual_seed(0)
    h, d, hq, hkv, inter = s["hidden"], s["head_dim"], s["heads"], s["kv_heads"], s["intermediate"]
    g = hq // hkv

    def w(*shape: int) -> Any:
        return (torch.randn(*shape, device=dev, dtype=torch.bfloat16) * 0.02).contiguous()

    layer_w = [{"qkv": w(h, (hq + 2 * hkv) * d), "o": w(hq * d, h), "gu": w(h, 2 * inter), "down": w(inter, h),
                "n1": torch.ones(h, device=dev, dtype=torch.bfloat16), "n2": torch.ones(h, device=dev, dtype=torch.bfloat16)}
               for _ in range(layers)]  # fmt: skip
    lm_head, final_norm = w(h, s["vocab"]), torch.ones(h, device=dev, dtype=torch.bfloat16)

    def timed(fun: Any) -> dict[str, float]:
        for _ in range(args.warmup):
            fun()
        torch.cuda.synchronize()
        out = []
        for _ in range(args.reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fun()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b))
        return _percentiles(out)

    def make_step(batch: int, context: int, x0: Any, caches: list[tuple[Any, Any]]) -> Any:
        def step() -> Any:
            x = x0
            for lw, (kc, vc) in zip(layer_w, caches, strict=True):
                y = fn.rms_norm(x, (h,), lw["n1"])
                qkv = y @ lw["qkv"]
                q, k, v = qkv.split((hq * d, hkv * d, hkv * d), dim=-1)
                kc[:, :, context, :] = k.view(batch, hkv, d)
                vc[:, :, context, :] = v.view(batch, hkv, d)
                att = fn.scaled_dot_product_attention(q.view(batch, hkv, g, d), kc, vc)
                x = x + att.reshape(batch, hq * d) @ lw["o"]
                y = fn.rms_norm(x, (h,), lw["n2"])
                gate, up = (y @ lw["gu"]).chunk(2, dim=-1)
                x = x + (fn.silu(gate) * up) @ lw["down"]
            return (fn.rms_norm(x, (h,), final_norm) @ lm_head).argmax(dim=-1)

        return step

    steps = []
    for batch, context in points:
        caches = [(torch.zeros(batch, hkv, context + 1, d, device=dev, dtype=torch.bfloat16),
                   torch.zeros(batch, hkv, context + 1, d, device=dev, dtype=torch.bfloat16)) for _ in range(layers)]  # fmt: skip
        for kc, vc in caches:  # cached tokens that are not zeros, so that no kernel short-cuts them
            kc.normal_(std=0.02)
            vc.normal_(std=0.02)
        step = make_step(batch, context, w(batch, h), caches)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                step()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        steps.append({"batch": batch, "context": context, **timed(graph.replay)})
        print(f"  step batch {batch:>4} context {context:>6}: {steps[-1]['ms_median']:.3f} ms", file=sys.stderr)
        del graph, step, caches
        torch.cuda.empty_cache()

    # Each GEMM is timed as a CUDA graph of `chain` products, each on another layer's weights (so none is
    # served from L2, and the host's launch latency is not timed), divided by `chain`.
    chain = min(layers, 16)
    gemms = []
    for batch in sorted({b for b, _ in points}):
        x, xo, xd = w(batch, h), w(batch, hq * d), w(batch, inter)
        for name, key, inp in (("qkv", "qkv", x), ("o", "o", xo), ("gate_up", "gu", x), ("down", "down", xd)):
            mats = [layer_w[i][key] for i in range(chain)]
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for mat in mats:
                    inp @ mat
            r = {k: round(v / chain, 5) for k, v in timed(graph.replay).items()}
            k, n = mats[0].shape
            gemms.append({"name": name, "m": batch, "n": int(n), "k": int(k), **r,
                          "tflops": round(2 * batch * n * k / (r["ms_median"] * 1e-3) / 1e12, 2),
                          "weight_gb_per_s": round(2 * n * k / (r["ms_median"] * 1e-3) / 1e9, 1)})  # fmt: skip
            del graph
    props = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=30, check=False).stdout.strip()  # fmt: skip
    except OSError:
        driver = "unknown"
    return {"device": {"name": props.name, "multiprocessors": props.multi_processor_count,
                       "memory_gib": round(props.total_memory / 2**30, 1), "torch": torch.__version__,
                       "cuda": torch.version.cuda, "driver": driver},
            "steps": steps, "gemms": gemms}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama-3.1-8b", help="catalogue id of a dense decoder")
    ap.add_argument("--layers", type=int, default=None, help="layers to build (default: the model's; fewer to fit a large model)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--contexts", default=",".join(map(str, CONTEXTS)))
    ap.add_argument("--memory-gib", type=float, default=120.0, help="weights plus KV caches at most this much (GiB)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None, help="YAML to write (default: stdout)")
    ap.add_argument("--dry-run", action="store_true", help="print the grid and its memory; needs no GPU")
    args = ap.parse_args(argv)
    entry = model_shape(args.model)
    s = shape_of(entry)
    layers = args.layers or s["layers"]
    batches = tuple(int(x) for x in args.batches.split(","))
    contexts = tuple(int(x) for x in args.contexts.split(","))
    points = grid(s, layers, int(args.memory_gib * 2**30), batches, contexts)
    skipped = [(b, c) for c in contexts for b in batches if (b, c) not in points]
    print(f"device_decode: {args.model}, {layers} of {s['layers']} layers, weights {weight_bytes(s, layers) / 2**30:.1f} GiB; "
          f"{len(points)} steps" + (f", skipped (KV over --memory-gib): {skipped}" if skipped else ""), file=sys.stderr)  # fmt: skip
    if args.dry_run:
        for b, c in points:
            print(f"batch {b:>4} context {c:>6}: KV {kv_bytes(s, layers, b, c) / 2**30:6.2f} GiB")
        return 0
    try:
        import torch
    except ImportError:
        print("device_decode: PyTorch is not installed here; run it on a GPU machine (or --dry-run)", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():  # pragma: no cover - GPU only
        print("device_decode: no CUDA device visible; run it on a GPU machine (or --dry-run)", file=sys.stderr)
        return 2
    got = measure(args, s, layers, points)  # pragma: no cover - GPU only
    doc = {"schema_version": 1, "kind": "decode_steps", "model": args.model, "layers": layers, "shape": s, "dtype": "bf16",
           "date": dt.date.today().isoformat(), "command": "python3 " + shlex.join(sys.argv),
           "host": platform.node() or os.environ.get("HOSTNAME", ""),
           "implementation": "PyTorch bf16, scaled_dot_product_attention with grouped queries over a contiguous KV cache; "
                             "one CUDA graph per (batch, context); no host work, sampling or detokenisation", **got}  # fmt: skip
    text = yaml.safe_dump(doc, sort_keys=False)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"device_decode: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
