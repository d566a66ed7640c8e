"""``familyctx oidc serve``: the development OpenID Connect provider (docs/demo.md).

DEVELOPMENT ONLY: demo users share the published password ``demo``. Refuses a non-loopback address
unless ``--allow-non-loopback`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

oidc_app = typer.Typer(help="Development OpenID Connect provider (demo users; never for production).")


@oidc_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 9000,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL; default http://HOST:PORT.")] = None,
    state_dir: Annotated[
        Path, typer.Option(help="Directory keeping the RSA signing key (mode 0600) across restarts.")
    ] = Path("var/oidc"),
    allow_non_loopback: Annotated[
        bool, typer.Option("--allow-non-loopback", help="Allow a non-loopback HOST (isolated networks only).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve discovery, JWKS and the token endpoint until interrupted."""
    import logging

    import uvicorn
    from familyctx_oidc import OidcDevError, OidcSettings, create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = OidcSettings(
        host=host, port=port, issuer=issuer, state_dir=state_dir, allow_non_loopback=allow_non_loopback
    )
    try:
        settings.check_bind_address()
        app = create_app(settings)
    except OidcDevError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"oidc provider issuer {settings.effective_issuer()} (development only)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def register(app: typer.Typer) -> None:
    """Add ``familyctx oidc ...`` to the command-line tool."""
    app.add_typer(oidc_app, name="oidc")
