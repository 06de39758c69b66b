"""Iteration-level discrete-event simulation of serving replicas."""
