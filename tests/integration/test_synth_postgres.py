"""Synth into PostgreSQL (real server, `postgres_url` fixture): same metadata, same rows as SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from familyctx.synth import SynthInputError, build_options, run
from familyctx.synth.digest import database_digest
from familyctx.warehouse import build_metadata

pytestmark = pytest.mark.postgres


def options(out: Path, urls: list[str], *, force: bool = False):  # type: ignore[no-untyped-def]
    return build_options(
        out=out, people=250, seed=11, council_slugs=[], database_urls=urls, noise=0.3, force=force
    )


def test_postgres_council_holds_the_same_rows_as_sqlite(postgres_url: str, tmp_path: Path) -> None:
    run(options(tmp_path / "sqlite", []))
    result = run(options(tmp_path / "pg", [f"leeds={postgres_url}"]))
    assert not (tmp_path / "pg" / "leeds.sqlite").exists()
    assert "E08000035" in result.targets and result.targets["E08000035"].startswith("postgresql")

    engine = sa.create_engine(postgres_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == set(build_metadata("mosaic").tables)
        scen = json.loads((tmp_path / "pg" / "scenarios.json").read_text(encoding="utf-8"))["mother_moved"]
        with engine.connect() as conn:
            (name,) = conn.execute(
                sa.text("select pers_forename from ssd_person where pers_person_id = :p"),
                {"p": scen["mother"]["local_person_id"]},
            ).one()
        assert name == scen["mother"]["given_name"]
    finally:
        engine.dispose()
    assert database_digest(postgres_url) == database_digest(
        f"sqlite:///{tmp_path / 'sqlite' / 'leeds.sqlite'}"
    )


def test_postgres_target_needs_force_to_be_replaced(postgres_url: str, tmp_path: Path) -> None:
    run(options(tmp_path / "one", [f"stockport={postgres_url}"]))
    with pytest.raises(SynthInputError, match="already holds warehouse tables"):
        run(options(tmp_path / "two", [f"stockport={postgres_url}"]))
    assert not (tmp_path / "two").exists()
    run(options(tmp_path / "two", [f"stockport={postgres_url}"], force=True))
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(sa.text("select count(*) from ssd_person")).scalar_one()
        assert n > 50
    finally:
        engine.dispose()


def test_failed_postgres_run_drops_its_tables(postgres_url: str, tmp_path: Path) -> None:
    def progress(n: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        run(options(tmp_path / "x", [f"manchester={postgres_url}"]), progress=progress)
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert not (tmp_path / "x").exists()
