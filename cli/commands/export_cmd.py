"""``aicap export``: engine launch commands and Kubernetes manifests for a plan."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aicap.cli.state import catalogue, guarded, info

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike
    from aicap.sizing.export.launch import Launch, Settings


class Target(str, Enum):
    """What ``aicap export`` writes."""

    vllm = "vllm"
    sglang = "sglang"
    trtllm = "trtllm"
    k8s = "k8s"
    kserve = "kserve"
    llmd = "llm-d"


ENGINE_TARGETS = ("vllm", "sglang", "trtllm")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the root app."""

    @app.command("export")
    @guarded
    def export_cmd(
        plan: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan written by `aicap size -o plan.json` (JSON or YAML).")],
        to: Annotated[Target, typer.Option("--to", help="vllm, sglang or trtllm (launch commands, a shell script), k8s or kserve (manifests), llm-d (llm-d-modelservice helm values).")],
        output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Write the files here instead of stdout: one launch script per machine (vllm, sglang, trtllm), one manifest file per deployment (k8s, kserve, llm-d).")] = None,
    ) -> None:  # fmt: skip
        """Write the launch command or Kubernetes manifests of every deployment of a plan."""
        import yaml

        from aicap.hardware_db.launch import flag_map, kubernetes_facts
        from aicap.sizing.core.errors import InputError
        from aicap.sizing.export.kubernetes import manifests
        from aicap.sizing.export.launch import check_spread, deployment_settings, launch
        from aicap.sizing.plan.fleet_io import check_plan_ids, load_plan

        cat = catalogue()
        doc = load_plan(plan)
        if doc is None:
            raise InputError(f"{plan}: a fleet file, not a plan; size it first (aicap size {plan} -o plan.json) and export the plan")
        check_plan_ids(doc, cat, plan)
        if output_dir is not None and output_dir.exists() and not output_dir.is_dir():
            raise InputError(f"--output-dir {output_dir}: exists and is not a directory")
        settings = deployment_settings(doc, cat)
        if not settings:
            raise InputError(f"{plan}: the plan has no deployments to export")
        if to is Target.llmd:
            _write(_llmd(settings, cat, plan.name), output_dir)
            return
        launches = []
        for s in settings:
            engine = to.value if to.value in ENGINE_TARGETS else s.engine
            _check_runs_on(cat, engine, s)
            if to.value in ENGINE_TARGETS and s.engine != to.value:
                info(f"aicap: note: {s.name} was planned with {s.planned_with}; the {to.value} launch carries the same settings")
            launches.append(launch(s, flag_map(engine)))
        check_spread(launches, cat, to.value)
        files: list[tuple[str, str]] = []
        if to.value in ENGINE_TARGETS:
            from aicap.cli.commands.export_scripts import dispatch, heads_of, machine_name, machine_script
            from aicap.sizing.export.placement import place

            try:
                machines = [m for m in place(doc, settings) if m.slots]
            except ValueError as exc:
                raise InputError(f"{plan}: {exc}") from None
            by_name = {s.name: s for s in settings}
            fmap = flag_map(to.value)

            def launch_at(s: Settings, k: int) -> Launch:  # the k-th server on its machine takes the k-th port from the default
                return launch(s, fmap, port=fmap.default_port + k)

            heads = heads_of(machines)
            files = [(f"{machine_name(m)}.sh", machine_script(m, by_name, launch_at, cat, to.value, heads)) for m in machines]
            header = (f"#!/bin/sh\n# aicap export --to {to.value}: {len(settings)} deployment(s) of {plan.name} on {len(machines)} "
                      "machine(s). Run it on each machine with that machine's name (sh this.sh NAME): it starts the replicas "
                      "placed there, each on its own devices and port. --output-dir writes one script per machine.\nset -eu\n")  # fmt: skip
            text = header + dispatch(files)
        else:
            docs = manifests(launches, doc, cat, kubernetes_facts(), kserve=to.value == "kserve")
            files = [(f"{x.settings.name}.yaml", yaml.safe_dump_all(d, sort_keys=False)) for x, d in zip(launches, docs, strict=True)]
            text = yaml.safe_dump_all([m for d in docs for m in d], sort_keys=False)
        for x in launches:
            for n in x.notes:
                info(f"aicap: note: {x.settings.name}: {n}")
        if output_dir is None:
            typer.echo(text, nl=False)
            return
        _write([(name, body if not name.endswith(".sh") else f"#!/bin/sh\n# aicap export --to {to.value} of {plan.name}\nset -eu\n" + body)
                for name, body in files], output_dir)  # fmt: skip


def _check_runs_on(cat: CatalogueLike, engine: str, s: Settings) -> None:
    """Refuse to launch ``s`` with an engine that does not run on its device (TensorRT-LLM on a TPU), naming those that do."""
    from aicap.sizing.core.engines import engine_for
    from aicap.sizing.core.errors import InputError

    spec = engine_for(cat, engine).spec
    dev = cat.device(s.hardware)
    if spec is None or spec.serves(dev):
        return
    able = [t for t in ENGINE_TARGETS if (other := engine_for(cat, t).spec) is None or other.serves(dev)]
    way = f"export it --to {' or --to '.join(able)}" if able else "size it for a device these engines run on"
    raise InputError(f"--to {engine}: {s.name} runs on {dev.id} ({dev.vendor} {dev.kind}), and {spec.name} does not run there "
                     f"(it runs on: {', '.join(spec.runs_on)}); {way}")  # fmt: skip


#: The list of files an export wrote into its --output-dir (JSON ``{"files": [...]}``), read by the next export there.
EXPORT_MARKER = ".aicap-export.json"


def _write(files: list[tuple[str, str]], output_dir: Path | None) -> None:
    """One file per deployment into ``output_dir``, or all of them to stdout.

    The folder's :data:`EXPORT_MARKER` lists what aicap wrote there; files of the kind this export writes (launch
    scripts, ``.sh``, or manifests, ``.yaml``) that an earlier export listed and this one does not write are removed:
    ``sh *.sh`` on a machine, or ``kubectl apply -f`` on the folder, would start the old fleet beside the new one.
    Another kind stays (Kubernetes manifests beside launch scripts), still listed; any other file is named in a warning.
    """
    from aicap.cli.files import write_atomic

    if output_dir is None:
        typer.echo("".join(body for _, body in files), nl=False)
        return
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file on the path, a read-only or missing mount
        from aicap.sizing.core.errors import InputError

        raise InputError(f"--output-dir {output_dir}: cannot create it: {exc.strerror or exc}") from None
    import json

    marker = output_dir / EXPORT_MARKER
    try:
        earlier = set(json.loads(marker.read_text(encoding="utf-8")).get("files", []))
    except (OSError, ValueError, AttributeError):  # none yet, or not ours to trust
        earlier = set()
    names = [name for name, _ in files]
    kinds = tuple({Path(n).suffix for n in names})
    for name, body in files:
        write_atomic(output_dir / name, body)
    ours = {n for n in earlier - set(names) if isinstance(n, str) and "/" not in n and n.endswith((".sh", ".yaml"))
            and (output_dir / n).is_file()}  # fmt: skip
    # A folder exported into before keeps no file of the kind this export writes that it does not write now: a script
    # left there would start the old fleet beside the new one. Files aicap did not write are left, and named.
    stale = sorted(n for n in ours if n.endswith(kinds))
    for n in stale:
        (output_dir / n).unlink()
    kept = sorted(ours - set(stale))  # another kind of export (manifests beside scripts): still aicap's, still listed
    write_atomic(marker, json.dumps({"files": sorted([*names, *kept])}, indent=1) + "\n")
    info(f"aicap: wrote {len(files)} file(s) to {output_dir}")
    if stale:
        info(f"aicap: note: removed {len(stale)} file(s) an earlier export wrote to {output_dir} that this export does not write: "
             f"{', '.join(stale[:8])}{' …' if len(stale) > 8 else ''}")  # fmt: skip
    others = sorted(x.name for x in output_dir.iterdir() if x.is_file() and x.name not in {*names, *kept, EXPORT_MARKER})
    if others:
        info(f"aicap: warning: {output_dir} also holds {len(others)} file(s) this export did not write "
             f"({', '.join(others[:8])}{' …' if len(others) > 8 else ''}); {EXPORT_MARKER} lists the plan's")  # fmt: skip


def _llmd(settings: list[Settings], cat: CatalogueLike, plan_name: str) -> list[tuple[str, str]]:
    """``--to llm-d``: one values document per deployment the chart can run, each with its helm command; the rest named."""
    import yaml

    from aicap.hardware_db.launch import flag_map, kubernetes_facts, llmd_chart
    from aicap.sizing.core.errors import InputError
    from aicap.sizing.export.launch import dns_label
    from aicap.sizing.export.llmd import pd_values, releases, values

    chart = llmd_chart()
    files: list[tuple[str, str]] = []
    left: list[str] = []
    pairs, left = releases(settings)
    for why in left:
        info(f"aicap: note: left out {why}")
    for s, prefill in pairs:
        if s.engine != "vllm":
            info(f"aicap: note: {s.name} was planned with {s.planned_with}; llm-d runs vLLM with the same settings")
        try:
            if prefill is None:
                doc, notes = values(s, flag_map("vllm"), chart, cat, kubernetes_facts())
            else:
                doc, notes = pd_values(prefill, s, flag_map("vllm"), chart, cat, kubernetes_facts())
        except InputError as exc:
            left.append(str(exc))
            info(f"aicap: note: left out {exc}")
            if prefill is not None:  # the pools of a disaggregated workload go out together or not at all
                info(f"aicap: note: left out {prefill.name} with it: the prefill pool of the same disaggregated workload")
            continue
        name = s.name if prefill is None else dns_label(s.workload.rsplit(".", 1)[0])
        for n in notes:
            info(f"aicap: note: {name}: {n}")
        pool = "" if prefill is None else (f"# prefill pool {prefill.workload}: {prefill.replicas} replica(s) of {prefill.devices_per_replica}x "
                                           f"{prefill.hardware} on {prefill.instance_type}\n")  # fmt: skip
        head = (f"# {name}: workload {s.workload}, {s.replicas} replica(s) of {s.devices_per_replica}x {s.hardware} on {s.instance_type}\n"
                f"{pool}"
                f"# helm repo add llm-d-modelservice {chart.chart.repository}\n"
                f"# helm install {name} {chart.chart.name} --version {chart.chart.version} -f {name}.values.yaml\n")  # fmt: skip
        files.append((f"{name}.values.yaml", "---\n" + head + yaml.safe_dump(doc, sort_keys=False)))
    if not files:
        raise InputError(f"{plan_name}: no deployment of the plan fits the llm-d chart: {'; '.join(left)}")
    return files
