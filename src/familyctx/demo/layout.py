"""Where the demo federation keeps its files and which loopback ports it uses.

Layout of the data directory (default ``var/demo``): the synthetic warehouses written by
``familyctx synth`` (``<slug>.sqlite``, ``ground_truth.sqlite``, ``scenarios.json``), ``config/``
(one YAML per adapter, ``gateway.yaml``), ``logs/`` (one log per child), ``oidc/`` (the provider's
signing key), ``pki/`` (the development CA, mutual TLS certificates, the gateway's assertion key and
each adapter's tree-head signing key), ``audit.sqlite`` (the gateway's audit log) and
``disclosure-<slug>.sqlite`` (each adapter's own disclosure log). The directory is private: mode 0700,
and everything in it owner-only (:meth:`DataLayout.make_private`), since the audit logs hold query terms
and requesters' details.
"""

from __future__ import annotations

import os
import socket
import stat
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.demo.errors import DataDirError, PortInUseError

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

    def clash(self) -> str | None:
        """A message naming two listeners given the same port, or None when every port differs."""
        seen: dict[int, str] = {}
        for role, port in self.roles():
            if port in seen:
                return f"the {seen[port]} and the {role} would both use port {port}; choose different ports"
            seen[port] = role
        return None

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
    def pki_dir(self) -> Path:
        """The development PKI (``familyctx.trust.pki`` file names): CA, certificates, assertion key."""
        return self.root / "pki"

    @property
    def audit_database(self) -> Path:
        return self.root / "audit.sqlite"

    def disclosure_database(self, council: DemoCouncil) -> Path:
        """The council adapter's own disclosure log (SQLite; ``disclosure_log.database_url``)."""
        return self.root / f"disclosure-{council.slug}.sqlite"

    def adapter_config(self, council: DemoCouncil) -> Path:
        return self.config_dir / f"adapter-{council.slug}.yaml"

    @property
    def gateway_config(self) -> Path:
        return self.config_dir / "gateway.yaml"

    @property
    def council_registry(self) -> Path:
        """The council registry file the gateway re-reads (``familyctx demo --registry`` only)."""
        return self.config_dir / "councils.yaml"

    def make_private(self) -> None:
        """Create the data directory (and its ``config``, ``logs``, ``oidc``) with mode 0700 and take
        group/other permissions off anything already in it (e.g. files from an older run).

        Raises :class:`DataDirError` when it cannot (a file in the way, no permission).
        """
        try:
            for directory in (self.root, self.config_dir, self.log_dir, self.oidc_state_dir):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root.chmod(0o700)
            for dirpath, dirnames, filenames in os.walk(self.root):
                for name in (*dirnames, *filenames):
                    path = os.path.join(dirpath, name)
                    mode = os.lstat(path).st_mode
                    if not stat.S_ISLNK(mode) and mode & 0o077:
                        os.chmod(path, stat.S_IMODE(mode) & 0o700)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DataDirError(
                f"cannot use {self.root} as the demo's data directory ({reason} at {exc.filename}); "
                "give --data-dir a directory you own (it is created if absent)"
            ) from exc

    def has_synthetic_data(self) -> bool:
        """True when every council's warehouse and the scenarios file exist."""
        return self.scenarios.is_file() and all(self.warehouse(c).is_file() for c in DEMO_COUNCILS)
