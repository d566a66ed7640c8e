"""Fixture councils for the gateway's tests: the "mother moved" family and a few traps for linkage.

Stockport holds Zoë O'Neill (the subject, CP plan), her brother Jayden (no NHS number recorded here) and
their mother Claire (old address). Leeds holds the mother as "Clare O'Neill" at her new address with
adult social care and housing involvements (same NHS number: a certain link, with a spelling and an
address conflict), and "Jayden ONeill" without an NHS number (a probable match, never merged).
Manchester holds a different Zoe O'Neill with another valid NHS number (must never link) and one of
a pair of twins whose sister is in Stockport (must never link).
"""

from __future__ import annotations

import datetime as dt

from familycontext.v1 import types_pb2 as t

from familyctx_gateway.testing.fake_council import CouncilData, involvement, person, relationship

__all__ = ["STOCKPORT", "LEEDS", "MANCHESTER", "NHS", "councils"]

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"

#: Valid synthetic NHS numbers (999 range, modulus-11 check digit).
NHS = {"zoe": "9990000018", "jayden": "9990000026", "claire": "9990000034", "other_zoe": "9990000042"}

CP_WORKER = (
    "Priya Shah",
    "Social Worker",
    "Stockport North CP Team",
    "0161 474 0000",
    "priya.shah@stockport.example",
)
ASC_WORKER = ("Morgan Reid", "Social Worker", "Leeds ASC East", "0113 222 0000", "morgan.reid@leeds.example")
HOUSING_OFFICER = (
    "Alex Hughes",
    "Housing Officer",
    "Leeds Housing East",
    "0113 333 0000",
    "alex.hughes@leeds.example",
)


def councils() -> dict[str, CouncilData]:
    """Fresh fixture data for the three demo councils (keyed by GSS code)."""
    s, le, m = STOCKPORT, LEEDS, MANCHESTER
    stockport = CouncilData(
        s,
        "Stockport",
        people=[
            person(
                s,
                "S-1001",
                "Zoë",
                "O'Neill",
                dt.date(2014, 3, 5),
                nhs=NHS["zoe"],
                postcode="SK1 3XE",
                lines=("12 Hill Street", "Stockport"),
                sex=t.SEX_FEMALE,
            ),
            person(
                s,
                "S-1002",
                "Jayden",
                "O'Neill",
                dt.date(2016, 7, 21),
                postcode="SK1 3XE",
                lines=("12 Hill Street", "Stockport"),
                sex=t.SEX_MALE,
            ),
            person(
                s,
                "S-1003",
                "Claire",
                "O'Neill",
                dt.date(1988, 11, 2),
                nhs=NHS["claire"],
                postcode="SK1 3XE",
                lines=("12 Hill Street", "Stockport"),
                sex=t.SEX_FEMALE,
            ),
            person(s, "S-2001", "Ella", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA"),
        ],
        relationships=[
            relationship(s, "S-1001", "S-1003", t.RELATIONSHIP_TYPE_PARENT, "Mother"),
            relationship(s, "S-1001", "S-1002", t.RELATIONSHIP_TYPE_SIBLING, "Brother"),
            relationship(s, "S-1002", "S-1003", t.RELATIONSHIP_TYPE_PARENT, "Mother"),
        ],
        involvements=[
            involvement(
                s,
                "CPP-1",
                "S-1001",
                "csc",
                t.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE,
                "Child protection plan",
                practitioner=CP_WORKER,
                summary="Category: Neglect",
            ),
            involvement(
                s,
                "CIN-2",
                "S-1002",
                "csc",
                t.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE,
                "Child in need plan",
                practitioner=CP_WORKER,
            ),
        ],
        datasets=(
            ("csc", t.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE),
            ("early_help", t.DATASET_CATEGORY_EARLY_HELP),
        ),
    )
    leeds = CouncilData(
        le,
        "Leeds",
        people=[
            person(
                le,
                "L-77",
                "Clare",
                "O'Neill",
                dt.date(1988, 11, 2),
                nhs=NHS["claire"],
                postcode="LS7 2AB",
                lines=("Flat 3, 8 Chapel Road", "Leeds"),
                sex=t.SEX_FEMALE,
                system="mosaic",
            ),
            person(le, "L-78", "Jayden", "ONeill", dt.date(2016, 7, 21), postcode="LS7 2AB", system="mosaic"),
        ],
        involvements=[
            involvement(
                le,
                "ASC-9",
                "L-77",
                "asc",
                t.DATASET_CATEGORY_ADULT_SOCIAL_CARE,
                "Adult social care: carer support",
                practitioner=ASC_WORKER,
            ),
            involvement(
                le,
                "TEN-4",
                "L-77",
                "housing",
                t.DATASET_CATEGORY_HOUSING,
                "Tenancy",
                practitioner=HOUSING_OFFICER,
                summary="Arrears; notice seeking possession",
            ),
        ],
        datasets=(("asc", t.DATASET_CATEGORY_ADULT_SOCIAL_CARE), ("housing", t.DATASET_CATEGORY_HOUSING)),
    )
    manchester = CouncilData(
        m,
        "Manchester",
        people=[
            person(
                m,
                "M-5",
                "Zoe",
                "O'Neill",
                dt.date(2014, 3, 5),
                nhs=NHS["other_zoe"],
                postcode="M12 4PQ",
                system="eclipse",
            ),
            person(m, "M-6", "Ava", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA", system="eclipse"),
        ],
    )
    return {s: stockport, le: leeds, m: manchester}
