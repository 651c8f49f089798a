"""geocommuns.serve.espace.corrections: pick a feature of one's commune and correct it."""

from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from geocommuns.contrib.layerstore import table_of
from geocommuns.contrib.portal.correct import (
    CorrectionRefused,
    correct_feature,
    features_of,
    form_fields,
    point_from_form,
    properties_from_form,
    shown_value,
)
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.serve.espace.web import PREFIX, Espace, Visit, check_csrf, json_answer, page


def _layer(espace: Espace, visit: Visit, layer_id: str) -> LayerDef:
    layer = espace.layers.get(layer_id)
    if layer is None or not visit.principal.may_edit_layer(layer_id):
        raise NotFound("Cette couche n'existe pas, ou vous ne pouvez pas la modifier.")
    return layer


def feature_list(espace: Espace, request: Request, visit: Visit, layer_id: str) -> Response:
    """The features of the layer in one of the user's communes."""
    layer = _layer(espace, visit, layer_id)
    communes = espace.communes_of(visit.principal)
    chosen = request.args.get("commune") or (communes[0][0] if communes else "")
    if chosen not in {c for c, _ in communes}:
        raise NotFound("Cette commune n'est pas dans votre territoire.")
    with espace.store.reading() as db:
        features = features_of(db, layer, chosen)
    return page("lieux.html", visit=visit, title=f"{layer.title.fr} : choisir un lieu", layer=layer,
                communes=communes, chosen=chosen, features=features)


def _form_page(
    espace: Espace, visit: Visit, layer: LayerDef, feature_id: str, *, message: str = "",
    status: int = 200, values: dict[str, str] | None = None, done: bool = False,
) -> Response:
    with espace.store.reading() as db:
        stored = table_of(db).get(layer, feature_id)
    if stored is None or not visit.principal.owns(stored.doc.get("code_insee"), stored.doc.get("epci")):
        raise NotFound("Ce lieu n'existe pas, ou il est hors de votre territoire.")
    doc = stored.doc
    fields = form_fields(layer)
    shown = {f.name: shown_value(doc.get(f.name), f) for f in fields}
    lon, lat = (doc.get("geometry") or {}).get("coordinates", [None, None])[:2]
    if values:
        shown.update(values)
        lon, lat = values.get("lon", lon), values.get("lat", lat)
    return page(
        "lieu.html", visit=visit, title=f"Corriger « {doc.get('nom') or feature_id} »", layer=layer,
        feature_id=feature_id, doc=doc, fields=fields, shown=shown, lon=lon, lat=lat,
        etag=stored.etag, message=message, status=status, done=done,
        outline=espace.commune_outline(str(doc.get("code_insee"))),
    )


def feature_get(espace: Espace, request: Request, visit: Visit, layer_id: str, feature_id: str) -> Response:
    """The correction form of one feature of the user's territory."""
    layer = _layer(espace, visit, layer_id)
    return _form_page(espace, visit, layer, feature_id, done=bool(request.args.get("fait")))


def feature_post(espace: Espace, request: Request, visit: Visit, layer_id: str, feature_id: str) -> Response:
    """Send the correction through the Part 4 rules (rights, checks, ETag, journal)."""
    layer = _layer(espace, visit, layer_id)
    check_csrf(request, visit.session.csrf)
    try:
        lon, lat = point_from_form(request.form)
        correct_feature(
            espace.edits, visit.principal, layer, feature_id,
            properties=properties_from_form(layer, request.form), lon=lon, lat=lat,
            etag=request.form.get("etag", ""),
        )
    except CorrectionRefused as e:
        if e.status == 404:
            raise NotFound(str(e)) from None
        kept = {k: v for k, v in request.form.items() if k not in {"csrf", "etag"}}
        return _form_page(espace, visit, layer, feature_id, message=str(e),
                          status=409 if e.status == 412 else 403 if e.status == 403 else 400,
                          values=kept)
    return redirect(f"{PREFIX}/couches/{layer.id}/lieux/{feature_id}?fait=1", code=303)


def hours_helper(request: Request) -> Response:
    """Opening hours written in French, as the OSM syntax the layer stores (for the form's helper)."""
    from geocommuns.ingest.hours import french_to_osm

    text = request.args.get("texte", "")[:500]
    converted = french_to_osm(text) if text.strip() else None
    return json_answer({"osm": converted})
