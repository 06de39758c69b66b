"""Fleets to plans: candidates, the sizer, plan assembly, policy checks and plan diffs."""
