"""Comparison levels, model loading and the Splink maths of familyctx.linkage."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from familyctx.linkage import COMPARISONS, LinkFeatures, LinkModel, LinkModelError, Thresholds
from familyctx.linkage.comparisons import FeatureTable, PairView
from familyctx.linkage.model import DATA_DIR, MODEL_FILE, TF_FILE

BLANK = LinkFeatures(
    nhs_number=None,
    given_key="",
    given_tokens=(),
    given_canonical=(),
    family_key="",
    family_parts=(),
    dob=None,
    dob_estimated=False,
    dob_expected=False,
    sex=None,
    postcode=None,
    postcode_sector=None,
    postcode_district=None,
)


def feats(**kw: Any) -> LinkFeatures:
    given = kw.pop("given", None)
    family = kw.pop("family", None)
    if given is not None:
        tokens = tuple(given.split())
        kw.setdefault("given_key", tokens[0])
        kw.setdefault("given_tokens", tokens)
        kw.setdefault("given_canonical", (tokens[0],))
    if family is not None:
        parts = tuple(sorted(family.split("-")))
        kw.setdefault("family_key", family.replace("-", ""))
        kw.setdefault("family_parts", parts if len(parts) > 1 else (family,))
    postcode = kw.get("postcode")
    if postcode:
        kw.setdefault("postcode_sector", postcode[:-2])
        kw.setdefault("postcode_district", postcode.split()[0])
    return dataclasses.replace(BLANK, **kw)


def level_label(field: str, a: LinkFeatures, b: LinkFeatures) -> str:
    comp = next(c for c in COMPARISONS if c.field == field)
    pairs = PairView(FeatureTable([a, b]), np.array([0]), np.array([1]))
    return comp.levels[int(comp.level_index(pairs)[0])].label


D = dt.date


@pytest.mark.parametrize(
    ("field", "a", "b", "label"),
    [
        ("nhs_number", feats(), feats(nhs_number="9434765919"), "missing"),
        ("nhs_number", feats(nhs_number="9434765919"), feats(nhs_number="9434765919"), "exact"),
        ("nhs_number", feats(nhs_number="9434765919"), feats(nhs_number="4010232137"), "different"),
        ("given_name", feats(given="amelia"), feats(), "missing"),
        ("given_name", feats(given="amelia"), feats(given="amelia"), "exact"),
        (
            "given_name",
            feats(given="amelia", family="smith"),
            feats(given="smith", family="amelia"),
            "names swapped",
        ),
        (
            "given_name",
            feats(given="bob", given_canonical=("bob", "robert")),
            feats(given="robert", given_canonical=("robert",)),
            "short form (Bob/Robert)",
        ),
        ("given_name", feats(given="amelia"), feats(given="amelai"), "Jaro-Winkler >= 0.92"),
        ("given_name", feats(given="mary jane"), feats(given="jane"), "another given name agrees"),
        ("given_name", feats(given="jon"), feats(given="jonah"), "Jaro-Winkler >= 0.80"),
        ("given_name", feats(given="amelia"), feats(given="olivia"), "different"),
        ("family_name", feats(family="smith"), feats(), "missing"),
        (
            "family_name",
            feats(given="amelia", family="smith"),
            feats(given="smith", family="amelia"),
            "names swapped",
        ),
        ("family_name", feats(family="oneill"), feats(family="oneill"), "exact"),
        (
            "family_name",
            feats(family="smith-jones"),
            feats(family="jones"),
            "part of a double-barrelled name",
        ),
        ("family_name", feats(family="hargreaves"), feats(family="hargraves"), "Jaro-Winkler >= 0.92"),
        ("family_name", feats(family="thomson"), feats(family="tomlinson"), "Jaro-Winkler >= 0.80"),
        ("family_name", feats(family="smith"), feats(family="khan"), "different"),
        ("date_of_birth", feats(dob=D(2015, 3, 4)), feats(), "missing"),
        ("date_of_birth", feats(dob=D(2015, 3, 4)), feats(dob=D(2015, 3, 4)), "exact"),
        (
            "date_of_birth",
            feats(dob=D(2015, 3, 20), dob_estimated=True),
            feats(dob=D(2015, 3, 4)),
            "estimated: same month (flagged, or on the 15th)",
        ),
        (  # the SSD has no estimated flag: the 15th of the same month is the estimate
            "date_of_birth",
            feats(dob=D(2015, 3, 15)),
            feats(dob=D(2015, 3, 4)),
            "estimated: same month (flagged, or on the 15th)",
        ),
        (
            "date_of_birth",
            feats(dob=D(2015, 3, 4)),
            feats(dob=D(2015, 3, 15)),
            "estimated: same month (flagged, or on the 15th)",
        ),
        (  # the 15th of another month is not an estimate of this date: one part differs
            "date_of_birth",
            feats(dob=D(2015, 4, 15)),
            feats(dob=D(2015, 3, 15)),
            "one of day, month, year differs",
        ),
        (
            "date_of_birth",
            feats(dob=D(2015, 3, 16)),
            feats(dob=D(2015, 3, 4)),
            "one of day, month, year differs",
        ),
        (
            "date_of_birth",
            feats(dob=D(2026, 12, 10), dob_expected=True),
            feats(dob=D(2026, 12, 31), dob_expected=True),
            "both expected dates, within 6 weeks",
        ),
        (  # two expected dates in the same month, one on the 15th: still an expected-date comparison
            "date_of_birth",
            feats(dob=D(2026, 12, 15), dob_expected=True),
            feats(dob=D(2026, 12, 31), dob_expected=True),
            "both expected dates, within 6 weeks",
        ),
        (
            "date_of_birth",
            feats(dob=D(2026, 12, 10), dob_expected=True),
            feats(dob=D(2026, 11, 20)),
            "expected date and a date of birth within 6 weeks",
        ),
        (
            "date_of_birth",
            feats(dob=D(2026, 11, 20)),
            feats(dob=D(2027, 1, 1), dob_expected=True),
            "expected date and a date of birth within 6 weeks",
        ),
        (
            "date_of_birth",
            feats(dob=D(2026, 10, 1), dob_expected=True),
            feats(dob=D(2026, 12, 20), dob_expected=True),
            "different",
        ),
        (
            "date_of_birth",
            feats(dob=D(2027, 1, 22), dob_expected=True),
            feats(dob=D(2026, 12, 10)),
            "different",
        ),
        ("date_of_birth", feats(dob=D(2015, 3, 4)), feats(dob=D(2015, 4, 3)), "day and month swapped"),
        (
            "date_of_birth",
            feats(dob=D(2015, 3, 4)),
            feats(dob=D(2016, 3, 4)),
            "one of day, month, year differs",
        ),
        ("date_of_birth", feats(dob=D(2015, 3, 4)), feats(dob=D(2012, 9, 30)), "different"),
        ("sex", feats(sex="F"), feats(), "missing"),
        ("sex", feats(sex="F"), feats(sex="F"), "exact"),
        ("sex", feats(sex="F"), feats(sex="M"), "different"),
        ("postcode", feats(postcode="SK1 3XE"), feats(), "missing"),
        ("postcode", feats(postcode="SK1 3XE"), feats(postcode="SK1 3XE"), "exact"),
        ("postcode", feats(postcode="SK1 3XE"), feats(postcode="SK1 3AB"), "postcode sector"),
        ("postcode", feats(postcode="SK1 3XE"), feats(postcode="SK1 4AB"), "postcode district"),
        ("postcode", feats(postcode="SK1 3XE"), feats(postcode="M1 1AE"), "different"),
    ],
)
def test_comparison_levels(field: str, a: LinkFeatures, b: LinkFeatures, label: str) -> None:
    assert level_label(field, a, b) == label
    assert level_label(field, b, a) == label  # every comparison is symmetric


def test_every_comparison_starts_with_a_null_level_and_ends_with_else() -> None:
    for comp in COMPARISONS:
        assert comp.levels[0].is_null, comp.field
        assert comp.levels[-1].is_else, comp.field
        assert sum(lvl.is_null for lvl in comp.levels) == 1
        assert len({lvl.label for lvl in comp.levels}) == len(comp.levels), comp.field


def test_levels_evaluate_many_pairs_in_one_call() -> None:
    table = FeatureTable([feats(given="amelia"), feats(given="amelia"), feats(given="olivia"), feats()])
    comp = next(c for c in COMPARISONS if c.field == "given_name")
    idx = comp.level_index(PairView(table, np.array([0, 0, 0, 3]), np.array([1, 2, 3, 3])))
    assert [comp.levels[i].label for i in idx] == ["exact", "different", "missing", "missing"]


def test_hand_set_values_name_real_levels() -> None:
    from familyctx.linkage.train import M_FLOORS, U_UNOBSERVED

    labels = {(c.field, lvl.label) for c in COMPARISONS for lvl in c.levels if not lvl.is_null}
    assert set(M_FLOORS) <= labels
    assert set(U_UNOBSERVED) <= labels


def test_packaged_model_sets_by_hand_only_the_levels_the_data_lacks() -> None:
    """The quirks of the synthetic generator (short forms, middle names, double-barrelled names, typos,
    the 15th, expected dates in two councils) train their levels: only M_FLOORS levels may be set by
    hand (a floor binds only where EM's m falls below it), and no u is."""
    from familyctx.linkage.train import M_FLOORS

    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    by_hand = set()
    for comp in settings["comparisons"]:
        description = comp["comparison_description"]
        for level in comp["comparison_levels"]:
            label = level["label_for_charts"]
            assert f"u of '{label}'" not in description
            if f"m of '{label}'" in description:
                by_hand.add((comp["output_column_name"], label))
    assert by_hand <= set(M_FLOORS)
    assert ("nhs_number", "different") in by_hand  # no true pair has two valid NHS numbers
    trained = {
        ("given_name", "short form (Bob/Robert)"),
        ("given_name", "names swapped"),
        ("family_name", "part of a double-barrelled name"),
        ("date_of_birth", "both expected dates, within 6 weeks"),
        ("date_of_birth", "estimated: same month (flagged, or on the 15th)"),
        ("date_of_birth", "one of day, month, year differs"),
    }
    assert not trained & by_hand


# --- loading -------------------------------------------------------------------------------------


def copy_model(tmp_path: Path, mutate: Any = None) -> Path:
    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    if mutate is not None:
        mutate(settings)
    (tmp_path / MODEL_FILE).write_text(json.dumps(settings), encoding="utf-8")
    (tmp_path / TF_FILE).write_text((DATA_DIR / TF_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_packaged_model_loads_and_is_cached() -> None:
    model = LinkModel.default()
    assert model is LinkModel.default()
    assert 0 < model.prior < 0.01
    assert len(model.level_weights) == len(COMPARISONS)
    assert {t.column for t in model.tf_levels} == {"given_key", "family_key"}


def test_load_accepts_the_directory_or_the_model_file(tmp_path: Path) -> None:
    copy_model(tmp_path)
    a = LinkModel.load(tmp_path)
    b = LinkModel.load(tmp_path / MODEL_FILE)
    assert a.prior == b.prior == LinkModel.default().prior


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(
        LinkModelError, match=r"model file .*model\.json not found: retrain with make linkage-train"
    ):
        LinkModel.load(tmp_path)


def test_missing_term_frequency_file(tmp_path: Path) -> None:
    copy_model(tmp_path)
    (tmp_path / TF_FILE).unlink()
    with pytest.raises(LinkModelError, match=r"term-frequency file .*term_frequencies\.json not found"):
        LinkModel.load(tmp_path)


def test_bad_json(tmp_path: Path) -> None:
    copy_model(tmp_path)
    (tmp_path / MODEL_FILE).write_text('{"comparisons": [', encoding="utf-8")
    with pytest.raises(LinkModelError, match=r"is not valid JSON \(line 1\)"):
        LinkModel.load(tmp_path)


def test_level_count_mismatch(tmp_path: Path) -> None:
    def drop_level(s: dict[str, Any]) -> None:
        del s["comparisons"][1]["comparison_levels"][3]

    copy_model(tmp_path, drop_level)
    with pytest.raises(
        LinkModelError,
        match=r"trained with different comparisons: retrain with make linkage-train "
        r"\(given_name: model has 7 levels, code has 8\)",
    ):
        LinkModel.load(tmp_path)


def test_sql_condition_mismatch(tmp_path: Path) -> None:
    def loosen(s: dict[str, Any]) -> None:
        level = s["comparisons"][2]["comparison_levels"][4]
        level["sql_condition"] = level["sql_condition"].replace("0.92", "0.9")

    copy_model(tmp_path, loosen)
    with pytest.raises(
        LinkModelError, match=r"family_name level 4 'Jaro-Winkler >= 0.92': SQL condition differs"
    ):
        LinkModel.load(tmp_path)


def test_comparison_names_mismatch(tmp_path: Path) -> None:
    def rename(s: dict[str, Any]) -> None:
        s["comparisons"][0]["output_column_name"] = "nhs"

    copy_model(tmp_path, rename)
    with pytest.raises(LinkModelError, match=r"different comparisons.*model has \['nhs', 'given_name'"):
        LinkModel.load(tmp_path)


def test_untrained_level(tmp_path: Path) -> None:
    def untrain(s: dict[str, Any]) -> None:
        del s["comparisons"][4]["comparison_levels"][1]["m_probability"]

    copy_model(tmp_path, untrain)
    with pytest.raises(LinkModelError, match=r"sex level 1 'exact' has no trained m/u probability"):
        LinkModel.load(tmp_path)


@pytest.mark.parametrize(
    "key,value", [("u_probability", -0.1), ("m_probability", 0.0), ("u_probability", 1.5)]
)
def test_probability_out_of_range(tmp_path: Path, key: str, value: float) -> None:
    copy_model(tmp_path, lambda s: s["comparisons"][0]["comparison_levels"][1].update({key: value}))
    with pytest.raises(LinkModelError, match=r"nhs_number level 1 'exact' has an m or u probability outside"):
        LinkModel.load(tmp_path)


def test_model_file_not_utf8(tmp_path: Path) -> None:
    copy_model(tmp_path, lambda s: None)
    (tmp_path / "model.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(LinkModelError, match=r"is not UTF-8 text"):
        LinkModel.load(tmp_path)


def test_bad_prior(tmp_path: Path) -> None:
    copy_model(tmp_path, lambda s: s.update(probability_two_random_records_match=1.5))
    with pytest.raises(
        LinkModelError, match=r"probability_two_random_records_match missing or not in \(0, 1\)"
    ):
        LinkModel.load(tmp_path)


# --- the maths -----------------------------------------------------------------------------------


def small_model() -> tuple[LinkModel, dict[str, Any]]:
    settings = json.loads((DATA_DIR / MODEL_FILE).read_text(encoding="utf-8"))
    settings = copy.deepcopy(settings)
    tf = {"given_key": {"oliver": 0.02, "zebedee": 0.0001}, "family_key": {"smith": 0.01}}
    return LinkModel(settings, tf), settings


def level_spec(settings: dict[str, Any], field: str, label: str) -> dict[str, Any]:
    comp = next(c for c in settings["comparisons"] if c["output_column_name"] == field)
    spec: dict[str, Any] = next(lvl for lvl in comp["comparison_levels"] if lvl["label_for_charts"] == label)
    return spec


@pytest.mark.parametrize(("name", "tf"), [("oliver", 0.02), ("zebedee", 0.0001)])
def test_term_frequency_adjustment_matches_a_hand_computation(name: str, tf: float) -> None:
    """Splink: log2(m/u) + log2(u_exact) - log2(max(tf_l, tf_r, tf_minimum_u_value))."""
    model, settings = small_model()
    exact = level_spec(settings, "given_name", "exact")
    table = FeatureTable([feats(given=name), feats(given=name)])
    scores = model.score(PairView(table, np.array([0]), np.array([1])))
    k = [c.field for c in COMPARISONS].index("given_name")
    m, u = exact["m_probability"], exact["u_probability"]
    expected = math.log2(m / u) + (math.log2(u) - math.log2(tf))
    assert scores.weights[0, k] == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(math.log2(m / tf), abs=1e-12)  # i.e. u replaced by the name's frequency


def test_unknown_name_gets_no_term_frequency_adjustment() -> None:
    model, settings = small_model()
    exact = level_spec(settings, "given_name", "exact")
    table = FeatureTable([feats(given="xanthe"), feats(given="xanthe")])
    scores = model.score(PairView(table, np.array([0]), np.array([1])))
    k = [c.field for c in COMPARISONS].index("given_name")
    assert scores.weights[0, k] == pytest.approx(math.log2(exact["m_probability"] / exact["u_probability"]))


def test_match_weight_and_probability_are_splinks() -> None:
    """match_weight = log2(prior/(1-prior)) + sum of field weights; probability = 1/(1+2^-w)."""
    model, settings = small_model()
    a = feats(given="oliver", family="smith", dob=D(2015, 3, 4), sex="M", postcode="SK1 3XE")
    b = feats(given="oliver", family="smyth", dob=D(2015, 4, 3), sex="M", postcode="SK1 3AB")
    scores = model.score(PairView(FeatureTable([a, b]), np.array([0]), np.array([1])))
    prior = settings["probability_two_random_records_match"]
    total = math.log2(prior / (1 - prior)) + sum(scores.weights[0])
    assert scores.match_weight[0] == pytest.approx(total, abs=1e-12)
    assert scores.match_probability[0] == pytest.approx(1 / (1 + 2**-total), abs=1e-15)
    postcode = level_spec(settings, "postcode", "postcode sector")
    k = [c.field for c in COMPARISONS].index("postcode")
    assert scores.weights[0, k] == pytest.approx(
        math.log2(postcode["m_probability"] / postcode["u_probability"])
    )


def test_thresholds_are_checked() -> None:
    t = Thresholds.default()
    assert 0 < t.possible < t.probable < t.certain < 1
    with pytest.raises(ValueError, match="0 < possible < probable < certain < 1"):
        Thresholds(certain=0.9, probable=0.95, possible=0.5)
