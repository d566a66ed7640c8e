"""``familyctx linkage``: evaluate the record linker against synthetic ground truth, and retrain it.

``familyctx linkage eval`` (``make linkage-eval``) scores the packaged model (or ``--model PATH``, e.g. a
retrained one before it is deployed) at several noise levels and writes docs/linkage.md; it exits 1 when
the targets at the default noise level are missed, or when the world is too small to judge them.
``familyctx linkage train`` (``make linkage-train``) retrains the model (Splink) on a synthetic world; the
model is checked (loaded back) before it is moved into ``--out``.
Bad options exit 2 with a one-line message; a failure exits 1 with a one-line message, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: Bounds of --people (the synthetic generator's own).
MIN_PEOPLE = 5
MAX_PEOPLE = 5_000_000
#: Training world suggested when training fails for want of data: the default size, which trains every
#: level (the packaged model). Measured at noise 0.1: 2,000 people (seed 42), 5,000 (seeds 42, 1) and
#: 10,000 (seed 1) leave a level untrained (given_name 'Jaro-Winkler >= 0.80' most often); 5,000 and
#: 10,000 people with seed 7 train. Not enforced: a smaller world may train.
TRAIN_MIN_PEOPLE = 20_000

linkage_app = typer.Typer(
    name="linkage",
    help="Record linkage across councils: evaluate the linker, retrain its model.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``linkage`` command group (``eval``, ``train``) to ``app``."""
    app.add_typer(linkage_app, name="linkage")


def parse_noise_levels(text: str) -> list[float]:
    """'0,0.05,0.1' -> [0.0, 0.05, 0.1]: comma-separated shares in 0..1, duplicates dropped (order kept).

    Raises ``typer.BadParameter`` (exit 2) for an empty list, a non-number or a value outside 0..1.
    """
    levels: list[float] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise typer.BadParameter(
                "noise levels must be numbers between 0 and 1, comma-separated (e.g. 0,0.1,0.2); "
                f"got {item!r}"
            ) from None
        if not 0.0 <= value <= 1.0:  # also rejects nan
            raise typer.BadParameter(f"each noise level must be between 0 and 1; got {item}")
        if value not in levels:
            levels.append(value)
    if not levels:
        raise typer.BadParameter("give at least one noise level, e.g. --noise 0.1")
    return levels


def _check_people(people: int) -> int:
    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise typer.BadParameter(f"--people must be between {MIN_PEOPLE} and {MAX_PEOPLE:,}; got {people}")
    return people


def _check_noise(noise: float) -> float:
    if not 0.0 <= noise <= 1.0:
        raise typer.BadParameter(f"--noise must be between 0 and 1; got {noise}")
    return noise


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


@linkage_app.command("eval")
def eval_command(
    people: Annotated[
        int,
        typer.Option("--people", help="True people in each synthetic world (min 5).", callback=_check_people),
    ] = 20_000,
    noise: Annotated[
        str,
        typer.Option("--noise", help="Noise levels to evaluate, comma-separated shares 0..1."),
    ] = "0,0.05,0.1,0.2,0.3",
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the synthetic worlds.")] = 42,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write the Markdown report here (e.g. docs/linkage.md)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model to evaluate: a directory with model.json and term_frequencies.json, or its "
            "model.json (default: the packaged model).",
        ),
    ] = None,
) -> None:
    """Score the linker against synthetic ground truth at several noise levels (exit 1 if targets missed
    or the world is too small to judge them)."""
    levels = parse_noise_levels(noise)
    if report is not None and report.exists() and report.is_dir():
        raise typer.BadParameter(f"--report {report} is a directory; give a file path")

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from familyctx.linkage import Linker, LinkModel, LinkModelError
    from familyctx.linkage.evaluate import DEFAULT_NOISE, check_targets, evaluate, sample_too_small
    from familyctx.linkage.report import write_report

    console = Console(stderr=True)
    try:
        linker = Linker(LinkModel.load(model)) if model is not None else Linker()
    except LinkModelError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"model: {linker.model.source}", soft_wrap=True, highlight=False)
    stages = ("generating", "reading", "blocking", "grading", "done")
    columns = (
        TextColumn("[bold]linkage eval[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("stages"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("", total=len(levels) * len(stages))

        def progress(level: float, stage: str) -> None:
            bar.update(task, description=f"noise {level:g}: {stage}", advance=1)

        evaluation = evaluate(levels, people=people, seed=seed, linker=linker, progress=progress)

    table = Table(title=f"Linkage against synthetic ground truth ({people:,} people, seed {seed})")
    for name in ("noise", "true pairs", "P certain", "P probable", "P possible", "R certain",
                 "R cert+prob", "R all", "merge P", "seconds"):
        table.add_column(name, justify="right")
    for r in evaluation.results:
        table.add_row(
            f"{r.noise:g}",
            f"{r.true_pairs:,}",
            _fmt(r.grade("certain").precision),
            _fmt(r.grade("probable").precision),
            _fmt(r.grade("possible").precision),
            _fmt(r.cumulative_for("certain").recall),
            _fmt(r.cumulative_for("certain + probable").recall),
            _fmt(r.cumulative_for("all grades").recall),
            _fmt(r.merge.precision),
            f"{sum(r.seconds.values()):.1f}",
        )
    if not console.is_terminal:
        console.width = max(console.width, 140)  # a log file: do not truncate the figures
    console.print(table)
    console.print(f"wall time {evaluation.seconds:.1f} s")
    if report is not None:
        try:
            report.parent.mkdir(parents=True, exist_ok=True)
            write_report(evaluation, report, linker=linker)
        except OSError as exc:
            message = f"cannot write {report}: {exc.strerror or exc}"
            console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
            raise typer.Exit(1) from None
        console.print(f"report written to {report}")
    default = evaluation.at(DEFAULT_NOISE)
    if default is None:
        console.print(f"[yellow]note:[/] targets apply at noise {DEFAULT_NOISE}, which was not evaluated")
        return
    too_small = sample_too_small(default)
    missed = [m for m in check_targets(evaluation) if m != too_small]
    for message in missed:
        console.print(f"[red]target missed:[/] {escape(message)}", soft_wrap=True)
    if too_small:
        console.print(f"[red]{escape(too_small)}[/]", soft_wrap=True)
    if missed or too_small:
        raise typer.Exit(1)
    console.print(f"[green]targets met at noise {DEFAULT_NOISE}[/]")


@linkage_app.command("train")
def train_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for model.json and term_frequencies.json.")
    ],
    people: Annotated[
        int,
        typer.Option("--people", help="True people in the training world (min 5).", callback=_check_people),
    ] = 20_000,
    noise: Annotated[
        float,
        typer.Option("--noise", help="Share of records given a quirk, 0..1.", callback=_check_noise),
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (world and training).")] = 42,
) -> None:
    """Retrain the linkage model (Splink, unsupervised) on a synthetic world; writes OUT/model.json.

    The model is written beside ``--out``, loaded back and only then moved in: ``--out`` never holds a
    partial or invalid model. Exit 1 with one line when training fails (e.g. too few records)."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out {out} exists and is not a directory")
    import tempfile
    import time

    from rich.console import Console
    from rich.markup import escape

    from familyctx.linkage.synthdata import generate_world, load_world
    from familyctx.linkage.train import TrainingError, train_model

    console = Console(stderr=True)

    def fail(message: str) -> typer.Exit:
        console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
        return typer.Exit(1)

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="familyctx-linkage-train-") as tmp:
            with console.status(f"generating a world of {people:,} people (noise {noise:g}, seed {seed})"):
                world = load_world(generate_world(Path(tmp) / "world", people=people, noise=noise, seed=seed))
        with console.status(f"training on {len(world.records):,} records"):
            written = train_model(world, out, seed=seed)
    except TrainingError as exc:
        text = str(exc)
        if "too few records" in text or "at least two councils" in text:
            text = f"{text}; use --people >= {TRAIN_MIN_PEOPLE:,} (this world: {people:,} people)"
        raise fail(f"{text}. Nothing written to {out}") from None
    except OSError as exc:
        raise fail(f"cannot write the model to {out}: {exc.strerror or exc}") from None
    except Exception as exc:  # never a traceback: one line (no record is ever in these messages)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise fail(f"training failed ({type(exc).__name__}: {first}). Nothing written to {out}") from None
    console.print(f"model written to {written} in {time.perf_counter() - started:.1f} s")
