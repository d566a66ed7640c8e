"""Translate contract messages (familycontext.v1) into the gateway's API shapes (api/schemas.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from familycontext.v1 import types_pb2

from familyctx_gateway.api import schemas as s

__all__ = [
    "dataset_freshness",
    "date_from_proto",
    "date_to_proto",
    "enum_name",
    "involvement_status",
    "person_record",
    "provenance",
    "timestamp_from_proto",
]


def date_from_proto(value: Any) -> dt.date | None:
    """A contract ``Date`` as a ``date``; ``None`` when unset, partial (zero day/month) or impossible."""
    if value is None or not value.year or not value.month or not value.day:
        return None
    try:
        return dt.date(value.year, value.month, value.day)
    except ValueError:
        return None


def date_to_proto(value: dt.date | None) -> types_pb2.Date | None:
    return None if value is None else types_pb2.Date(year=value.year, month=value.month, day=value.day)


def timestamp_from_proto(value: Any) -> dt.datetime | None:
    """A protobuf ``Timestamp`` as an aware UTC ``datetime``; ``None`` when unset (zero)."""
    if value is None or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=dt.UTC)


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """``RELATIONSHIP_TYPE_HALF_SIBLING`` -> ``half_sibling``; unknown numbers -> ``unspecified``."""
    try:
        return enum.Name(value).removeprefix(prefix).lower()
    except ValueError:
        return "unspecified"


def provenance(msg: Any, gss_code: str) -> s.Provenance:
    """Contract ``Provenance``; the council is the one that answered, whatever the message claims."""
    return s.Provenance(
        council_gss_code=gss_code,
        source_system=msg.source_system,
        source_table=msg.source_table,
        record_id=msg.record_id,
        extracted_at=timestamp_from_proto(msg.extracted_at),
    )


def person_record(person: Any, gss_code: str, council_name: str) -> s.PersonRecord:
    address = None
    if person.HasField("address"):
        a = person.address
        address = s.Address(
            lines=[line for line in a.lines if line],
            postcode=a.postcode or None,
            uprn=a.uprn or None,
            start_date=date_from_proto(a.start_date),
            end_date=date_from_proto(a.end_date),
        )
    return s.PersonRecord(
        gss_code=gss_code,
        council_name=council_name,
        local_person_id=person.local_person_id,
        nhs_number=person.nhs_number or None,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=date_from_proto(person.date_of_birth) if person.HasField("date_of_birth") else None,
        date_of_birth_estimated=person.date_of_birth_estimated,
        expected_date_of_birth=(
            date_from_proto(person.expected_date_of_birth)
            if person.HasField("expected_date_of_birth")
            else None
        ),
        sex=enum_name(types_pb2.Sex, person.sex, "SEX_"),
        address=address,
        date_of_death=date_from_proto(person.date_of_death) if person.HasField("date_of_death") else None,
        provenance=provenance(person.provenance, gss_code) if person.HasField("provenance") else None,
    )


def involvement_status(value: int) -> s.InvolvementStatus:
    if value == types_pb2.INVOLVEMENT_STATUS_OPEN:
        return s.InvolvementStatus.open
    if value == types_pb2.INVOLVEMENT_STATUS_CLOSED:
        return s.InvolvementStatus.closed
    return s.InvolvementStatus.unknown


def dataset_freshness(dataset: Any, now: dt.datetime) -> s.DatasetFreshness:
    """Contract ``Dataset`` with ``stale`` computed: refreshed longer ago than its promised interval."""
    refreshed_at = timestamp_from_proto(dataset.refreshed_at)
    interval = int(dataset.refresh_interval_seconds)
    stale = bool(refreshed_at and interval and (now - refreshed_at).total_seconds() > interval)
    cohort = dataset.cohort if dataset.HasField("cohort") else None
    return s.DatasetFreshness(
        dataset_id=dataset.dataset_id,
        name=dataset.name,
        category=enum_name(types_pb2.DatasetCategory, dataset.category, "DATASET_CATEGORY_"),
        refreshed_at=refreshed_at,
        refresh_interval_seconds=interval,
        stale=stale,
        coverage_from=date_from_proto(dataset.coverage_from),
        coverage_area=dataset.coverage_area,
        cohort_min_age_years=(cohort.min_age_years or None) if cohort else None,
        cohort_max_age_years=(cohort.max_age_years or None) if cohort else None,
    )
