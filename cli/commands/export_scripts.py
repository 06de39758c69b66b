"""Shell launch scripts of ``aicap export --to vllm|sglang|trtllm``: one per machine of the plan.

Each script starts every replica its machine runs, in the background, on the devices the placement
gives it (:func:`~aicap.sizing.export.placement.place`: ``CUDA_VISIBLE_DEVICES`` and its kin) and on a
port of its own (the engine's default port, then the next ones), and waits for them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike
    from aicap.sizing.export.launch import Launch, Settings
    from aicap.sizing.export.placement import Machine

#: The variable that limits a process to some devices, by device vendor (NVIDIA CUDA, AMD ROCm/HIP, Intel Gaudi).
DEVICE_ENV = {"nvidia": "CUDA_VISIBLE_DEVICES", "amd": "HIP_VISIBLE_DEVICES", "intel": "HABANA_VISIBLE_MODULES"}


def command(launch: Launch) -> list[str]:
    """The launch command as shell lines: the command words, then one flag (and its value) per line."""
    words = [shlex.quote(a) for a in launch.argv]
    cmd, rest = " ".join(words[: launch.command_words]), words[launch.command_words :]
    parts = [cmd]
    i = 0
    while i < len(rest):
        if rest[i].startswith("-") and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            parts.append(f"{rest[i]} {rest[i + 1]}")
            i += 2
        else:
            parts.append(rest[i])
            i += 1
    return parts


def machine_script(m: Machine, settings: dict[str, Settings], launch_at: Callable[[Settings, int], Launch], cat: CatalogueLike,
                   engine: str) -> str:  # fmt: skip
    """The script of one machine for ``engine``: a summary line, each deployment's options file once, each replica's command."""
    import yaml

    dev = cat.device(m.hardware)
    env = DEVICE_ENV.get(dev.vendor) if dev.kind not in ("cpu", "tpu") else None  # CPU and TPU hosts: not named here
    counts: dict[str, list[int]] = {}
    for placed in m.slots:
        counts.setdefault(placed.deployment, []).append(placed.replica)
    what = "; ".join(f"{name} replica{'s' if len(r) > 1 else ''} {', '.join(map(str, r))} of {settings[name].replicas}"
                     for name, r in counts.items())  # fmt: skip
    lines = [f"# {m.name}: {m.devices}× {m.hardware}: {what or 'nothing placed'}"]
    written: set[str] = set()
    port = 0
    background = 0
    for slot in m.slots:
        s = settings[slot.deployment]
        launch = launch_at(s, port)
        where = f"device {slot.devices[0]}" if len(slot.devices) == 1 else f"devices {slot.devices[0]}-{slot.devices[-1]}"
        lines.append(f"# {s.name} replica {slot.replica} of {s.replicas}: workload {s.workload}, {where} (image {launch.image})")
        if s.name not in written:
            lines += [f"# note: {n}" for n in launch.notes]
        argv_extra: list[str] = []
        if launch.options_file is not None and launch.options_flag is not None:
            path = f"{s.name}.options.yaml"
            if s.name not in written:
                lines += [f"cat > {path} <<'EOF'", yaml.safe_dump(launch.options_file, sort_keys=True).rstrip(), "EOF"]
            argv_extra = [launch.options_flag, path]
        written.add(s.name)
        if slot.part is not None and slot.part[0] > 1:
            lines.append(f"# part {slot.part[0]} of {slot.part[1]} of this replica: a worker of the leader on the replica's first "
                         f"machine; start it with {engine}'s multi-node launch (Ray), not a command of its own")  # fmt: skip
            continue
        if slot.part is not None:
            lines.append(f"# this replica spans {slot.part[1]} machines: start them with {engine}'s multi-node launch (Ray); "
                         "the command is the leader's")  # fmt: skip
        parts = command(launch)
        if argv_extra:
            parts.append(" ".join(shlex.quote(a) for a in argv_extra))
        if env is not None:
            parts[0] = f"{env}={','.join(map(str, slot.devices))} {parts[0]}"
        lines.append(" \\\n  ".join(parts) + " &")
        port += 1
        background += 1
    if background:
        lines.append("wait")
    return "\n".join(lines) + "\n"


def dispatch(scripts: list[tuple[str, str]]) -> str:
    """The machines' scripts as one, each under its machine's name: ``sh plan.sh p5.48xlarge-1`` starts that machine's replicas."""
    names = [name.removesuffix(".sh") for name, _ in scripts]
    lines = [f'machine="${{1:?give the machine this runs on: {" | ".join(names)}}}"', 'case "$machine" in']
    for name, (_, body) in zip(names, scripts, strict=True):
        lines += [f"{name})", body.rstrip(), ";;"]
    lines += ['*) echo "unknown machine $machine: valid: ' + " ".join(names) + '" >&2; exit 2 ;;', "esac"]
    return "\n".join(lines) + "\n"
