"""The ground truth: which council records are the same person, and who is related to whom.

Written to ``<out>/ground_truth.sqlite`` for tests and linkage evaluation:

- ``truth_people(truth_person_id PK, given_name, family_name, sex, date_of_birth, expected_dob,
  nhs_number)``: each real person as born (no quirks).
- ``truth_records(truth_person_id, gss_code, local_person_id)``: every council record's true person.
- ``truth_relationships(truth_person_id, related_truth_person_id, relationship_code)``: "related is
  <code> of person", every true relationship (including people no council links).
- ``truth_quirks(gss_code, local_person_id, quirk)``: quirks planted in each record (noise.QUIRKS).
"""

from __future__ import annotations

import sqlalchemy as sa

from familyctx.synth.bulk import BulkInserter
from familyctx.synth.model import Household


def truth_metadata() -> sa.MetaData:
    """Tables of ground_truth.sqlite (see module docstring)."""
    md = sa.MetaData()
    s = sa.String
    sa.Table(
        "truth_people",
        md,
        sa.Column("truth_person_id", s(12), primary_key=True),
        sa.Column("given_name", s(100)),
        sa.Column("family_name", s(255)),
        sa.Column("sex", s(1)),
        sa.Column("date_of_birth", sa.Date()),
        sa.Column("expected_dob", sa.Date()),
        sa.Column("nhs_number", s(10)),
    )
    sa.Table(
        "truth_records",
        md,
        sa.Column("truth_person_id", s(12), nullable=False),
        sa.Column("gss_code", s(9), primary_key=True),
        sa.Column("local_person_id", s(48), primary_key=True),
    )
    sa.Table(
        "truth_relationships",
        md,
        sa.Column("truth_person_id", s(12), primary_key=True),
        sa.Column("related_truth_person_id", s(12), primary_key=True),
        sa.Column("relationship_code", s(20), primary_key=True),
    )
    sa.Table(
        "truth_quirks",
        md,
        sa.Column("gss_code", s(9), primary_key=True),
        sa.Column("local_person_id", s(48), primary_key=True),
        sa.Column("quirk", s(40), primary_key=True),
    )
    return md


class TruthWriter:
    """Buffers ground-truth rows and writes them in batches through ``conn`` (inside a transaction)."""

    def __init__(self, conn: sa.Connection, batch_size: int = 5000) -> None:
        tables = truth_metadata().tables
        self._bulk = {name: BulkInserter(conn, t, batch_size) for name, t in tables.items()}

    def flush(self) -> None:
        """Write every buffered row."""
        for bulk in self._bulk.values():
            bulk.flush()

    def household(self, household: Household, records: list[tuple[str, str, str, list[str]]]) -> None:
        """Record a household's people and relationships, and its council ``records``
        as (truth_person_id, gss_code, local_person_id, quirks)."""
        people, rels = self._bulk["truth_people"], self._bulk["truth_relationships"]
        for p in household.members:
            people.add((p.truth_id, p.given_name, p.family_name, p.sex, p.dob, p.expected_dob, p.nhs_number))
        for person, related, code in household.relationships:
            rels.add((person.truth_id, related.truth_id, code))
        recs, quirk_rows = self._bulk["truth_records"], self._bulk["truth_quirks"]
        for truth_id, gss, local, quirks in records:
            recs.add((truth_id, gss, local))
            for q in dict.fromkeys(quirks):
                quirk_rows.add((gss, local, q))
