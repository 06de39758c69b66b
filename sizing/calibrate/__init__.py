"""Scoring and fitting the performance model on published measurements."""
