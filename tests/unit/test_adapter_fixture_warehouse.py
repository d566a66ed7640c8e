"""A small council warehouse with the real-data quirks, for adapter tests on every CMS flavour.

``build_warehouse(engine, cms)`` creates the tables with the synth's own ``build_metadata(cms)`` and
writes one family (child Zoë O'NEILL, her brother, their mother, a grandmother) plus look-alikes:
a day/month-swapped date of birth, a same-dob stranger, a placeholder NHS number, 'NULL' strings,
1900-01-01 open ends, dd/mm/yyyy text dates and a postcode without its space. Imported by the
unit and integration adapter tests (``from unit.test_adapter_fixture_warehouse import ...``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from familyctx.warehouse.schema import build_metadata

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
SENTINEL = dt.datetime(1900, 1, 1)

CHILD, BROTHER, MOTHER, GRANDMOTHER = "P1001", "P1002", "P1003", "P1004"
LOOKALIKE, STRANGER, UNKNOWN_DOB = "P1005", "P1006", "P1007"
CHILD_NHS, MOTHER_NHS = "9434765919", "9434765870"

GSS = {"systemc": "E08000007", "mosaic": "E08000035", "eclipse": "E08000003"}
NAMES = {"systemc": "Stockport", "mosaic": "Leeds", "eclipse": "Manchester"}
LA = {"systemc": 356, "mosaic": 383, "eclipse": 352}
#: warehouse_refresh.source_system: the display name of the system each dataset is loaded from.
SYSTEM_NAMES = {"systemc": "Liquidlogic LCS", "mosaic": "Mosaic", "eclipse": "Eclipse"}


@dataclass(frozen=True)
class Expected:
    """Facts the tests check."""

    child_practitioner: str = "Priya Shah"
    child_practitioner_email: str = "priya.shah@example.gov.uk"
    asc_worker: str = "Olu Adeyemi"
    housing_officer: str = "Dan Price"


def _addr(house: str, street: str, town: str, uprn: str) -> str:
    return json.dumps(
        {
            "ROOM": "",
            "FLOOR": "",
            "FLAT": "",
            "BUILDING": "",
            "HOUSE": house,
            "STREET": street,
            "TOWN": town,
            "UPRN": uprn,
            "EASTING": "",
            "NORTHING": "",
        }
    )


def _rows(cms: str) -> dict[str, list[dict[str, object]]]:
    d = dt.datetime
    cin_ref: object = 1001 if cms == "mosaic" else "1001"
    cin_ref2: object = 1002 if cms == "mosaic" else "1002"
    return {
        "ssd_person": [
            dict(
                pers_person_id=CHILD,
                pers_forename="Zoë",
                pers_surname="O'NEILL",
                pers_sex="F",
                pers_dob=d(2014, 3, 5),
                pers_single_unique_id="943 476 5919",
            ),
            dict(
                pers_person_id=BROTHER,
                pers_forename="LIAM",
                pers_surname="O'NEILL",
                pers_sex="M",
                pers_dob=d(2016, 7, 11),
                pers_single_unique_id="9999999999",
            ),
            dict(
                pers_person_id=MOTHER,
                pers_forename=" Siobhan ",
                pers_surname="O'Neill",
                pers_sex="F",
                pers_dob=d(1988, 2, 10),
                pers_single_unique_id="943-476-5870",
            ),
            dict(
                pers_person_id=GRANDMOTHER,
                pers_forename="Mary",
                pers_surname="Kelly",
                pers_sex="F",
                pers_dob=d(1960, 5, 5),
                pers_single_unique_id="NULL",
            ),
            dict(
                pers_person_id=LOOKALIKE,
                pers_forename="Zoe",
                pers_surname="Oneil",
                pers_sex="F",
                pers_dob=d(2014, 5, 3),
                pers_single_unique_id="9434765918",
            ),
            dict(
                pers_person_id=STRANGER,
                pers_forename="Adam",
                pers_surname="Smith",
                pers_sex="M",
                pers_dob=d(2014, 3, 5),
                pers_single_unique_id="",
            ),
            dict(
                pers_person_id=UNKNOWN_DOB,
                pers_forename="NULL",
                pers_surname="Nowak",
                pers_sex="U",
                pers_dob=SENTINEL,
                pers_single_unique_id=None,
            ),
        ],
        "ssd_address": [
            dict(
                addr_table_id="A1",
                addr_person_id=CHILD,
                addr_address_start_date=d(2015, 1, 1),
                addr_address_end_date=d(2020, 1, 1),
                addr_address_postcode="M1 1AA",
                addr_address_json=_addr("1", "Old Road", "Manchester", "1"),
            ),
            dict(
                addr_table_id="A2",
                addr_person_id=CHILD,
                addr_address_start_date=d(2020, 1, 2),
                addr_address_end_date=SENTINEL,
                addr_address_postcode="sk13xe",
                addr_address_json=_addr("12", "HIGH STREET", "Stockport", "100012345678"),
            ),
            dict(
                addr_table_id="A3",
                addr_person_id=STRANGER,
                addr_address_start_date=d(2020, 1, 2),
                addr_address_end_date=None,
                addr_address_postcode="SK4 1AA",
                addr_address_json="not json",
            ),
        ],
        "person_relationships": [
            dict(
                relationship_id="R1",
                person_id=CHILD,
                related_person_id=MOTHER,
                relationship_code="MOTHER",
                relationship_desc="Mother",
            ),
            dict(
                relationship_id="R2",
                person_id=CHILD,
                related_person_id=BROTHER,
                relationship_code="SIBLING",
                relationship_desc="Brother",
            ),
            dict(
                relationship_id="R3",
                person_id=MOTHER,
                related_person_id=GRANDMOTHER,
                relationship_code="MOTHER",
                relationship_desc="Mother",
            ),
        ],
        "ssd_mother": [dict(moth_table_id="M1", moth_person_id=MOTHER, moth_childs_person_id=BROTHER)],
        "ssd_family": [
            dict(fami_table_id=f"F{i}", fami_family_id="FAM1", fami_person_id=p)
            for i, p in enumerate((CHILD, BROTHER, MOTHER))
        ],
        "staff_directory": [
            dict(
                staff_id="S1",
                display_name="Priya Shah",
                job_title="Social Worker",
                team_name="Children's Team 2",
                phone="0161 474 0001",
                email="priya.shah@example.gov.uk",
            ),
            dict(
                staff_id="S2",
                display_name="Kim Lee",
                job_title="Family Support Worker",
                team_name="Early Help",
                phone="0161 474 0002",
                email="kim.lee@example.gov.uk",
            ),
            dict(
                staff_id="S3",
                display_name="Olu Adeyemi",
                job_title="Care Manager",
                team_name="ASC North",
                phone="0161 474 0003",
                email="olu.adeyemi@example.gov.uk",
            ),
            dict(
                staff_id="S4",
                display_name="Dan Price",
                job_title="Housing Officer",
                team_name="Tenancy East",
                phone="0161 474 0004",
                email="dan.price@example.gov.uk",
            ),
        ],
        "ssd_professionals": [
            dict(
                prof_professional_id="101",
                prof_staff_id="S1",
                prof_professional_name="PRIYA SHAH",
                prof_professional_job_title="Social Worker",
                prof_professional_department="T1",
            ),
            dict(
                prof_professional_id="102",
                prof_staff_id="S2",
                prof_professional_name="Kim Lee",
                prof_professional_job_title="Family Support Worker",
                prof_professional_department="T2",
            ),
        ],
        "ssd_department": [dict(dept_team_id="T1", dept_team_name="Children's Team 2")],
        "ssd_cin_episodes": [
            dict(
                cine_referral_id=cin_ref,
                cine_person_id=CHILD,
                cine_referral_date=d(2024, 1, 10),
                cine_close_date=None,
                cine_cin_primary_need_code="N1",
                cine_referral_worker_id="101",
            ),
            dict(
                cine_referral_id=cin_ref2,
                cine_person_id=BROTHER,
                cine_referral_date=d(2021, 11, 1),
                cine_close_date=d(2022, 6, 1),
                cine_cin_primary_need_code="N4",
            ),
        ],
        "ssd_involvements": [
            dict(
                invo_involvements_id="I1",
                invo_professional_id="101",
                invo_referral_id="1001",
                invo_person_id=CHILD,
                invo_involvement_start_date=d(2024, 1, 10),
                invo_involvement_end_date=SENTINEL,
                invo_professional_team="T1",
            ),
            dict(
                invo_involvements_id="I0",
                invo_professional_id="102",
                invo_referral_id="1001",
                invo_person_id=CHILD,
                invo_involvement_start_date=d(2023, 1, 10),
                invo_involvement_end_date=d(2024, 1, 9),
            ),
        ],
        "ssd_cp_plans": [
            dict(
                cppl_cp_plan_id="CP1",
                cppl_referral_id="1001",
                cppl_person_id=CHILD,
                cppl_cp_plan_start_date=d(2024, 2, 1),
                cppl_cp_plan_end_date=SENTINEL,
                cppl_cp_plan_initial_category="Emotional abuse",
                cppl_cp_plan_latest_category="NEGLECT",
            ),
        ],
        "ssd_cla_episodes": [
            dict(
                clae_cla_episode_id="CL1",
                clae_person_id=BROTHER,
                clae_referral_id="1002",
                clae_cla_episode_start_date=d(2022, 1, 1),
                clae_cla_episode_ceased_date=d(2022, 6, 1),
            ),
        ],
        "ssd_early_help_episodes": [
            dict(
                earl_episode_id="EH1",
                earl_person_id=BROTHER,
                earl_episode_start_date=d(2023, 3, 1),
                earl_episode_end_date=None,
                earl_episode_worker_id="S2",
                earl_episode_organisation="Family Hub",
            ),
        ],
        "asc_clients": [
            dict(client_id="C1", person_id=MOTHER, primary_support_reason="Mental health support")
        ],
        "asc_involvements": [
            dict(
                involvement_id="AI1",
                client_id="C1",
                service_type="Home care",
                status="Open",
                start_date_text="03/04/2023",
                end_date_text="NULL",
                worker_staff_id="S3",
            ),
            dict(
                involvement_id="AI2",
                client_id="C1",
                service_type="Reablement",
                status="Closed",
                start_date_text="01/01/2021",
                end_date_text="01/02/2022",
                worker_staff_id="S3",
            ),
        ],
        "housing_tenancies": [
            dict(
                tenancy_ref="T1",
                person_id=MOTHER,
                tenant_role="Lead tenant",
                tenancy_type="Secure tenancy",
                start_date_text="01/06/2020",
                end_date_text="",
                address_line1="12 High Street",
                town="Stockport",
                postcode="SK13XE",
                arrears_pence=31250,
                nosp_served="Y",
                eviction_stage=None,
                asb_cases=2,
                officer_staff_id="S4",
            ),
        ],
        "warehouse_refresh": [
            dict(
                dataset_id="csc",
                refreshed_at=NOW - dt.timedelta(hours=1),
                refresh_interval_seconds=86400,
                coverage_from=d(2015, 4, 1),
                source_system=SYSTEM_NAMES[cms],
            ),
            dict(
                dataset_id="early_help",
                refreshed_at=NOW - dt.timedelta(days=3),
                refresh_interval_seconds=86400,
                coverage_from=d(2018, 4, 1),
                source_system=SYSTEM_NAMES[cms],
            ),
            dict(
                dataset_id="asc",
                refreshed_at=NOW,
                refresh_interval_seconds=86400,
                coverage_from=d(2016, 4, 1),
                source_system="Liquidlogic LAS",
            ),
            dict(
                dataset_id="housing",
                refreshed_at=NOW,
                refresh_interval_seconds=604800,
                coverage_from=d(2010, 1, 1),
                source_system="Northgate Housing",
            ),
        ],
    }


def build_warehouse(engine: sa.Engine, cms: str) -> Expected:
    """Create every table for ``cms`` and write the fixture rows (columns absent in a flavour are dropped)."""
    md = build_metadata(cms)
    md.create_all(engine)
    with engine.begin() as conn:
        for table_name, rows in _rows(cms).items():
            if table_name not in md.tables:
                continue
            table = md.tables[table_name]
            for row in rows:
                conn.execute(table.insert().values({k: v for k, v in row.items() if k in table.c}))
    return Expected()


def settings_for(cms: str, url: str, *, pki=None, policy_file=None, **extra: object):  # type: ignore[no-untyped-def]
    """AdapterSettings for the fixture council of ``cms`` on ``url``, listening on a free port.

    ``pki`` (a DevPki, e.g. the ``dev_pki`` fixture) supplies real TLS and gateway key files; without
    it the trust settings name files that do not exist (enough for tests that never build a server).
    ``policy_file`` defaults to the permit-all test policy.
    """
    from familyctx_adapter.settings import AdapterSettings
    from trust_support import PERMIT_ALL_POLICY, adapter_trust_settings

    gss = GSS[cms]
    if pki is not None:
        trust = adapter_trust_settings(pki, gss, policy_file=policy_file or PERMIT_ALL_POLICY)
    else:
        missing = Path("/nonexistent/familyctx-test-pki")
        trust = {
            "tls": {
                "cert_file": missing / "a.pem",
                "key_file": missing / "a.key",
                "client_ca_file": missing / "ca",
            },
            "gateway": {"issuer": "https://gateway.familyctx.local", "jwks_file": missing / "jwks.json"},
            "policy_file": policy_file or PERMIT_ALL_POLICY,
            "disclosure_log": {"database_url": "sqlite://", "signing_key_file": missing / "audit.jwk.json"},
        }
    return AdapterSettings(
        council={"gss_code": gss, "name": NAMES[cms], "dfe_la_number": LA[cms]},
        cms=cms,
        database_url=url,
        listen={"host": "127.0.0.1", "port": 0},
        **{**trust, **extra},
    )


def test_fixture_builds_on_every_flavour(tmp_path) -> None:  # noqa: ANN001
    for cms in ("systemc", "mosaic", "eclipse"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / cms}.sqlite")
        build_warehouse(engine, cms)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from ssd_person")).scalar() == 7
        engine.dispose()
