"""A local federation on loopback: OIDC provider, three council adapters and the gateway.

Each part runs as its own process (``familyctx ... serve`` with this interpreter), supervised by
:class:`~familyctx.demo.supervisor.Supervisor`. Used by ``familyctx demo`` and by the end-to-end tests.
The gateway reaches the adapters over mutual TLS with a development PKI kept in the data directory
(:mod:`familyctx.demo.trust`); adapters are probed for readiness over that same mutual TLS.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.demo.configs import write_adapter_configs, write_gateway_config
from familyctx.demo.errors import DataBuildError
from familyctx.demo.layout import DataLayout, FederationPorts, check_ports_free
from familyctx.demo.readiness import TlsClient, grpc_health_serving, http_ok, wait_until_ready
from familyctx.demo.supervisor import ChildProcess, Supervisor, familyctx_argv, private_opener
from familyctx.demo.trust import ensure_demo_pki
from familyctx.trust.pki import DevPki, adapter_dns_name

__all__ = ["Federation", "FederationOptions", "adapter_child_name"]


def adapter_child_name(council: DemoCouncil) -> str:
    """Supervisor name of a council's adapter process, e.g. ``adapter-stockport``."""
    return f"adapter-{council.slug}"


@dataclass(frozen=True)
class FederationOptions:
    """``people``/``seed``: synthetic data size and seed (the data is made "as of" today, so that
    sources look fresh); ``deadline_ms``: the gateway's per-adapter
    deadline; ``ready_timeout_seconds``: how long each process may take to become ready; ``umask``:
    file-creation mask of every child (default 077: owner-only files, the audit log holds query terms);
    ``registry``: list the councils in a registry file the gateway re-reads
    (``<data>/config/councils.yaml``) rather than inline in ``gateway.yaml``."""

    host: str = "127.0.0.1"
    people: int = 300
    seed: int = 42
    deadline_ms: int = 2000
    ready_timeout_seconds: float = 60.0
    step_timeout_seconds: float = 600.0
    grace_seconds: float = 5.0
    umask: int = 0o077
    registry: bool = False


class Federation:
    """Builds the data and configuration, starts every process and stops them again.

    Use as a context manager or call :meth:`stop`. ``report`` receives one-line progress messages.
    Raises :class:`~familyctx.demo.errors.DemoError` subclasses: ``PortInUseError``,
    ``DataBuildError``, ``ChildExitedError``, ``NotReadyError``.
    """

    def __init__(
        self,
        data_dir: Path,
        ports: FederationPorts,
        options: FederationOptions | None = None,
        *,
        report: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.layout = DataLayout(data_dir.resolve())
        self.ports = ports
        self.options = options or FederationOptions()
        self.supervisor = Supervisor(grace_seconds=self.options.grace_seconds)
        self._report = report

    def __enter__(self) -> Federation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://{self.options.host}:{self.ports.oidc}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.options.host}:{self.ports.gateway}"

    def adapter_address(self, gss_code: str) -> str:
        return f"{self.options.host}:{self.ports.adapters[gss_code]}"

    @property
    def pki(self) -> DevPki:
        """The development PKI in the data directory (written by :meth:`build`): the CA, the gateway's
        client certificate and assertion key, each adapter's server certificate."""
        return DevPki(directory=self.layout.pki_dir, councils=tuple(c.gss_code for c in DEMO_COUNCILS))

    def _adapter_ready(self, gss_code: str) -> Callable[[], bool]:
        """Probe: the adapter's health service answers SERVING over mutual TLS (the gateway's identity)."""
        pki = self.pki
        tls = TlsClient(pki.ca_cert, pki.gateway_cert, pki.gateway_key, adapter_dns_name(gss_code))
        return grpc_health_serving(self.adapter_address(gss_code), tls=tls)

    def child(self, name: str) -> ChildProcess:
        """A running (or exited) child by name: ``oidc``, ``gateway``, ``adapter-<slug>``."""
        return self.supervisor.children[name]

    def check_ports(self) -> None:
        """Raise :class:`~familyctx.demo.errors.PortInUseError` naming the first port already taken."""
        check_ports_free(self.options.host, self.ports)

    # -- building -------------------------------------------------------------------------------

    def _run_step(self, what: str, args: list[str], log_name: str) -> None:
        log_path = self.layout.log_dir / log_name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab", opener=private_opener) as log:
            try:
                result = subprocess.run(
                    familyctx_argv(*args),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=self.options.step_timeout_seconds,
                    check=False,
                    umask=self.options.umask,
                )
            except subprocess.TimeoutExpired as exc:
                raise DataBuildError(f"{what} took longer than {exc.timeout:.0f} s; see {log_path}") from exc
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise DataBuildError(f"{what} failed (exit {result.returncode}); see {log_path}:\n{tail}")

    def build(self) -> None:
        """Synthesise the councils' data if absent, write configs, prepare each adapter's indexes.

        The data directory is made private first (mode 0700, owner-only contents); raises
        :class:`~familyctx.demo.errors.DataDirError` when it cannot be.
        """
        self.layout.make_private()
        if self.layout.has_synthetic_data():
            self._report(f"using the synthetic data already in {self.layout.root} (delete it to rebuild)")
        else:
            self._report(
                f"synthesising {self.options.people} people (seed {self.options.seed}) "
                f"into {self.layout.root}"
            )
            self._run_step(
                "familyctx synth",
                [
                    "synth",
                    "--out",
                    str(self.layout.root),
                    "--people",
                    str(self.options.people),
                    "--seed",
                    str(self.options.seed),
                    "--as-of",
                    dt.datetime.now(dt.UTC).date().isoformat(),
                ],
                "synth.log",
            )
        pki, created = ensure_demo_pki(self.layout)
        self._report(
            f"{'wrote' if created else 'using'} the development PKI (mutual TLS, assertion key) "
            f"in {pki.directory}"
        )
        configs = write_adapter_configs(self.layout, self.ports, self.options.host, pki)
        write_gateway_config(
            self.layout,
            self.ports,
            self.options.host,
            pki,
            deadline_ms=self.options.deadline_ms,
            registry=self.options.registry,
        )
        for council in DEMO_COUNCILS:
            self._report(f"preparing the {council.name} adapter's search indexes")
            self._run_step(
                f"familyctx adapter prepare ({council.name})",
                ["adapter", "prepare", "--config", str(configs[council.gss_code])],
                f"prepare-{council.slug}.log",
            )

    # -- running --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start OIDC, the adapters and the gateway; return once each is ready.

        On any failure every child already started is stopped before the error propagates.
        """
        host = self.options.host
        self.check_ports()
        self.layout.make_private()
        logs = self.layout.log_dir
        timeout = self.options.ready_timeout_seconds
        try:
            oidc = self.supervisor.start(
                "oidc",
                familyctx_argv(
                    "oidc",
                    "serve",
                    "--host",
                    host,
                    "--port",
                    str(self.ports.oidc),
                    "--state-dir",
                    str(self.layout.oidc_state_dir),
                ),
                log_path=logs / "oidc.log",
                umask=self.options.umask,
            )
            adapters = []
            for council in DEMO_COUNCILS:
                child = self.supervisor.start(
                    adapter_child_name(council),
                    familyctx_argv(
                        "adapter",
                        "serve",
                        "--config",
                        str(self.layout.adapter_config(council)),
                        "--host",
                        host,
                        "--port",
                        str(self.ports.adapters[council.gss_code]),
                    ),
                    log_path=logs / f"{adapter_child_name(council)}.log",
                    umask=self.options.umask,
                )
                adapters.append((council, child))
            wait_until_ready(
                oidc,
                http_ok(f"{self.issuer}/.well-known/openid-configuration"),
                what="OIDC provider",
                timeout_seconds=timeout,
            )
            for council, child in adapters:
                wait_until_ready(
                    child,
                    self._adapter_ready(council.gss_code),
                    what=f"{council.name} adapter",
                    timeout_seconds=timeout,
                )
            gateway = self.supervisor.start(
                "gateway",
                familyctx_argv(
                    "gateway",
                    "serve",
                    "--config",
                    str(self.layout.gateway_config),
                    "--host",
                    host,
                    "--port",
                    str(self.ports.gateway),
                ),
                log_path=logs / "gateway.log",
                umask=self.options.umask,
            )
            wait_until_ready(
                gateway, http_ok(f"{self.gateway_url}/readyz"), what="gateway", timeout_seconds=timeout
            )
        except BaseException:
            self.stop()
            raise
        self._report(f"all processes ready; logs in {logs}")

    def restart_adapter(self, gss_code: str) -> None:
        """Stop (if needed) and start again one council's adapter; return once it is SERVING."""
        council = next(c for c in DEMO_COUNCILS if c.gss_code == gss_code)
        name = adapter_child_name(council)
        previous = self.supervisor.children[name]
        self.supervisor.stop(name)
        child = self.supervisor.start(
            name, previous.argv, log_path=previous.log_path, umask=self.options.umask
        )
        wait_until_ready(
            child,
            self._adapter_ready(gss_code),
            what=f"{council.name} adapter",
            timeout_seconds=self.options.ready_timeout_seconds,
        )

    def stop(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL after the grace period)."""
        self.supervisor.stop_all()
