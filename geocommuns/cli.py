"""geocommuns.cli: the command line. It only wires the modules together and prints."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from geocommuns import __version__
from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.sourcedef import GeometrySpec, SourceDef, source_from_yaml
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.errors import GeocommunsError
from geocommuns.i18n import N_, ngettext, set_language, translate
from geocommuns.i18n import gettext as _
from geocommuns.ingest.build import build, harmonise_source
from geocommuns.ingest.geocode import geocoder_from_settings
from geocommuns.ingest.report import SourceReport
from geocommuns.settings import Settings

if TYPE_CHECKING:
    from geocommuns.contrib.auth import Principal
    from geocommuns.contrib.layerstore import LivingStore
    from geocommuns.publish.refresh import StepResult

app = typer.Typer(
    help="geocommuns: the shared GIS of an intercommunality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

#: Options with fixed choices (typer checks the value, mypy that each list is the one the
#: function it feeds accepts).
ExtentChoice = Literal["territory", "data"]
BackendChoice = Literal["gpkg", "postgis"]
MapMode = Literal["auto", "static", "live"]
KeepChoice = Literal["edit", "source"]
StateChoice = Literal["proposed", "accepted", "refused", "done", "all"]
KindChoice = Literal["submission", "report"]


def _fail(error: Exception, code: int = 2) -> NoReturn:
    label = _("error:")
    err.print(f"[bold red]{label}[/] {translate(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="Language of the messages: fr (default) or en (else LANG)."),
    ] = None,
) -> None:
    _choose_language(lang)
    if version:
        console.print(__version__)
        raise typer.Exit(0)


@app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="The new project's folder (absent or empty).")],
    epci: Annotated[
        str | None, typer.Option("--epci", help="The EPCI's SIREN (or a part of its name).")
    ] = None,
    departement: Annotated[
        str | None, typer.Option("--departement", help="A département code: its communes.")
    ] = None,
    commune: Annotated[
        str | None, typer.Option("--commune", help="A commune's INSEE code: that commune.")
    ] = None,
) -> None:
    """A new project for a territory: service file, layers, town halls, commune folders."""
    from geocommuns.definitions.project import init_project

    try:
        project = init_project(
            folder, template=Settings().root, epci=epci, departement=departement, commune=commune
        )
    except GeocommunsError as e:
        _fail(e)
    console.print(
        f"[bold]{project.service.epci.name}[/] ({project.service.territory}): "
        f"{len(project.communes)} communes, {len(project.files)} files in {folder}",
        highlight=False,
    )
    console.print(f"next: cd {folder} && scripts/demo.sh", highlight=False)


@app.command("layers")
def layers_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the layer definitions (checks every file in layers/)."""
    settings = Settings()
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
    except GeocommunsError as e:
        _fail(e)
    if as_json:
        print(json.dumps({k: v.model_dump(by_alias=True) for k, v in layers.items()}, ensure_ascii=False))
        return
    table = Table(title="Layers")
    for col in ("id", "title", "fields", "sensitive", "national schema", "licence"):
        table.add_column(col)
    for layer in layers.values():
        schema = layer.national_schema
        table.add_row(
            layer.id,
            layer.title.fr,
            str(len(layer.fields)),
            ", ".join(layer.sensitive_fields) or "-",
            f"{schema.name} {schema.version}" if schema else "-",
            layer.licence.id,
        )
    console.print(table)


def _choose_language(lang: str | None) -> None:
    """Set the messages' language (``--lang``; None: the environment's, French by default)."""
    try:
        set_language(lang)
    except ValueError as e:
        _fail(e)


def print_source_report(report: SourceReport, *, limit: int = 20) -> None:
    """Print one source's accounting, its notes, and its rejects and warnings grouped by reason.

    In the language in use (:mod:`geocommuns.i18n`): French unless ``--lang en`` or LANG.
    """
    status = "[green]" + _("balanced") + "[/]" if report.balanced else "[red]" + _("NOT BALANCED") + "[/]"
    counts = _("read {read}, written {written}, rejected {rejected}, merged {merged}").format(
        read=report.rows_read, written=report.features_written, rejected=report.rows_rejected,
        merged=report.rows_merged,
    )
    console.print(f"[bold]{report.source}[/] → {report.layer}: {counts} ({status})", highlight=False)
    labels = {"format": _("format"), "encoding": _("encoding"), "delimiter": _("delimiter"), "crs": _("CRS")}
    info = {labels[k]: v for k, v in report.info.items() if k in labels}
    if info:
        console.print("  " + ", ".join(f"{k}: {v!r}" for k, v in info.items()), highlight=False)
    for note in report.notes:
        console.print("  [yellow]" + _("note:") + f"[/] {translate(note)}", highlight=False)
    for kind, colour, groups in (
        ("rejected", "red", report.reject_groups()),
        ("warnings", "yellow", report.warning_groups()),
    ):
        for g in groups[:limit]:
            count = f"{g.count} × " if g.count > 1 else ""
            console.print(
                f"  [{colour}]{count}{g.rows_text()}[/] {g.field}: {translate(g.reason)}", highlight=False
            )
        if len(groups) > limit:
            more = sum(g.count for g in groups[limit:])
            rest = len(groups) - limit
            text = (
                ngettext(
                    "… and {n} more reason ({rows} rejected rows)",
                    "… and {n} more reasons ({rows} rejected rows)",
                    rest,
                )
                if kind == "rejected"
                else ngettext(
                    "… and {n} more reason ({rows} warnings)",
                    "… and {n} more reasons ({rows} warnings)",
                    rest,
                )
            )
            console.print("  " + text.format(n=rest, rows=more), highlight=False)


@app.command("validate")
def validate_command(
    path: Annotated[Path, typer.Argument(help="The delivered file.")],
    layer: Annotated[str, typer.Option("--layer", help="Layer id (see 'geocommuns layers').")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="A source YAML with mapping, value maps...")
    ] = None,
    crs: Annotated[str | None, typer.Option("--crs", help="CRS of the coordinates.")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter.")] = None,
    territory: Annotated[
        str | None, typer.Option("--territory", help="e.g. epci:SIREN, departement:46.")
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report", help="Also write the full report as JSON here.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write rejected rows to this CSV.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Reasons of rejects and warnings to print.")] = 20,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of the report: fr (default) or en.")
    ] = None,
) -> None:
    """Check a delivery before sending it: exit 0 all rows valid, 1 some rejected, 2 unreadable."""
    if lang is not None:
        _choose_language(lang)
    settings = Settings()
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        if layer not in layers:
            msg = N_("unknown layer {layer}; layers are: {layers}").format(
                layer=repr(layer), layers=", ".join(layers)
            )
            raise GeocommunsError(msg)
        if mapping is not None:
            declared = source_from_yaml(mapping)
            overrides: dict[str, object] = {"path": path.resolve(), "layer": layer}
        else:
            declared = SourceDef(id=_source_id(path), layer=layer, path=path.resolve())
            overrides = {}
        if crs:
            overrides["geometry"] = declared.geometry.model_copy(update={"crs": crs})
        if encoding:
            overrides["encoding"] = encoding
        if delimiter:
            overrides["delimiter"] = delimiter
        source = declared.model_copy(update=overrides)
        GeometrySpec.model_validate(source.geometry.model_dump())
        terr = territory_from_spec(territory or settings.territory)
        result = harmonise_source(
            source, layers[layer], terr, geocoder=geocoder_from_settings(settings)
        )
    except GeocommunsError as e:
        _fail(e)
    report = result.report
    if report.error:
        _fail(GeocommunsError(report.error))
    print_source_report(report, limit=limit)
    if report_json:
        report_json.write_text(
            json.dumps(report.to_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8"
        )
    if rejects and report.rejects:
        report.write_rejects_csv(rejects)
    raise typer.Exit(0 if report.rows_rejected == 0 else 1)


def _source_id(path: Path) -> str:
    import re

    return re.sub(r"[^a-z0-9_.-]+", "-", path.stem.lower()).strip("-") or "delivery"


@app.command("build")
def build_command(
    keep_going: Annotated[
        bool, typer.Option(help="Write the GeoPackage even if a source cannot be read.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
) -> None:
    """Harmonise every declared source into the GeoPackage, with the build report."""
    settings = Settings()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows"),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("building", total=None, rows=0)

            def progress(source_id: str, done: int, total: int, rows: int) -> None:
                rows_so_far = bar.tasks[task].fields["rows"] + rows
                bar.update(task, description=source_id, completed=done, total=total, rows=rows_so_far)

            result = build(settings, progress=progress, keep_going=keep_going)
    except GeocommunsError as e:
        _fail(e, 1)
    for source in result.report.sources:
        if quiet:
            continue
        print_source_report(source, limit=5)
    totals = result.report.totals()
    console.print(
        f"\n[bold]{settings.path(settings.output)}[/]: "
        + ", ".join(f"{k} {v}" for k, v in result.report.layers.items()),
        highlight=False,
    )
    console.print(
        _("rows read {read} = written {written} + rejected {rejected} + merged {merged}").format(
            read=totals["rows_read"], written=totals["features_written"],
            rejected=totals["rows_rejected"], merged=totals["rows_merged"],
        ),
        highlight=False,
    )
    console.print(
        _("report: {file}").format(file=settings.path(settings.report_dir) / "build-report.md"),
        highlight=False,
    )
    for layer_id, summary in result.report.conflation.items():
        console.print(
            _("conflation {layer}: {merged} merged, {uncertain} to review in {file}").format(
                layer=layer_id, merged=summary.decisions.get("merged", 0),
                uncertain=summary.decisions.get("uncertain", 0), file=summary.file,
            ),
            highlight=False,
        )
    if not result.report.balanced:
        raise typer.Exit(1)


@app.command("publish")
def publish_command() -> None:
    """Load the built layers into PostGIS (GEOCOMMUNS_DATABASE_URL), one transaction per layer."""
    from geocommuns.publish.postgis import publish

    settings = Settings()
    if not settings.database_url:
        _fail(GeocommunsError("set GEOCOMMUNS_DATABASE_URL (postgresql://user@host:5432/db) first"))
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        communes = territory_from_spec(settings.territory).communes
        counts = publish(settings.database_url, settings.path(settings.output), layers, communes=communes)
    except GeocommunsError as e:
        _fail(e)
    for layer_id, count in counts.items():
        console.print(f"{layer_id}: {count} features published", highlight=False)
    _write_config(settings, "territory", "postgis", openapi=True)


@app.command("config")
def config_command(
    extent: Annotated[
        ExtentChoice,
        typer.Option(
            help="Collection extents: 'territory' (deterministic, committed) or 'data' (built GeoPackage)."
        ),
    ] = "territory",
    openapi: Annotated[
        bool, typer.Option(help="Also generate the OpenAPI document (needs the data).")
    ] = True,
    backend: Annotated[
        BackendChoice | None,
        typer.Option(
            help="'gpkg' (pygeoapi-config.yml) or 'postgis' (geodata/pygeoapi-config-postgis.yml); "
            "default postgis when GEOCOMMUNS_DATABASE_URL is set."
        ),
    ] = None,
) -> None:
    """Write the pygeoapi configuration (and OpenAPI document) from the layer definitions."""
    from geocommuns.serve.server import backend_of

    settings = Settings()
    _write_config(settings, extent, backend or backend_of(settings), openapi=openapi)


def _write_config(
    settings: Settings, extent: ExtentChoice, backend: BackendChoice, *, openapi: bool
) -> None:
    """Write a backend's configuration and, when asked, its OpenAPI document."""
    from geocommuns.serve.pygeoapi_config import config_from_settings, write_config, write_openapi
    from geocommuns.serve.server import default_paths

    target, document = default_paths(settings, backend)
    try:
        config = config_from_settings(settings, extent=extent, backend=backend)
        write_config(config, target)
        console.print(f"wrote {target}")
        if openapi:
            if settings.database_url:
                os.environ.setdefault("GEOCOMMUNS_DATABASE_URL", settings.database_url)
            write_openapi(target, document)
            console.print(f"wrote {document}")
    except GeocommunsError as e:
        _fail(e)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 5000,
    workers: Annotated[int, typer.Option(help="gunicorn worker processes.")] = 2,
    config: Annotated[
        Path | None, typer.Option(help="pygeoapi configuration (default pygeoapi-config.yml).")
    ] = None,
    openapi: Annotated[
        Path | None, typer.Option(help="OpenAPI document (default geodata/openapi.yml).")
    ] = None,
) -> None:
    """Serve OGC API - Features (pygeoapi under gunicorn) and webmap/ at /map/."""
    from geocommuns.serve.server import serve

    settings = Settings()
    try:
        serve(
            settings, host=host, port=port, workers=workers, config=config, openapi=openapi,
            announce=lambda line: console.print(line, highlight=False),
        )
    except GeocommunsError as e:
        _fail(e)


osm_app = typer.Typer(help="OpenStreetMap: fetch the territory's objects for offline builds.")
app.add_typer(osm_app, name="osm")


@osm_app.command("fetch")
def osm_fetch_command(
    layer: Annotated[
        list[str] | None, typer.Option("--layer", help="Layer id (repeat; default: every layer with an osm block).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The .osm file to write (default geodata/cache/osm/territory.osm).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Overpass.")] = 60.0,
) -> None:
    """Download the territory's OSM objects of the layers (Overpass) into an .osm file.

    Exit 0 when written, 1 when Overpass cannot be reached (one message, in seconds).
    """
    import datetime as dt

    from geocommuns.ingest.osm_fetch import fetch_osm

    settings = Settings()
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        unknown = [k for k in layer or [] if k not in layers]
        if unknown:
            msg = f"unknown layer(s) {', '.join(unknown)}; layers are: {', '.join(layers)}"
            raise GeocommunsError(msg)
        chosen = [layers[k] for k in layer] if layer else [v for v in layers.values() if v.osm]
        target = (out or settings.path(Path("geodata/cache/osm/territory.osm"))).resolve()
        territory = territory_from_spec(settings.territory)
        fetched = fetch_osm(
            territory.outline, chosen, target,
            cache_dir=settings.path(Path("geodata/cache/osm")), timeout=timeout,
        )
    except GeocommunsError as e:
        _fail(e, 1)
    console.print(
        f"wrote {fetched.path}: {fetched.nodes} nodes, {fetched.ways} ways, "
        f"{fetched.relations} relations (OpenStreetMap, ODbL)",
        highlight=False,
    )
    console.print("Read it offline with one source YAML per layer, for example:", highlight=False)
    console.print(
        f"  layer: {chosen[0].id}\n  kind: osm\n  path: {fetched.path}\n"
        f"  date_maj: {dt.date.today().isoformat()}",
        highlight=False,
    )


@app.command("export")
def export_command(
    layer: Annotated[str | None, typer.Option("--layer", help="Export only this layer.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default geodata/export).")
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate", help="Validate the national-schema CSVs with frictionless (exit 1 on errors)."
        ),
    ] = False,
) -> None:
    """Open-data downloads per layer: GeoJSON, GeoPackage, CSV, national-schema CSV, metadata."""
    from geocommuns.publish.export import export_all
    from geocommuns.publish.schemacheck import SchemaUnavailableError, schema_file, validate_csv

    settings = Settings()
    target = out or settings.path(settings.export_dir)
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        publisher = territory_from_spec(settings.territory).name
        from geocommuns.publish.living import living_gpkg

        results = export_all(
            living_gpkg(settings, layers), layers, target, publisher=publisher, only=layer,
            service=service_from_root(settings.root),
        )
    except GeocommunsError as e:
        _fail(e)
    invalid = False
    for result in results:
        console.print(
            f"[bold]{result.layer}[/]: {result.features} features → {result.folder}", highlight=False
        )
        if result.national_csv is None:
            continue
        console.print(
            f"  {result.national_csv.name}: {result.national_rows} rows", highlight=False
        )
        for left in result.left_out:
            console.print(
                f"  [yellow]left out[/] {left.id}: {left.column}: {left.reason}", highlight=False
            )
        if not validate:
            continue
        try:
            schema = schema_file(layers[result.layer], settings.path(settings.schemas_dir))
        except SchemaUnavailableError as e:
            err.print(f"  [yellow]not validated:[/] {e}", highlight=False, soft_wrap=True)
            continue
        check = validate_csv(result.national_csv, schema)
        if check.valid:
            console.print(f"  [green]valid[/] against {schema.name} ({check.rows} rows)", highlight=False)
            continue
        invalid = True
        console.print(f"  [red]{len(check.errors)} error(s)[/] against {schema.name}:", highlight=False)
        for line in check.errors[:20]:
            console.print(f"    {line}", highlight=False)
    if invalid:
        raise typer.Exit(1)


@app.command("webmap")
def webmap_command(
    mode: Annotated[
        MapMode, typer.Option(help="static (features in the page), live (from the OGC API) or auto.")
    ] = "auto",
    api: Annotated[
        str | None,
        typer.Option(help="OGC API base URL read by a live map (implies live); default: the server serving /map/."),
    ] = None,
    threshold: Annotated[
        int, typer.Option(help="In auto mode, live above this many features.")
    ] = 5000,
    output: Annotated[
        Path | None, typer.Option(help="Folder to write (default webmap/).")
    ] = None,
) -> None:
    """Write the citizen map (webmap/index.html with its scripts) from the built GeoPackage."""
    from geocommuns.publish.webmap import webmap_from_settings

    settings = Settings()
    try:
        result = webmap_from_settings(
            settings, mode=mode, threshold=threshold, api=api, target=output
        )
    except GeocommunsError as e:
        _fail(e)
    total = sum(result.counts.values())
    console.print(
        f"wrote {result.index} ({result.mode} map, {total} features; first load "
        f"{result.first_load_bytes / 1000:,.0f} kB with its scripts, page {result.bytes_written / 1000:,.0f} kB)",
        highlight=False,
    )


@app.command("indicators")
def indicators_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default webmap/).")
    ] = None,
    network: Annotated[
        Path | None,
        typer.Option("--network", help="Road network (.osm/.xml extract or osmnx .graphml)."),
    ] = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Reference date YYYY-MM-DD (default today).")
    ] = None,
) -> None:
    """Territorial indicators: webmap/indicateurs.html (French dashboard) and indicators.json."""
    from datetime import UTC, date, datetime

    from geocommuns.publish.dashboard import write_dashboard
    from geocommuns.publish.indicators import compute_indicators

    settings = Settings()
    try:
        reference = date.fromisoformat(today) if today else datetime.now(UTC).date()
    except ValueError:
        _fail(GeocommunsError(f"--today {today!r} is not a date; write it YYYY-MM-DD"))
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        territory = territory_from_spec(settings.territory)
        from geocommuns.publish.living import living_gpkg

        indicators = compute_indicators(
            living_gpkg(settings, layers), layers, territory, today=reference, network=network
        )
        page, data = write_dashboard(
            indicators, territory, out or settings.path(settings.webmap_dir),
            service_from_root(settings.root),
        )
    except GeocommunsError as e:
        _fail(e)
    wifi = indicators["wifi"]
    console.print(
        f"wifi: {wifi['communes_couvertes']}/{wifi['communes_total']} communes; "
        f"freshness: {indicators['fraicheur']['ensemble']['part']}",
        highlight=False,
    )
    console.print(f"wrote {page}\nwrote {data}", highlight=False)


users_app = typer.Typer(
    help="Users and their API tokens, in the living store (PostGIS when GEOCOMMUNS_DATABASE_URL is set, else the GeoPackage)."
)
app.add_typer(users_app, name="users")


def _living(settings: Settings) -> LivingStore:
    """The living store of the project (its GeoPackage must have been built)."""
    from geocommuns.contrib.layerstore import store_from

    gpkg = settings.path(settings.output)
    if not settings.database_url and not gpkg.exists():
        _fail(GeocommunsError(f"{gpkg}: no GeoPackage yet; run 'geocommuns build' first"))
    return store_from(settings.database_url, gpkg)


def _store_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    import psycopg

    return (GeocommunsError, psycopg.Error, sqlite3.Error)


@users_app.command("add")
def users_add_command(
    name: Annotated[str, typer.Argument(help="User name, e.g. sig-mairie.")],
    role: Annotated[str, typer.Option(help="reader, partner, contributor, editor or admin.")] = "contributor",
    commune: Annotated[str | None, typer.Option(help="A contributor's commune (INSEE).")] = None,
    epci: Annotated[str | None, typer.Option(help="A contributor's EPCI (SIREN).")] = None,
    layers: Annotated[str | None, typer.Option(help="Comma-separated layer ids (editors).")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Last day the API token works (YYYY-MM-DD, UTC); default: no expiry.")
    ] = None,
) -> None:
    """Create a user and print their API token (shown once; only its hash is stored).

    On PostGIS, the user also gets a database login (for QGIS) whose password is printed
    once: PostgreSQL keeps only its SCRAM verifier.
    """
    from geocommuns.contrib.auth import ROLES, add_user

    settings = Settings()
    if role not in ROLES:
        _fail(GeocommunsError(f"--role must be one of {', '.join(ROLES)}, got {role!r}"))
    until = None
    if expires is not None:
        try:
            last_day = dt.date.fromisoformat(expires)
        except ValueError:
            _fail(GeocommunsError(f"--expires must be a date YYYY-MM-DD, got {expires!r}"))
        # the token works through the whole of its last day (UTC)
        until = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    store = _living(settings)
    try:
        territory = territory_from_spec(settings.territory)
        known_layers = layers_from_dir(settings.path(settings.layers_dir))
        with store.writing() as db:
            token = add_user(
                db, name, role,
                commune=commune, epci=epci,
                layers=[x.strip() for x in (layers or "").split(",") if x.strip()],
                known_layers=known_layers, known_communes=territory.codes,
                known_epcis=[e for e in territory.communes["epci"].dropna().unique()],
                expires=until,
            )
    except _store_errors() as e:
        _fail(e)
    if settings.database_url:
        password = _database_login(settings.database_url, name, role)
        console.print(
            f"database login {name} created for QGIS; password (shown once, keep it secret; "
            f"see 'geocommuns pg-service --user {name}'):",
            highlight=False,
        )
        print(password)
    console.print(f"user {name} added; API token (shown once, keep it secret):", highlight=False)
    print(token)


def _database_login(database_url: str, name: str, role: str) -> str:
    """Create the PostgreSQL login of a user just added; its password."""
    import psycopg

    from geocommuns.publish.dbsecurity import create_login

    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return create_login(conn, name, role)
    except _store_errors() as e:
        _fail(e)


@users_app.command("list")
def users_list_command() -> None:
    """List the users, their rights, and whether they are revoked."""
    from geocommuns.contrib.auth import list_users

    settings = Settings()
    store = _living(settings)
    logins: dict[str, str] = {}
    try:
        with store.reading() as db:
            rows = list_users(db)
            if settings.database_url:
                from geocommuns.publish.dbsecurity import login_state

                logins = {r.principal.name: login_state(db.con, r.principal.name) for r in rows}
    except _store_errors() as e:
        _fail(e)
    table = Table("user", "rights", "token id", "login", "created", "revoked")
    for column in table.columns[:2]:
        column.no_wrap = True
    for r in rows:
        table.add_row(
            r.principal.name, r.principal.scope, r.token_id, logins.get(r.principal.name, "-"),
            f"{r.created_at:%Y-%m-%d %H:%M}", f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
        )
    console.print(table)


@users_app.command("revoke")
def users_revoke_command(name: Annotated[str, typer.Argument(help="The user to revoke.")]) -> None:
    """Revoke a user's token at once (kept in the list and the journal).

    On PostGIS, their database login is disabled too and its open sessions are closed.
    """
    from geocommuns.contrib.auth import revoke_user

    settings = Settings()
    store = _living(settings)
    closed = 0
    try:
        with store.writing() as db:
            revoke_user(db, name)
            if settings.database_url:
                from geocommuns.publish.dbsecurity import disable_login

                closed = disable_login(db.con, name)
    except _store_errors() as e:
        _fail(e)
    extra = f"; database login disabled, {closed} open session(s) closed" if settings.database_url else ""
    console.print(f"user {name} revoked{extra}", highlight=False)


@app.command("db-roles")
def db_roles_command(
    read_login: Annotated[str, typer.Option(help="The API's read login.")] = "geocommuns_api_lecture",
    write_login: Annotated[str, typer.Option(help="The API's write login (Part 4 edits).")] = "geocommuns_api_ecriture",
) -> None:
    """Create the API's two PostgreSQL logins (or give them new passwords); print their URLs once.

    Run it with the owner's GEOCOMMUNS_DATABASE_URL; put the printed lines in the service's
    environment (GEOCOMMUNS_DATABASE_READ_URL, GEOCOMMUNS_DATABASE_WRITE_URL). Their
    grants come from group roles that every publish refreshes.
    """
    import psycopg

    from geocommuns.contrib.auth import ensure_schema as ensure_users
    from geocommuns.publish.dbsecurity import service_logins

    settings = Settings()
    if not settings.database_url:
        _fail(GeocommunsError("set GEOCOMMUNS_DATABASE_URL (the owner's URL) first"))
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            ensure_users(conn)
            urls = service_logins(conn, settings.database_url, read_login=read_login, write_login=write_login)
    except _store_errors() as e:
        _fail(e)
    console.print(
        "API logins ready; their passwords are shown once: put these lines in the service's "
        "environment (never in a committed file):",
        highlight=False,
    )
    print(f"GEOCOMMUNS_DATABASE_READ_URL={urls['read']}")
    print(f"GEOCOMMUNS_DATABASE_WRITE_URL={urls['write']}")


def _active_user(settings: Settings, name: str) -> Principal:
    """The active user ``name`` of the PostGIS living store (QGIS editing needs PostGIS)."""
    from geocommuns.contrib.auth import find_user

    if not settings.database_url:
        _fail(GeocommunsError("QGIS edits the layers in PostGIS: set GEOCOMMUNS_DATABASE_URL first"))
    try:
        with _living(settings).reading() as db:
            principal = find_user(db, name)
    except _store_errors() as e:
        _fail(e)
    if principal is None:
        _fail(GeocommunsError(f"no active user {name!r}; see 'geocommuns users list'"))
    return principal


@app.command("pg-service")
def pg_service_command(
    user: Annotated[str, typer.Option(help="The user (see 'geocommuns users list').")],
) -> None:
    """Print the pg_service.conf entry that connects QGIS as USER (no password in it)."""
    from geocommuns.publish.qgisproject import service_entry

    settings = Settings()
    _active_user(settings, user)
    assert settings.database_url
    print(service_entry(settings.database_url, user), end="")


@app.command("qgis-project")
def qgis_project_command(
    user: Annotated[str, typer.Option(help="The user the project is for.")],
    out: Annotated[Path, typer.Option(help="The project file to write (.qgz or .qgs).")],
) -> None:
    """Write a QGIS project to edit the layers in PostGIS as USER (through their pg_service entry)."""
    from geocommuns.publish.qgisproject import QgisProjectError, project_spec, write_project

    settings = Settings()
    principal = _active_user(settings, user)
    assert settings.database_url
    try:
        spec = project_spec(
            layers_from_dir(settings.path(settings.layers_dir)),
            territory_from_spec(settings.territory).communes,
            user=principal.name, role=principal.role, commune=principal.commune,
            epci=principal.epci, user_layers=principal.layers,
        )
        write_project(settings.database_url, spec, out)
    except (QgisProjectError, GeocommunsError) as e:
        _fail(e)
    console.print(
        f"wrote {out}; add the entry of 'geocommuns pg-service --user {user}' to the "
        "technician's pg_service.conf",
        highlight=False,
    )


@app.command("check")
def check_command(
    layer: Annotated[str | None, typer.Option(help="One layer (default: all).")] = None,
) -> None:
    """List the features whose values break the rules the database cannot check.

    Opening hours syntax, phone numbers, e-mail and web addresses, codes: checked with the
    rules of deliveries and API payloads on the PostGIS layers (after QGIS edits). Exit
    code 1 when some feature must be corrected.
    """
    import psycopg

    from geocommuns.publish.rulecheck import rule_problems

    settings = Settings()
    if not settings.database_url:
        _fail(GeocommunsError("set GEOCOMMUNS_DATABASE_URL: the check reads the PostGIS layers"))
    layers = layers_from_dir(settings.path(settings.layers_dir))
    if layer is not None and layer not in layers:
        _fail(GeocommunsError(f"unknown layer {layer!r}; known: {', '.join(layers)}"))
    try:
        with psycopg.connect(settings.database_url) as conn:
            problems = rule_problems(conn, layers, only=layer)
    except _store_errors() as e:
        _fail(e)
    if not problems:
        console.print("no feature breaks the rules", highlight=False)
        return
    table = Table("layer", "feature", "commune", "field", "value", "problem")
    for p in problems:
        table.add_row(p.layer, p.feature_id, p.commune or "", p.field, str(p.value), p.problem)
    console.print(table)
    console.print(f"{len(problems)} value(s) to correct", highlight=False)
    raise typer.Exit(1)


@app.command("audit")
def audit_command(
    limit: Annotated[int, typer.Option(help="How many changes.")] = 20,
    layer: Annotated[str | None, typer.Option(help="Only this layer.")] = None,
    feature: Annotated[str | None, typer.Option(help="Only this feature id.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Whole rows as JSON lines.")] = False,
) -> None:
    """List the latest human changes of the journal (who, when, what, which fields)."""
    from geocommuns.ingest.journal import recent

    store = _living(Settings())
    try:
        with store.reading() as db:
            entries = recent(db, limit=limit, layer=layer, feature_id=feature, actor=user)
    except _store_errors() as e:
        _fail(e)
    if as_json:
        for entry in entries:
            print(json.dumps({**entry.__dict__, "at": entry.at.isoformat()}, ensure_ascii=False))
        return
    table = Table("#", "when", "user", "via", "layer", "feature", "action", "fields")
    for entry in entries:
        table.add_row(
            str(entry.seq), f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.actor, entry.via, entry.layer,
            entry.feature_id, entry.action,
            ", ".join(entry.changed_fields()) if entry.action in {"replace", "update"} else "",
        )
    console.print(table)


@app.command("contribute")
def contribute_command(
    path: Annotated[Path, typer.Argument(help="The commune's new delivery.", exists=True, dir_okay=False)],
    layer: Annotated[str, typer.Option(help="Layer id.")],
    commune: Annotated[str, typer.Option(help="The commune's INSEE code.")],
    user: Annotated[str, typer.Option("--as", help="The user contributing (rights, journal).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the changes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Compare a commune's new delivery with its features in the living store; apply it in one transaction."""
    from geocommuns.contrib.contribute import contribute, plan_as_json

    settings = Settings()
    store = _living(settings)
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        if layer not in layers:
            _fail(GeocommunsError(f"unknown layer {layer!r}; layers are: {', '.join(layers)}"))
        result = contribute(
            store, path, layers[layer], commune, territory_from_spec(settings.territory),
            user=user, sources_dir=settings.path(settings.sources_dir), dry_run=dry_run,
        )
    except GeocommunsError as e:
        _fail(e, 1)
    if as_json:
        print(plan_as_json(result))
        return
    for sign, label, changes in (("+", "added", result.added), ("~", "changed", result.changed),
                                 ("-", "removed", result.removed)):
        console.print(f"{label}: {len(changes)}", highlight=False)
        for c in changes:
            doc = c.after or c.before or {}
            fields = f" ({', '.join(c.fields)})" if c.fields else ""
            console.print(f"  {sign} {c.feature_id} {doc.get('nom', '')}{fields}", highlight=False)
    console.print(f"unchanged: {result.unchanged}", highlight=False)
    verdict = "applied in one transaction" if result.applied else "dry run: nothing written"
    console.print(verdict, highlight=False)


conflicts_app = typer.Typer(
    help="Conflicts between technicians' corrections and their sources (listed by each refresh).",
    invoke_without_command=True,
)
app.add_typer(conflicts_app, name="conflicts")


def _short(value: object, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


@conflicts_app.callback()
def conflicts_command(
    ctx: typer.Context,
    layer: Annotated[str | None, typer.Option("--layer", help="Only this layer.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON lines.")] = False,
) -> None:
    """List the open conflicts (exit 1 when there are some)."""
    if ctx.invoked_subcommand is not None:
        return
    from geocommuns.contrib.conflicts import list_conflicts

    store = _living(Settings())
    try:
        found = list_conflicts(store, layer=layer)
    except _store_errors() as e:
        _fail(e)
    if as_json:
        for c in found:
            print(json.dumps({k: v for k, v in c.__dict__.items() if k not in {"found_at", "resolved_at"}},
                             ensure_ascii=False, default=str))
    else:
        table = Table("id", "layer", "feature", "field", "technician saw", "correction", "source now")
        for c in found:
            table.add_row(str(c.id), c.layer, c.feature_id,
                          "(whole feature: no longer delivered)" if c.field == "*" else c.field,
                          _short(c.seen), _short(c.edit), _short(c.source))
        console.print(table)
        console.print(
            f"{len(found)} open conflict(s); settle one with "
            "'geocommuns conflicts resolve ID --keep edit|source'",
            highlight=False,
        )
    if found:
        raise typer.Exit(1)


@conflicts_app.command("resolve")
def conflicts_resolve_command(
    conflict_id: Annotated[int, typer.Argument(help="The conflict's number.")],
    keep: Annotated[KeepChoice, typer.Option("--keep", help="edit (the correction) or source.")],
    actor: Annotated[str | None, typer.Option("--as", help="Who settles it (default: the system user).")] = None,
) -> None:
    """Settle a conflict: keep the correction or the source's value (journaled)."""
    import getpass

    from geocommuns.contrib.conflicts import resolve_conflict

    settings = Settings()
    store = _living(settings)
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        settled = resolve_conflict(
            store, layers, conflict_id, keep=keep,
            actor=actor or getpass.getuser(),
        )
    except _store_errors() as e:
        _fail(e)
    c = settled.conflict
    console.print(
        f"conflict {c.id} settled: {c.layer} {c.feature_id} {c.field} keeps the {keep} value "
        f"(journal entry {settled.seq})",
        highlight=False,
    )


reports_app = typer.Typer(
    help="Citizens' reports (« Signaler une erreur ») and submissions waiting for review, by commune.",
    invoke_without_command=True,
)
app.add_typer(reports_app, name="reports")
#: The EPCI's operator, as the command line acts (it reads and decides every commune's items).
_OPERATOR = "operator"


@reports_app.callback()
def reports_command(
    ctx: typer.Context,
    commune: Annotated[str | None, typer.Option("--commune", help="Only this commune (INSEE code).")] = None,
    state: Annotated[StateChoice, typer.Option("--state", help="proposed, accepted, refused, done or all.")] = "proposed",
    kind: Annotated[KindChoice | None, typer.Option("--kind", help="report or submission (default: both).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON lines (with the reporters' e-mails).")] = False,
) -> None:
    """List the review queue (default: what waits), reporters' e-mails included: for the EPCI only."""
    if ctx.invoked_subcommand is not None:
        return
    from geocommuns.contrib import reviews
    from geocommuns.contrib.auth import Principal

    operator = Principal(_OPERATOR, "admin")
    store = _living(Settings())
    try:
        with store.reading() as db:
            found = reviews.list_items(
                db, operator, commune=commune, state=None if state == "all" else state,
                kind=kind,
            )
    except _store_errors() as e:
        _fail(e)
    if as_json:
        for item in found:
            print(json.dumps(item.__dict__, ensure_ascii=False, default=str))
        return
    words = {"report": _("report"), "submission": _("submission"), "proposed": _("proposed"),
             "accepted": _("accepted"), "refused": _("refused"), "done": _("done")}
    for item in found:
        where = f"{item.layer}/{item.feature_id}" if item.feature_id else item.layer
        console.print(
            _("#{id} {kind}, {state}, commune {commune}, {where}, {at} UTC").format(
                id=item.id, kind=words[item.kind], state=words[item.state], commune=item.commune or "-",
                where=where, at=f"{item.created_at:%Y-%m-%d %H:%M}",
            ),
            highlight=False, markup=False, soft_wrap=True,
        )
        console.print(f"  {item.message}", highlight=False, markup=False, soft_wrap=True)
        if item.reporter_email:
            console.print("  " + _("e-mail: {email}").format(email=item.reporter_email),
                          highlight=False, markup=False, soft_wrap=True)
        if item.decided_by:
            console.print("  " + _("{state} by {who}: {comment}").format(
                state=words[item.state], who=item.decided_by, comment=item.comment or ""),
                highlight=False, markup=False, soft_wrap=True)
    console.print(
        ngettext("{n} item; mark a report done with {command}", "{n} items; mark a report done with {command}",
                 len(found)).format(n=len(found), command="'geocommuns reports done ID'"),
        highlight=False,
    )


@reports_app.command("done")
def reports_done_command(
    item_id: Annotated[int, typer.Argument(help="The item's number (see 'geocommuns reports').")],
    comment: Annotated[str | None, typer.Option("--comment", help="What was done.")] = None,
) -> None:
    """Mark a report dealt with (or an accepted submission applied)."""
    from geocommuns.contrib import reviews
    from geocommuns.contrib.auth import Principal

    store = _living(Settings())
    try:
        with store.writing() as db:
            item = reviews.mark_done(db, Principal(_OPERATOR, "admin"), item_id, comment=comment)
    except _store_errors() as e:
        _fail(e)
    console.print(_("item {id} (commune {commune}): done").format(id=item.id, commune=item.commune or "-"),
                  highlight=False)


@app.command("history")
def history_command(
    feature_id: Annotated[str, typer.Argument(help="The feature's id.")],
    reader: Annotated[
        str | None, typer.Option("--as", help="Show sensitive values if this user may read them.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON lines.")] = False,
) -> None:
    """A feature's timeline: each import that changed it and each human change."""
    from geocommuns.contrib.auth import find_user
    from geocommuns.contrib.history import feature_history

    settings = Settings()
    store = _living(settings)
    try:
        layers = layers_from_dir(settings.path(settings.layers_dir))
        principal = None
        if reader:
            with store.reading() as db:
                principal = find_user(db, reader)
            if principal is None:
                _fail(GeocommunsError(f"no active user {reader!r}; see 'geocommuns users list'"))
        steps = feature_history(store, layers, feature_id, reader=principal)
    except _store_errors() as e:
        _fail(e)
    if not steps:
        _fail(GeocommunsError(f"no history for {feature_id!r}: check the id (geocommuns audit lists ids)"), 1)
    for s in steps:
        if as_json:
            print(json.dumps({**s.__dict__, "at": s.at.isoformat()}, ensure_ascii=False, default=str))
            continue
        console.print(f"[bold]{s.at:%Y-%m-%d %H:%M:%S}[/] {s.kind} {s.action} by {s.who} via {s.via}", highlight=False)
        for name, (old, new) in s.changes.items():
            console.print(f"    {name}: {_short(old)} → {_short(new)}", highlight=False)


@app.command("refresh")
def refresh_command(
    osm: Annotated[bool, typer.Option("--osm/--no-osm", help="Fetch OpenStreetMap first (when online).")] = True,
) -> None:
    """The routine refresh: OSM fetch + build + publish + webmap + export + indicators.

    Exit 0 when all went well, 1 when something needs a look (conflicts, rejected rows,
    OpenStreetMap unreachable), 2 when a step failed (nothing half-written).
    """
    from geocommuns.publish.refresh import refresh

    def announce(step: StepResult) -> None:
        colour = {"ok": "green", "attention": "yellow", "skipped": "dim", "failed": "red"}[step.status]
        console.print(f"[{colour}]{step.status:>9}[/] {step.name:<10} {step.seconds:6.1f} s  {step.detail}",
                      highlight=False, soft_wrap=True)

    result = refresh(Settings(), osm=osm, announce=announce)
    console.print(f"refresh finished with exit code {result.exit_code}", highlight=False)
    raise typer.Exit(result.exit_code)


def main() -> None:
    """Entry point of the ``geocommuns`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
