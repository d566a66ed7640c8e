"""``familyctx demo``: a whole federation on loopback, one sample query, then serve until Ctrl-C.

Starts the development OIDC provider, three council adapters and the gateway as separate processes
(logs under ``<data-dir>/logs``), asks for the family context of the planted ``mother_moved`` child as
sw.stockport, prints it, and keeps serving. ``--no-serve`` stops everything after printing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from familyctx.demo import Federation


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where data, configs, logs and the audit log go.")] = Path(
        "var/demo"
    ),
    people: Annotated[int, typer.Option(min=30, help="People to synthesise if data is absent.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 42,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after the sample query.")] = False,
    base_port: Annotated[
        int | None, typer.Option(help="Use ports BASE (gateway), BASE+1 (OIDC), BASE+2.. (adapters).")
    ] = None,
    gateway_port: Annotated[int | None, typer.Option(help="Gateway port (default 8000).")] = None,
    oidc_port: Annotated[int | None, typer.Option(help="OIDC provider port (default 9000).")] = None,
    adapter_base_port: Annotated[
        int | None, typer.Option(help="First adapter port; the others follow (default 50061).")
    ] = None,
    deadline_ms: Annotated[int, typer.Option(help="Gateway's deadline per adapter call, ms.")] = 2000,
    ready_timeout: Annotated[float, typer.Option(help="Seconds each process may take to be ready.")] = 60.0,
) -> None:
    """Run the local federation demo (see docs/demo.md)."""
    import signal

    from rich.console import Console
    from rich.markup import escape

    from familyctx.councils import DEMO_COUNCILS
    from familyctx.demo import DemoError, Federation, FederationOptions, FederationPorts, run_sample_queries
    from familyctx.gateway_client import ClientError

    console = Console()
    ports = FederationPorts.from_base(base_port) if base_port is not None else FederationPorts()
    adapters = dict(ports.adapters)
    if adapter_base_port is not None:
        adapters = {c.gss_code: adapter_base_port + i for i, c in enumerate(DEMO_COUNCILS)}
    ports = FederationPorts(gateway_port or ports.gateway, oidc_port or ports.oidc, adapters)
    options = FederationOptions(people=people, seed=seed, deadline_ms=deadline_ms,
                                ready_timeout_seconds=ready_timeout)

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    federation = Federation(data_dir, ports, options, report=lambda m: console.print(f"[dim]demo:[/] {m}"))
    exit_code = 0
    try:
        federation.check_ports()  # before the slow steps: a taken port is the commonest failure
        federation.build()
        federation.start()
        run_sample_queries(issuer=federation.issuer, gateway_url=federation.gateway_url,
                           scenarios_path=federation.layout.scenarios, console=console)
        if no_serve:
            return
        console.print(_serving_message(federation), highlight=False)
        died = federation.supervisor.wait_any_exit()
        console.print(f"[bold red]the {died.name} process exited (code {died.exited()}); stopping.[/] "
                      f"Its log: {escape(str(died.log_path))}")
        exit_code = 1
    except KeyboardInterrupt:
        console.print("\nstopping…")
    except (DemoError, ClientError) as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}", highlight=False)
        exit_code = 1
    finally:
        federation.stop()
    if exit_code:
        raise typer.Exit(code=exit_code)


def _serving_message(federation: Federation) -> str:
    """What is running and commands to try, with the planted child's real identifiers."""
    from familyctx.councils import DEMO_COUNCILS
    from familyctx.demo import load_scenario

    child = load_scenario(federation.layout.scenarios)["child"]
    where = ""
    if federation.issuer != "http://127.0.0.1:9000" or federation.gateway_url != "http://127.0.0.1:8000":
        where = f" --issuer {federation.issuer} --gateway {federation.gateway_url}"
    adapters = ", ".join(f"{c.name} {federation.adapter_address(c.gss_code)}" for c in DEMO_COUNCILS)
    return (
        f"\n[bold green]Serving.[/] Gateway {federation.gateway_url} (OpenAPI at "
        f"{federation.gateway_url}/openapi.json); OIDC provider {federation.issuer}; adapters {adapters}.\n"
        f"Logs: {federation.layout.log_dir}\nTry:\n"
        f"  familyctx query search --user sw.stockport --family-name \"{child['family_name']}\" "
        f"--dob {child['date_of_birth']} --purpose s47_enquiry --case-ref CASE-1{where}\n"
        f"  familyctx query family-context --user tm.leeds --council {child['gss_code']} "
        f"--person-id {child['local_person_id']} --purpose s17_assessment --case-ref CASE-2{where}\n"
        f"  curl -H \"Authorization: Bearer $(familyctx token --user sw.stockport"
        f"{' --issuer ' + federation.issuer if where else ''})\" {federation.gateway_url}/v1/sources\n"
        "Press Ctrl-C to stop."
    )


def register(app: typer.Typer) -> None:
    """Add ``familyctx demo`` to the command-line tool."""
    app.command("demo")(demo)
