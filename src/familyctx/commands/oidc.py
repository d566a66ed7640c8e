"""``familyctx oidc serve``: the development OpenID Connect provider (docs/demo.md).

DEVELOPMENT ONLY: demo users share the published password ``demo``. Refuses a non-loopback address
unless ``--allow-non-loopback`` is given.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class LogLevel(StrEnum):
    """uvicorn/logging levels accepted by ``--log-level``."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


oidc_app = typer.Typer(help="Development OpenID Connect provider (demo users; never for production).")


@oidc_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0-65535).")] = 9000,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL; default http://HOST:PORT.")] = None,
    state_dir: Annotated[
        Path,
        typer.Option(file_okay=False, help="Directory keeping the RSA signing key (0600) across restarts."),
    ] = Path("var/oidc"),
    allow_non_loopback: Annotated[
        bool, typer.Option("--allow-non-loopback", help="Allow a non-loopback HOST (isolated networks only).")
    ] = False,
    log_level: Annotated[
        LogLevel, typer.Option(case_sensitive=False, help="uvicorn log level.")
    ] = LogLevel.info,
) -> None:
    """Serve discovery, JWKS and the token endpoint until interrupted."""
    import logging

    import uvicorn
    from familyctx_oidc import OidcDevError, OidcSettings, create_app
    from pydantic import ValidationError

    logging.basicConfig(level=log_level.value.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = OidcSettings(
            host=host, port=port, issuer=issuer, state_dir=state_dir, allow_non_loopback=allow_non_loopback
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid provider settings ({problems})", err=True)
        raise typer.Exit(code=2) from None
    try:
        settings.check_bind_address()
        app = create_app(settings)
    except OidcDevError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"oidc provider issuer {settings.effective_issuer()} (development only)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level.value, access_log=False)


def register(app: typer.Typer) -> None:
    """Add ``familyctx oidc ...`` to the command-line tool."""
    app.add_typer(oidc_app, name="oidc")
