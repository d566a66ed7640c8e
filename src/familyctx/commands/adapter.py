"""``familyctx adapter serve`` and ``familyctx adapter prepare``: run one council's adapter."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

adapter_app = typer.Typer(help="A council adapter in front of its own data warehouse.", no_args_is_help=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Adapter YAML config (council, cms, database_url, listen).")
]


def _load(config: Path, **overrides: object):  # type: ignore[no-untyped-def]
    from familyctx_adapter.errors import AdapterConfigError
    from familyctx_adapter.settings import load_settings

    try:
        return load_settings(config, **overrides)
    except AdapterConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


@adapter_app.command("serve")
def serve_command(
    config: ConfigOption,
    host: Annotated[str | None, typer.Option(help="Listen host (overrides the config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port; 0 for any free port.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the warehouse.")] = None,
    log_level: Annotated[str, typer.Option(help="Python logging level.")] = "INFO",
) -> None:
    """Serve familycontext.v1.AdapterService and grpc.health.v1 until SIGTERM/SIGINT."""
    from familyctx_adapter.errors import AdapterError
    from familyctx_adapter.server import serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _load(config, listen={"host": host, "port": port}, database_url=database_url)
    try:
        serve(settings)
    except AdapterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


@adapter_app.command("prepare")
def prepare_command(
    config: ConfigOption,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the warehouse.")] = None,
) -> None:
    """Create the adapter's search indexes in the warehouse (idempotent) and check the mapping."""
    from familyctx_adapter.errors import AdapterError
    from familyctx_adapter.indexes import prepare_indexes
    from familyctx_adapter.sql_source import SqlWarehouseSource

    settings = _load(config, database_url=database_url)
    try:
        source = SqlWarehouseSource.from_settings(settings)
        try:
            created = prepare_indexes(source.w)
        finally:
            source.close()
    except AdapterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if created:
        typer.echo(f"created {len(created)} index(es): {', '.join(created)}")
    else:
        typer.echo("all adapter indexes already exist")


def register(app: typer.Typer) -> None:
    """Add ``familyctx adapter ...`` to the command-line tool."""
    app.add_typer(adapter_app, name="adapter")
