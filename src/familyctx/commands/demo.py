"""``familyctx demo``: a whole federation on loopback, one sample query, then serve until Ctrl-C.

Starts the development OIDC provider, three council adapters and the gateway as separate processes
(logs under ``<data-dir>/logs``), asks for the family context of the planted ``mother_moved`` child as
sw.stockport, prints it, and keeps serving. ``--no-serve`` stops everything after printing.

Every file the demo and its children write is owner-only: the process umask is set to 077 before
anything is built (children inherit it) and the data directory is made mode 0700, because the audit log
holds query terms (personal data). Port options are range-checked (exit 2 with a message).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from familyctx.councils import DEMO_COUNCILS

if TYPE_CHECKING:
    from rich.console import Console

    from familyctx.demo import Federation

#: Highest TCP port; the demo's listeners: gateway, OIDC provider, one adapter per council.
_MAX_PORT = 65535
_LISTENERS = 2 + len(DEMO_COUNCILS)


def demo(
    data_dir: Annotated[
        Path,
        typer.Option(file_okay=False, help="Where data, configs, logs and the audit log go (a directory)."),
    ] = Path("var/demo"),
    people: Annotated[
        int, typer.Option(min=30, max=1_000_000, help="People to synthesise if data is absent.")
    ] = 300,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic data (0 or more).")] = 42,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after the sample query.")] = False,
    base_port: Annotated[
        int | None,
        typer.Option(
            min=1024,
            max=_MAX_PORT - _LISTENERS + 1,
            help="Use ports BASE (gateway), BASE+1 (OIDC), BASE+2.. (adapters).",
        ),
    ] = None,
    gateway_port: Annotated[
        int | None, typer.Option(min=1, max=_MAX_PORT, help="Gateway port (default 8000).")
    ] = None,
    oidc_port: Annotated[
        int | None, typer.Option(min=1, max=_MAX_PORT, help="OIDC provider port (default 9000).")
    ] = None,
    adapter_base_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=_MAX_PORT - len(DEMO_COUNCILS) + 1,
            help="First adapter port; the others follow (default 50061).",
        ),
    ] = None,
    deadline_ms: Annotated[
        int, typer.Option(min=1, max=600_000, help="Gateway's deadline per adapter call, ms.")
    ] = 2000,
    ready_timeout: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="Seconds each process may take to be ready.")
    ] = 60.0,
    registry: Annotated[
        bool,
        typer.Option(
            "--registry",
            help="List the councils in a registry file the gateway re-reads "
            "(<data-dir>/config/councils.yaml; rewritten at each start) "
            "instead of inline in gateway.yaml.",
        ),
    ] = False,
) -> None:
    """Run the local federation demo (see docs/demo.md)."""
    import os
    import signal

    from rich.console import Console
    from rich.markup import escape

    from familyctx.demo import DemoError, Federation, FederationOptions, FederationPorts, run_sample_queries
    from familyctx.demo.errors import DataDirError
    from familyctx.gateway_client import ClientError

    console = Console()
    ports = FederationPorts.from_base(base_port) if base_port is not None else FederationPorts()
    adapters = dict(ports.adapters)
    if adapter_base_port is not None:
        adapters = {c.gss_code: adapter_base_port + i for i, c in enumerate(DEMO_COUNCILS)}
    ports = FederationPorts(gateway_port or ports.gateway, oidc_port or ports.oidc, adapters)
    clash = ports.clash()
    if clash:
        raise typer.BadParameter(
            clash, param_hint="'--base-port' / '--gateway-port' / '--oidc-port' / '--adapter-base-port'"
        )
    # Owner-only files for the demo and every child it starts (the audit log holds query terms).
    os.umask(0o077)
    options = FederationOptions(
        people=people,
        seed=seed,
        deadline_ms=deadline_ms,
        ready_timeout_seconds=ready_timeout,
        registry=registry,
    )

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    federation = Federation(data_dir, ports, options, report=lambda m: console.print(f"[dim]demo:[/] {m}"))
    exit_code = 0
    try:
        federation.check_ports()  # before the slow steps: a taken port is the commonest failure
        federation.build()
        if not registry:  # a --registry run's file, unused now (the councils are in gateway.yaml)
            federation.layout.council_registry.unlink(missing_ok=True)
        federation.start()
        run_sample_queries(
            issuer=federation.issuer,
            gateway_url=federation.gateway_url,
            scenarios_path=federation.layout.scenarios,
            console=console,
        )
        if no_serve:
            return
        _print_serving_message(federation, console)
        died = federation.supervisor.wait_any_exit()
        console.print(
            f"[bold red]the {died.name} process {died.exit_description()}; stopping.[/] "
            f"Its log: {escape(str(died.log_path))}"
        )
        exit_code = 1
    except KeyboardInterrupt:
        console.print("\nstopping…")
    except DataDirError as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}", highlight=False)
        exit_code = 2
    except (DemoError, ClientError) as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}", highlight=False)
        exit_code = 1
    finally:
        federation.stop()
    if exit_code:
        raise typer.Exit(code=exit_code)


def _print_serving_message(federation: Federation, console: Console) -> None:
    """What is running and commands to try, with the planted child's real identifiers. The commands
    are printed unwrapped and unhighlighted, starting with the ``familyctx`` the user can run."""
    from rich.markup import escape

    from familyctx.demo import load_scenario
    from familyctx.demo.hints import cli_invocation, try_commands

    child = load_scenario(federation.layout.scenarios)["child"]
    adapters = ", ".join(f"{c.name} {federation.adapter_address(c.gss_code)}" for c in DEMO_COUNCILS)
    # Process ids, for `kill -STOP` (a council that hangs) and `kill -HUP` (reload the registry).
    pids = ", ".join(f"{name} {child.pid}" for name, child in federation.supervisor.children.items())
    registry = ""
    if federation.options.registry:
        registry = (
            f"Council registry: {escape(str(federation.layout.council_registry))} (re-read every 5 s "
            "and on SIGHUP)\n"
        )
    console.print(
        f"\n[bold green]Serving.[/] Gateway {federation.gateway_url} (OpenAPI at "
        f"{federation.gateway_url}/openapi.json); OIDC provider {federation.issuer}; adapters {adapters}.\n"
        f"Process ids: {pids}\n{registry}"
        f"Logs: {escape(str(federation.layout.log_dir))}\nTry:",
        highlight=False,
    )
    for line in try_commands(
        cli_invocation(), child, issuer=federation.issuer, gateway_url=federation.gateway_url
    ):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop.", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``familyctx demo`` to the command-line tool."""
    app.command("demo")(demo)
