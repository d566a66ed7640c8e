"""``familyctx synth``: generate synthetic council warehouses, ground truth and planted scenarios."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""
    app.command("synth")(synth)


def _as_of(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD, e.g. 2026-11-01") from None


def synth(
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for <council>.sqlite, ground_truth.sqlite and scenarios.json."),
    ] = Path("var/demo"),
    people: Annotated[int, typer.Option("--people", help="True people across all councils (min 5).")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed and options, same data.")] = 42,
    council: Annotated[
        list[str] | None,
        typer.Option(
            "--council",
            help="Council slug to generate (repeatable; default all: stockport, leeds, manchester).",
        ),
    ] = None,
    database_url: Annotated[
        list[str] | None,
        typer.Option(
            "--database-url",
            help="SLUG=URL: write that council to a SQLAlchemy URL (e.g. PostgreSQL) instead "
            "of <out>/<slug>.sqlite (repeatable).",
        ),
    ] = None,
    noise: Annotated[
        float, typer.Option("--noise", help="Share of records given a real-data quirk, 0.0-1.0.")
    ] = 0.1,
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of", help="Reference date (YYYY-MM-DD) for ages, open episodes and warehouse refresh times."
        ),
    ] = "2026-11-01",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing output.")] = False,
) -> None:
    """Generate synthetic families across the demo councils, in each council's SSD flavour."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from familyctx.synth import SynthInputError, build_options, run
    from familyctx.synth.runner import check_targets

    console = Console(stderr=True)
    try:
        options = build_options(
            out=out,
            people=people,
            seed=seed,
            council_slugs=list(council or []),
            database_urls=list(database_url or []),
            noise=noise,
            force=force,
            as_of=_as_of(as_of),
        )
    except SynthInputError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        check_targets(options)
    except SynthInputError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    columns = (
        TextColumn("[bold]synth[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("people"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("people", total=options.people)
            result = run(options, progress=lambda n: bar.advance(task, n))
    except SynthInputError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - report the failure class, never data values
        console.print(f"[red]synth failed:[/] {type(exc).__name__}; no output was kept")
        raise typer.Exit(1) from None
    console.print(
        f"wrote {result.people:,} people in {result.households:,} households in {result.seconds:.1f} s"
    )
    for gss, target in result.targets.items():
        console.print(
            f"  {gss}: {result.records.get(gss, 0):,} person records, "
            f"{result.rows.get(gss, 0):,} rows -> {target}"
        )
    console.print(f"  ground truth and scenarios in {options.out}")
