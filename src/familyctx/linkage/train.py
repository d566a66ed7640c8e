"""Train the linkage model with Splink (unsupervised) on a synthetic world; write ``data/``.

``make linkage-train`` calls :func:`train_model`. Splink 5 (DuckDB backend) is a development dependency:
it is needed to TRAIN, never at query time (:mod:`familyctx.linkage.model` scores from the JSON).

Method (Splink's unsupervised Fellegi-Sunter training, link_only between councils, source_dataset = the
council's GSS code):

1. ``probability_two_random_records_match`` from deterministic rules (same valid NHS number; or same
   given name, family name and date of birth) with an assumed recall of :data:`DETERMINISTIC_RECALL`
   (``estimate_probability_two_random_records_match``);
2. u probabilities by random sampling of record pairs (``estimate_u_using_random_sampling``, fixed seed);
3. m probabilities by expectation maximisation on four blocking rules (date of birth; family name; NHS
   number; postcode) - each comparison is estimated in the sessions whose blocking rule does not
   use its columns, and Splink averages the sessions;
4. levels the data cannot train (too rare in synthetic data) get m floors and, where random sampling
   never saw them, u values set by hand: :data:`M_FLOORS`, :data:`U_UNOBSERVED` (each with its reason);
   the comparison descriptions in model.json name the levels so adjusted.

Term frequencies of ``given_key`` and ``family_key`` are Splink's (share of non-null values over all
records). They come from SYNTHETIC data only: production should use national name frequencies.

Deterministic: DuckDB runs single-threaded, u sampling is seeded, floats are rounded to 12 significant
digits and JSON keys sorted, so the same world and seed give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from familyctx.linkage.comparisons import COMPARISONS, FEATURE_COLUMNS, feature_rows
from familyctx.linkage.model import MODEL_FILE, TF_FILE
from familyctx.linkage.normalise import link_features

if TYPE_CHECKING:
    from familyctx.linkage.normalise import LinkInput
    from familyctx.linkage.synthdata import World

__all__ = [
    "BLOCKING_RULES",
    "DETERMINISTIC_RECALL",
    "EM_BLOCKING_RULES",
    "M_FLOORS",
    "U_UNOBSERVED",
    "splink_settings",
    "train_model",
]

#: Recall assumed for the deterministic rules that estimate the prior (noise 0.1 removes or corrupts
#: NHS numbers and names in about one record in ten; measured on the synthetic truth: see the report).
DETERMINISTIC_RECALL = 0.95

#: Splink blocking rules for predict() (the agreement test and Splink-side checks use them).
BLOCKING_RULES: tuple[str, ...] = (
    "l.nhs_number = r.nhs_number",
    "l.dob = r.dob",
    "l.family_key = r.family_key AND year(l.dob) = year(r.dob)",
    "l.given_key = r.given_key AND l.family_key = r.family_key",
    "l.postcode = r.postcode",
)

#: EM sessions. Family name alone (not with birth year) so that the date-of-birth levels are estimated in
#: that session too: it is the only rule that brings unborn children's records (expected dates, no NHS
#: number, often no postcode) and mistyped dates together.
EM_BLOCKING_RULES: tuple[str, ...] = (
    "l.dob = r.dob",
    "l.family_key = r.family_key",
    "l.nhs_number = r.nhs_number",
    "l.postcode = r.postcode",
)

_DETERMINISTIC_RULES: tuple[str, ...] = (
    "l.nhs_number = r.nhs_number",
    "l.given_key = r.given_key AND l.family_key = r.family_key AND l.dob = r.dob",
)

#: Floors on m (share of TRUE matches showing the level) for levels the synthetic data cannot train: the
#: generator plants no true pair showing them, so EM drives their m towards 0 (weights of -50 to -170,
#: i.e. "one typo proves different people"), which real records contradict. After EM, m = max(m_EM, floor)
#: and the comparison's m are renormalised to sum to 1. Figures are judgement (typical keying/recording
#: error rates in UK administrative data), set by hand: (field, level label) -> (floor, reason).
#:
#: Only levels with NO (or one) true pair in the training world are here. Since the generator plants
#: short forms, middle names, double-barrelled names, name swaps, typos, estimated dates (the 15th), day/
#: month swaps, one-digit date typos and two councils' expected dates of an unborn child, those levels are
#: trained by EM alone (issue 5: the list went from 13 m and 1 u set by hand to the 10 floors below, of
#: which 9 bind in the packaged model).
M_FLOORS: dict[tuple[str, str], tuple[float, str]] = {
    ("nhs_number", "different"): (1e-3, "a mistyped NHS number that still passes modulus 11"),
    ("given_name", "another given name agrees"): (5e-3, "middle name used as the first name"),
    ("given_name", "different"): (2e-3, "name changed"),
    ("family_name", "Jaro-Winkler >= 0.80"): (3e-3, "heavier misspellings, transliterations"),
    ("family_name", "different"): (1e-2, "family name changed (marriage, adoption, a parent's name)"),
    ("date_of_birth", "expected date and a date of birth within 6 weeks"): (
        5e-4,
        "unborn child in one council, born in another (the generator's newborns are in one council only); "
        "low, so that it weighs about what two councils' expected dates weigh (that level is trained)",
    ),
    ("date_of_birth", "different"): (2e-3, "wrong date recorded"),
    ("sex", "different"): (2e-3, "recording error or change of recorded sex"),
    ("postcode", "postcode sector"): (1e-2, "a move nearby or a mistyped unit"),
    ("postcode", "postcode district"): (1e-2, "a move within the district"),
}

#: u for levels that random sampling might never observe in a small world (u would be undefined):
#: (field, label) -> (u, reason). Applied only when sampling saw no pair at the level; the 20,000-person
#: training world observes every level, so none is used by the packaged model.
U_UNOBSERVED: dict[tuple[str, str], tuple[float, str]] = {
    ("given_name", "names swapped"): (1e-7, "random people whose given and family names cross-match"),
    ("given_name", "another given name agrees"): (2e-3, "random people sharing a middle name"),
    ("family_name", "names swapped"): (1e-7, "random people whose given and family names cross-match"),
    ("family_name", "part of a double-barrelled name"): (2e-4, "sharing one part of a double-barrelled name"),
    ("date_of_birth", "both expected dates, within 6 weeks"): (1e-4, "two unborn children due within 6 wk"),
    ("date_of_birth", "expected date and a date of birth within 6 weeks"): (
        1e-5,
        "an unborn child and a baby born within 6 weeks of its expected date",
    ),
    ("date_of_birth", "estimated: same month (flagged, or on the 15th)"): (
        1e-4,
        "same year and month, one date flagged estimated or on the 15th",
    ),
    ("date_of_birth", "day and month swapped"): (2e-5, "random dates that are each other's swap"),
    ("postcode", "postcode sector"): (1e-3, "same sector"),
    ("postcode", "postcode district"): (1e-2, "same district"),
}

_SIGNIFICANT = 12
_TRAIN_SEED_NOTE = (
    "Trained by familyctx.linkage.train.train_model on SYNTHETIC data; the term frequencies "
    "(term_frequencies.json) are from synthetic names: production should use national name frequencies."
)


def splink_settings() -> dict[str, Any]:
    """Splink settings dict built from :data:`familyctx.linkage.comparisons.COMPARISONS` (untrained)."""
    comparisons = []
    for comp in COMPARISONS:
        levels = []
        for level in comp.levels:
            spec: dict[str, Any] = {"sql_condition": level.sql, "label_for_charts": level.label}
            if level.is_null:
                spec["is_null_level"] = True
            if level.tf_column:
                spec["tf_adjustment_column"] = level.tf_column
                spec["tf_adjustment_weight"] = 1.0
            levels.append(spec)
        comparisons.append(
            {
                "output_column_name": comp.field,
                "comparison_description": comp.description,
                "comparison_levels": levels,
            }
        )
    return {
        "link_type": "link_only",
        "unique_id_column_name": "unique_id",
        "source_dataset_column_name": "source_dataset",
        "probability_two_random_records_match": 0.0001,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": list(BLOCKING_RULES),
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "linker_uid": "familyctx",
    }


def feature_tables(records: list[LinkInput]) -> dict[str, Any]:
    """pyarrow tables of the records' features, one per council (source -> table), as Splink takes them:
    columns ``unique_id`` ('<source>:<record_id>'), ``source_dataset`` and :data:`FEATURE_COLUMNS`."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "VARCHAR[]": pa.list_(pa.string()),
        "DATE": pa.date32(),
        "BOOLEAN": pa.bool_(),
    }
    schema = pa.schema(
        [("unique_id", pa.string()), ("source_dataset", pa.string())]
        + [(name, types[t]) for name, t in FEATURE_COLUMNS.items()]
    )
    by_source: dict[str, list[LinkInput]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    tables = {}
    for source in sorted(by_source):
        recs = by_source[source]
        cols: dict[str, list[object]] = {
            "unique_id": [f"{r.source}:{r.record_id}" for r in recs],
            "source_dataset": [source] * len(recs),
        }
        cols.update(feature_rows([link_features(r) for r in recs]))
        tables[source] = pa.table(cols, schema=schema)
    return tables


def splink_linker(records: list[LinkInput], settings: dict[str, Any] | str, *, threads: int = 1) -> Any:
    """A Splink ``Linker`` (DuckDB, in memory, ``threads`` threads) over ``records``, one input table per
    council. ``settings``: a settings dict or a model JSON path."""
    import duckdb
    from splink import DuckDBAPI, Linker

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(threads)}")
    db_api = DuckDBAPI(connection=con)
    inputs = [
        db_api.register(t, dataset_display_name=f"council_{s}") for s, t in feature_tables(records).items()
    ]
    return Linker(inputs, settings, log_level=logging.ERROR)


def train_model(world: World, out_dir: Path, *, seed: int = 42) -> Path:
    """Train on ``world`` (a :class:`familyctx.linkage.synthdata.World`) and write ``model.json`` and
    ``term_frequencies.json`` to ``out_dir`` (created). Returns ``out_dir``.

    Deterministic for the same world and seed (byte-identical files). Raises ValueError when the world
    has fewer than two councils (nothing to link) - Splink's own errors pass through.
    """
    records = list(world.records)
    if len({r.source for r in records}) < 2:
        raise ValueError("training needs records of at least two councils")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    linker = splink_linker(records, splink_settings())
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(_DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=2e7, seed=seed)
    for rule in EM_BLOCKING_RULES:
        training.estimate_parameters_using_expectation_maximisation(rule)
    settings = linker.misc.save_model_to_json()
    settings = _tidy(_apply_floors(settings))
    tf = {}
    for column in sorted({lvl.tf_column for c in COMPARISONS for lvl in c.levels if lvl.tf_column}):
        rows = linker.table_management.compute_tf_table(column).as_record_list()
        tf[column] = {str(r[column]): _round(float(r[f"tf_{column}"])) for r in rows if r[column] is not None}
    (out_dir / MODEL_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tf_doc = {"note": _TRAIN_SEED_NOTE, "columns": {c: dict(sorted(v.items())) for c, v in tf.items()}}
    (out_dir / TF_FILE).write_text(json.dumps(tf_doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{_SIGNIFICANT}g}")


def _tidy(settings: dict[str, Any]) -> dict[str, Any]:
    """Round m/u/prior to 12 significant digits (bit-stable across runs) and fix the linker uid."""
    out = dict(settings)
    out["linker_uid"] = "familyctx"
    out["probability_two_random_records_match"] = _round(float(out["probability_two_random_records_match"]))
    for comp in out.get("comparisons", []):
        for level in comp.get("comparison_levels", []):
            for key in ("m_probability", "u_probability"):
                if isinstance(level.get(key), float):
                    level[key] = _round(level[key])
    return out


def _apply_floors(settings: dict[str, Any]) -> dict[str, Any]:
    """Apply :data:`U_UNOBSERVED` and :data:`M_FLOORS`, renormalise m per comparison, note it in the
    comparison descriptions."""
    out = json.loads(json.dumps(settings))
    for comp in out["comparisons"]:
        field = comp["output_column_name"]
        levels = [lvl for lvl in comp["comparison_levels"] if not lvl.get("is_null_level")]
        floored: list[str] = []
        for level in levels:
            key = (field, level["label_for_charts"])
            if not isinstance(level.get("u_probability"), (int, float)) and key in U_UNOBSERVED:
                level["u_probability"] = U_UNOBSERVED[key][0]
                floored.append(f"u of '{key[1]}'")
            m = level.get("m_probability")
            if key in M_FLOORS and (not isinstance(m, (int, float)) or m < M_FLOORS[key][0]):
                level["m_probability"] = M_FLOORS[key][0]
                floored.append(f"m of '{key[1]}'")
        total = sum(float(lvl.get("m_probability") or 0.0) for lvl in levels)
        if total > 0:
            for level in levels:
                if isinstance(level.get("m_probability"), (int, float)):
                    level["m_probability"] = level["m_probability"] / total
        if floored:
            comp["comparison_description"] = (
                f"{comp.get('comparison_description', field)}. Set by hand (too rare in the training data; "
                f"familyctx.linkage.train): {', '.join(floored)}"
            )
    return out
