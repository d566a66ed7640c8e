"""warehouse_refresh times from ``familyctx synth``: never later than the moment of generation (a demo run
with ``--as-of`` today just after midnight UTC used to show loads "last refreshed" at 01:30 still to
come), and a gateway shown a refresh time slightly in the future (clock skew) calls it fresh."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, cast

import pytest
import sqlalchemy as sa
from familycontext.v1 import types_pb2
from familyctx_gateway.convert import dataset_freshness

from familyctx.councils import DEMO_COUNCILS
from familyctx.synth.council_writer import CouncilWriter
from familyctx.synth.noise import Noise
from familyctx.synth.staff import StaffRoster
from familyctx.warehouse.schema import build_metadata

AS_OF = dt.date(2026, 11, 30)


def _refresh_rows(as_of: dt.date, now: dt.datetime) -> dict[str, dt.datetime]:
    council = DEMO_COUNCILS[0]
    engine = sa.create_engine("sqlite://")
    metadata = build_metadata(council.cms)
    metadata.create_all(engine)
    with engine.begin() as conn:
        writer = CouncilWriter(
            council,
            conn,
            metadata,
            roster=cast(StaffRoster, None),  # write_refresh names no staff
            noise=Noise(random.Random(0), 0.0),
            rng=random.Random(0),
            as_of=as_of,
        )
        writer.write_refresh(as_of, now=now)
        writer.flush()
        rows = conn.execute(sa.text("SELECT dataset_id, refreshed_at FROM warehouse_refresh")).all()
    engine.dispose()
    return {dataset: dt.datetime.fromisoformat(str(at)) for dataset, at in rows}


def test_just_after_midnight_the_nightly_loads_are_yesterdays() -> None:
    now = dt.datetime(2026, 11, 30, 0, 13, 42, tzinfo=dt.UTC)
    rows = _refresh_rows(AS_OF, now)
    assert rows["csc"] == dt.datetime(2026, 11, 29, 1, 30)
    assert rows["early_help"] == dt.datetime(2026, 11, 29, 1, 45)
    assert rows["asc"] == dt.datetime(2026, 11, 29, 2, 0)
    assert rows["housing"] == dt.datetime(2026, 11, 28, 3, 0)
    assert all(at <= now.replace(tzinfo=None) for at in rows.values())


def test_between_the_loads_only_those_still_to_come_move_back_a_day() -> None:
    rows = _refresh_rows(AS_OF, dt.datetime(2026, 11, 30, 1, 40, tzinfo=dt.UTC))
    assert rows["csc"] == dt.datetime(2026, 11, 30, 1, 30)
    assert rows["early_help"] == dt.datetime(2026, 11, 29, 1, 45)


def test_a_past_as_of_gives_the_same_times_whenever_it_is_run() -> None:
    first = _refresh_rows(dt.date(2026, 11, 1), dt.datetime(2026, 11, 30, 0, 5, tzinfo=dt.UTC))
    later = _refresh_rows(dt.date(2026, 11, 1), dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.UTC))
    assert first == later
    assert first["csc"] == dt.datetime(2026, 11, 1, 1, 30)


def test_an_as_of_in_the_future_is_refreshed_now_at_the_latest() -> None:
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    rows = _refresh_rows(dt.date(2027, 1, 1), now)
    assert set(rows.values()) == {now.replace(tzinfo=None)}


@pytest.mark.parametrize("ahead", [dt.timedelta(seconds=5), dt.timedelta(minutes=90)])
def test_the_gateway_calls_a_refresh_time_slightly_in_the_future_fresh(ahead: dt.timedelta) -> None:
    now = dt.datetime(2026, 11, 30, 0, 10, tzinfo=dt.UTC)
    dataset: Any = types_pb2.Dataset(dataset_id="csc", refresh_interval_seconds=86_400)
    dataset.refreshed_at.FromDatetime(now + ahead)
    freshness = dataset_freshness(dataset, now)
    assert freshness.stale is False
    assert freshness.refreshed_at == now + ahead
