"""Conflation benchmark: time ``geocommuns.ingest.conflate.conflate`` on 10,000 to 100,000 features.

Generates (seeded) SAMPLE features of the ``equipements`` layer in two sources over the
Lot (about 5,200 km²): a "commune" source, and an "osm" source of which 30 % are copies of
commune features moved 0 to 30 m with their name slightly changed, the rest elsewhere.
Times candidate pairs (R-tree), scoring and merging, in this process.

Usage::

    python bench/conflate.py                    # 10,000 and 100,000 features
    python bench/conflate.py --features 50000   # one size

Prints a Markdown table line per size: wall-clock time, and the CPU time of this process
(the figure to compare on a shared, loaded machine). The data is SAMPLE data, invented by this script.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import time
from pathlib import Path

import shapely

from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.ingest.conflate import conflate
from geocommuns.ingest.harmonise import features_frame

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["gymnase", "stade", "salle", "médiathèque", "piscine", "école", "mairie", "musée",
         "centre", "maison", "espace", "foyer", "terrain", "court", "halle"]
NAMES = ["Jean Moulin", "des Écoles", "du Lot", "Saint-Martin", "Champollion", "Gambetta",
         "des Tilleuls", "de la Croix", "du Château", "Victor Hugo", "Jean Jaurès", "du Pont"]
CATEGORIES = ["administratif", "sport", "culture", "social"]


def sample_features(count: int, seed: int = 46) -> list[dict[str, object]]:
    """``count`` SAMPLE features in two sources (half each), 30 % of the second overlapping."""
    rng = random.Random(seed)
    half = count // 2
    records: list[dict[str, object]] = []
    for k in range(half):
        lon, lat = rng.uniform(1.0, 2.2), rng.uniform(44.2, 45.0)
        name = f"{rng.choice(WORDS).title()} {rng.choice(NAMES)}"
        records.append({"id": f"commune--{k}", "source": "commune", "source_id": str(k),
                        "nom": name, "categorie": rng.choice(CATEGORIES), "code_insee": "46042",
                        "commune": "Cahors", "licence": "etalab-2.0", "_at": (lon, lat)})
    for k in range(count - half):
        if rng.random() < 0.3:
            twin = records[rng.randrange(half)]
            lon0, lat0 = twin["_at"]  # type: ignore[misc]
            d, b = rng.uniform(0, 30), rng.uniform(0, 2 * math.pi)
            lon = lon0 + d * math.sin(b) / (111_320 * math.cos(math.radians(lat0)))
            lat = lat0 + d * math.cos(b) / 111_320
            name, category = str(twin["nom"]).upper(), twin["categorie"]
        else:
            lon, lat = rng.uniform(1.0, 2.2), rng.uniform(44.2, 45.0)
            name = f"{rng.choice(WORDS).title()} {rng.choice(NAMES)}"
            category = rng.choice(CATEGORIES)
        records.append({"id": f"osm--node/{k}", "source": "osm", "source_id": f"node/{k}",
                        "osm_id": f"node/{k}", "nom": name, "categorie": category,
                        "code_insee": "46042", "commune": "Cahors", "licence": "ODbL-1.0",
                        "_at": (lon, lat)})
    return records


def run(count: int) -> str:
    """Time one conflation of ``count`` features; the Markdown table line."""
    layer = layers_from_dir(ROOT / "layers")["equipements"]
    records = sample_features(count)
    geometries = [shapely.Point(r.pop("_at")) for r in records]  # type: ignore[arg-type]
    frame = features_frame(layer, records, geometries)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = conflate(frame, layer, kinds={"commune": "file", "osm": "osm"})
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = result.counts()
    return (
        f"| {count:,} | {len(result.pairs):,} | {counts['merged']:,} | {counts['uncertain']:,} | "
        f"{len(result.features):,} | {seconds:.2f} s | {cpu:.2f} s | {peak_mb:.0f} MB |"
    )


def main() -> None:
    """Run the sizes asked for and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, action="append")
    args = parser.parse_args()
    print("| features | pairs considered | merged | uncertain | features after | time | CPU time | peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in args.features or [10_000, 100_000]:
        print(run(count), flush=True)


if __name__ == "__main__":
    main()
