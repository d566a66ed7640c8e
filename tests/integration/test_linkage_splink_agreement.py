"""The query-time scorer IS the trained model: Splink's predict() and familyctx's Linker agree.

A small synthetic world (about 1,000 people, three councils) is scored twice: by Splink 5 (DuckDB) loading
the packaged ``model.json`` with the packaged term frequencies registered as its lookups, and by
:class:`familyctx.linkage.model.LinkModel` in numpy. For every pair Splink's blocking brings together, the
comparison level of each field, each field's match weight (incl. term-frequency adjustment) and the total
match weight must agree to 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from familyctx.linkage import COMPARISONS, LinkModel
from familyctx.linkage.comparisons import FeatureTable, PairView
from familyctx.linkage.model import DATA_DIR, MODEL_FILE, TF_FILE
from familyctx.linkage.normalise import link_features
from familyctx.linkage.synthdata import World, generate_world, load_world
from familyctx.linkage.train import splink_linker

#: Broader than the model's own prediction blocking, so that many pairs reach the fuzzy and 'different'
#: levels (Jaro-Winkler of unrelated names, differing dates, postcodes).
EXTRA_BLOCKING = ("year(l.dob) = year(r.dob)", "l.postcode_district = r.postcode_district")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    out = tmp_path_factory.mktemp("linkage-agreement") / "world"
    return load_world(generate_world(out, people=1000, noise=0.3, seed=11))


@pytest.fixture(scope="module")
def splink_predictions(world: World) -> list[dict[str, object]]:
    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    settings["blocking_rules_to_generate_predictions"] = [
        *settings["blocking_rules_to_generate_predictions"],
        *EXTRA_BLOCKING,
    ]
    linker = splink_linker(world.records, settings)
    tf = json.loads((DATA_DIR / TF_FILE).read_text(encoding="utf-8"))["columns"]
    for column, table in tf.items():
        lookup = linker._db_api.register(
            pa.table({column: list(table), f"tf_{column}": list(table.values())})
        )
        linker.table_management.register_term_frequency_lookup(lookup, column)
    rows: list[dict[str, object]] = linker.inference.predict().as_record_list()
    return rows


def _gamma_to_index(levels: int) -> dict[int, int]:
    """Splink's comparison_vector_value -> position in COMPARISONS: null -1, then counting down to 0."""
    return {-1: 0, **{levels - 1 - i: i for i in range(1, levels)}}


def test_splink_and_linker_give_the_same_levels_and_weights(
    world: World, splink_predictions: list[dict[str, object]]
) -> None:
    rows = splink_predictions
    assert len(rows) > 2000, "blocking should bring thousands of pairs together"
    position = {f"{r.source}:{r.record_id}": i for i, r in enumerate(world.records)}
    left = np.asarray([position[str(r["unique_id_l"])] for r in rows])
    right = np.asarray([position[str(r["unique_id_r"])] for r in rows])
    table = FeatureTable([link_features(r) for r in world.records])
    scores = LinkModel.default().score(PairView(table, left, right))

    for k, comp in enumerate(COMPARISONS):
        to_index = _gamma_to_index(len(comp.levels))
        splink_levels = np.asarray([to_index[int(r[f"gamma_{comp.field}"])] for r in rows])  # type: ignore[call-overload]
        differ = np.flatnonzero(splink_levels != scores.levels[:, k])
        assert differ.size == 0, (
            f"{comp.field}: {differ.size} pairs on different levels, e.g. Splink "
            f"'{comp.levels[splink_levels[differ[0]]].label}' vs Linker "
            f"'{comp.levels[scores.levels[differ[0], k]].label}'"
        )
        splink_weight = np.asarray(
            [float(r[f"mw_{comp.field}"]) + float(r.get(f"mw_tf_adj_{comp.field}") or 0.0) for r in rows]  # type: ignore[arg-type]
        )
        np.testing.assert_allclose(scores.weights[:, k], splink_weight, rtol=0, atol=1e-6, err_msg=comp.field)
        # the test means something only if the pairs reach several levels of every comparison
        assert len(set(splink_levels.tolist())) >= 3, f"{comp.field}: too few levels exercised"

    splink_total = np.asarray([float(r["match_weight"]) for r in rows])  # type: ignore[arg-type]
    np.testing.assert_allclose(scores.match_weight, splink_total, rtol=0, atol=1e-6)
    splink_probability = np.asarray([float(r["match_probability"]) for r in rows])  # type: ignore[arg-type]
    np.testing.assert_allclose(scores.match_probability, splink_probability, rtol=0, atol=1e-9)


def test_names_similarity_levels_are_exercised(splink_predictions: list[dict[str, object]]) -> None:
    """The Jaro-Winkler levels (rapidfuzz vs DuckDB's jaro_winkler_similarity) are among the pairs."""
    given = {int(r["gamma_given_name"]) for r in splink_predictions}  # type: ignore[call-overload]
    family = {int(r["gamma_family_name"]) for r in splink_predictions}  # type: ignore[call-overload]
    # given_name: 'Jaro-Winkler >= 0.92' is gamma 3, '>= 0.80' gamma 1; family_name: 2 and 1
    assert {3, 1} <= given
    assert {2, 1} <= family


def test_date_levels_of_issue_5_are_exercised(splink_predictions: list[dict[str, object]]) -> None:
    """'both expected dates, within 6 weeks' and 'estimated: same month (flagged, or on the 15th)' (the
    15th without a flag: the SSD has none) are among the pairs, so Splink's SQL and the numpy levels are
    compared on them."""
    dob = next(c for c in COMPARISONS if c.field == "date_of_birth")
    to_index = _gamma_to_index(len(dob.levels))
    seen = {dob.levels[to_index[int(r["gamma_date_of_birth"])]].label for r in splink_predictions}  # type: ignore[call-overload]
    assert {"both expected dates, within 6 weeks", "estimated: same month (flagged, or on the 15th)"} <= seen


def test_packaged_model_loads_into_splink_unchanged(tmp_path: Path) -> None:
    """model.json is Splink's own format: Splink re-saves it with the same parameters."""
    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    from familyctx.linkage.normalise import LinkInput

    records = [LinkInput(source="A", record_id="1"), LinkInput(source="B", record_id="1")]
    linker = splink_linker(records, str(DATA_DIR / MODEL_FILE))
    resaved = linker.misc.save_model_to_json()
    assert resaved["probability_two_random_records_match"] == settings["probability_two_random_records_match"]
    for ours, theirs in zip(settings["comparisons"], resaved["comparisons"], strict=True):
        for a, b in zip(ours["comparison_levels"], theirs["comparison_levels"], strict=True):
            assert a["sql_condition"] == b["sql_condition"]
            assert a.get("m_probability") == b.get("m_probability")
            assert a.get("u_probability") == b.get("u_probability")
