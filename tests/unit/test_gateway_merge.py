"""Conflicts of a merged person: every field its records disagree on, each value with its records."""

from __future__ import annotations

import datetime as dt

from familyctx_gateway.api import schemas as s
from familyctx_gateway.merge import field_conflicts


def rec(
    gss: str, local_id: str, *, sex: str, given: str = "Sam", postcode: str = "SK1 3XE"
) -> s.PersonRecord:
    return s.PersonRecord(
        gss_code=gss,
        council_name=gss,
        local_person_id=local_id,
        given_name=given,
        family_name="Lee",
        date_of_birth=dt.date(2012, 6, 1),
        sex=sex,
        address=s.Address(lines=["1 High Street"], postcode=postcode),
    )


def ref(gss: str, local_id: str) -> s.RecordRef:
    return s.RecordRef(gss_code=gss, local_person_id=local_id)


def test_sex_recorded_differently_is_a_conflict_with_each_values_sources() -> None:
    records = [rec("A", "1", sex="female"), rec("B", "2", sex="male"), rec("C", "3", sex="female")]
    assert field_conflicts(records) == [
        s.FieldConflict(
            field="sex", values=["female", "male"], sources=[[ref("A", "1"), ref("C", "3")], [ref("B", "2")]]
        )
    ]


def test_unknown_or_unspecified_sex_is_no_value_not_a_conflict() -> None:
    records = [rec("A", "1", sex="female"), rec("B", "2", sex="unknown"), rec("C", "3", sex="unspecified")]
    assert field_conflicts(records) == []


def test_every_conflicting_field_is_listed_in_order() -> None:
    records = [
        rec("A", "1", sex="male", given="Sam"),
        rec("B", "2", sex="female", given="Samuel", postcode="LS7 2AB"),
    ]
    conflicts = field_conflicts(records)
    assert [(c.field, c.values) for c in conflicts] == [
        ("given_name", ["Sam", "Samuel"]),
        ("sex", ["male", "female"]),
        ("address", ["1 High Street, SK1 3XE", "1 High Street, LS7 2AB"]),
    ]
    assert all(c.sources == [[ref("A", "1")], [ref("B", "2")]] for c in conflicts)
