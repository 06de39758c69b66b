"""Traffic: synthetic specs, shipped datasets, trace files and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from aicap.sizing.core.errors import InputError, UnknownIdError
from aicap.sizing.sim.traffic import Lengths, TrafficSpec, dataset, dataset_names, load_trace

ROOT = Path(__file__).resolve().parents[3]


def test_datasets_keep_the_means_of_their_sources() -> None:
    raw = yaml.safe_load((ROOT / "hardware_db" / "traffic" / "datasets.yaml").read_text())
    assert set(dataset_names()) == set(raw) >= {"azure-code-2023", "azure-conv-2023", "sharegpt-8k"}
    for name in dataset_names():
        d = dataset(name)
        assert d.source and d.description
        assert d.input_tokens.mean == pytest.approx(raw[name]["stats"]["input"]["mean"], rel=0.002)
        assert d.output_tokens.mean == pytest.approx(raw[name]["stats"]["output"]["mean"], rel=0.01)
        assert d.input_tokens.largest <= raw[name]["stats"]["input"]["max"]
        assert sum(d.input_tokens.weights) == pytest.approx(1.0, abs=1e-3)


def test_unknown_dataset_lists_the_choices() -> None:
    with pytest.raises(UnknownIdError, match="azure-conv-2023"):
        dataset("azure-conv")


def test_spec_is_deterministic_and_seeds_matter() -> None:
    ds = dataset("azure-conv-2023")
    spec = TrafficSpec(5000, ds.input_tokens, ds.output_tokens, rate_per_s=4.0, arrival="gamma", cv=3.0, class_shares=(0.25, 0.75), seed=7)
    a, b = spec.build(), spec.build()
    for f in ("arrival_s", "input_tokens", "output_tokens", "priority"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = TrafficSpec(5000, ds.input_tokens, ds.output_tokens, rate_per_s=4.0, arrival="gamma", cv=3.0, seed=8).build()
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    gaps = np.diff(a.arrival_s)
    assert float(gaps.std() / gaps.mean()) == pytest.approx(3.0, rel=0.15)
    assert float(np.mean(a.priority == 0)) == pytest.approx(0.25, abs=0.02)  # type: ignore[operator]
    assert float(a.input_tokens.mean()) == pytest.approx(ds.input_tokens.mean, rel=0.05)


def test_constant_and_closed_loop_specs() -> None:
    fixed = Lengths.fixed(100)
    const = TrafficSpec(10, fixed, Lengths.fixed(5), rate_per_s=2.0, arrival="constant").build()
    np.testing.assert_allclose(np.diff(const.arrival_s), 0.5)
    closed = TrafficSpec(10, fixed, Lengths.fixed(5), concurrency=3).build()
    assert (closed.arrival_s == 0).all()


@pytest.mark.parametrize(("kw", "msg"), [
    ({"rate_per_s": None}, "exactly one"), ({"concurrency": 2}, "exactly one"), ({"rate_per_s": -1.0}, "positive"),
    ({"requests": 0}, "from 1 to 5,000,000"), ({"arrival": "gamma", "cv": 0.0}, "coefficient"), ({"class_shares": (0.0, 0.0)}, "not all 0"),
])  # fmt: skip
def test_spec_errors(kw: dict[str, object], msg: str) -> None:
    base: dict[str, object] = {"requests": 10, "input_tokens": Lengths.fixed(10), "output_tokens": Lengths.fixed(1), "rate_per_s": 1.0}
    with pytest.raises(InputError, match=msg):
        TrafficSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_csv_and_jsonl_traces(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("arrival_s,input_tokens,output_tokens,priority\n10.5,100,20,1\n10.0,50,0,0\n12,7,3,\n")
    r = load_trace(csv)
    np.testing.assert_allclose(r.arrival_s, [0.5, 0.0, 2.0])
    assert r.input_tokens.tolist() == [100, 50, 7] and r.output_tokens.tolist() == [20, 0, 3]
    assert r.priority is not None and r.priority.tolist() == [1, 0, 0]
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"arrival_s": 1, "input_tokens": 10, "output_tokens": 2}\n\n{"arrival_s": 3, "input_tokens": 20, "output_tokens": 4}\n')
    r = load_trace(jl)
    assert r.arrival_s.tolist() == [0.0, 2.0] and r.priority is None


def test_the_shipped_example_trace_loads() -> None:
    r = load_trace(ROOT / "examples" / "traces" / "azure-conv-2023-10min.csv")
    assert len(r) > 2000 and float(r.arrival_s.max()) < 600


@pytest.mark.parametrize(("text", "where", "msg"), [
    ("arrival_s,input_tokens\n1,2\n", ":1:", "lacks output_tokens"),
    ("arrival_s,input_tokens,output_tokens\n1,2,3\n2,0,3\n", ":3:", "input_tokens '0' must be"),
    ("arrival_s,input_tokens,output_tokens\n1,2,3\nsoon,2,3\n", ":3:", "not a number"),
    ("arrival_s,input_tokens,output_tokens\n1,2.5,3\n", ":2:", "whole number"),
    ("arrival_s,input_tokens,output_tokens\n1,,3\n", ":2:", "missing input_tokens"),
    ("arrival_s,input_tokens,output_tokens\n", "", "no requests"),
    ('{"arrival_s": 1, "input_tokens": 2, "output_tokens": 3}\n[1]\n', ":2:", "JSON object"),
    ('{"arrival_s": 1, "input_tokens": 2, "output_tokens": 3}\n{"arrival_s": inf}\n', ":2:", "not a JSON object"),
    # as strict as CSV and YAML: a key given twice kept the last; numbers written as text or booleans were read
    ('{"arrival_s": 0, "input_tokens": 2, "output_tokens": 3, "arrival_s": 5}\n', ":1:", "key 'arrival_s' given twice"),
    ('{"arrival_s": "0", "input_tokens": 2, "output_tokens": 3}\n', ":1:", "arrival_s '0': expected a number, not text"),
    ('{"arrival_s": 0, "input_tokens": 2, "output_tokens": 3, "priority": true}\n', ":1:", "priority true: expected a number, not a"),
    # an empty file was 'CSV header '' lacks arrival_s, ...'; a capitalised column was only 'lacks arrival_s'
    (" \n", ": ", "the file is empty; a trace is a CSV with header arrival_s,input_tokens,output_tokens"),
    ("Arrival_S,input_tokens,output_tokens\n1,2,3\n", ":1:", "lacks arrival_s.*column names are lower case: 'Arrival_S' is arrival_s"),
    # 1e308 s was read: the late request's gaps came out 0 and the load 1e-308 req/s
    ("arrival_s,input_tokens,output_tokens\n1e308,2,3\n0,2,3\n", ":2:", "at most 1e\\+10 in size"),
])  # fmt: skip
def test_trace_errors_name_file_and_line(tmp_path: Path, text: str, where: str, msg: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=msg) as e:
        load_trace(f)
    assert str(e.value).startswith(f"{f}{where}")


def test_a_trace_refuses_a_priority_past_its_range_and_an_unknown_field(tmp_path: Path) -> None:
    # priority 1e9 allocated state per class up to it (24 GB for two rows); "priorty" and "prio" were ignored, every request class 0
    from aicap.sizing.sim.traffic import MAX_PRIORITY, load_trace

    big = tmp_path / "big.csv"
    big.write_text(f"arrival_s,input_tokens,output_tokens,priority\n0,100,20,0\n0.1,100,20,{MAX_PRIORITY + 1}\n")
    with pytest.raises(InputError, match=rf"big.csv:3: priority '{MAX_PRIORITY + 1}' must be a whole number from 0 to {MAX_PRIORITY}"):
        load_trace(big)
    big.write_text(f"arrival_s,input_tokens,output_tokens,priority\n0,100,20,0\n0.1,100,20,{MAX_PRIORITY}\n")
    assert load_trace(big).priority is not None
    typo = tmp_path / "typo.csv"
    typo.write_text("arrival_s,input_tokens,output_tokens,priorty\n0,100,20,1\n")
    with pytest.raises(InputError, match=r"typo.csv:1: unknown field 'priorty'; did you mean 'priority'\?"):
        load_trace(typo)
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"arrival_s": 0, "input_tokens": 10, "output_tokens": 5, "prio": 1}\n')
    with pytest.raises(InputError, match=r"t.jsonl:1: unknown field 'prio'"):
        load_trace(jl)


def test_context_limit_counts_the_output_of_a_decoder_only(tmp_path: Path) -> None:
    from aicap.sizing.sim.traffic import ContextLimit

    dec, enc = ContextLimit("m", 512), ContextLimit("e", 512, counts_output=False)
    dec.check_row(500, 12, "t:2")  # 512 tokens: at the limit
    with pytest.raises(InputError, match=r"^t:2: input_tokens \+ output_tokens = 513 tokens exceeds m's max context of 512"):
        dec.check_row(500, 13, "t:2")
    enc.check_row(512, 100, "t:2")  # an encoder emits nothing: its prompt alone counts
    with pytest.raises(InputError, match=r"^t:2: input_tokens = 513 tokens"):
        enc.check_row(513, 0, "t:2")
    trace = tmp_path / "t.jsonl"
    rows = ['{"arrival_s": 0, "input_tokens": 10, "output_tokens": 1}', "", '{"arrival_s": 1, "input_tokens": 600, "output_tokens": 1}']
    trace.write_text("\n".join(rows) + "\n")
    assert len(load_trace(trace)) == 2  # no limit given: as before
    with pytest.raises(InputError, match=r"t\.jsonl:3: input_tokens \+ output_tokens = 601"):
        load_trace(trace, limit=dec)
