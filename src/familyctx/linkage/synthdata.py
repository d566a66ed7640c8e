"""Synthetic worlds as the gateway sees them, for training and evaluating record linkage.

:func:`generate_world` runs the synthetic generator (:mod:`familyctx.synth`) for the three demo councils;
:func:`load_world` reads every person record back through the adapter's own code
(``familyctx_adapter``: :class:`Warehouse`, :class:`PersonReader` and its ``to_message``), converts the
``Person`` message with the gateway's ``convert.person_record`` and hands it to
``familyctx_gateway.linkage_input.link_input``. So the linker is trained and scored on exactly the values
a query gives it (normalised NHS numbers, display names, sentinel dates removed, current postcode), not on
the generator's raw rows. The ground truth (which records are one person, and the quirks planted in each
record) comes from ``ground_truth.sqlite`` (:mod:`familyctx.synth.truth`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.linkage.normalise import LinkInput

__all__ = ["World", "WorldError", "generate_world", "load_world"]

#: Person ids read per query (the adapter's own chunk size for ``by_ids``).
_CHUNK = 500


class WorldError(ValueError):
    """A directory that does not hold a synthetic world (no council file or no ground truth)."""


@dataclass
class World:
    """Every council record of a synthetic world, with its ground truth.

    ``records``: one :class:`LinkInput` per council person record, councils in DEMO_COUNCILS order and
    records in local-id order within a council; ``truth``: (gss_code, local_person_id) ->
    truth_person_id; ``quirks``: (gss_code, local_person_id) -> quirks planted in that record (names from
    ``familyctx.synth.noise.QUIRKS``, sorted; records without a quirk are absent).
    """

    records: list[LinkInput]
    truth: dict[tuple[str, str], str]
    quirks: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def truth_of(self, record: LinkInput) -> str | None:
        """The true person of ``record``, or None when the ground truth does not hold it."""
        return self.truth.get((record.source, record.record_id))


def generate_world(out_dir: Path, *, people: int, noise: float, seed: int = 42) -> Path:
    """Generate a synthetic world of ``people`` true people for the three demo councils in ``out_dir``.

    ``noise`` is the share of council records given a real-data quirk (0..1; the generator's default is
    0.1). Writes ``<slug>.sqlite`` per council, ``ground_truth.sqlite`` and ``scenarios.json``; returns
    ``out_dir``. Deterministic for a given (people, noise, seed). Raises
    :class:`familyctx.synth.options.SynthInputError` (a ValueError) for bad values or when ``out_dir``
    already holds a world.
    """
    from familyctx.synth.options import build_options
    from familyctx.synth.runner import run

    options = build_options(
        out=Path(out_dir),
        people=people,
        seed=seed,
        council_slugs=[],
        database_urls=[],
        noise=noise,
        force=False,
    )
    run(options)
    return Path(out_dir)


@contextlib.contextmanager
def _engine(path: Path) -> Iterator[sa.Engine]:
    from familyctx_adapter.warehouse import create_warehouse_engine

    engine = create_warehouse_engine(f"sqlite:///{path}", pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def _council_records(path: Path, council: DemoCouncil) -> list[LinkInput]:
    """Every person of one council's warehouse, read and converted as adapter and gateway do."""
    from familycontext.v1 import types_pb2
    from familyctx_adapter.mapping import mapping_for
    from familyctx_adapter.people import PersonReader
    from familyctx_adapter.warehouse import Warehouse
    from familyctx_gateway.convert import person_record
    from familyctx_gateway.linkage_input import link_input

    with _engine(path) as engine:
        warehouse = Warehouse.open(engine, mapping_for(council.cms))
        reader = PersonReader(warehouse, gss_code=council.gss_code)
        source_table = warehouse.table_name("person")
        out: list[LinkInput] = []
        with engine.connect() as conn:
            ids = sorted({str(v) for v in conn.execute(sa.select(warehouse.c("person", "id"))).scalars()})
            for i in range(0, len(ids), _CHUNK):
                found = {r.id: r for r in reader.by_ids(conn, ids[i : i + _CHUNK])}
                for local_id in ids[i : i + _CHUNK]:
                    person = found[local_id]
                    provenance = types_pb2.Provenance(
                        council_gss_code=council.gss_code,
                        source_system=council.cms,
                        source_table=source_table,
                        record_id=local_id,
                    )
                    message = reader.to_message(person, provenance)
                    out.append(link_input(person_record(message, council.gss_code, council.name)))
    return out


def load_world(directory: Path) -> World:
    """Read a world written by :func:`generate_world` (or ``familyctx synth``) from ``directory``.

    Every council file present (``<slug>.sqlite`` of the demo councils) is read in full. Raises
    :class:`WorldError` when no council file or no ``ground_truth.sqlite`` is there, and
    ``familyctx_adapter.errors.WarehouseMappingError`` when a council file is not that council's flavour.
    About 1.5 s per 10,000 records.
    """
    directory = Path(directory)
    truth_file = directory / "ground_truth.sqlite"
    councils = [c for c in DEMO_COUNCILS if (directory / f"{c.slug}.sqlite").is_file()]
    if not councils:
        raise WorldError(f"{directory} holds no council warehouse (<council>.sqlite); generate a world first")
    if not truth_file.is_file():
        raise WorldError(f"{directory} holds no ground_truth.sqlite")
    records: list[LinkInput] = []
    for council in councils:
        records.extend(_council_records(directory / f"{council.slug}.sqlite", council))
    truth: dict[tuple[str, str], str] = {}
    quirks: dict[tuple[str, str], list[str]] = {}
    with _engine(truth_file) as engine, engine.connect() as conn:
        for tid, gss, local in conn.execute(
            sa.text("SELECT truth_person_id, gss_code, local_person_id FROM truth_records")
        ):
            truth[(str(gss), str(local))] = str(tid)
        for gss, local, quirk in conn.execute(
            sa.text("SELECT gss_code, local_person_id, quirk FROM truth_quirks ORDER BY 1, 2, 3")
        ):
            quirks.setdefault((str(gss), str(local)), []).append(str(quirk))
    return World(records=records, truth=truth, quirks=quirks)
