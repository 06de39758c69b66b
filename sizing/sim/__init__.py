"""Iteration-level discrete-event simulation of serving replicas.

The reference the sizer's analytic latency percentiles are tested against. It depends on numpy only;
step durations come from a callable supplied by the caller. Import the modules directly (nothing is
re-exported here, so importing the package stays cheap)::

    from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
    from aicap.sizing.sim.engine import EngineConfig, Requests, simulate

Modules: :mod:`~aicap.sizing.sim.arrivals` (traffic), :mod:`~aicap.sizing.sim.engine` (the event loop,
its inputs and the documented scheduling semantics), :mod:`~aicap.sizing.sim.scheduler` (step policy,
FCFS), :mod:`~aicap.sizing.sim.virtual_engine` (per-micro-batch state and KV accounting),
:mod:`~aicap.sizing.sim.result` (latencies, percentiles, stability).
"""
