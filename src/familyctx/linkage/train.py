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

Small worlds: EM can drive a level's m to exactly 0.0 (every pair showing it has a match probability that
underflows float64), which Splink 5.0 refuses to store (``ValueError: m_probability value 0.0 is below the
minimum allowed value of 1e-300``). During training such values are clamped to Splink's own
``M_U_CLAMP_MIN`` (1e-300, the value Splink clamps to when it takes the log, so no match weight changes);
:data:`M_FLOORS` then applies as usual. A level still untrained afterwards (not observed, or m below
:data:`MIN_TRAINED_M`) makes training fail with :class:`TrainingError` ("too few records to train"). The
files are written to a temporary directory beside ``out_dir``, loaded back with
:meth:`familyctx.linkage.model.LinkModel.load`, and only then moved into ``out_dir``: an invalid or partial
model is never left there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from familyctx.linkage.comparisons import COMPARISONS, FEATURE_COLUMNS, feature_rows
from familyctx.linkage.model import M_U_CLAMP_MIN, MODEL_FILE, TF_FILE, LinkModel, LinkModelError
from familyctx.linkage.normalise import link_features

if TYPE_CHECKING:
    from familyctx.linkage.normalise import LinkInput
    from familyctx.linkage.synthdata import World

__all__ = [
    "BLOCKING_RULES",
    "DETERMINISTIC_RECALL",
    "EM_BLOCKING_RULES",
    "MIN_TRAINED_M",
    "M_FLOORS",
    "U_UNOBSERVED",
    "TrainingError",
    "splink_settings",
    "train_model",
    "untrained_levels",
]


class TrainingError(ValueError):
    """Training cannot produce a usable model: fewer than two councils, levels the data is too small to
    train (the message names them and says "too few records to train"), a model that does not load back,
    or Splink failing (its error summarised on one line). Nothing is written to the output directory."""



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
    ("given_name", "Jaro-Winkler >= 0.80"): (1e-3, "heavier misspellings, transliterations"),
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

#: Smallest m accepted as trained for a level without an :data:`M_FLOORS` entry. m is the share of true
#: pairs showing the level; no training world (synthetic or real) has 10^9 true pairs, so a smaller m is
#: EM's extrapolation towards 0 (match weights of -30 and far below: "this level proves different
#: people"), not an estimate. The packaged model's smallest m is 5e-4.
MIN_TRAINED_M = 1e-9

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

    Deterministic for the same world and seed (byte-identical files). The files are written to a
    temporary directory beside ``out_dir``, loaded back with :meth:`LinkModel.load` and only then moved
    into ``out_dir`` (each file replaced by an atomic rename), so ``out_dir`` never holds a partial or
    invalid model. Raises :class:`TrainingError` (a ValueError) when the world has fewer than two
    councils, when it is too small to train every level (:func:`untrained_levels`), when the model does
    not load back, or when Splink fails; OSError when ``out_dir`` cannot be written.
    """
    records = list(world.records)
    if len({r.source for r in records}) < 2:
        raise TrainingError("training needs records of at least two councils")
    out_dir = Path(out_dir)
    try:
        settings, tf = _train(records, seed)
    except TrainingError:
        raise
    except Exception as exc:  # Splink/DuckDB: summarise on one line (records are never in the message)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise TrainingError(f"Splink training failed ({type(exc).__name__}: {first})") from exc
    missing = untrained_levels(settings)
    if missing:
        raise TrainingError(
            f"too few records to train {len(missing)} comparison level(s) "
            f"({'; '.join(missing[:4])}{'; ...' if len(missing) > 4 else ''}): train on a bigger world"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.training-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would follow the directory into out_dir
        (staging / MODEL_FILE).write_text(
            json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        tf_doc = {"note": _TRAIN_SEED_NOTE, "columns": {c: dict(sorted(v.items())) for c, v in tf.items()}}
        (staging / TF_FILE).write_text(json.dumps(tf_doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        try:
            LinkModel.load(staging)
        except LinkModelError as exc:
            raise TrainingError(f"the trained model does not load back: {exc}") from None
        _install(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def untrained_levels(settings: dict[str, Any]) -> list[str]:
    """Levels of a trained settings dict (after :data:`M_FLOORS` and :data:`U_UNOBSERVED`) that the data
    did not train: "<field> '<label>' (why)" for each non-null level with no m or u (never observed), or
    with m below :data:`MIN_TRAINED_M` (EM drove it towards 0). [] for a usable model."""
    out = []
    for comp in settings.get("comparisons", []):
        field = comp.get("output_column_name")
        for level in comp.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            label = f"{field} '{level.get('label_for_charts')}'"
            if not isinstance(m, (int, float)) and not isinstance(u, (int, float)):
                out.append(f"{label}: no pair observed")
            elif not isinstance(m, (int, float)):
                out.append(f"{label}: no m (no pair in the EM sessions)")
            elif not isinstance(u, (int, float)):
                out.append(f"{label}: no u (random sampling saw no pair)")
            elif m < MIN_TRAINED_M:
                out.append(f"{label}: m {m:.3g} (EM drove it towards 0)")
    return out


def _train(records: list[LinkInput], seed: int) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Splink training (see the module docstring): (settings after floors, rounded; term frequencies)."""
    linker = splink_linker(records, splink_settings())
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(_DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=2e7, seed=seed)
    with _clamp_em_underflow():
        for rule in EM_BLOCKING_RULES:
            training.estimate_parameters_using_expectation_maximisation(rule)
    settings = linker.misc.save_model_to_json()
    settings = _tidy(_apply_floors(settings))
    tf = {}
    for column in sorted({lvl.tf_column for c in COMPARISONS for lvl in c.levels if lvl.tf_column}):
        rows = linker.table_management.compute_tf_table(column).as_record_list()
        tf[column] = {str(r[column]): _round(float(r[f"tf_{column}"])) for r in rows if r[column] is not None}
    return settings, tf


@contextlib.contextmanager
def _clamp_em_underflow() -> Iterator[None]:
    """While active, an m or u that Splink's EM maximisation step computes below ``M_U_CLAMP_MIN``
    (exactly 0.0 when every pair at a level has a match probability that underflows) is clamped to
    ``M_U_CLAMP_MIN`` before Splink stores it: Splink 5.0's setter raises ValueError on it, yet clamps to
    that same value when it takes the log, so match weights are as EM meant them. Wraps
    ``splink.internals.expectation_maximisation.populate_m_u_from_lookup`` (splink 5.0); if a Splink
    release no longer has it, nothing is wrapped and its own behaviour applies."""
    from splink.internals import expectation_maximisation as em

    original = getattr(em, "populate_m_u_from_lookup", None)
    if original is None:
        yield
        return

    def clamped(fixed: Any, level: Any, column: str, lookup: dict[str, dict[int, Any]]) -> None:
        record = lookup.get(column, {}).get(level.comparison_vector_value)
        if isinstance(record, dict):
            for key in ("m_probability", "u_probability"):
                value = record.get(key)
                if isinstance(value, (int, float)) and value < M_U_CLAMP_MIN:
                    record[key] = M_U_CLAMP_MIN
        original(fixed, level, column, lookup)

    setattr(em, "populate_m_u_from_lookup", clamped)  # noqa: B010 (typed as Splink's own function)
    try:
        yield
    finally:
        setattr(em, "populate_m_u_from_lookup", original)  # noqa: B010


def _install(staging: Path, out_dir: Path) -> None:
    """Move the checked files from ``staging`` into ``out_dir``: the whole directory by one rename when
    ``out_dir`` is absent or empty, else file by file, each by an atomic ``os.replace`` (term frequencies
    first, model.json last)."""
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        try:
            if out_dir.exists():
                out_dir.rmdir()
            os.replace(staging, out_dir)
            return
        except OSError:
            pass  # e.g. another process created a file there meanwhile: replace file by file
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (TF_FILE, MODEL_FILE):
        os.replace(staging / name, out_dir / name)


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
