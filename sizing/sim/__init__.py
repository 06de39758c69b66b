"""Iteration-level discrete-event simulation of serving replicas.

The reference the sizer's analytic latency percentiles are tested against, and what ``aicap simulate``
runs. The engine depends on numpy only; step durations come from a callable supplied by the caller. Import the modules directly (nothing is
re-exported here, so importing the package stays cheap)::

    from aicap.sizing.sim.arrivals import arrival_times, sample_lengths
    from aicap.sizing.sim.engine import EngineConfig, Requests, simulate

Modules: :mod:`~aicap.sizing.sim.arrivals` (renewal arrivals, length draws),
:mod:`~aicap.sizing.sim.traffic` (traffic specs, shipped length datasets, trace files),
:mod:`~aicap.sizing.sim.engine` (the one-replica event loop, its inputs and the documented scheduling
semantics), :mod:`~aicap.sizing.sim.cluster` (replicas behind a router, open or closed loop),
:mod:`~aicap.sizing.sim.scheduler` (step filling, FCFS), :mod:`~aicap.sizing.sim.policies` (SJF, SRTF,
round-robin, priority, EDF), :mod:`~aicap.sizing.sim.virtual_engine` (per-micro-batch state and KV
accounting), :mod:`~aicap.sizing.sim.result` (latencies, percentiles, stability),
:mod:`~aicap.sizing.sim.report` (the ``aicap simulate`` document), :mod:`~aicap.sizing.sim.replay`
(a deployment's engine and step times from aicap's model; policy comparison) and
:mod:`~aicap.sizing.sim.verify` (plans: ``size --verify`` and ``simulate PLAN``).
"""
