"""The typed core every capability shares: specs, workload and fleet, deployment, plan, catalogue interface, errors.

Imports nothing from the other subpackages of :mod:`aicap.sizing`.
"""
