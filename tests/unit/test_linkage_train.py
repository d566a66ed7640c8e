"""Training the linkage model: small worlds fail with one clear line, never a traceback or a bad model."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from familyctx.cli import app
from familyctx.linkage import train
from familyctx.linkage.model import DATA_DIR, MODEL_FILE, TF_FILE, LinkModel
from familyctx.linkage.normalise import LinkInput
from familyctx.linkage.synthdata import World, generate_world, load_world


def _packaged() -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    tf = json.loads((DATA_DIR / TF_FILE).read_text(encoding="utf-8"))["columns"]
    return settings, tf


def _two_councils() -> World:
    records = [LinkInput(source="E08000007", record_id="1"), LinkInput(source="E08000035", record_id="2")]
    return World(records=records, truth={})


def _level(settings: dict[str, Any], field: str, label: str) -> dict[str, Any]:
    comp = next(c for c in settings["comparisons"] if c["output_column_name"] == field)
    level: dict[str, Any] = next(lv for lv in comp["comparison_levels"] if lv["label_for_charts"] == label)
    return level


def test_em_underflow_in_a_small_world_is_clamped_then_floored(tmp_path: Path) -> None:
    """1,000 people used to crash inside Splink's EM ('m_probability value 0.0 is below the minimum
    allowed value of 1e-300': the m of nhs_number 'different'). Now EM completes and M_FLOORS applies."""
    world = load_world(generate_world(tmp_path / "w", people=1000, noise=0.1, seed=42))
    settings, tf = train._train(list(world.records), 42)
    m_floor = train.M_FLOORS[("nhs_number", "different")][0]
    different = _level(settings, "nhs_number", "different")
    exact = _level(settings, "nhs_number", "exact")
    # floored to 1e-3, then the comparison's m renormalised to sum to 1
    assert different["m_probability"] == pytest.approx(m_floor / (1 + m_floor), rel=1e-6)
    assert different["m_probability"] + exact["m_probability"] == pytest.approx(1.0)
    descriptions = {c["output_column_name"]: c["comparison_description"] for c in settings["comparisons"]}
    assert "m of 'different'" in descriptions["nhs_number"]
    assert set(tf) == {"family_key", "given_key"}
    # that world is still too small for some levels: named, not written
    assert train.untrained_levels(settings)
    with pytest.raises(train.TrainingError, match="too few records to train"):
        train.train_model(world, tmp_path / "out", seed=42)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.training-*"))


def test_the_clamp_is_removed_after_training() -> None:
    from splink.internals import expectation_maximisation as em

    original = em.populate_m_u_from_lookup
    with train._clamp_em_underflow():
        assert em.populate_m_u_from_lookup is not original
    assert em.populate_m_u_from_lookup is original


def test_untrained_levels_names_each_level_and_why() -> None:
    settings, _ = _packaged()
    assert train.untrained_levels(settings) == []
    _level(settings, "given_name", "names swapped")["m_probability"] = None
    _level(settings, "postcode", "postcode sector")["u_probability"] = None
    _level(settings, "sex", "different")["m_probability"] = 1e-300
    assert train.untrained_levels(settings) == [
        "given_name 'names swapped': no m (no pair in the EM sessions)",
        "sex 'different': m 1e-300 (EM drove it towards 0)",
        "postcode 'postcode sector': no u (random sampling saw no pair)",
    ]


def test_model_is_checked_then_moved_in_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train, "_train", lambda records, seed: _packaged())
    out = tmp_path / "model"
    assert train.train_model(_two_councils(), out) == out
    for name in (MODEL_FILE, TF_FILE):
        assert (out / name).read_bytes() == (DATA_DIR / name).read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    LinkModel.load(out)
    # again over the existing model: replaced file by file, no staging directory left behind
    (out / "notes.txt").write_text("kept", encoding="utf-8")
    train.train_model(_two_councils(), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "notes.txt", "term_frequencies.json"]


def test_a_model_that_does_not_load_back_never_reaches_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, tf = _packaged()
    _level(settings, "sex", "exact")["sql_condition"] = "1 = 1"  # trained, but not this code's comparison
    monkeypatch.setattr(train, "_train", lambda records, seed: (settings, tf))
    out = tmp_path / "model"
    out.mkdir()
    (out / MODEL_FILE).write_text("previous", encoding="utf-8")
    with pytest.raises(train.TrainingError, match="does not load back.*SQL condition differs"):
        train.train_model(_two_councils(), out)
    assert (out / MODEL_FILE).read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_splink_failure_is_one_training_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(records: object, seed: int) -> None:
        raise RuntimeError("Binder Error: something deep inside\nsecond line")

    monkeypatch.setattr(train, "_train", boom)
    with pytest.raises(train.TrainingError) as caught:
        train.train_model(_two_councils(), tmp_path / "m")
    assert str(caught.value) == "Splink training failed (RuntimeError: Binder Error: something deep inside)"
    with pytest.raises(train.TrainingError, match="at least two councils"):
        train.train_model(World(records=[LinkInput(source="E08000007", record_id="1")], truth={}), tmp_path)


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


def test_train_command_on_a_tiny_world_exits_1_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x"
    result = _invoke(["linkage", "train", "--out", str(out), "--people", "5"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "error: too few records to train" in text
    assert "use --people >= 20,000 (this world: 5 people)" in text
    assert f"Nothing written to {out}" in text
    assert "Traceback" not in result.output and "model written" not in result.output
    assert not out.exists()
    assert isinstance(result.exception, SystemExit)


def test_train_command_turns_any_failure_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(world: object, out: object, *, seed: int) -> None:
        raise KeyError("unexpected")

    monkeypatch.setattr(train, "train_model", boom)
    result = _invoke(["linkage", "train", "--out", str(tmp_path / "x"), "--people", "5"])
    assert result.exit_code == 1, result.output
    assert "error: training failed (KeyError: 'unexpected')" in " ".join(result.output.split())
    assert "Traceback" not in result.output
