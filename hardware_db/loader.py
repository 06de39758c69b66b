"""Load and validate the built-in catalogues plus user overlays.

Every ``*.yaml`` file under ``hardware_db/data`` (package data, read with ``importlib.resources``)
and under each overlay directory (``--catalog DIR`` or ``AICAP_CATALOG``) may hold any of the
sections ``models``, ``devices``, ``instances``, ``efficiency``, ``engines``, ``speculative`` (lists) and ``runtime`` (a
mapping). Overlay entries replace built-in entries with the same id; each replacement is recorded
in :attr:`Catalogue.overrides` so verbose output can report it. Loading is lazy and cached, per process
and per user (:mod:`aicap.hardware_db.cache`, keyed by the bytes of every file read).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from aicap.hardware_db import cache
from aicap.sizing.core.doc_errors import located
from aicap.sizing.core.documents import load_yaml, read_text, validate, validate_model
from aicap.sizing.core.errors import InputError, UnknownIdError, did_you_mean, excerpt
from aicap.sizing.core.ownership import machine_instance, owned_usd_per_hour
from aicap.sizing.core.specs import DeviceSpec, EfficiencySpec, InstanceSpec, ModelSpec
from aicap.sizing.core.specs.efficiency import RuntimeSpec
from aicap.sizing.core.specs.engine import EngineSpec
from aicap.sizing.core.specs.model import AnyModel
from aicap.sizing.core.specs.ownership import OwnershipData
from aicap.sizing.core.specs.speculative import SpeculativeDefault

SECTIONS = ("models", "devices", "instances", "efficiency", "engines", "speculative", "runtime")
#: Most files and folders an overlay directory may hold (an overlay of ``/`` by mistake must not walk the disk).
MAX_OVERLAY_ENTRIES = 10_000
_MODEL: TypeAdapter[AnyModel] = TypeAdapter(ModelSpec)
V = TypeVar("V")


@dataclass
class Catalogue:
    """All catalogue entries by id, after overlays."""

    models: dict[str, AnyModel] = field(default_factory=dict)
    devices: dict[str, DeviceSpec] = field(default_factory=dict)
    instances: dict[str, InstanceSpec] = field(default_factory=dict)
    efficiency: dict[str, EfficiencySpec] = field(default_factory=dict)
    engines: dict[str, EngineSpec] = field(default_factory=dict)
    speculative: dict[str, SpeculativeDefault] = field(default_factory=dict)
    runtime: RuntimeSpec | None = None
    overrides: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)
    version: str = ""

    def model(self, ref: str) -> AnyModel:
        """Return a model spec by catalogue id, or read one from a file, a model folder or the Hugging Face cache.

        Files are ``config.json`` or YAML model documents; Hub ids resolve offline in the local cache
        (:func:`aicap.sizing.core.hf_cache.model_path`).
        """
        if ref in self.models:
            return self.models[ref]
        if ref.endswith((".json", ".yaml", ".yml")) or os.sep in ref or "/" in ref or Path(ref).expanduser().is_dir():
            from aicap.sizing.core.hf_cache import model_path
            from aicap.sizing.core.hf_config import load_model_file

            path = model_path(ref)
            if path is not None:
                spec = load_model_file(path)
                if not Path(ref).expanduser().exists() and spec.name == path.parent.name:  # a Hub id, named by its snapshot hash
                    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in ref.lower()).strip("-.")[:64].strip("-.")
                    spec = spec.model_copy(update={"id": slug or spec.id, "name": ref[:200]})
                return spec
        raise UnknownIdError("model", ref, sorted(self.models))

    def device(self, ref: str) -> DeviceSpec:
        """Return a device spec by id."""
        try:
            return self.devices[ref]
        except KeyError:
            raise UnknownIdError("hardware", ref, sorted(self.devices)) from None

    def instance(self, ref: str) -> InstanceSpec:
        """Return an instance spec by name."""
        try:
            return self.instances[ref]
        except KeyError:
            raise UnknownIdError("instance", ref, sorted(self.instances)) from None

    def efficiency_for(self, device: DeviceSpec, framework: str | None = None) -> EfficiencySpec:
        """Return the efficiency factors of a device's family (for ``framework`` when it has its own).

        A family whose entry ``inherits`` a fitted family gets that family's factors (renamed, and
        still reported as not calibrated: its ``source`` names both the inheritance and the prior).
        """
        if framework is not None and f"{device.family}@{framework}" in self.efficiency:
            return self.efficiency[f"{device.family}@{framework}"]
        try:
            spec = self.efficiency[device.family]
        except KeyError:
            raise InputError(
                f"device '{device.id}': no efficiency factors for family '{device.family}'; "
                f"known families: {', '.join(sorted(self.efficiency))}"
            ) from None
        if spec.inherits is None:
            return spec
        base = self.efficiency.get(spec.inherits)
        if base is None or not base.calibrated:
            raise InputError(f"efficiency of family '{spec.family}' inherits '{spec.inherits}', which is not a fitted family; "
                             f"fitted: {', '.join(sorted(k for k, e in self.efficiency.items() if e.calibrated))}")  # fmt: skip
        return base.model_copy(update={"family": spec.family, "framework": spec.framework, "inherits": spec.inherits,
                                       "source": f"inherited from {spec.inherits} (fitted; no published case for {spec.family}); "
                                                 f"own prior, not used: {spec.source}"})  # fmt: skip

    @property
    def runtime_spec(self) -> RuntimeSpec:
        """The runtime conventions of the default engine (the ``runtime`` section's ``default_engine``)."""
        return self.runtime_for(None)

    def engine(self, ref: str) -> EngineSpec:
        """Return an engine profile by id."""
        try:
            return self.engines[ref]
        except KeyError:
            raise UnknownIdError("engine", ref, sorted([*self.engines, "generic"])) from None

    def runtime_for(self, engine: str | None, device: DeviceSpec | None = None) -> RuntimeSpec:
        """The runtime conventions of ``engine`` on ``device`` (``None``: the default engine; ``generic``: the ``runtime`` section)."""
        assert self.runtime is not None
        ref = self.runtime.default_engine if engine is None else engine
        if ref is None or ref == "generic":
            return self.runtime
        return self.engine(ref).runtime(self.runtime, device)

    @property
    def price_dates(self) -> tuple[str, str]:
        """Oldest and newest instance price dates (ISO)."""
        dates = sorted(i.price_date.isoformat() for i in self.instances.values())
        return (dates[0], dates[-1]) if dates else ("", "")


def catalogue_dirs_from_env() -> list[Path]:
    """Overlay directories named by ``AICAP_CATALOG`` (``os.pathsep``-separated)."""
    raw = os.environ.get("AICAP_CATALOG", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def load_catalogue(overlays: tuple[Path, ...] = ()) -> Catalogue:
    """Load built-in catalogues and ``overlays`` (directories or files), cached per argument."""
    return _load(tuple(Path(p).resolve() for p in overlays))


@lru_cache(maxsize=8)
def _load(overlays: tuple[Path, ...]) -> Catalogue:
    texts = _builtin_files()
    builtin = len(texts)
    for base in overlays:
        texts += [(str(path), read_text(path)) for path in _overlay_files(base)]
    own_text = _ownership_text()
    digest = hashlib.sha256()
    for _, text in texts:
        digest.update(text.encode())
    digest.update(own_text.encode())
    version = digest.hexdigest()[:12]
    key = cache.entry_key(digest.hexdigest())
    cached = cache.load(key)
    if cached is not None and cached.version == version:
        return cached
    cat = _parse(texts, builtin, own_text)
    cat.version = version
    cache.store(key, cat)
    return cat


def _parse(texts: list[tuple[str, str]], builtin: int, own_text: str) -> Catalogue:
    """The catalogue of ``texts`` (the first ``builtin`` built-in, the rest overlays) and the ownership data."""
    cat = Catalogue()
    for k, (where, text) in enumerate(texts):
        _merge(cat, where, text, overlay=k >= builtin)
    if cat.runtime is None:
        raise InputError("catalogue has no 'runtime' section")
    default = cat.runtime.default_engine
    if default is not None and default != "generic" and default not in cat.engines:
        raise InputError(f"runtime.default_engine: unknown engine '{default}'; known engines: {', '.join(sorted(cat.engines))}")
    own = _read_ownership(own_text)
    for m in own.machines:
        if m.name in cat.instances:
            raise InputError(f"hardware_db/{OWNERSHIP}: machines.{m.name}: the name of an instance type already in the catalogue")
        cat.instances[m.name] = machine_instance(m, own)
        cat.origin["instance:" + m.name] = f"hardware_db/{OWNERSHIP}"
    for inst in cat.instances.values():
        if inst.device not in cat.devices:
            where = located(cat.origin["instance:" + inst.name], f"unknown device '{inst.device}'")  # a built-in file: its name alone
            known = sorted(cat.devices)
            raise InputError(f"{where}: instances.{inst.name}.device: unknown device {excerpt(inst.device)}; "
                             f"{did_you_mean(inst.device, known)}known devices: {', '.join(known)}")  # fmt: skip
    _own(cat, own)
    return cat


OWNERSHIP = "ownership/ownership.yaml"


def _ownership_text() -> str:
    """The ownership data's text (purchase prices, owned machines, data-centre costs), hashed into the catalogue version."""
    return resources.files("aicap.hardware_db").joinpath("ownership").joinpath("ownership.yaml").read_text(encoding="utf-8")


def _read_ownership(text: str) -> OwnershipData:
    return validate_model(OwnershipData, load_yaml(Path(OWNERSHIP), text), f"hardware_db/{OWNERSHIP}", text, ())


@lru_cache(maxsize=1)
def ownership() -> OwnershipData:
    """The ownership data (purchase prices, servers, data-centre figures) the catalogue's ``owned`` prices come from."""
    return _read_ownership(_ownership_text())


def _own(cat: Catalogue, own: OwnershipData) -> None:
    """Fill each instance's ``owned`` price from the ownership data (:func:`aicap.sizing.core.ownership.owned_usd_per_hour`)."""
    for name, inst in cat.instances.items():
        usd = owned_usd_per_hour(inst, cat.devices[inst.device], own)
        if usd is not None:
            prices = inst.price_usd_per_hour.model_copy(update={"owned": round(usd, 4)})
            cat.instances[name] = inst.model_copy(update={"price_usd_per_hour": prices})


def _builtin_files() -> list[tuple[str, str]]:
    root = resources.files("aicap.hardware_db").joinpath("data")
    out: list[tuple[str, str]] = []

    def walk(node: Any, rel: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            name = f"{rel}/{child.name}" if rel else child.name
            if child.is_dir():
                walk(child, name)
            elif child.name.endswith((".yaml", ".yml")):
                out.append((f"hardware_db/data/{name}", child.read_text(encoding="utf-8")))

    walk(root, "")
    return out


def _overlay_files(base: Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files of an overlay (a file, or a directory searched recursively).

    An overlay that cannot be read (a directory without permission, anywhere below ``base``) is an
    error rather than silently skipped: a catalogue missing the user's entries would size wrongly.
    Symbolic links to files are read; links to directories below ``base`` are not followed (no cycles).
    """
    try:
        if base.is_file():
            return [base]
        if not base.is_dir():
            raise InputError(f"catalogue overlay {base}: no such directory or file")
    except OSError as exc:
        raise InputError(f"catalogue overlay {base}: cannot read: {exc.strerror or exc}") from None

    def fail(exc: OSError) -> None:
        where = exc.filename or base
        raise InputError(f"catalogue overlay {where}: cannot read directory: {exc.strerror or exc}")

    found: list[Path] = []
    seen = 0
    for folder, dirs, files in os.walk(base, onerror=fail):
        seen += len(dirs) + len(files)
        if seen > MAX_OVERLAY_ENTRIES:
            raise InputError(
                f"catalogue overlay {base}: more than {MAX_OVERLAY_ENTRIES:,} files and folders below it; "
                "expected a folder of catalogue YAML files"
            )
        found += [Path(folder) / f for f in files if f.endswith((".yaml", ".yml"))]
    return sorted(p for p in found if p.is_file())


def _merge(cat: Catalogue, where: str, text: str, *, overlay: bool) -> None:
    doc = load_yaml(Path(where), text)
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise InputError(f"{where}:1: catalogue file must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = set(doc) - {*SECTIONS, "schema_version"}
    if unknown:
        first = sorted(unknown, key=str)[0]
        line = next((k for k, row in enumerate(text.splitlines(), start=1) if row.startswith((f"{first}:", f"'{first}':", f'"{first}":'))),
                    None)  # fmt: skip
        place = f"{where}:{line}" if line else where  # a top-level key starts its line
        raise InputError(f"{place}: unknown section {excerpt(first)}; valid sections: {', '.join(SECTIONS)}")
    if "runtime" in doc:
        cat.runtime = validate_model(RuntimeSpec, doc["runtime"], where, text, ("runtime",))
    for section in ("models", "devices", "instances", "efficiency", "engines", "speculative"):
        items = doc.get(section) or []
        if not isinstance(items, list):
            raise InputError(f"{where}: '{section}' must be a list, got {excerpt(items)}")
        for i, item in enumerate(items):
            prefix = (section, i)
            if section == "models":
                spec = validate(_MODEL, item, where, text, prefix)
                _put(cat, cat.models, spec.id, spec, "model", where, overlay)
            elif section == "devices":
                dev = validate_model(DeviceSpec, item, where, text, prefix)
                _put(cat, cat.devices, dev.id, dev, "device", where, overlay)
            elif section == "instances":
                inst = validate_model(InstanceSpec, item, where, text, prefix)
                _put(cat, cat.instances, inst.name, inst, "instance", where, overlay)
            elif section == "engines":
                eng = validate_model(EngineSpec, item, where, text, prefix)
                _put(cat, cat.engines, eng.id, eng, "engine", where, overlay)
            elif section == "speculative":
                sd = validate_model(SpeculativeDefault, item, where, text, prefix)
                _put(cat, cat.speculative, sd.method, sd, "speculative default", where, overlay)
            else:
                eff = validate_model(EfficiencySpec, item, where, text, prefix)
                _put(cat, cat.efficiency, eff.key, eff, "efficiency", where, overlay)


def _put(cat: Catalogue, table: dict[str, V], key: str, value: V, what: str, where: str, overlay: bool) -> None:
    tag = f"{what}:{key}"
    if key in table:
        if not overlay:
            raise InputError(f"{where}: duplicate {what} id '{key}' (also in {cat.origin[tag]})")
        cat.overrides.append(f"{what} '{key}' from {cat.origin[tag]} overridden by {where}")
    table[key] = value
    cat.origin[tag] = where
