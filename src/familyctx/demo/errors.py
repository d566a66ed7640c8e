"""The demo orchestrator's error tree (root :class:`DemoError`); messages say what to do next."""

from __future__ import annotations


class DemoError(Exception):
    """Root of every error raised while building or running the local federation."""


class PortInUseError(DemoError):
    """A port the federation needs is already taken on the loopback address."""

    def __init__(self, host: str, port: int, role: str) -> None:
        self.host, self.port, self.role = host, port, role
        super().__init__(
            f"port {port} on {host} (for the {role}) is already in use. Find what holds it with "
            f"`ss -ltnp 'sport = :{port}'` (or `lsof -i :{port}`) and stop it, or choose other ports "
            "with --base-port / --gateway-port / --oidc-port / --adapter-base-port."
        )


class ChildExitedError(DemoError):
    """A child process exited before it became ready."""


class NotReadyError(DemoError):
    """A child process did not become ready within its timeout."""


class DataBuildError(DemoError):
    """Building the synthetic data or preparing an adapter's indexes failed."""


class DataDirError(DemoError):
    """The data directory cannot be created or made private (a file in the way, no permission)."""
