"""Which links a training job's devices use: the device's fast link and the instance's network."""

from __future__ import annotations

from collections.abc import Iterable

from aicap.sizing.core.specs import DeviceSpec, InstanceSpec
from aicap.sizing.train.step import Fabric


def fabric_of(device: DeviceSpec, instance: InstanceSpec | None, *, full_host: bool = True) -> Fabric:
    """The fabric of ``device`` inside ``instance`` (``None``: no instance, so no sourced network).

    The network share per device is ``network.gbps / 8 / devices`` GB/s; the fast-link domain is
    the device's ``domain_size`` capped at the devices of one instance. A device whose link joins
    hosts into slices (TPU ICI, ``slice_size``) keeps that link across the hosts of a slice: the
    domain and the "node" beyond which the network carries the traffic are the slice, when ``instance``
    is a full host (slices are built of full hosts: a v6e-128 is 16 v6e-8s; one-chip VMs are joined by the
    data-centre network).
    """
    link = device.interconnect
    if link.slice_size is not None and full_host:
        network = None if instance is None else instance.network_gbs_per_device
        return Fabric(link_gbs=link.bw_gbps, domain=link.slice_size, node=link.slice_size, network_gbs=network,
                      instance=None if instance is None else instance.name)  # fmt: skip
    if instance is None:
        return Fabric(link_gbs=link.bw_gbps, domain=link.domain_size, node=link.domain_size, network_gbs=None)
    return Fabric(
        link_gbs=link.bw_gbps,
        domain=min(link.domain_size, instance.devices),
        node=instance.devices,
        network_gbs=instance.network_gbs_per_device,
        instance=instance.name,
    )


def is_full_host(device: DeviceSpec, instance: InstanceSpec, instances: Iterable[InstanceSpec]) -> bool:
    """Whether ``instance`` carries as many of ``device`` as any instance does (a TPU slice is built of such hosts)."""
    return instance.devices >= max((i.devices for i in instances if i.device == device.id), default=instance.devices)


def best_instance(device: DeviceSpec, instances: Iterable[InstanceSpec], pricing: str = "on_demand") -> InstanceSpec | None:
    """The instance that carries most of ``device`` with the fastest network per device, the cheapest of those.

    Ties break on the price under ``pricing`` (unpriced last), then the name, so the choice is deterministic: on the
    name alone an Azure type at $98/h won over an AWS one at $55/h with the same devices and network.
    """
    rows = [i for i in instances if i.device == device.id]
    if not rows:
        return None

    def key(i: InstanceSpec) -> tuple[int, float, float, str]:
        price = i.price(pricing)
        return (-i.devices, -(i.network_gbs_per_device or 0.0), float("inf") if price is None else price, i.name)

    return min(rows, key=key)
