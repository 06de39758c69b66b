"""Shell launch scripts of ``aicap export --to vllm|sglang|trtllm``: one per machine of the plan.

Each script starts every replica its machine runs, in the background, on the devices the placement
gives it (:func:`~aicap.sizing.export.placement.place`: ``CUDA_VISIBLE_DEVICES`` and its kin) and on a
port of its own (the engine's default port, then the next ones), and waits for them.
"""

from __future__ import annotations

import re
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


#: vLLM's NIXL side channel (a disaggregated pool's KV transfer) listens on this port plus the TP rank; processes that share a
#: machine each need their own range (vLLM docs/features/nixl_connector_usage.md: VLLM_NIXL_SIDE_CHANNEL_PORT, default 5557).
NIXL_PORT, NIXL_STRIDE = 5557, 32

_NAME = re.compile(r"[^A-Za-z0-9._-]")


def machine_name(m: Machine) -> str:
    """A machine's name as a file name and a ``case`` label: letters, digits, '.', '_' and '-' only (no path, no glob)."""
    return _NAME.sub("-", m.name).lstrip(".") or "machine"


#: The first machine's address, which every machine of a replica spanning several is given (the operator sets it).
LEADER = "${LEADER_ADDRESS:?set LEADER_ADDRESS to the address of the first machine of this replica}"  # no quote: bash reads it
_AT = "@LEADER@"  # stands for it in the engine's flags until they are shell-quoted


def _spread_flags(launch: Launch, part: tuple[int, int], head: str) -> tuple[str, list[str]] | None:
    """Where the engine starts a replica over machines by flags (:meth:`Launch.spread`): a comment and this machine's flags.

    A flag word holding the address is double-quoted around :data:`LEADER` (so the shell expands it); the others are quoted as words.
    """
    f = launch.spread()
    if f is None:
        return None
    k, n = part
    groups = launch.groups()
    local = groups // n
    flags = shlex.split(f.flags(rank=k - 1, nodes=n, local=local, start=(k - 1) * local, address=_AT))
    words = [f'"{w.replace(_AT, LEADER)}"' if _AT in w else shlex.quote(w) for w in flags]
    role = "serves HTTP" if k == 1 else "joins it, no HTTP"
    what = f"attention groups {(k - 1) * local}-{k * local - 1} of {groups}" if groups > 1 else "its share of the devices"
    return f"# part {k} of {n} of this replica ({what}; {role}; LEADER_ADDRESS: the address of {head})", words


def _spanning(launch: Launch, part: tuple[int, int], engine: str, head: str) -> tuple[str, str | None, bool]:
    """For one machine of a replica spanning ``part[1]`` machines: a comment, a start command to run first, and whether it serves.

    The start is the engine's recorded multi-node start (vLLM: Ray, as its LeaderWorkerSet guide runs it) with the group size and
    the leader's address in place of LWS's variables: the leader's runs before its serving command, a worker's is all it runs (an
    engine without one is refused before: :func:`~aicap.sizing.export.launch.check_spread`).
    """
    k, n = part
    mn = launch.multi_node
    assert mn is not None, f"{engine}: a spanning replica without a multi-node start reached the script"
    cmd = mn.leader if k == 1 else mn.worker
    cmd = cmd.replace("$(LWS_GROUP_SIZE)", str(n)).replace("$(LWS_LEADER_ADDRESS)", f'"{LEADER}"')
    if k > 1:
        return f"# part {k} of {n} of this replica: joins the leader's cluster (LEADER_ADDRESS: the address of {head})", cmd, False
    return f"# part 1 of {n} of this replica: starts the cluster the other {n - 1} machine(s) join, then serves", cmd, True


def heads_of(machines: list[Machine]) -> dict[tuple[str, int], str]:
    """The machine each spanning replica starts on (its part 1), by (deployment, replica): its leader, whose address the others take."""
    return {(x.deployment, x.replica): machine_name(m) for m in machines for x in m.slots if x.part is not None and x.part[0] == 1}


def machine_script(m: Machine, settings: dict[str, Settings], launch_at: Callable[[Settings, int], Launch], cat: CatalogueLike,
                   engine: str, heads: dict[tuple[str, int], str] | None = None) -> str:  # fmt: skip
    """The script of one machine for ``engine``: a summary line, each deployment's options file once, each replica's command.

    Every replica starts in the background on its devices and port; the first to exit, failed or not, ends the script with
    its status and the others are stopped, as they all are on Ctrl-C or when the script is killed.
    """
    import yaml

    dev = cat.device(m.hardware)
    env = DEVICE_ENV.get(dev.vendor) if dev.kind not in ("cpu", "tpu") else None
    counts: dict[str, list[int]] = {}
    for placed in m.slots:
        counts.setdefault(placed.deployment, []).append(placed.replica)
    what = "; ".join(f"{name} replica{'s' if len(r) > 1 else ''} {', '.join(map(str, r))} of {settings[name].replicas}"
                     for name, r in counts.items())  # fmt: skip
    lines = [f"# {machine_name(m)}: {m.devices}× {m.hardware}: {what or 'nothing placed'}", 'pids=""',
             "trap 'kill $pids 2>/dev/null || true' INT TERM EXIT"]  # fmt: skip
    if dev.kind == "tpu" and len(m.slots) > 1:
        lines.append(f"# note: {len(m.slots)} replicas share this TPU host: give each its own chips (libtpu's visible-chip "
                     "settings) before starting them, or they contend for all of them")  # fmt: skip
    written: set[str] = set()
    port = 0
    started = 0
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
        prefix: list[str] = []
        if env is not None:
            prefix.append(f"{env}={','.join(map(str, slot.devices))}")
        if engine == "vllm" and s.values.get("disaggregation_role") is not None:
            prefix.append(f"VLLM_NIXL_SIDE_CHANNEL_PORT={NIXL_PORT + NIXL_STRIDE * port}")
        pin = "numactl --cpunodebind={0} --membind={0} ".format(slot.devices[0]) if dev.kind == "cpu" and len(m.slots) > 1 else ""
        head = (heads or {}).get((slot.deployment, slot.replica), "its part 1")  # machine names are shell-safe (machine_name)
        spread = _spread_flags(launch, slot.part, head) if slot.part is not None else None
        if spread is not None:  # every machine runs the serving command with its own flags
            lines.append(spread[0])
        elif slot.part is not None:
            note, start, serves = _spanning(launch, slot.part, engine, head)
            lines.append(note)
            if start is not None and not serves:  # a worker: its join command is all this machine runs of the replica
                lines += [f"{' '.join([*prefix, start])} &", 'pids="$pids $!"']
                started += 1
            if start is not None and serves:  # the leader's start, in the foreground, before it serves
                lines.append(" ".join([*prefix, start]))
            if not serves:
                continue
        parts = command(launch)
        if argv_extra:
            parts.append(" ".join(shlex.quote(a) for a in argv_extra))
        if spread is not None:
            parts.append(" ".join(spread[1]))
        parts[0] = " ".join([*prefix, pin + parts[0]]) if prefix else pin + parts[0]
        lines += [" \\\n  ".join(parts) + " &", 'pids="$pids $!"']
        port += 1
        started += 1
    if started:
        # The first replica to exit ends the script with its status, and the trap stops the rest: waiting on each in turn
        # blocked on the first while a later one had failed (POSIX sh has no `wait -n`, so the replicas are polled).
        lines += ["while :; do  # the first replica to exit ends the script with its status; the trap stops the others",
                  "  for pid in $pids; do",
                  '    if ! kill -0 "$pid" 2>/dev/null; then',
                  '      status=0; wait "$pid" || status=$?',
                  '      echo "replica process $pid exited with status $status: stopping the others" >&2',
                  '      exit "$status"',
                  "    fi",
                  "  done",
                  "  sleep 2",
                  "done"]  # fmt: skip
    return "\n".join(lines) + "\n"


def dispatch(scripts: list[tuple[str, str]]) -> str:
    """The machines' scripts as one, each under its machine's name: ``sh plan.sh p5.48xlarge-1`` starts that machine's replicas."""
    names = [name.removesuffix(".sh") for name, _ in scripts]
    lines = [f'machine="${{1:?give the machine this runs on: {" | ".join(names)}}}"', 'case "$machine" in']
    for name, (_, body) in zip(names, scripts, strict=True):
        lines += [f"'{name}')", body.rstrip(), ";;"]
    lines += ['*) echo "unknown machine $machine: valid: ' + " ".join(names) + '" >&2; exit 2 ;;', "esac"]
    return "\n".join(lines) + "\n"
