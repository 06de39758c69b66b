"""Solvers: the integer program that buys whole instances."""
