"""Runs a synth: households streamed into every council's warehouse, the ground truth and scenarios.

Files are written under temporary names in the output directory and renamed only when the whole run
has succeeded; on any failure they are removed (and tables created on a server by URL are dropped),
so a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.synth import scenario
from familyctx.synth.council_writer import CouncilWriter
from familyctx.synth.identity import NhsNumberAllocator
from familyctx.synth.model import Household
from familyctx.synth.noise import Noise
from familyctx.synth.options import SynthInputError, SynthOptions
from familyctx.synth.pools import build_pools
from familyctx.synth.staff import StaffRoster
from familyctx.synth.truth import TruthWriter, truth_metadata
from familyctx.synth.world import HouseholdFactory
from familyctx.warehouse.schema import build_metadata

ProgressFn = Callable[[int], None]


@dataclass(slots=True)
class SynthResult:
    """What a run wrote: ``targets`` gss_code -> URL or file; ``rows`` gss_code -> rows written."""

    people: int
    households: int
    seconds: float
    targets: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    quirks: dict[str, int] = field(default_factory=dict)


def _fast_sqlite(engine: sa.Engine) -> None:
    # A file being built under a temporary name needs no journal: a crash leaves only the temp file.
    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()


def _sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    _fast_sqlite(engine)
    return engine


def output_paths(options: SynthOptions) -> list[Path]:
    """Files this run will create in ``options.out`` (final names)."""
    paths = [
        options.out / f"{c.slug}.sqlite" for c in options.councils if c.gss_code not in options.database_urls
    ]
    return [*paths, options.out / "ground_truth.sqlite", options.out / "scenarios.json"]


def check_targets(options: SynthOptions) -> None:
    """Raise :class:`SynthInputError` when a database URL cannot be reached, or when outputs already
    exist and ``force`` is not set. Nothing is written."""
    existing = [p.name for p in output_paths(options) if p.exists()]
    if existing and not options.force:
        raise SynthInputError(f"{options.out} already holds {', '.join(existing)}; use --force to overwrite")
    if options.out.exists() and not options.out.is_dir():
        raise SynthInputError(f"--out {options.out} exists and is not a directory")
    for gss, url in options.database_urls.items():
        engine = sa.create_engine(url)
        try:
            names = set(sa.inspect(engine).get_table_names())
        except sa.exc.SQLAlchemyError as exc:
            raise SynthInputError(
                f"cannot connect to the database given for {gss} ({type(exc).__name__}); check --database-url"
            ) from None
        finally:
            engine.dispose()
        if names & {"ssd_person", "staff_directory"} and not options.force:
            raise SynthInputError(f"the database for {gss} already holds warehouse tables; use --force")


@contextlib.contextmanager
def _targets(options: SynthOptions) -> Iterator[dict[str, tuple[sa.Engine, Path | None]]]:
    """Engines per council (gss_code), with fresh tables; cleans up everything if the body fails."""
    engines: dict[str, tuple[sa.Engine, Path | None]] = {}
    created_remote: list[tuple[sa.Engine, sa.MetaData]] = []
    try:
        for c in options.councils:
            url = options.database_urls.get(c.gss_code)
            md = build_metadata(c.cms)
            if url is None:
                tmp = options.out / f".{c.slug}.sqlite.partial"
                tmp.unlink(missing_ok=True)
                engine = _sqlite_engine(tmp)
                engines[c.gss_code] = (engine, tmp)
            else:
                engine = sa.create_engine(url)
                engines[c.gss_code] = (engine, None)
                md.drop_all(engine)
                created_remote.append((engine, md))
            md.create_all(engine)
        yield engines
    except BaseException:
        for engine, md in created_remote:
            with contextlib.suppress(Exception):
                md.drop_all(engine)
        for engine, partial in engines.values():
            engine.dispose()
            if partial is not None:
                partial.unlink(missing_ok=True)
        raise
    for engine, _ in engines.values():
        engine.dispose()


def run(options: SynthOptions, progress: ProgressFn | None = None) -> SynthResult:
    """Generate every council's warehouse, ground_truth.sqlite and scenarios.json.

    ``progress`` is called with the number of people just written. Raises :class:`SynthInputError`
    when outputs exist without ``force``; database errors propagate after cleanup.
    """
    started = time.perf_counter()
    check_targets(options)
    seed = options.seed
    pools = build_pools(seed)
    world_rng = random.Random(f"{seed}:world")
    factory = HouseholdFactory(
        rng=world_rng,
        pools=pools,
        councils=options.councils,
        all_councils=DEMO_COUNCILS,
        as_of=options.as_of,
        nhs=NhsNumberAllocator(seed),
    )
    result = SynthResult(people=0, households=0, seconds=0.0)
    truth_tmp = options.out / ".ground_truth.sqlite.partial"
    scen_tmp = options.out / ".scenarios.json.partial"
    created_dir = not options.out.exists()
    options.out.mkdir(parents=True, exist_ok=True)
    try:
        with _targets(options) as engines, contextlib.ExitStack() as stack:
            truth_engine = _sqlite_engine(truth_tmp)
            stack.callback(truth_engine.dispose)
            truth_md = truth_metadata()
            truth_md.create_all(truth_engine)
            truth_conn = stack.enter_context(truth_engine.begin())
            truth = TruthWriter(truth_conn, options.batch_size)
            writers: dict[str, CouncilWriter] = {}
            for c in options.councils:
                conn = stack.enter_context(engines[c.gss_code][0].begin())
                share = max(1, options.people // len(options.councils))
                roster = StaffRoster(
                    c, pools, random.Random(f"{seed}:{c.slug}:staff"), size=min(3000, share // 40)
                )
                writer = CouncilWriter(
                    c,
                    conn,
                    build_metadata(c.cms),
                    roster=roster,
                    noise=Noise(
                        random.Random(f"{seed}:{c.slug}:noise"),
                        options.noise,
                        gss_code=c.gss_code,
                        as_of=options.as_of,
                    ),
                    rng=random.Random(f"{seed}:{c.slug}:rows"),
                    as_of=options.as_of,
                    batch_size=options.batch_size,
                )
                writer.write_staff()
                writer.write_refresh(options.as_of)
                writers[c.gss_code] = writer

            planted = scenario.mother_moved(factory, random.Random(f"{seed}:scenario"), options.noise)
            planted_records = _write(planted, options.councils, writers, truth, result)
            if progress:
                progress(len(planted.members))
            while result.people < options.people:
                household = factory.next(options.people - result.people)
                _write(household, options.councils, writers, truth, result)
                if progress:
                    progress(len(household.members))
            for w in writers.values():
                w.flush()
                result.rows[w.council.gss_code] = w.rows_written
            truth.flush()
            scenarios = {
                "as_of": options.as_of.isoformat(),
                "seed": seed,
                "mother_moved": scenario.describe_mother_moved(planted, planted_records),
            }
            scen_tmp.write_text(json.dumps(scenarios, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except BaseException:
        truth_tmp.unlink(missing_ok=True)
        scen_tmp.unlink(missing_ok=True)
        if created_dir:
            with contextlib.suppress(OSError):
                options.out.rmdir()  # only when empty: never remove what someone else put there
        raise
    # every transaction committed and every engine closed: publish under the final names
    for c in options.councils:
        _, tmp = engines[c.gss_code]
        if tmp is not None:
            final = options.out / f"{c.slug}.sqlite"
            tmp.replace(final)
            result.targets[c.gss_code] = str(final)
        else:
            result.targets[c.gss_code] = sa.engine.make_url(
                options.database_urls[c.gss_code]
            ).render_as_string(hide_password=True)
    truth_tmp.replace(options.out / "ground_truth.sqlite")
    scen_tmp.replace(options.out / "scenarios.json")
    result.seconds = time.perf_counter() - started
    return result


def _write(
    household: Household,
    councils: tuple[DemoCouncil, ...],
    writers: dict[str, CouncilWriter],
    truth: TruthWriter,
    result: SynthResult,
) -> dict[tuple[str, str], str]:
    records: list[tuple[str, str, str, list[str]]] = []
    for c in councils:
        here = [p for p in household.presences if p.gss_code == c.gss_code]
        if not here:
            continue
        for truth_id, local, quirks in writers[c.gss_code].write_household(household, here):
            records.append((truth_id, c.gss_code, local, quirks))
            result.records[c.gss_code] = result.records.get(c.gss_code, 0) + 1
            for q in quirks:
                result.quirks[q] = result.quirks.get(q, 0) + 1
    truth.household(household, records)
    result.people += len(household.members)
    result.households += 1
    return {(t, g): local for t, g, local, _ in records}
