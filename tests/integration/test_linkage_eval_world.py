"""End to end: a synthetic world read as the gateway sees it, the packaged linker scored on it, the report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from familyctx.identifiers import normalise_nhs_number, normalise_postcode
from familyctx.linkage import Linker
from familyctx.linkage.evaluate import (
    DEFAULT_NOISE,
    MIN_CERTAIN_LINKS,
    TARGETS,
    Evaluation,
    check_targets,
    evaluate,
)
from familyctx.linkage.report import render_report, write_report
from familyctx.linkage.synthdata import World, WorldError, generate_world, load_world
from familyctx.synth import SynthInputError

PEOPLE = 3000
#: Big enough to judge the targets (at least MIN_CERTAIN_LINKS certain links: about 1,250 at 9,000).
JUDGE_PEOPLE = 9000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = generate_world(tmp_path_factory.mktemp("world") / "w", people=PEOPLE, noise=0.1, seed=42)
    return load_world(directory)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate([DEFAULT_NOISE], people=JUDGE_PEOPLE, seed=42)


def test_world_holds_every_council_record_with_its_truth(world: World) -> None:
    assert {r.source for r in world.records} == {"E08000007", "E08000035", "E08000003"}
    keys = [(r.source, r.record_id) for r in world.records]
    assert len(set(keys)) == len(keys)
    assert set(keys) == set(world.truth)  # every record read, none invented
    assert len(set(world.truth.values())) == PEOPLE
    # some people are known to two councils: the pairs linkage must find
    people_per_council: dict[str, set[str]] = {}
    for (gss, _), tid in world.truth.items():
        people_per_council.setdefault(tid, set()).add(gss)
    assert sum(len(c) > 1 for c in people_per_council.values()) > 100


def test_world_records_are_what_the_gateway_sees(world: World) -> None:
    """Quirks planted in the warehouse rows are normalised by the adapter before linkage sees them."""
    by_key = {(r.source, r.record_id): r for r in world.records}
    planted: dict[str, list[tuple[str, str]]] = {}
    for key, quirks in world.quirks.items():
        for q in quirks:
            planted.setdefault(q, []).append(key)
    for q in ("nhs_placeholder", "nhs_invalid", "nhs_missing"):
        assert planted[q], q
        assert all(by_key[k].nhs_number is None for k in planted[q]), q
    assert planted["nhs_formatted"]
    for k in planted["nhs_formatted"]:
        nhs = by_key[k].nhs_number
        assert nhs is None or (nhs.isdigit() and len(nhs) == 10 and normalise_nhs_number(nhs) == nhs)
    for q in ("postcode_lower", "postcode_nospace"):
        assert planted[q], q
        for k in planted[q]:
            pc = by_key[k].postcode
            assert pc is None or normalise_postcode(pc) == pc, q
    # the sentinel date is dropped by the adapter, never passed on as 1900-01-01
    assert all(str(r.date_of_birth) != "1900-01-01" for r in world.records)


def test_generate_world_refuses_to_overwrite_and_load_needs_a_world(tmp_path: Path) -> None:
    with pytest.raises(SynthInputError, match="between 5"):
        generate_world(tmp_path / "w", people=4, noise=0.1)
    with pytest.raises(WorldError, match="no council warehouse"):
        load_world(tmp_path)
    generate_world(tmp_path / "w", people=20, noise=0.0)
    with pytest.raises(SynthInputError, match="--force"):
        generate_world(tmp_path / "w", people=20, noise=0.0)
    (tmp_path / "w" / "ground_truth.sqlite").unlink()
    with pytest.raises(WorldError, match="ground_truth"):
        load_world(tmp_path / "w")


def test_packaged_linker_meets_the_targets_at_the_default_noise(evaluation: Evaluation) -> None:
    r = evaluation.at(DEFAULT_NOISE)
    assert r is not None
    assert r.records > JUDGE_PEOPLE and r.true_pairs > 100
    certain = r.cumulative_for("certain")
    assert certain.true_positives + certain.false_positives >= MIN_CERTAIN_LINKS  # the targets are judged
    # nearly every true pair can meet in a query; those that cannot are counted as missed, not dropped
    assert r.true_pairs_blocked >= 0.99 * r.true_pairs
    unblocked = r.true_pairs - r.true_pairs_blocked
    assert r.missed_by_grade.get("not linked", 0) >= unblocked
    if r.missed_total <= 50:  # every missed pair is listed: the unblocked ones among them
        assert sum(not d.blocked for d in r.missed) == unblocked
    precision = r.cumulative_for("certain").precision
    recall = r.cumulative_for("certain + probable").recall
    assert precision is not None and precision >= TARGETS["precision of certain pairs"]
    assert recall is not None and recall >= TARGETS["recall of certain + probable"]
    assert r.merge.precision is not None and r.merge.precision >= 0.99
    assert check_targets(evaluation) == []
    # the listings are consistent with the counts
    assert r.wrong_total == sum(r.wrong_by_grade.values())
    assert r.missed_total == r.true_pairs - r.cumulative_for("certain + probable").true_positives
    assert len(r.wrong) == min(r.wrong_total, 50) and len(r.missed) == min(r.missed_total, 50)


def test_report_has_its_sections_and_is_deterministic(evaluation: Evaluation, tmp_path: Path) -> None:
    path = write_report(evaluation, tmp_path / "linkage.md", linker=Linker())
    text = path.read_text(encoding="utf-8")
    for heading in (
        "# Record linkage across councils: evaluation",
        "## Targets",
        "## Results",
        "### Noise 0.1 (the default noise level)",
        "## Wrong pairs at noise 0.1",
        "## Missed pairs at noise 0.1",
        "## Method",
        "### Normalisation",
        "### Blocking (candidate pairs)",
        "### Comparisons and levels",
        "### Term frequency",
        "### Guard rules",
        "### Thresholds",
    ):
        assert re.search(rf"^{re.escape(heading)}$", text, re.MULTILINE), heading
    assert "make linkage-eval" in text
    assert f"{JUDGE_PEOPLE:,} true people" in text
    assert "Model evaluated: `src/familyctx/linkage/data/model.json` (the packaged model)." in text
    assert "seed 42" in text
    for field in ("nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode"):
        assert f"**{field}**" in text
    assert "| precision of certain pairs at noise 0.1 | ≥ 0.999 |" in text
    targets = text.split("## Targets", 1)[1].split("## Results", 1)[0]
    assert targets.count("| met |") == 2 and "missed" not in targets
    # only the run line differs between two renderings of the same evaluation
    linker = Linker()
    one = render_report(evaluation, model=linker.model, thresholds=linker.thresholds, machine="m1")
    two = render_report(evaluation, model=linker.model, thresholds=linker.thresholds, machine="m2")
    diff = [(a, b) for a, b in zip(one.splitlines(), two.splitlines(), strict=True) if a != b]
    assert len(diff) == 1 and diff[0][0].startswith("Run: ")


class _NeverLinks:
    """A linker that links nothing: the targets must be reported missed."""

    def __init__(self) -> None:
        self._real = Linker()

    def grade_pairs(self, records, pairs):  # type: ignore[no-untyped-def]
        return [(None, score, rules) for _, score, rules in self._real.grade_pairs(records, pairs)]

    def compare(self, a, b):  # type: ignore[no-untyped-def]
        _, score, rules = self._real.compare(a, b)
        return None, score, rules

    @property
    def model(self):  # type: ignore[no-untyped-def]
        return self._real.model

    @property
    def thresholds(self):  # type: ignore[no-untyped-def]
        return self._real.thresholds


def test_command_exits_1_and_says_which_target_was_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import familyctx.linkage
    import familyctx.linkage.evaluate as evaluate_module
    from familyctx.cli import app

    monkeypatch.setattr(familyctx.linkage, "Linker", _NeverLinks)
    # a 200-person world has ~30 true pairs: judge recall on it; precision (no certain link) is not judged
    monkeypatch.setattr(evaluate_module, "MIN_TRUE_PAIRS", 10)
    report = tmp_path / "docs" / "linkage.md"
    result = CliRunner().invoke(
        app, ["linkage", "eval", "--people", "200", "--noise", "0.1", "--report", str(report)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    assert "target missed: recall of certain + probable at noise 0.1 is 0.0000" in result.output
    assert "Traceback" not in result.output
    targets = report.read_text(encoding="utf-8").split("## Targets", 1)[1].split("## Results", 1)[0]
    assert "| recall of certain + probable at noise 0.1 | ≥ 0.97 | 0.0000 | **missed** |" in targets
    output = " ".join(result.output.split())
    assert "too few pairs to judge the targets at noise 0.1: 0 certain links" in output
    assert "| precision of certain pairs at noise 0.1 | ≥ 0.999 | — | not judged: 0 certain links" in targets
    assert "targets met" not in result.output
