"""``familyctx gateway serve``: run the central gateway (FastAPI under uvicorn); ``familyctx gateway
migrate``: bring its audit database's schema to the current version (Alembic); ``familyctx gateway
retention``: redact audit records past their retention period (docs/audit.md); ``familyctx gateway
check-policy``: validate the access policy and print who may do what (docs/access-control.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = ["register"]

gateway_app = typer.Typer(
    help="The central gateway: token checks, fan-out, linkage, audit.", no_args_is_help=True
)

_CONFIG_HELP = "Gateway YAML config (listen, audit, oidc, adapters)."


def _settings_or_exit(config: Path) -> Any:
    """The gateway settings from ``config``; on a configuration error, one line per problem and exit 2."""
    from familyctx_gateway.errors import GatewayConfigError
    from familyctx_gateway.settings import load_settings

    try:
        return load_settings(config)
    except GatewayConfigError as exc:
        _config_error(exc)


def _config_error(exc: Any) -> NoReturn:
    for problem in exc.problems:
        typer.echo(f"error: {exc.source}: {problem}", err=True)
    raise typer.Exit(code=2)


def _database_error(exc: BaseException) -> NoReturn:
    # The exception's class only: its text may carry the database URL (with a password).
    typer.echo(
        f"error: the audit database cannot be used ({type(exc).__name__}); check audit.database_url "
        "and that the database server is reachable",
        err=True,
    )
    raise typer.Exit(code=1)


@gateway_app.command("migrate")
def migrate_command(
    config: Annotated[Path, typer.Option("--config", "-c", help=_CONFIG_HELP)],
) -> None:
    """Upgrade the audit database (audit.database_url) to the schema this gateway needs.

    Idempotent, safe to run from several hosts at once; a database made by an earlier release has its
    audit records carried into the tamper-evident log. Exit 0 done, 1 database error, 2 config error.
    """
    from familyctx_gateway.migrations import upgrade_to_head
    from sqlalchemy.exc import SQLAlchemyError

    from familyctx.auditlog import create_log_engine

    settings = _settings_or_exit(config)
    engine = create_log_engine(settings.audit.database_url)
    try:
        before, after = upgrade_to_head(engine)
    except (SQLAlchemyError, OSError) as exc:
        _database_error(exc)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"audit database already at {after}")
    else:
        typer.echo(f"audit database upgraded from {before or 'an unversioned schema'} to {after}")


@gateway_app.command("retention")
def retention_command(
    config: Annotated[Path, typer.Option("--config", "-c", help=_CONFIG_HELP)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what is due.")] = False,
) -> None:
    """Redact audit records older than audit.retention_days (per record class).

    The record's content and the personal data in its index rows are removed; its hash stays, so the
    log and every signed tree head still verify. Run daily. Exit 0 done, 1 database error, 2 config error.
    """
    from familyctx_gateway.audit_retention import apply_retention
    from familyctx_gateway.migrations import SchemaNotCurrent, ensure_schema
    from sqlalchemy.exc import SQLAlchemyError

    from familyctx.auditlog import create_log_engine

    settings = _settings_or_exit(config)
    engine = create_log_engine(settings.audit.database_url)
    try:
        ensure_schema(engine, auto_migrate=False)
        report = apply_retention(engine, settings.audit, dry_run=dry_run)
    except SchemaNotCurrent as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except (SQLAlchemyError, OSError) as exc:
        _database_error(exc)
    finally:
        engine.dispose()
    verb = "due for redaction" if dry_run else "redacted"
    for record_class, count in sorted(report.redacted.items()):
        days = settings.audit.retention_days[record_class]
        typer.echo(f"{record_class}: {count} {verb} (older than {days} days)")


def _check_audit_schema(settings: Any) -> None:
    """Before listening: the audit database must be reachable and at the current schema (or be
    upgraded now under ``audit.auto_migrate``); else a clear message and exit 1."""
    from familyctx_gateway.migrations import SchemaNotCurrent, ensure_schema
    from sqlalchemy.exc import SQLAlchemyError

    from familyctx.auditlog import create_log_engine

    engine = create_log_engine(settings.audit.database_url)
    try:
        ensure_schema(engine, auto_migrate=settings.audit.migrate_at_startup)
    except SchemaNotCurrent as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except (SQLAlchemyError, OSError) as exc:
        _database_error(exc)
    finally:
        engine.dispose()


@gateway_app.command("serve")
def serve_command(
    config: Annotated[Path, typer.Option("--config", "-c", help=_CONFIG_HELP)],
    host: Annotated[str | None, typer.Option(help="Listen host (overrides the config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port; 0 for any free port.")] = None,
) -> None:
    """Serve the gateway's HTTP API until SIGTERM/SIGINT; prints "gateway ready on http://HOST:PORT".

    On SIGTERM/SIGINT it stops listening at once (new connections are refused), lets the requests in
    progress finish and commit their audit records for up to ``listen.shutdown_grace_seconds``
    (requests still running then are cancelled and get no answer), then closes the adapters' channels
    and the audit store (uvicorn's graceful shutdown with ``timeout_graceful_shutdown``).
    """
    import socket

    import uvicorn
    from familyctx_gateway.app import create_app, mark_stopping
    from familyctx_gateway.errors import GatewayConfigError
    from familyctx_gateway.settings import load_settings

    try:
        settings = load_settings(config)
        # Reads the files the settings name (mTLS identity, assertion key): before anything listens.
        app = create_app(settings)
    except GatewayConfigError as exc:
        # One line per bad field, like ``familyctx adapter serve``; exit 2 (usage / configuration error).
        _config_error(exc)
    _check_audit_schema(settings)
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

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Requests still running when the grace period is over are answered 503, not 500.
            mark_stopping(app)
            await super().shutdown(sockets=sockets)

    server = _Server(
        uvicorn.Config(
            app,
            log_level=settings.log_level.lower(),
            access_log=False,
            timeout_graceful_shutdown=settings.listen.shutdown_grace_seconds,
        )
    )
    server.run(sockets=[sock])


@gateway_app.command("check-policy")
def check_policy_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help=_CONFIG_HELP + " Its access_policy_file is checked."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Check this access policy file instead (default: the config's access_policy_file, else the "
            "packaged familyctx_gateway/policies/access.cedar).",
        ),
    ] = None,
) -> None:
    """Validate the gateway access policy as start-up does and print who may do what, for which purpose.

    Prints a table role x action x purpose -> allowed / break glass / refused, asked of the policy
    itself. Exit status: 0 valid; 2 the policy (or the config) is unusable, with one line saying why.
    """
    import textwrap

    from familyctx_gateway.access import DEFAULT_POLICY_FILE, AccessPolicy
    from familyctx_gateway.access_table import access_rows, render_table
    from familyctx_gateway.errors import GatewayConfigError

    path = policy
    if path is None and config is not None:
        path = _settings_or_exit(config).access_policy_file
    path = path or DEFAULT_POLICY_FILE
    try:
        loaded = AccessPolicy.load(path)
    except GatewayConfigError as exc:
        typer.echo("error: " + " ".join(str(exc).split()), err=True)  # one line, whatever Cedar wrote
        raise typer.Exit(code=2) from None
    ids = loaded.policy_ids
    typer.echo(f"{path}: valid gateway access policy, {len(ids)} policies:")
    typer.echo(
        textwrap.fill(
            ", ".join(ids), 100, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
        )
    )
    lifted = ", ".join(loaded.purpose_restrictions) or "none"
    typer.echo(f"purpose restrictions break glass may lift: {lifted}\n")
    typer.echo(render_table(access_rows(loaded)))


def register(app: typer.Typer) -> None:
    """Add ``gateway`` to the ``familyctx`` command."""
    app.add_typer(gateway_app, name="gateway")
