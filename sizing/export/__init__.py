"""Deployable output of a plan: engine launch commands and Kubernetes manifests."""
