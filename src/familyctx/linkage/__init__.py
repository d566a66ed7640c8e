"""Record linkage across councils (issue 5): normalise, score with a trained Fellegi-Sunter model, grade.

Public API (see docs/linkage.md): :class:`Linker` (``link``, ``compare``, ``grade_pairs``), its results
(:class:`LinkResult`, :class:`GradedPair`, :class:`PairScore`, :class:`FieldScore`), :class:`Grade`
(FHIR ``$match`` grades certain / probable / possible), :class:`Outcome`, :class:`Thresholds`,
:class:`LinkModel` / :class:`LinkModelError`, and the inputs :class:`LinkInput` / :class:`LinkFeatures` /
:func:`link_features` / :func:`fold_name` (:mod:`familyctx.linkage.normalise`).

Importing this package does not import Splink (needed only by :mod:`familyctx.linkage.train`).
"""

from familyctx.linkage.comparisons import COMPARISONS, Outcome
from familyctx.linkage.linker import (
    FieldScore,
    Grade,
    GradedPair,
    Linker,
    LinkResult,
    PairScore,
    Thresholds,
)
from familyctx.linkage.model import LinkModel, LinkModelError
from familyctx.linkage.normalise import LinkFeatures, LinkInput, fold_name, link_features

__all__ = [
    "COMPARISONS",
    "FieldScore",
    "Grade",
    "GradedPair",
    "LinkFeatures",
    "LinkInput",
    "LinkModel",
    "LinkModelError",
    "LinkResult",
    "Linker",
    "Outcome",
    "PairScore",
    "Thresholds",
    "fold_name",
    "link_features",
]
