"""Where the demo federation keeps its files and which loopback ports it uses.

Layout of the data directory (default ``var/demo``): the synthetic warehouses written by
``familyctx synth`` (``<slug>.sqlite``, ``ground_truth.sqlite``, ``scenarios.json``), ``config/``
(one YAML per adapter, ``gateway.yaml``), ``logs/`` (one log per child), ``oidc/`` (the provider's
signing key) and ``audit.sqlite`` (the gateway's audit log).
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.demo.errors import PortInUseError

__all__ = ["DataLayout", "FederationPorts", "check_ports_free", "pick_free_ports"]


@dataclass(frozen=True)
class FederationPorts:
    """TCP ports on the loopback host: gateway, OIDC provider, one adapter per council (by GSS code)."""

    gateway: int = 8000
    oidc: int = 9000
    adapters: dict[str, int] = field(default_factory=lambda: {c.gss_code: c.port for c in DEMO_COUNCILS})

    @classmethod
    def from_base(cls, base: int) -> FederationPorts:
        """Consecutive ports: gateway ``base``, OIDC ``base+1``, adapters ``base+2`` onwards."""
        return cls(base, base + 1, {c.gss_code: base + 2 + i for i, c in enumerate(DEMO_COUNCILS)})

    def roles(self) -> list[tuple[str, int]]:
        """(role description, port) for every listener, for port checks and messages."""
        names = {c.gss_code: c.name for c in DEMO_COUNCILS}
        return [("gateway", self.gateway), ("OIDC provider", self.oidc)] + [
            (f"{names.get(code, code)} adapter", port) for code, port in self.adapters.items()
        ]


def pick_free_ports(host: str = "127.0.0.1") -> FederationPorts:
    """Ports the kernel reports free right now (bind to port 0, all held until every one is chosen)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(2 + len(DEMO_COUNCILS)):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
    adapters = {c.gss_code: ports[2 + i] for i, c in enumerate(DEMO_COUNCILS)}
    return FederationPorts(ports[0], ports[1], adapters)


def check_ports_free(host: str, ports: FederationPorts) -> None:
    """Raise :class:`PortInUseError` for the first port that cannot be bound on ``host``."""
    for role, port in ports.roles():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PortInUseError(host, port, role) from exc


@dataclass(frozen=True)
class DataLayout:
    """Paths inside the demo data directory (see module docstring)."""

    root: Path

    def warehouse(self, council: DemoCouncil) -> Path:
        """The council's SQLite warehouse, as ``familyctx synth`` names it."""
        return self.root / f"{council.slug}.sqlite"

    @property
    def scenarios(self) -> Path:
        return self.root / "scenarios.json"

    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth.sqlite"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def oidc_state_dir(self) -> Path:
        return self.root / "oidc"

    @property
    def audit_database(self) -> Path:
        return self.root / "audit.sqlite"

    def adapter_config(self, council: DemoCouncil) -> Path:
        return self.config_dir / f"adapter-{council.slug}.yaml"

    @property
    def gateway_config(self) -> Path:
        return self.config_dir / "gateway.yaml"

    def has_synthetic_data(self) -> bool:
        """True when every council's warehouse and the scenarios file exist."""
        return self.scenarios.is_file() and all(self.warehouse(c).is_file() for c in DEMO_COUNCILS)
