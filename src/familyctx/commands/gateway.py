"""``familyctx gateway serve``: run the central gateway (FastAPI under uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

gateway_app = typer.Typer(
    help="The central gateway: token checks, fan-out, linkage, audit.", no_args_is_help=True
)


@gateway_app.command("serve")
def serve_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Gateway YAML config (listen, audit, oidc, adapters).")
    ],
    host: Annotated[str | None, typer.Option(help="Listen host (overrides the config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port; 0 for any free port.")] = None,
) -> None:
    """Serve the gateway's HTTP API until SIGTERM/SIGINT; prints "gateway ready on http://HOST:PORT"."""
    import socket

    import uvicorn
    from familyctx_gateway.app import create_app
    from familyctx_gateway.errors import GatewayConfigError
    from familyctx_gateway.settings import load_settings

    try:
        settings = load_settings(config)
        # Reads the files the settings name (mTLS identity, assertion key): before anything listens.
        app = create_app(settings)
    except GatewayConfigError as exc:
        # One line per bad field, like ``familyctx adapter serve``; exit 2 (usage / configuration error).
        for problem in exc.problems:
            typer.echo(f"error: {exc.source}: {problem}", err=True)
        raise typer.Exit(code=2) from None
    if host is not None:
        settings.listen.host = host
    if port is not None:
        settings.listen.port = port

    sock = socket.socket(socket.AF_INET6 if ":" in settings.listen.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.listen.host, settings.listen.port))
    except OSError as exc:
        typer.echo(f"error: cannot listen on {settings.listen.host}:{settings.listen.port}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    bound_port = sock.getsockname()[1]

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                typer.echo(f"gateway ready on http://{settings.listen.host}:{bound_port}")

    server = _Server(uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False))
    server.run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add ``gateway`` to the ``familyctx`` command."""
    app.add_typer(gateway_app, name="gateway")
