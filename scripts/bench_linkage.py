"""Benchmark query-time record linkage: Linker.link over one query's candidates (issue 5).

Usage: ``scripts/bench_linkage.py --candidates 10,100,1000 [--repeat N] [--people P]``
(``make bench`` runs it with the defaults).

Candidate sets are realistic: records of a synthetic world (three councils, noise 0.1) as a query meets
them - people sharing the seed record's family name, then people born in the same year, then any - so
that names, dates and postcodes collide as they do in a search. Each timed call is ``Linker.link`` on one
candidate set, normalisation of every record included. Prints p50/p95 milliseconds per size and the
machine. Target (issue 5): under 20 ms for 100 candidates.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _candidate_sets(records: list, size: int, count: int, rng: random.Random) -> list[list]:
    from familyctx.linkage.normalise import link_features

    features = [link_features(r) for r in records]
    by_family: dict[str, list[int]] = defaultdict(list)
    by_year: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        by_family[f.family_key].append(i)
        if f.dob is not None:
            by_year[f.dob.year].append(i)
    sets = []
    for _ in range(count):
        seed = rng.randrange(len(records))
        f = features[seed]
        chosen: dict[int, None] = {seed: None}
        pools = [
            by_family.get(f.family_key, []),
            by_year.get(f.dob.year, []) if f.dob else [],
            range(len(records)),
        ]
        for pool in pools:
            items = list(pool)
            rng.shuffle(items)
            for i in items:
                if len(chosen) >= size:
                    break
                chosen[i] = None
        sets.append([records[i] for i in chosen])
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default="10,100,1000", help="comma-separated candidate set sizes")
    parser.add_argument(
        "--repeat", type=int, default=0, help="queries per size (default: 200/100/20 by size)"
    )
    parser.add_argument("--people", type=int, default=3000, help="people in the synthetic world")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.candidates.split(",") if s.strip()]
    except ValueError:
        parser.error("--candidates takes comma-separated integers, e.g. 10,100,1000")
    if not sizes or min(sizes) < 2:
        parser.error("--candidates sizes must be at least 2")

    from familyctx.linkage import Linker
    from familyctx.linkage.report import machine_description
    from familyctx.linkage.synthdata import generate_world, load_world

    with tempfile.TemporaryDirectory(prefix="familyctx-bench-linkage-") as tmp:
        world = load_world(generate_world(Path(tmp) / "world", people=args.people, noise=0.1, seed=42))
    records = world.records
    linker = Linker()
    linker.link(records[:50])  # warm-up: model load, imports
    rng = random.Random(42)
    print(f"machine: {machine_description()}")
    print(f"world: {len(records):,} records of {args.people:,} people, 3 councils, noise 0.1")
    print(f"{'candidates':>10} {'queries':>8} {'pairs':>8} {'p50 ms':>8} {'p95 ms':>8} {'graded':>7}")
    for size in sizes:
        repeat = args.repeat or (200 if size <= 10 else 100 if size <= 100 else 20)
        sets = _candidate_sets(records, min(size, len(records)), repeat, rng)
        times, graded, pairs = [], 0, 0
        for candidates in sets:
            started = time.perf_counter()
            result = linker.link(candidates)
            times.append((time.perf_counter() - started) * 1000)
            graded += len(result.pairs)
            sources: dict[str, int] = defaultdict(int)
            for r in candidates:
                sources[r.source] += 1
            n = len(candidates)
            pairs += (n * (n - 1) - sum(c * (c - 1) for c in sources.values())) // 2
        times.sort()
        p50 = statistics.median(times)
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"{size:>10} {repeat:>8} {pairs // repeat:>8} {p50:>8.2f} {p95:>8.2f} {graded / repeat:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
