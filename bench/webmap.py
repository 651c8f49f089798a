"""bench.webmap: how fast the citizen map shows its first markers, static and live.

For each size (1,000, 10,000 and 100,000 features spread over the five layers of the
Grand Cahors, synthetic sample data from :mod:`bench.synth`), it writes a GeoPackage, a
static map (features embedded) and a live map (features asked from the OGC API by bbox),
serves both with ``geocommuns serve`` on 127.0.0.1, and opens each one several times in
Debian's headless Chromium with a fresh cache and the network blocked except for the local
server (the OpenStreetMap tiles are refused, as offline). It records:

- **first markers**: milliseconds from navigation start to the first animation frame after
  the first marker or cluster entered the page;
- **bytes**: bytes received on first load (``encodedDataLength`` summed over every response,
  headers included), and the page's own size;
- **load**: the ``load`` event; **all in**: when the map reported every overlay filled;
- **street**: then, the map set to Cahors' town hall at zoom 16, milliseconds until its
  single markers are drawn (live: the API asked for that bbox).

A third row per size, **embed**, opens the live map as a commune's website frames it: the
snippet's URL for one commune (Cahors) and one layer (``#embed=1&commune=46042&couches=
equipements``, a 320 × 480 frame); its first load should stay under 150 kB compressed. The
server gzips what it sends, so **bytes** are compressed bytes.

Run ``.venv/bin/python -m bench.webmap`` (about five minutes); it writes ``bench/WEBMAP.md``
and ``bench/webmap.json``. Options: ``--sizes 1000,10000 --runs 3 --out-dir DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.synth import synthetic_layer
from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.ingest.store import write_geopackage
from geocommuns.publish.webmap import write_webmap
from geocommuns.serve.pygeoapi_config import config_from_settings, write_config
from geocommuns.settings import Settings
from harness.processes import Service, clean_environment, geocommuns_serve

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000)
#: Share of the features per layer (containers and equipment dominate real data).
SHARES = {"equipements": 0.35, "conteneurs": 0.35, "wifi": 0.1, "tiers_lieux": 0.1, "telesante": 0.1}
TERRITORY = "epci:200023737"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # offline but for the local server, without routing every request through Python
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
#: Where the map is zoomed to after the first view: Cahors' town hall, street level.
STREET = (44.4475, 1.4417, 16)
#: The embed mode measured: the live map, one commune, one layer, in a 320 px wide frame.
EMBED = "#embed=1&commune=46042&couches=equipements"
EMBED_VIEWPORT = {"width": 320, "height": 480}
#: Records, in the page, when the first marker or cluster is in the DOM and painted.
_FIRST_MARKER = """
window.__gc = {};
new MutationObserver(function (records, observer) {
  if (document.querySelector('.gc-marker, .gc-cluster')) {
    observer.disconnect();
    requestAnimationFrame(function () { window.__gc.first = performance.now(); });
  }
}).observe(document, {subtree: true, childList: true});
"""
#: True once every overlay holds its features (static: clustered; live: answered).
_ALL_IN = """() => {
  const s = window.GeocommunsMap && GeocommunsMap.state;
  if (!s || !GeocommunsMap.ready) return false;
  const shown = s.cfg.layers.filter(l => s.map.hasLayer(s.parts.clusters[l.id]));
  const done = shown.every(l => s.features[l.id] !== undefined);
  const busy = Object.values(s.parts.clusters).some(g => g._queue && g._queue.length);
  return done && !busy && document.querySelector('.gc-marker, .gc-cluster') !== null;
}"""


def write_data(path: Path, total: int, layers: dict[str, LayerDef]) -> dict[str, int]:
    """A GeoPackage of ``total`` synthetic features over the Grand Cahors, split by :data:`SHARES`."""
    territory = territory_from_spec(TERRITORY)
    counts = {k: round(total * share) for k, share in SHARES.items()}
    frames = {k: synthetic_layer(layers[k], n, territory, seed=46) for k, n in counts.items()}
    write_geopackage(frames, {k: layers[k] for k in counts}, path)
    return counts


def serve(folder: Path, gpkg: Path, webmap: Path) -> contextlib.AbstractContextManager[Service]:
    """``geocommuns serve`` on ``gpkg`` with ``webmap`` at /map/, until the block ends."""
    settings = Settings(output=gpkg, root=ROOT, database_url=None)
    config = folder / "pygeoapi-config.yml"
    write_config(config_from_settings(settings, extent="data", data=str(gpkg), backend="gpkg"), config)
    env = clean_environment({"GEOCOMMUNS_WEBMAP_DIR": str(webmap)})
    return geocommuns_serve(folder, config, workers=2, env=env)


def measure(browser: Any, url: str, viewport: dict[str, int] | None = None) -> dict[str, float]:
    """Open ``url`` in a fresh context; times in ms since navigation start, bytes received."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    received = {"bytes": 0.0, "requests": 0.0}
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")

    def finished(event: dict[str, Any]) -> None:
        received["bytes"] += event.get("encodedDataLength", 0)
        received["requests"] += 1

    cdp.on("Network.loadingFinished", finished)
    page.add_init_script(_FIRST_MARKER)
    page.goto(url, wait_until="load", timeout=300_000)
    page.wait_for_function("window.__gc && window.__gc.first !== undefined", timeout=300_000)
    page.wait_for_function(_ALL_IN, timeout=300_000, polling=50)
    all_in = page.evaluate("performance.now()")
    page.wait_for_timeout(300)  # let the last responses be counted
    timing = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {first: window.__gc.first, load: n.loadEventEnd, page: n.encodedBodySize}; })()"
    )
    markers = page.evaluate("document.querySelectorAll('.gc-marker, .gc-cluster').length")
    first_load = dict(received)
    lat, lon, zoom = STREET
    street = page.evaluate(
        """([lat, lon, zoom]) => new Promise(done => {
          const t0 = performance.now();
          GeocommunsMap.state.map.setView([lat, lon], zoom, {animate: false});
          const check = () => document.querySelector('.gc-marker')
            ? requestAnimationFrame(() => done(performance.now() - t0)) : setTimeout(check, 5);
          check();
        })""",
        [lat, lon, zoom],
    )
    context.close()
    return {
        "first_ms": round(timing["first"]),
        "load_ms": round(timing["load"]),
        "all_in_ms": round(all_in),
        "bytes": int(first_load["bytes"]),
        "page_bytes": int(timing["page"]),
        "requests": int(first_load["requests"]),
        "markers_drawn": int(markers),
        "street_ms": round(street),
    }


def run(sizes: Sequence[int], runs: int, out_dir: Path) -> list[dict[str, Any]]:
    """Measure every size in both modes; the median of ``runs`` first loads each."""
    from playwright.sync_api import sync_playwright

    settings = Settings()
    layers = layers_from_dir(settings.path(settings.layers_dir))
    territory = territory_from_spec(TERRITORY)
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size in sizes:
            folder = out_dir / f"webmap-{size}"
            folder.mkdir(parents=True, exist_ok=True)
            gpkg = folder / "synth.gpkg"
            write_data(gpkg, size, layers)
            # the server serves site/ at /map/ when it holds an index.html: the static map
            site = folder / "site"
            pages = {"static": site, "live": site / "live"}
            for mode, target in pages.items():
                started = time.perf_counter()
                written = write_webmap(gpkg, layers, territory, target, mode=mode, api="../..")
                print(f"{size} {mode}: page written in {time.perf_counter() - started:.1f} s "
                      f"({written.bytes_written:,} bytes)", flush=True)
            with serve(folder, gpkg, site) as server:
                url = server.url
                for mode in ("static", "live", "embed"):
                    path = pages["live" if mode == "embed" else mode].relative_to(site) / "index.html"
                    page_url = f"{url}/map/{path.as_posix()}" + (EMBED if mode == "embed" else "")
                    viewport = EMBED_VIEWPORT if mode == "embed" else None
                    samples = [measure(browser, page_url, viewport) for _ in range(runs)]
                    row = {"features": size, "mode": mode, "runs": runs}
                    for key in samples[0]:
                        row[key] = statistics.median(s[key] for s in samples)
                    results.append(row)
                    print(json.dumps(row), flush=True)
        browser.close()
    return results


def to_markdown(results: list[dict[str, Any]], note: str) -> str:
    """The committed table."""
    lines = [
        "# Citizen map: first render and bytes on first load",
        "",
        "Measured by `python -m bench.webmap` (see its docstring): headless Debian Chromium,",
        "fresh cache per load, network blocked except the local `geocommuns serve` (2 gunicorn",
        "workers), OpenStreetMap tiles refused (as offline). Synthetic sample features spread",
        "over the Grand Cahors' communes (35 % equipment, 35 % containers, 10 % each other layer).",
        f"Median of {results[0]['runs'] if results else 0} loads. {note}",
        "",
        "| features | mode | first markers (ms) | all overlays filled (ms) | load event (ms) "
        "| bytes on first load | page (index.html) bytes | requests | markers and clusters drawn "
        "| zoom to a street: markers (ms) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['features']:,} | {r['mode']} | {r['first_ms']:,.0f} | {r['all_in_ms']:,.0f} "
            f"| {r['load_ms']:,.0f} | {r['bytes']:,.0f} | {r['page_bytes']:,.0f} "
            f"| {r['requests']:.0f} | {r['markers_drawn']:.0f} | {r['street_ms']:,.0f} |"
        )
    lines += [
        "",
        "Goals: issue 4, 100,000 features, first render under 2 s on a 2-core machine in live mode;",
        "issue 19 (second edition: per-layer popups, filters, URL state, English, print, CSV),",
        "first markers at most 1 s at 100,000 features live, and the embed mode's first load "
        f"(`{EMBED}`, 320 × 480) at most 150 kB compressed.",
        "Live mode embeds a count grid per layer (cells of 0.02°) and asks the API for a layer "
        "(`items?bbox=…&limit=1000&properties=nom,commune,code_insee`) only when the view holds "
        "at most 1,000 of its features; above, its first view shows the grid's counts "
        "(clustered, clickable). Static mode embeds every feature in `index.html`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--note", default="")
    parser.add_argument("--results", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    note = f"Machine: {machine}. {args.note}".strip()
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-webmap-") as tmp:
        results = run(sizes, args.runs, args.out_dir or Path(tmp))
    note += (
        f" Load average (1 min) {before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end"
        " (the machine is shared: times are upper bounds)."
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "webmap.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (args.results / "WEBMAP.md").write_text(to_markdown(results, note), encoding="utf-8")
    print(f"wrote {args.results / 'WEBMAP.md'}")


if __name__ == "__main__":
    main()
