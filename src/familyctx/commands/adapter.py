"""``familyctx adapter serve``, ``prepare``, ``migrate``, ``retention`` and ``check-policy``: run one
council's adapter."""

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
    from familyctx.trust.handshake_log import keep_handshake_log_lines

    # Before anything imports grpc: gRPC reads GRPC_VERBOSITY once, and its TLS handshake refusals
    # (callers without the gateway's client certificate) are logged by gRPC itself, at INFO.
    verbosity_note = keep_handshake_log_lines()

    from familyctx_adapter.errors import AdapterError
    from familyctx_adapter.server import serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if verbosity_note:
        logging.getLogger("familyctx.adapter").warning(verbosity_note)
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


@adapter_app.command("migrate")
def migrate_command(
    config: ConfigOption,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy URL of the disclosure log (overrides the config)."),
    ] = None,
) -> None:
    """Upgrade the adapter's disclosure log database to the schema this version needs (Alembic; idempotent).

    Exit status: 0 at head, 1 the database could not be upgraded, 2 the config is unusable.
    """
    from familyctx_adapter.disclosure_schema import schema_status, upgrade
    from sqlalchemy.exc import SQLAlchemyError

    from familyctx.auditlog.engine import create_log_engine

    settings = _load(config, disclosure_log={"database_url": database_url})
    engine = create_log_engine(settings.disclosure_log.database_url)
    try:
        before = schema_status(engine)
        after = upgrade(engine)
    except SQLAlchemyError as exc:
        typer.echo(
            f"error: the disclosure log database could not be upgraded ({type(exc).__name__})", err=True
        )
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
    if before.current == after.current:
        typer.echo(f"disclosure log schema already at {after.current}")
    else:
        typer.echo(f"disclosure log schema upgraded from {before.current or 'nothing'} to {after.current}")


@adapter_app.command("retention")
def retention_command(
    config: ConfigOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what is due; change nothing.")
    ] = False,
) -> None:
    """Redact disclosure log records older than disclosure_log.retention_days (per record class).

    The record's content and the personal data of its index rows are removed; its hash stays, so the
    log and every signed tree head still verify. Run daily.

    Exit status: 0 done, 1 the database cannot be used or its schema is not current, 2 the config is
    unusable.
    """
    from familyctx_adapter.disclosure_retention import apply_retention
    from familyctx_adapter.disclosure_schema import schema_status
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from familyctx.auditlog.engine import create_log_engine

    settings = _load(config)
    section = settings.disclosure_log
    url = make_url(section.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not url.database.startswith("file:"):
        if not Path(url.database).is_file():  # say so rather than create an empty database
            typer.echo(f"error: disclosure_log.database_url: no SQLite database at {url.database}", err=True)
            raise typer.Exit(code=1)
    engine = create_log_engine(url)
    try:
        status = schema_status(engine)
        if not status.at_head:
            typer.echo(
                "error: disclosure_log.database_url: the disclosure log schema is at "
                f"{status.current or 'nothing'}, this adapter needs {status.head}; run "
                "`familyctx adapter migrate --config <file>` first",
                err=True,
            )
            raise typer.Exit(code=1)
        report = apply_retention(engine, section, dry_run=dry_run)
    except SQLAlchemyError as exc:
        # The exception's class only: its text may carry the database URL (with a password).
        typer.echo(
            f"error: the disclosure log database cannot be used ({type(exc).__name__}); check "
            "disclosure_log.database_url and that the database server is reachable",
            err=True,
        )
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
    verb = "due for redaction" if dry_run else "redacted"
    for record_class, count in sorted(report.redacted.items()):
        days = section.retention_days[record_class]
        typer.echo(f"{record_class}: {count} {verb} (older than {days} days)")


#: GSS code used for "a worker from another council" in the check-policy table (no real council has it).
_OTHER_COUNCIL = "E99999999"


@adapter_app.command("check-policy")
def check_policy_command(
    config: ConfigOption,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Check this policy file instead of the config's policy_file."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="A dataset the council offers (repeatable). Default: every dataset the adapter supports, "
            "as when it starts.",
        ),
    ] = None,
    organisation: Annotated[
        list[str] | None,
        typer.Option(
            "--organisation", help="Also show rows for workers of this council (GSS code, repeatable)."
        ),
    ] = None,
) -> None:
    """Validate the council's sharing policy and print who gets which dataset for which purpose.

    Exit status: 0 valid, 1 the policy is broken (the message names the file, line and problem),
    2 the adapter config is unusable.
    """
    from familyctx_adapter.policy import PolicyError, SharingPolicy
    from familyctx_adapter.policy_table import render_table, sharing_rows
    from familyctx_adapter.sql_source import DATASET_INFO

    from familyctx.councils import check_gss_code

    settings = _load(config)
    council = settings.council
    datasets = list(dataset) if dataset else list(DATASET_INFO)
    path = policy or settings.policy_file
    try:
        loaded = SharingPolicy.load(
            path, council_gss=council.gss_code, datasets=datasets, council_name=council.name
        )
    except PolicyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    orgs = [(f"{council.name} (own)", council.gss_code), ("another council", _OTHER_COUNCIL)]
    for code in organisation or ():
        try:
            orgs.append((check_gss_code(code), code))
        except ValueError as exc:
            typer.echo(f"error: --organisation {exc}", err=True)
            raise typer.Exit(code=2) from None
    ids = list(loaded.checked.ids.values())
    typer.echo(f"{path}: valid sharing policy for {council.name} ({council.gss_code}), {len(ids)} policies:")
    typer.echo("  " + ", ".join(ids))
    typer.echo(f"datasets: {', '.join(datasets)}\n")
    typer.echo(render_table(loaded, sharing_rows(loaded, orgs)))


def register(app: typer.Typer) -> None:
    """Add ``familyctx adapter ...`` to the command-line tool."""
    app.add_typer(adapter_app, name="adapter")
