"""The trained Fellegi-Sunter model: Splink's own model JSON plus term-frequency tables, scored in numpy.

``data/model.json`` is written by Splink (``linker.misc.save_model_to_json``) in
:func:`familyctx.linkage.train.train_model`; ``data/term_frequencies.json`` holds the term frequencies of
``given_key`` and ``family_key`` the model was trained with. Splink is needed only to TRAIN; query-time
scoring here reads the JSON and computes exactly what Splink's ``predict()`` computes
(splink 5.0 ``internals/predict.py``, ``comparison_level.py``):

- level match weight ``log2(max(m, 1e-300) / max(u, 1e-300))``; 0 for a null level;
- term-frequency adjustment on a level with ``tf_adjustment_column`` (the exact-name levels):
  ``w * (log2(u_exact) - log2(max(tf_l ?? tf_r, tf_r ?? tf_l, tf_minimum_u_value)))`` where ``u_exact`` is
  the u probability of the comparison's exact-match level on that column and ``w`` the
  ``tf_adjustment_weight``; 0 when neither value is in the table;
- ``match_weight = log2(prior / (1 - prior)) + sum of level weights and adjustments``;
- ``match_probability = 1 / (1 + 2 ** -match_weight)``.

The term frequencies are from SYNTHETIC data only: production should train (or at least register term
frequencies) on national name frequencies (e.g. ONS baby names, surname frequencies), not on the demo's
generator lists.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from familyctx.linkage.comparisons import COMPARISONS, FeatureTable, PairView

__all__ = [
    "DATA_DIR",
    "M_U_CLAMP_MIN",
    "MODEL_FILE",
    "TF_FILE",
    "LinkModel",
    "LinkModelError",
    "ScoredPairs",
    "TermFrequencyLevel",
]

#: Where the packaged model lives (``make linkage-train`` rewrites it).
DATA_DIR = Path(__file__).resolve().parent / "data"
MODEL_FILE = "model.json"
TF_FILE = "term_frequencies.json"
#: Splink clamps m and u to this before taking logs (splink.internals.comparison_level.M_U_CLAMP_MIN).
M_U_CLAMP_MIN = 1e-300

_RETRAIN = "retrain with make linkage-train"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class LinkModelError(ValueError):
    """The model files are missing, unreadable, or do not fit the comparisons in comparisons.py."""


@dataclass(frozen=True, slots=True)
class TermFrequencyLevel:
    """A level whose weight is adjusted by term frequency: comparison ``comparison`` level ``level``
    (indexes into :data:`COMPARISONS`), column ``column``, ``log2_u_exact`` = log2 of the u probability of
    the exact-match level on that column, ``weight`` = Splink's tf_adjustment_weight,
    ``minimum_u`` = tf_minimum_u_value."""

    comparison: int
    level: int
    column: str
    log2_u_exact: float
    weight: float
    minimum_u: float


@dataclass(frozen=True, slots=True)
class ScoredPairs:
    """Scores of ``n`` pairs over ``k`` comparisons (in :data:`COMPARISONS` order).

    ``levels``: (n, k) level indexes; ``weights``: (n, k) log2 Bayes factors incl. term-frequency
    adjustment; ``similarity``: (n, k) Jaro-Winkler of the names (NaN where none was computed);
    ``match_weight``: (n,) log2 posterior odds; ``match_probability``: (n,) in [0, 1].
    """

    levels: IntArray
    weights: FloatArray
    similarity: FloatArray
    match_weight: FloatArray
    match_probability: FloatArray


def _match_weight(m: float, u: float) -> float:
    return math.log2(max(m, M_U_CLAMP_MIN) / max(u, M_U_CLAMP_MIN))


def probability_to_match_weight(probability: float) -> float:
    """log2 of the odds ``p / (1 - p)`` (Splink's ``prob_to_match_weight``); ``probability`` in (0, 1)."""
    return math.log2(probability / (1 - probability))


def match_weight_to_probability(weight: FloatArray) -> FloatArray:
    """``1 / (1 + 2 ** -w)``, computed without overflow as Splink does (elementwise)."""
    w = np.asarray(weight, dtype=np.float64)
    pos = w >= 0
    out = np.empty_like(w)
    out[pos] = 1.0 / (1.0 + np.power(2.0, -w[pos]))
    e = np.power(2.0, w[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class LinkModel:
    """Trained Fellegi-Sunter parameters (Splink JSON + term frequencies), checked against comparisons.py.

    ``prior``: probability_two_random_records_match; ``level_weights[k]``: (levels,) array of log2 Bayes
    factors of comparison ``k`` (before term-frequency adjustment); ``term_frequencies``: column -> value
    -> relative frequency; ``settings``: the Splink settings dict as loaded.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        term_frequencies: dict[str, dict[str, float]],
        *,
        source: str = "<memory>",
    ) -> None:
        self.settings = settings
        self.term_frequencies = term_frequencies
        self.source = source
        prior = settings.get("probability_two_random_records_match")
        if not isinstance(prior, (int, float)) or not 0 < prior < 1:
            raise LinkModelError(f"{source}: probability_two_random_records_match missing or not in (0, 1)")
        self.prior = float(prior)
        self.prior_weight = probability_to_match_weight(self.prior)
        self.level_weights: list[FloatArray] = []
        self.tf_levels: list[TermFrequencyLevel] = []
        self._check_and_read(settings.get("comparisons"))

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> LinkModel:
        """Load a model: ``path`` is the model directory or its ``model.json`` (``term_frequencies.json``
        is read from the same directory).

        Raises :class:`LinkModelError` (a ValueError) when a file is missing or not JSON, or when the
        model's comparisons and levels (names, count, SQL conditions, term-frequency columns) differ from
        :data:`familyctx.linkage.comparisons.COMPARISONS`, or a level has no trained m/u probability.
        """
        path = Path(path)
        model_path = path / MODEL_FILE if path.is_dir() else path
        tf_path = model_path.parent / TF_FILE
        settings = _read_json(model_path, "model")
        tf_raw = _read_json(tf_path, "term-frequency")
        tables = tf_raw.get("columns")
        if not isinstance(tables, dict) or not all(
            isinstance(v, dict) and all(isinstance(f, (int, float)) for f in v.values())
            for v in tables.values()
        ):
            raise LinkModelError(f"{tf_path}: expected {{'columns': {{column: {{value: frequency}}}}}}")
        try:
            return cls(
                settings,
                {str(k): {str(a): float(b) for a, b in v.items()} for k, v in tables.items()},
                source=str(model_path),
            )
        except LinkModelError:
            raise
        except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
            # A value of the wrong type or out of range (a string for m, a negative u): say which file.
            raise LinkModelError(
                f"{model_path}: a value has the wrong type or is out of range ({type(exc).__name__}): "
                f"{_RETRAIN}"
            ) from None

    @classmethod
    @functools.cache
    def default(cls) -> LinkModel:
        """The packaged model (``familyctx/linkage/data``), loaded once and cached."""
        return cls.load(DATA_DIR)

    def _check_and_read(self, comparisons: object) -> None:
        where = self.source
        mismatch = f"{where} was trained with different comparisons: {_RETRAIN}"
        if not isinstance(comparisons, list):
            raise LinkModelError(f"{where}: no 'comparisons' list")
        names = [c.get("output_column_name") if isinstance(c, dict) else None for c in comparisons]
        expected = [c.field for c in COMPARISONS]
        if names != expected:
            raise LinkModelError(f"{mismatch} (model has {names}, code has {expected})")
        for k, (spec, comp) in enumerate(zip(comparisons, COMPARISONS, strict=True)):
            levels = spec.get("comparison_levels")
            if not isinstance(levels, list) or len(levels) != len(comp.levels):
                count = len(levels) if isinstance(levels, list) else "no"
                raise LinkModelError(
                    f"{mismatch} ({comp.field}: model has {count} levels, code has {len(comp.levels)})"
                )
            weights: list[float] = []
            for i, (lspec, level) in enumerate(zip(levels, comp.levels, strict=True)):
                if not isinstance(lspec, dict):
                    raise LinkModelError(f"{where}: {comp.field} level {i} is not an object")
                if lspec.get("sql_condition") != level.sql:
                    raise LinkModelError(
                        f"{mismatch} ({comp.field} level {i} '{level.label}': SQL condition differs)"
                    )
                if bool(lspec.get("is_null_level", False)) != level.is_null:
                    raise LinkModelError(f"{mismatch} ({comp.field} level {i}: null level differs)")
                if lspec.get("tf_adjustment_column") != level.tf_column:
                    raise LinkModelError(
                        f"{mismatch} ({comp.field} level {i}: term-frequency column differs)"
                    )
                if level.is_null:
                    weights.append(0.0)
                    continue
                m, u = lspec.get("m_probability"), lspec.get("u_probability")
                if not isinstance(m, (int, float)) or not isinstance(u, (int, float)):
                    raise LinkModelError(
                        f"{where}: {comp.field} level {i} '{level.label}' has no trained m/u probability: "
                        f"{_RETRAIN}"
                    )
                if not (0.0 < m <= 1.0 and 0.0 < u <= 1.0):
                    raise LinkModelError(
                        f"{where}: {comp.field} level {i} '{level.label}' has an m or u probability outside "
                        f"(0, 1]: {_RETRAIN}"
                    )
                weights.append(_match_weight(float(m), float(u)))
            self.level_weights.append(np.asarray(weights, dtype=np.float64))
            for i, (lspec, level) in enumerate(zip(levels, comp.levels, strict=True)):
                if level.tf_column is None:
                    continue
                if level.tf_column not in self.term_frequencies:
                    raise LinkModelError(
                        f"{where}: no term frequencies for {level.tf_column} in {TF_FILE}: {_RETRAIN}"
                    )
                exact = _exact_level_u(levels, comp.levels, level.tf_column)
                self.tf_levels.append(
                    TermFrequencyLevel(
                        comparison=k,
                        level=i,
                        column=level.tf_column,
                        log2_u_exact=math.log2(exact),
                        weight=float(lspec.get("tf_adjustment_weight", 1.0)),
                        minimum_u=float(lspec.get("tf_minimum_u_value", 0.0)),
                    )
                )

    # -- scoring -----------------------------------------------------------------------------------

    def score(self, pairs: PairView) -> ScoredPairs:
        """Score every pair of ``pairs`` (vectorised). Shapes: see :class:`ScoredPairs`."""
        n, k = len(pairs), len(COMPARISONS)
        levels = np.empty((n, k), dtype=np.int64)
        weights = np.empty((n, k), dtype=np.float64)
        similarity = np.full((n, k), np.nan)
        for c, comp in enumerate(COMPARISONS):
            idx = comp.level_index(pairs)
            levels[:, c] = idx
            weights[:, c] = self.level_weights[c][idx]
            if comp.similarity_column is not None:
                similarity[:, c] = pairs.jw(comp.similarity_column)
        for tf in self.tf_levels:
            on_level = levels[:, tf.comparison] == tf.level
            if on_level.any():
                weights[on_level, tf.comparison] += self._tf_adjustment(pairs, tf, on_level)
        match_weight = self.prior_weight + weights.sum(axis=1)
        return ScoredPairs(
            levels, weights, similarity, match_weight, match_weight_to_probability(match_weight)
        )

    def _tf_adjustment(
        self, pairs: PairView, tf: TermFrequencyLevel, on_level: npt.NDArray[np.bool_]
    ) -> FloatArray:
        freqs = self._tf_by_code(pairs.table, tf.column)
        a = freqs[pairs.l(tf.column)[on_level]]
        b = freqs[pairs.r(tf.column)[on_level]]
        a_or_b = np.where(np.isnan(a), b, a)
        b_or_a = np.where(np.isnan(b), a, b)
        exists = ~np.isnan(a_or_b)
        u_tf = np.maximum(
            np.maximum(np.nan_to_num(a_or_b, nan=0.0), np.nan_to_num(b_or_a, nan=0.0)), tf.minimum_u
        )
        with np.errstate(divide="ignore"):
            adj = tf.weight * (tf.log2_u_exact - np.log2(np.where(exists, u_tf, 1.0)))
        return np.where(exists, adj, 0.0)

    def _tf_by_code(self, table: FeatureTable, column: str) -> FloatArray:
        """Frequency per code of the table's name vocabulary (NaN for unknown values); index -1 -> NaN."""
        table_freqs = self.term_frequencies[column]
        values = [table_freqs.get(name, math.nan) for name in table.names]
        return np.asarray([*values, math.nan], dtype=np.float64)  # code -1 indexes the trailing NaN


def _exact_level_u(levels: list[Any], defined: tuple[Any, ...], column: str) -> float:
    """u probability of the level that is exactly ``"<column>_l" = "<column>_r"`` (Splink's rule)."""
    wanted = f'"{column}_l" = "{column}_r"'
    for spec, level in zip(levels, defined, strict=True):
        if level.sql == wanted:
            u = spec.get("u_probability")
            if isinstance(u, (int, float)) and u > 0:
                return float(u)
    raise LinkModelError(
        f"no trained exact-match level on {column} for its term-frequency adjustment: {_RETRAIN}"
    )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LinkModelError(f"{what} file {path} not found: {_RETRAIN}") from None
    except OSError as exc:
        raise LinkModelError(f"{what} file {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise LinkModelError(f"{what} file {path} is not UTF-8 text: {_RETRAIN}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LinkModelError(
            f"{what} file {path} is not valid JSON (line {exc.lineno}): {_RETRAIN}"
        ) from None
    if not isinstance(data, dict):
        raise LinkModelError(f"{what} file {path} does not hold a JSON object")
    return data
