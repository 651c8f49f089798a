"""geocommuns.contrib.portal.check: a delivery checked as ``geocommuns validate`` checks it.

:func:`check_delivery` runs the very harmonisation of ``geocommuns validate`` (same
reader, mapping, value maps, typing, positions, territory, geocoder) and
:func:`advice_for` turns each group of rejected rows (same field, same kind of reason)
into a French title and what to do about it. :func:`rejects_csv` writes the rejected
rows with their reasons for a spreadsheet; :func:`valid_geojson` the valid rows for the
map.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import Territory
from geocommuns.errors import GeocommunsError
from geocommuns.i18n import translate
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.geocode import geocoder_from_settings
from geocommuns.ingest.harmonise import Harmonised, features_frame
from geocommuns.ingest.report import ReasonGroup, SourceReport
from geocommuns.publish.export import spreadsheet_cell
from geocommuns.settings import Settings


@dataclass(frozen=True)
class Advice:
    """One group of rejected rows, said in French for the technician."""

    field: str
    field_title: str
    title: str
    todo: str
    reason: str
    count: int
    first_rows: list[int]

    @property
    def rows_text(self) -> str:
        """``ligne 4`` / ``lignes 2, 4, 9…``."""
        rows = ", ".join(str(r) for r in self.first_rows)
        more = "…" if self.count > len(self.first_rows) else ""
        return f"ligne {rows}" if self.count == 1 else f"lignes {rows}{more}"


#: (pattern of the reason, French title, what to do). The first match wins.
_RULES: tuple[tuple[str, str, str], ...] = (
    (r"required value missing \(no column",
     "Aucune colonne pour ce champ obligatoire",
     "Dans l'assistant de correspondance, choisissez la colonne qui donne ce champ, ou une constante."),
    (r"required value missing",
     "Valeur obligatoire absente",
     "Remplissez ces cellules dans le fichier, ou donnez une constante dans l'assistant."),
    (r"is not one of",
     "Valeur hors de la liste autorisée",
     "Dans l'assistant, associez chaque valeur de la colonne à une valeur de la liste "
     "(table de correspondance), ou corrigez les cellules."),
    (r"not a date",
     "Date illisible",
     "Écrivez les dates au format jj/mm/aaaa ou aaaa-mm-jj."),
    (r"not a number|not an integer|not a whole number",
     "Nombre illisible",
     "Écrivez un nombre (chiffres seulement, virgule ou point pour les décimales)."),
    (r"phone",
     "Numéro de téléphone invalide",
     "Écrivez un numéro français à 10 chiffres (05 65 00 00 00) ou au format +33."),
    (r"e-?mail",
     "Adresse électronique invalide",
     "Écrivez une adresse de la forme nom@domaine.fr."),
    (r"url|uri|web",
     "Adresse de site invalide",
     "Écrivez l'adresse complète du site, commençant par https://."),
    (r"no coordinates|no geometry|empty geometry",
     "Position absente",
     "Renseignez les coordonnées de ces lignes (ou leur adresse), ou choisissez les bonnes "
     "colonnes de coordonnées dans l'assistant."),
    (r"outside the territory|outside the commune|not in the territory",
     "Position hors du territoire",
     "Vérifiez les colonnes de coordonnées et leur système (SCR) dans l'assistant : "
     "inverser X et Y ou se tromper de SCR envoie les points hors du territoire."),
    (r"duplicate identifier",
     "Identifiant en double",
     "Donnez à chaque ligne un identifiant différent dans la colonne d'identifiant."),
    (r"opening hours|opening_hours",
     "Horaires illisibles",
     "Écrivez les horaires comme « lundi-vendredi 9h-12h, 14h-17h »."),
    (r"too long|maxLength|longer than",
     "Texte trop long",
     "Raccourcissez ces textes."),
    (r"minimum|maximum|at least|at most|between",
     "Valeur hors des bornes",
     "Corrigez ces valeurs : elles sortent des bornes permises pour ce champ."),
)
_DEFAULT = ("Valeur refusée", "Corrigez ces lignes dans le fichier, puis renvoyez-le.")
#: Reasons of rows withheld as personal data (the layer's ``exclude`` rules).
_PERSONAL = ("Données personnelles", "Ces lignes ne seront jamais publiées : retirez-les du fichier.")


def advice_for(group: ReasonGroup, layer: LayerDef) -> Advice:
    """A group of rejected rows in French: title, what to do, rows."""
    title, todo = _DEFAULT
    if any(rule.field == group.field and rule.reason == group.reason for rule in layer.exclude):
        title, todo = _PERSONAL
    else:
        for pattern, rule_title, rule_todo in _RULES:
            if re.search(pattern, group.reason, re.IGNORECASE):
                title, todo = rule_title, rule_todo
                break
    field_title = layer.field(group.field).title if group.field in layer.field_names else (
        "Position" if group.field == "geometry" else group.field
    )
    return Advice(
        field=group.field, field_title=field_title, title=title, todo=todo,
        reason=group.reason, count=group.count, first_rows=list(group.first_rows),
    )


def check_delivery(source: SourceDef, layer: LayerDef, territory: Territory, settings: Settings) -> Harmonised:
    """Harmonise a delivery exactly as ``geocommuns validate`` does.

    Parameters
    ----------
    source
        Its declaration (the commune's, the assistant's draft, or a plain default).
    layer
        The layer it is for.
    territory
        The project's territory.
    settings
        The project settings (the geocoder they declare places rows given by address).

    Returns
    -------
    Harmonised
        The valid features and the report (counts, rejected rows, notes); a file that
        cannot be read, or a declaration naming columns the file lacks, gives an empty
        result whose report says why (``error``).
    """
    try:
        return harmonise_source(source, layer, territory, geocoder=geocoder_from_settings(settings))
    except GeocommunsError as e:  # a declaration that does not fit the file (its columns)
        report = SourceReport(source=source.id, layer=layer.id, path=str(source.path), error=str(e))
        return Harmonised(features=features_frame(layer, [], []), report=report)


class CheckCache:
    """The last few checks of a process, so a report, its map and its rejects CSV read
    one harmonisation of a delivery (1.8 s for 20,000 rows) instead of three.

    A check is found again by its file (path, size and modification time), its whole
    declaration and its layer: any change in the assistant is a new check.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, ...], Harmonised] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, source: SourceDef, layer: LayerDef, territory: Territory, settings: Settings) -> Harmonised:
        """:func:`check_delivery`, or its result when the same check was made lately."""
        if source.path is None or not source.path.is_file():
            return check_delivery(source, layer, territory, settings)
        stat = source.path.stat()
        key = (str(source.path), str(stat.st_size), str(stat.st_mtime_ns), source.model_dump_json(), layer.id)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        result = check_delivery(source, layer, territory, settings)
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return result


def advice_of(report: SourceReport, layer: LayerDef) -> list[Advice]:
    """Every group of rejected rows in French, most frequent first."""
    return [advice_for(g, layer) for g in report.reject_groups()]


def rejects_csv(report: SourceReport, layer: LayerDef) -> str:
    """The rejected rows, their reasons (in the reader's language) and what to do, then
    their values as read (CSV)."""
    groups = {(a.field, a.reason): a for a in advice_of(report, layer)}
    columns: list[str] = []
    for r in report.rejects:
        columns.extend(c for c in r.values if c not in columns)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ligne", "champ", "motif", "que faire", *columns])
    for r in report.rejects:
        advice = next(
            (a for (f, reason), a in groups.items() if f == r.field and (reason == r.reason or _same_kind(reason, r.reason))),
            None,
        )
        writer.writerow([
            r.row, r.field, spreadsheet_cell(translate(r.reason)), advice.todo if advice else _DEFAULT[1],
            *(spreadsheet_cell("" if r.values.get(c) is None else str(r.values.get(c))) for c in columns),
        ])
    return out.getvalue()


def _same_kind(group_reason: str, reason: str) -> bool:
    """Whether a row's reason belongs to a group whose text was generalised with ``…``."""
    parts = [re.escape(p) for p in group_reason.split("…")]
    return len(parts) > 1 and re.match(".*".join(parts), reason) is not None


def valid_geojson(harmonised: Harmonised, *, limit: int = 5000) -> dict[str, Any]:
    """The valid features as GeoJSON for the map (name, category, commune)."""
    frame = harmonised.features
    features = []
    for record, point in zip(
        frame.drop(columns="geometry").head(limit).to_dict("records"),
        frame.geometry.values[:limit],
        strict=True,
    ):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
            "properties": {
                k: _json_value(record.get(k)) for k in ("id", "nom", "categorie", "commune")
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None if value is None else str(value)
    return value
