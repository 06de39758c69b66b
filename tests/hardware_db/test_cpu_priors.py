"""CPUs without published cases take the measured Xeon's factors on a common basis (efficiency.yaml).

The Xeon family is fitted against its AMX bf16 peak, 16x its AVX-512 fp32 peak; other CPUs have no
matrix engine. A CPU without cases must reach the share of its fp32 vector peak that the fitted Xeon
reaches (no more: an unmeasured part must not win a plan on a guess), and stream memory at Xeon's
fitted share. A refit of the Xeon that leaves these stale fails here.
"""

from __future__ import annotations

import pytest

from aicap.hardware_db import Catalogue


def _vector_share(cat: Catalogue, device_id: str) -> float:
    dev = cat.device(device_id)
    eff = cat.efficiency_for(dev)
    return eff.compute * dev.peak_tflops["bf16"] / dev.peak_tflops["fp32"]


def test_the_measured_xeon_reaches_one_share_of_its_vector_peak_on_every_part(cat: Catalogue) -> None:
    xeons = [d.id for d in cat.devices.values() if d.family == "intel-xeon"]
    assert len(xeons) >= 2 and cat.efficiency["intel-xeon"].calibrated
    shares = {x: _vector_share(cat, x) for x in xeons}
    assert max(shares.values()) == pytest.approx(min(shares.values()), rel=1e-3)  # peaks rounded in the catalogue


@pytest.mark.parametrize("family", ["amd-epyc", "aws-graviton"])
def test_a_cpu_without_cases_takes_xeons_share_of_its_own_vector_peak(cat: Catalogue, family: str) -> None:
    xeon = _vector_share(cat, "xeon-8480")
    parts = [d.id for d in cat.devices.values() if d.family == family]
    assert parts
    for part in parts:
        eff = cat.efficiency_for(cat.device(part))
        assert not eff.calibrated and "derived from the fitted intel-xeon" in eff.source
        assert _vector_share(cat, part) == pytest.approx(xeon, rel=0.01), part
        assert eff.memory == cat.efficiency["intel-xeon"].memory
