"""The picture of a plan over demand periods (needs the ``plot`` extra: matplotlib).

Top: devices in service each hour, stacked by pricing model (reserved, on-demand, spot). Bottom: each
workload's demand and the capacity planned for it, in requests/s.
"""

from __future__ import annotations

import numpy as np

from aicap.sizing.core.catalogue import CatalogueLike
from aicap.sizing.core.figures import pyplot
from aicap.sizing.core.period_plan import PeriodPlan


def plot_periods(plan: PeriodPlan, cat: CatalogueLike, path: str) -> None:
    """Draw ``plan`` to ``path`` (.png or .svg).

    Raises
    ------
    InputError
        Without matplotlib (install the ``plot`` extra).
    """
    plt = pyplot()
    hours = np.arange(plan.hours)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    bottom = np.zeros(plan.hours)
    for model in plan.pricing_models:
        devices = np.array([sum(i.count * cat.instance(i.instance_type).devices for i in p.instances if i.pricing == model)
                            for p in plan.periods], dtype=float)  # fmt: skip
        if devices.any():
            ax1.bar(hours, devices, bottom=bottom, width=1.0, align="edge", label=model, alpha=0.85)
            bottom += devices
    ax1.set_ylabel("devices in service")
    ax1.legend(fontsize=8)
    names = [w.name for w in plan.periods[0].workloads] if plan.periods else []
    for k, name in enumerate(names):
        demand = [p.workloads[k].demand_requests_per_s for p in plan.periods]
        cap = [p.workloads[k].capacity_requests_per_s for p in plan.periods]
        edges = np.arange(plan.hours + 1)  # each value holds for its whole hour
        line = ax2.step(edges, [*demand, demand[-1]], where="post", label=f"{name} demand")[0]
        ax2.step(edges, [*cap, cap[-1]], where="post", linestyle="--", color=line.get_color(), label=f"{name} capacity")
    ax2.set_ylabel("requests/s")
    ax2.set_xlabel("hour")
    ax2.legend(fontsize=7, ncol=2)
    t = plan.totals
    ax1.set_title(f"\\${t.usd_per_month:,.0f}/month (static peak plan \\${t.static_peak_usd_per_month:,.0f}); "
                  f"{'/'.join(plan.pricing_models)}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
