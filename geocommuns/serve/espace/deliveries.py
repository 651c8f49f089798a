"""geocommuns.serve.espace.deliveries: deliver a file, read its check, map it, preview, submit."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from geocommuns.contrib import reviews
from geocommuns.contrib.contribute import ContributionError, ContributionPlan
from geocommuns.contrib.portal import assistant as assist
from geocommuns.contrib.portal.check import advice_of, rejects_csv, valid_geojson
from geocommuns.contrib.portal.preview import preview_delivery, submit_delivery
from geocommuns.contrib.portal.uploads import FORMATS, Upload, UploadError, too_large_message
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.i18n import translate
from geocommuns.ingest.harmonise import Harmonised
from geocommuns.serve.espace.web import (
    PREFIX,
    Espace,
    Visit,
    check_csrf,
    json_answer,
    page,
    wants_json,
)

#: Room for the form's other fields and the multipart framing around the file.
FORM_MARGIN = 64_000


def deliver_form(espace: Espace, visit: Visit, *, message: str = "", status: int = 200) -> Response:
    """The form to send a file for a layer and a commune."""
    return page(
        "deposer.html", visit=visit, title="Déposer un fichier", status=status, message=message,
        communes=espace.communes_of(visit.principal), layers=espace.layers_of(visit.principal),
        max_bytes=espace.options.upload_max_bytes, accept=",".join(sorted(FORMATS)),
    )


def too_large(espace: Espace, request: Request, visit: Visit | None) -> Response:
    """The French answer to a file above the cap (413)."""
    message = too_large_message(espace.options.upload_max_bytes)
    if wants_json(request):
        return json_answer({"error": message}, 413)
    if visit is None:
        return page("erreur.html", title="Fichier trop volumineux", message=message, status=413)
    return deliver_form(espace, visit, message=message, status=413)


def deliver_post(espace: Espace, request: Request, visit: Visit) -> Response:
    """Keep the file, then show its check (or say in French why it cannot be kept)."""
    if (request.content_length or 0) > espace.options.upload_max_bytes + FORM_MARGIN:
        return too_large(espace, request, visit)
    request.max_content_length = espace.options.upload_max_bytes + FORM_MARGIN
    try:
        form = request.form
        upload_file = request.files.get("fichier")
    except RequestEntityTooLarge:
        return too_large(espace, request, visit)
    check_csrf(request, visit.session.csrf)
    commune, layer_id = form.get("commune", ""), form.get("couche", "")
    problem = ""
    if commune not in {c for c, _ in espace.communes_of(visit.principal)}:
        problem = "Choisissez une commune de votre territoire."
    elif layer_id not in {layer.id for layer in espace.layers_of(visit.principal)}:
        problem = "Choisissez une couche que vous pouvez modifier."
    elif upload_file is None or not upload_file.filename:
        problem = "Choisissez le fichier à déposer."
    upload = None
    if not problem and upload_file is not None:
        try:
            upload = espace.uploads.save(
                user=visit.principal.name, commune=commune, layer=layer_id,
                filename=upload_file.filename or "livraison", stream=upload_file.stream,
            )
        except UploadError as e:
            problem = str(e)
    if upload is None:
        status = 413 if problem == too_large_message(espace.options.upload_max_bytes) else 400
        if wants_json(request):
            return json_answer({"error": problem}, status)
        return deliver_form(espace, visit, message=problem, status=status)
    location = f"{PREFIX}/depots/{upload.id}"
    if wants_json(request):
        return json_answer({"location": location}, 201)
    return redirect(location, code=303)


def upload_of(espace: Espace, visit: Visit, upload_id: str) -> tuple[Upload, LayerDef]:
    """The user's delivery and its layer (404 for anyone else's, or out of their rights now)."""
    upload = espace.uploads.get(upload_id)
    if upload is None or upload.user != visit.principal.name or upload.layer not in espace.layers:
        raise NotFound("Ce dépôt n'existe pas ou n'est pas le vôtre.")
    mine = {c for c, _ in espace.communes_of(visit.principal)}
    if upload.commune not in mine or not visit.principal.may_edit_layer(upload.layer):
        raise NotFound("Ce dépôt n'existe pas ou n'est pas le vôtre.")
    return upload, espace.layers[upload.layer]


def source_of(espace: Espace, upload: Upload) -> SourceDef:
    """How the delivery is read: the assistant's draft, the commune's declaration, or defaults."""
    path = upload.path(espace.uploads.root)
    draft = espace.uploads.draft(upload)
    if draft is not None:
        return draft
    declared = assist.declared_source(espace.sources_dir, upload.commune, upload.layer)
    if declared is not None:
        layer = espace.layers[upload.layer]
        return assist.fitted_to_file(declared.model_copy(update={"path": path}), layer)
    folder = assist.commune_folder(espace.sources_dir, upload.commune, espace.commune_name(upload.commune))
    return SourceDef(id=f"{folder.name}-{upload.layer}".lower(), layer=upload.layer, path=path,
                     commune=upload.commune)


def checked(espace: Espace, upload: Upload, layer: LayerDef, source: SourceDef | None = None) -> Harmonised:
    """The delivery harmonised as ``geocommuns validate`` would."""
    return espace.checks.check(source or source_of(espace, upload), layer, espace.territory, espace.settings)


def summary_of(result: Harmonised, layer: LayerDef) -> dict[str, Any]:
    """Counts and grouped reasons, for the pages and their scripts."""
    report = result.report
    return {
        "read": report.rows_read, "valid": report.features_written,
        "rejected": report.rows_rejected, "error": translate(report.error) if report.error else None,
        "groups": [
            {"field": a.field_title, "title": a.title, "todo": a.todo, "reason": translate(a.reason),
             "count": a.count, "rows": a.rows_text}
            for a in advice_of(report, layer)
        ],
        "notes": [translate(n) for n in report.notes],
    }


def report_page(espace: Espace, request: Request, visit: Visit, upload_id: str, *, message: str = "") -> Response:
    """The check of a delivery: counts, rejections grouped by reason, map, downloads."""
    upload, layer = upload_of(espace, visit, upload_id)
    result = checked(espace, upload, layer)
    return page(
        "depot.html", visit=visit, title=f"Vérification de « {upload.filename} »", upload=upload,
        layer=layer, commune=espace.commune_name(upload.commune), summary=summary_of(result, layer),
        message=message or ("Correspondance enregistrée." if request.args.get("enregistre") else ""),
    )


def rejects_download(espace: Espace, visit: Visit, upload_id: str) -> Response:
    """The rejected rows with their reasons (CSV, ``;``-separated, UTF-8 with BOM for spreadsheets)."""
    upload, layer = upload_of(espace, visit, upload_id)
    result = checked(espace, upload, layer)
    body = "\ufeff" + rejects_csv(result.report, layer)
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="rejets-{upload.id}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def map_data(espace: Espace, visit: Visit, upload_id: str) -> Response:
    """The commune's outline and the valid rows (GeoJSON) for the report's map."""
    upload, layer = upload_of(espace, visit, upload_id)
    result = checked(espace, upload, layer)
    return json_answer({"outline": espace.commune_outline(upload.commune), "features": valid_geojson(result)})


def _assistant_page(
    espace: Espace, visit: Visit, upload: Upload, layer: LayerDef, source: SourceDef, *,
    message: str = "", status: int = 200,
) -> Response:
    result = checked(espace, upload, layer, source)
    try:
        view = assist.assistant_for(source, layer, result.report.info.get("crs"))
    except assist.AssistantError as e:
        return page("erreur.html", visit=visit, title="Fichier illisible", message=str(e), status=400)
    return page(
        "correspondance.html", visit=visit, title="Assistant de correspondance", upload=upload,
        layer=layer, view=view, summary=summary_of(result, layer), message=message,
        label=assist.enum_label, status=status,
    )


def assistant_get(espace: Espace, visit: Visit, upload_id: str) -> Response:
    """The mapping assistant of a delivery."""
    upload, layer = upload_of(espace, visit, upload_id)
    return _assistant_page(espace, visit, upload, layer, source_of(espace, upload))


def _columns(source: SourceDef) -> list[str]:
    from geocommuns.ingest.reader import table_from_file

    if source.path is None:
        return []
    return [str(c) for c in table_from_file(source.path, source).frame.columns]


def assistant_post(espace: Espace, request: Request, visit: Visit, upload_id: str) -> Response:
    """Re-check with the form's choices (``verifier``) or save them as the declaration."""
    upload, layer = upload_of(espace, visit, upload_id)
    check_csrf(request, visit.session.csrf)
    base = source_of(espace, upload)
    try:
        source = assist.source_from_form(base, layer, request.form, _columns(base))
    except assist.AssistantError as e:
        if wants_json(request):
            return json_answer({"error": str(e)}, 400)
        return _assistant_page(espace, visit, upload, layer, base, message=str(e), status=400)
    espace.uploads.save_draft(upload, source)
    if wants_json(request):
        return json_answer(summary_of(checked(espace, upload, layer, source), layer))
    if request.form.get("action") == "enregistrer":
        assist.save_declaration(
            source, sources_dir=espace.sources_dir, insee=upload.commune,
            commune=espace.commune_name(upload.commune), delivery=upload.path(espace.uploads.root),
        )
        return redirect(f"{PREFIX}/depots/{upload.id}?enregistre=1", code=303)
    return _assistant_page(espace, visit, upload, layer, source, message="Vérification refaite avec vos choix.")


_REFUSED = "L'envoi est refusé et rien n'a changé."


def _french_refusal(error: ContributionError, result: Harmonised | None) -> str:
    text = translate(str(error))
    if result is not None and result.report.rows_rejected:
        return (f"{_REFUSED} {result.report.rows_rejected} ligne(s) sont refusées : corrigez-les "
                "(voir le rapport de vérification) puis recommencez.")
    if "other communes" in str(error) or "lie in" in str(error):
        return (f"{_REFUSED} Des lieux du fichier sont dans d'autres communes que la vôtre : "
                f"retirez-les ou vérifiez leurs positions. ({text})")
    if "may not" in str(error):
        return f"{_REFUSED} Vous n'avez pas le droit de modifier cette couche dans cette commune."
    return f"{_REFUSED} {text}"


def preview_page(espace: Espace, visit: Visit, upload_id: str) -> Response:
    """What the delivery changes against what is published: table and map."""
    upload, layer = upload_of(espace, visit, upload_id)
    source = source_of(espace, upload)
    try:
        preview = preview_delivery(espace.store, source, layer, upload.commune, espace.territory,
                                   user=visit.principal.name, sources_dir=espace.sources_dir)
    except ContributionError as e:
        message = _french_refusal(e, checked(espace, upload, layer, source))
        return page("apercu.html", visit=visit, title="Aperçu", upload=upload, layer=layer,
                    preview=None, message=message, status=409, review=espace.review)
    return page("apercu.html", visit=visit, title="Aperçu des changements", upload=upload,
                layer=layer, preview=preview, message="", review=espace.review)


def preview_map(espace: Espace, visit: Visit, upload_id: str) -> Response:
    """The preview's features and the commune outline (GeoJSON) for its map."""
    upload, layer = upload_of(espace, visit, upload_id)
    try:
        preview = preview_delivery(espace.store, source_of(espace, upload), layer, upload.commune,
                                   espace.territory, user=visit.principal.name,
                                   sources_dir=espace.sources_dir)
    except ContributionError:
        rows = []
    else:
        rows = preview.rows
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
         "properties": {"nom": r.name, "kind": r.kind}}
        for r in rows if r.lon is not None and r.lat is not None
    ]
    return json_answer({"outline": espace.commune_outline(upload.commune),
                        "features": {"type": "FeatureCollection", "features": features}})


def submit(espace: Espace, request: Request, visit: Visit, upload_id: str) -> Response:
    """Apply the delivery through the contribution path, or queue it for review."""
    upload, layer = upload_of(espace, visit, upload_id)
    check_csrf(request, visit.session.csrf)
    source = source_of(espace, upload)
    try:
        outcome = submit_delivery(
            espace.store, source, layer, upload.commune, espace.territory,
            user=visit.principal.name, sources_dir=espace.sources_dir, review=espace.review,
            upload_id=upload.id, note=request.form.get("note", ""),
        )
    except ContributionError as e:
        message = _french_refusal(e, checked(espace, upload, layer, source))
        return page("apercu.html", visit=visit, title="Envoi refusé", upload=upload, layer=layer,
                    preview=None, message=message, status=409, review=espace.review)
    except reviews.ReviewError as e:
        return page("erreur.html", visit=visit, title="Envoi impossible", message=str(e), status=400)
    if isinstance(outcome, ContributionPlan):
        espace.uploads.mark(upload, "applied")
        return page("envoye.html", visit=visit, title="Livraison appliquée", upload=upload,
                    layer=layer, plan=outcome, item=None)
    espace.uploads.mark(upload, "proposed")
    return page("envoye.html", visit=visit, title="Livraison envoyée pour relecture",
                upload=upload, layer=layer, plan=None, item=outcome)
