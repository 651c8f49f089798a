"""geocommuns.contrib.portal.correct: correcting one feature from a form.

:func:`form_fields` builds the form from the layer definition (French titles, a list
for enum fields, a box for booleans, the opening-hours helper); :func:`properties_from_form`
reads it back into typed values (hours written in French converted to the OSM syntax
the layer stores); :func:`correct_feature` sends the change through the OGC API Part 4
service of :mod:`geocommuns.contrib.edits`, in process, as the signed-in user: the same
checks (payload rules, territory, journal) and the same ``ETag`` rule (a feature changed
since the form was opened is refused, never silently overwritten).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geocommuns.contrib.auth import Principal
from geocommuns.contrib.edits import PRINCIPAL_KEY, EditService
from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.errors import GeocommunsError
from geocommuns.i18n import translate
from geocommuns.ingest.hours import french_to_osm
from geocommuns.ingest.sqldb import Db

#: Fields shown read-only (geocommuns computes them) in the form.
_SHOWN_COMPUTED = ("id", "commune", "code_insee", "source")


class CorrectionRefused(GeocommunsError):
    """A correction was refused; ``status`` is the Part 4 status, ``field`` the field at fault."""

    def __init__(self, message: str, *, status: int, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class FormField:
    """One input of the correction form."""

    name: str
    title: str
    kind: str  # text, select, checkbox, number, date, hours, list
    required: bool
    #: An enum field's values and their French labels.
    options: tuple[tuple[str, str], ...] = ()
    sensitive: bool = False


def form_fields(layer: LayerDef) -> list[FormField]:
    """The inputs of the layer's correction form, in the definition's order."""
    out = []
    for f in layer.fields:
        if f.computed or f.name in {"source_id", "longitude", "latitude"}:
            continue
        out.append(FormField(
            name=f.name, title=f.title, kind=_kind(f), required=f.required,
            options=tuple((v, f.label(v)) for v in f.constraints.enum or ()), sensitive=f.sensitive,
        ))
    return out


def _kind(f: FieldDef) -> str:
    if f.constraints.enum:
        return "select"
    if f.type == "boolean":
        return "checkbox"
    if f.type in {"integer", "number"}:
        return "number"
    if f.type == "date":
        return "date"
    if f.format == "opening_hours":
        return "hours"
    if f.type == "array":
        return "list"
    return "text"


def shown_value(value: Any, field: FormField) -> str:
    """A stored value as its input shows it."""
    if value is None:
        return ""
    if field.kind == "list" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if field.kind == "date":
        return str(value)[:10]
    return str(value)


def properties_from_form(layer: LayerDef, form: Mapping[str, str]) -> dict[str, Any]:
    """The form's values, typed as the layer's fields (empty: no value).

    Opening hours written in French (« du lundi au vendredi 9h-12h ») are converted to
    the OSM syntax when they can be read with certainty; otherwise sent as written, and
    the Part 4 checks say what is wrong.
    """
    values: dict[str, Any] = {}
    for field in form_fields(layer):
        raw = form.get(field.name, "").strip()
        if field.kind == "checkbox":
            values[field.name] = form.get(field.name) in {"on", "true", "1", "oui"}
            continue
        if not raw:
            values[field.name] = None
        elif field.kind == "list":
            values[field.name] = [p.strip() for p in raw.split(",") if p.strip()]
        elif field.kind == "number":
            number = raw.replace(",", ".").replace(" ", "")
            try:
                parsed = float(number)
            except ValueError:
                values[field.name] = raw
            else:
                values[field.name] = int(parsed) if layer.field(field.name).type == "integer" and parsed.is_integer() else parsed
        elif field.kind == "hours":
            values[field.name] = french_to_osm(raw) or raw
        else:
            values[field.name] = raw
    return values


def point_from_form(form: Mapping[str, str]) -> tuple[float, float]:
    """The position of the form (``lon``, ``lat``, decimal degrees).

    Raises
    ------
    CorrectionRefused
        When they are not numbers.
    """
    try:
        return float(form.get("lon", "").replace(",", ".")), float(form.get("lat", "").replace(",", "."))
    except ValueError:
        msg = "La position doit être donnée en degrés décimaux (longitude, latitude)."
        raise CorrectionRefused(msg, status=400, field="geometry") from None


#: What a refusal of the Part 4 service means for the technician.
_STATUS_TEXT = {
    403: "Ce lieu, ou sa nouvelle position, est hors de votre territoire : vous ne pouvez pas le corriger.",
    404: "Ce lieu n'existe plus (il a été supprimé entre-temps).",
    412: "Ce lieu a été modifié par quelqu'un d'autre depuis que vous avez ouvert le formulaire : "
         "rechargez la page et refaites votre correction.",
    428: "Le formulaire a expiré : rechargez la page.",
}


def correct_feature(
    edits: EditService, principal: Principal, layer: LayerDef, feature_id: str, *,
    properties: dict[str, Any], lon: float, lat: float, etag: str,
) -> str:
    """Change one feature through the Part 4 service, as ``principal``.

    Parameters
    ----------
    edits
        The edit service of the collections.
    principal
        The signed-in user.
    layer
        The feature's layer.
    feature_id
        Its id.
    properties
        The form's values (every editable field).
    lon, lat
        Its position.
    etag
        The feature's ``ETag`` when the form was opened.

    Returns
    -------
    str
        The feature's new ``ETag``.

    Raises
    ------
    CorrectionRefused
        When the service refuses (rights, territory, a value, a stale ``ETag``); nothing
        was changed.
    """
    body = json.dumps({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }).encode("utf-8")
    environ = {
        "REQUEST_METHOD": "PATCH",
        "PATH_INFO": f"/collections/{layer.id}/items/{feature_id}",
        "CONTENT_TYPE": "application/geo+json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_IF_MATCH": etag,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        PRINCIPAL_KEY: principal,
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    content = b"".join(edits(environ, start_response))
    status = answer["status"]
    if status < 300:
        return str(answer["headers"].get("ETag", ""))
    detail: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        detail = json.loads(content)
    field = detail.get("field")
    if status in _STATUS_TEXT:
        message = _STATUS_TEXT[status]
    else:
        title = layer.field(field).title if field in layer.field_names else "Position" if field == "geometry" else field
        message = f"Valeur refusée{f' pour « {title} »' if title else ''} : {translate(str(detail.get('description', '')))}"
    raise CorrectionRefused(message, status=status, field=field)


def features_of(db: Db, layer: LayerDef, commune: str, *, limit: int = 2000) -> list[tuple[str, str]]:
    """The features of a layer in a commune: (id, name), by name."""
    rows = db.execute(
        f'SELECT id, nom FROM "{layer.id}" WHERE code_insee = %s ORDER BY nom, id LIMIT {int(limit)}',
        [commune],
    ).fetchall()
    return [(str(r[0]), "" if r[1] is None else str(r[1])) for r in rows]
