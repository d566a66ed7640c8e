"""`familyctx synth` on the command line: good runs, bad input (exit 2, nothing left behind), cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from familyctx.commands.synth import register
from familyctx.synth import build_options, run


@pytest.fixture
def cli() -> typer.Typer:
    # Only the synth command: these tests must not depend on other areas' commands importing.
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """familyctx (synth only)."""

    register(app)
    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["synth", *args], env={"COLUMNS": "250"})
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_small_run_writes_everything(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = invoke(cli, "--out", str(tmp_path / "demo"), "--people", "30", "--seed", "3")
    assert code == 0, output
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == [
        "ground_truth.sqlite",
        "leeds.sqlite",
        "manchester.sqlite",
        "scenarios.json",
        "stockport.sqlite",
    ]
    assert "30 people" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people", "-5"], "--people must be between"),
        (["--people", "0"], "--people must be between"),
        (["--council", "york"], "unknown council 'york'"),
        (["--noise", "1.5"], "--noise must be between"),
        (["--as-of", "2026-13-01"], "YYYY-MM-DD"),
        (["--database-url", "leeds=notaurl"], "not a usable SQLAlchemy URL"),
        (["--database-url", "leeds"], "SLUG=URL"),
        (["--database-url", "york=sqlite:///x.db"], "unknown council 'york'"),
        (["--council", "stockport", "--database-url", "leeds=sqlite:///x.db"], "not being generated"),
        (["--database-url", "leeds=postgresql+psycopg://postgres@127.0.0.1:1/none"], "cannot connect"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(
    cli: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "never"
    code, output = invoke(cli, "--out", str(out), *args)
    assert code == 2, output
    assert message in output, output
    assert not out.exists()


def test_existing_output_needs_force(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert invoke(cli, "--out", str(out), "--people", "20")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, output = invoke(cli, "--out", str(out), "--people", "25", "--seed", "9")
    assert code == 2 and "--force" in output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    code, output = invoke(cli, "--out", str(out), "--people", "25", "--seed", "9", "--force")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert (out / "scenarios.json").read_bytes() != before["scenarios.json"]


def test_failure_mid_run_leaves_no_files(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    options = build_options(
        out=out,
        people=2000,
        seed=1,
        council_slugs=[],
        database_urls=[],
        noise=0.1,
        force=False,
        batch_size=50,
    )
    seen = 0

    def progress(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > 1000:  # well after the first batches were written
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        run(options, progress=progress)
    assert not out.exists()


def test_failure_keeps_an_existing_directory_and_its_other_files(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    (out / "README.txt").write_text("not ours")
    options = build_options(
        out=out, people=500, seed=1, council_slugs=[], database_urls=[], noise=0.1, force=False, batch_size=20
    )

    def progress(n: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        run(options, progress=progress)
    assert sorted(p.name for p in out.iterdir()) == ["README.txt"]


def test_progress_reports_every_person(tmp_path: Path) -> None:
    options = build_options(
        out=tmp_path / "p",
        people=123,
        seed=2,
        council_slugs=["stockport"],
        database_urls=[],
        noise=0.1,
        force=False,
    )
    total = 0

    def progress(n: int) -> None:
        nonlocal total
        total += n

    result = run(options, progress=progress)
    assert total == result.people == 123
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "ground_truth.sqlite",
        "scenarios.json",
        "stockport.sqlite",
    ]


def test_single_council_run_marks_the_scenario_incomplete(tmp_path: Path) -> None:
    import json

    options = build_options(
        out=tmp_path / "one",
        people=40,
        seed=2,
        council_slugs=["stockport"],
        database_urls=[],
        noise=0.1,
        force=False,
    )
    run(options)
    scen = json.loads((tmp_path / "one" / "scenarios.json").read_text(encoding="utf-8"))["mother_moved"]
    assert scen["complete"] is False
    assert scen["mother"] is None and scen["grandparent"] is None
    assert (
        scen["child"]["gss_code"] == "E08000007" and scen["mother_previous_record"]["gss_code"] == "E08000007"
    )
