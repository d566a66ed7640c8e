"""``familyctx gateway serve``: run the central gateway (FastAPI under uvicorn); ``familyctx gateway
migrate``: bring its audit database's schema to the current version (Alembic); ``familyctx gateway
retention``: redact audit records past their retention period (docs/audit.md); ``familyctx gateway
check-policy``: validate the access policy and print who may do what (docs/access-control.md);
``familyctx gateway check-registry``: validate a council registry file offline (docs/deployment.md)."""

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

    SIGTERM or SIGINT: the gateway drains. From that moment /readyz answers 503 ("draining: the
    gateway is shutting down") while /healthz stays 200, new requests are answered 503 with
    Retry-After, and the requests in progress finish and commit their audit records. Once none is
    left, or listen.shutdown_grace_seconds after the signal, it stops listening; a request still
    running then is answered 503 with Retry-After and no data. Then it closes the adapters' channels
    and the audit store (familyctx_gateway/stopping.py).

    SIGHUP: re-reads the council registry file (registry_file) at once; with the councils listed
    inline (adapters:) it logs that there is nothing to reload and carries on. Before the gateway is
    ready and while it shuts down, SIGHUP is ignored.

    Exit status: 2 when the config is invalid, 1 when the audit database or the port cannot be used.
    """
    import signal

    # First of all, before the imports and checks below (seconds on a busy machine): a SIGHUP in
    # start-up or shutdown is ignored rather than killing the gateway (its default action); while
    # serving, the council registry's handler takes its place and puts SIG_IGN back when it closes.
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    import logging
    import math
    import socket
    import time
    from types import FrameType

    import uvicorn
    from familyctx_gateway.app import create_app
    from familyctx_gateway.errors import GatewayConfigError
    from familyctx_gateway.settings import load_settings
    from familyctx_gateway.stopping import drain, mark_stopping, shutdown_state

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
    log = logging.getLogger("familyctx_gateway.stopping")

    class _Server(uvicorn.Server):
        #: When the first SIGTERM/SIGINT arrived (time.monotonic()): the grace period starts there.
        stop_requested: float | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                typer.echo(f"gateway ready on http://{settings.listen.host}:{bound_port}")

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # From the signal on, /readyz answers 503 and new requests are refused (a flag: safe here).
            mark_stopping(app)
            if self.stop_requested is None:
                self.stop_requested = time.monotonic()
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            mark_stopping(app)
            grace = settings.listen.shutdown_grace_seconds
            deadline = (self.stop_requested or time.monotonic()) + grace
            state = shutdown_state(app)
            if state.in_progress:
                log.info("draining requests_in_progress=%d grace_seconds=%d", state.in_progress, grace)
                # Still listening: probes see "draining" until the requests in progress are done.
                left = await drain(state, deadline=deadline, give_up=lambda: self.force_exit)
                log.info("drained requests_still_in_progress=%d", left)
            # The rest of the grace period is uvicorn's: it stops listening, waits for what still runs,
            # then cancels it (answered 503 by StoppingAnswers, not 500).
            self.config.timeout_graceful_shutdown = max(0, math.ceil(deadline - time.monotonic()))
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


@gateway_app.command("check-registry")
def check_registry_command(
    file: Annotated[Path, typer.Argument(help="The council registry file (YAML, a councils: list).")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help=_CONFIG_HELP + " Its max_councils is used (default 500)."),
    ] = None,
) -> None:
    """Validate a council registry file offline, as the gateway does before applying it.

    Run it before renaming a new file over the one the gateway reads (docs/deployment.md, "The
    council registry"). Makes no network call: addresses are checked for shape, not reached. Exit
    status: 0 valid, with the councils listed (GSS code, name, address); 2 with every problem found,
    one line each (field and rule, never the value).
    """
    from familyctx_gateway.registry import RegistryError, read_registry

    settings = _settings_or_exit(config) if config is not None else None
    if settings is not None:
        resilience, max_councils = settings.resilience, settings.max_councils
    else:
        from familyctx_gateway.settings import DEFAULT_MAX_COUNCILS, ResilienceSettings

        resilience, max_councils = ResilienceSettings(), DEFAULT_MAX_COUNCILS
    try:
        targets, digest = read_registry(file, resilience, max_councils=max_councils)
    except RegistryError as exc:
        for problem in exc.problems:
            typer.echo(f"error: council registry {file}: {problem}", err=True)
        raise typer.Exit(code=2) from None
    councils = f"{len(targets)} council{'s' if len(targets) != 1 else ''}"
    typer.echo(f"{file}: valid council registry, {councils} (sha256 {digest}):")
    width = max(len(t.name) for t in targets)
    for target in targets:
        typer.echo(f"  {target.gss_code}  {target.name:<{width}}  {target.address}")


def register(app: typer.Typer) -> None:
    """Add ``gateway`` to the ``familyctx`` command."""
    app.add_typer(gateway_app, name="gateway")
