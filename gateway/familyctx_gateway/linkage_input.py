"""The gateway's person records as record linkage receives them (:class:`familyctx.linkage.LinkInput`).

One function, used by search, family context and the linkage evaluation alike, so that the linker is
always scored on exactly what the gateway gives it.
"""

from __future__ import annotations

from familyctx.linkage.normalise import LinkInput
from familyctx_gateway.api.schemas import PersonRecord

__all__ = ["link_input"]


def link_input(record: PersonRecord) -> LinkInput:
    """A :class:`~familyctx.linkage.normalise.LinkInput` for one council's person record.

    ``source`` is the council's GSS code (records of one council are never linked to each other) and
    ``record_id`` its local person id. Identifiers are passed as the gateway holds them: the NHS number
    as the adapter normalised it (``None`` when absent), names for display, the date of birth (or, for an
    unborn child, the expected date of birth from SSD PERS009A), the estimated-date flag, sex as the
    contract's enum name (``female``/``male``/``unknown``/``unspecified``) and the current address's
    postcode. Empty strings become ``None``. Never raises for a valid ``PersonRecord``.
    """
    postcode = record.address.postcode if record.address is not None else None
    return LinkInput(
        source=record.gss_code,
        record_id=record.local_person_id,
        nhs_number=record.nhs_number or None,
        given_name=record.given_name or None,
        family_name=record.family_name or None,
        date_of_birth=record.date_of_birth,
        date_of_birth_estimated=record.date_of_birth_estimated,
        expected_date_of_birth=record.expected_date_of_birth,
        sex=record.sex or None,
        postcode=postcode or None,
    )
