"""Run a local federation (``familyctx demo``) and drive it: supervisor, configs, readiness, queries.

Public API: :class:`Federation`, :class:`FederationOptions`, :class:`FederationPorts`,
:func:`pick_free_ports`, :func:`run_sample_queries`, and the :class:`DemoError` tree.
"""

from __future__ import annotations

from familyctx.demo.errors import ChildExitedError, DataBuildError, DemoError, NotReadyError, PortInUseError
from familyctx.demo.federation import Federation, FederationOptions, adapter_child_name
from familyctx.demo.layout import DataLayout, FederationPorts, pick_free_ports
from familyctx.demo.sample import load_scenario, run_sample_queries

__all__ = [
    "ChildExitedError",
    "DataBuildError",
    "DataLayout",
    "DemoError",
    "Federation",
    "FederationOptions",
    "FederationPorts",
    "NotReadyError",
    "PortInUseError",
    "adapter_child_name",
    "load_scenario",
    "pick_free_ports",
    "run_sample_queries",
]
