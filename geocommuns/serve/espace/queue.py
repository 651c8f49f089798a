"""geocommuns.serve.espace.queue: the review queue (submissions waiting, citizens' reports)."""

from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from geocommuns.contrib import reviews
from geocommuns.contrib.contribute import ContributionError
from geocommuns.contrib.portal.preview import apply_accepted
from geocommuns.serve.espace.web import PREFIX, Espace, Visit, check_csrf, page


def queue_page(espace: Espace, request: Request, visit: Visit, *, message: str = "", status: int = 200) -> Response:
    """The items the user reviews, per commune: waiting first, then the last decided."""
    commune = request.args.get("commune") or None
    with espace.store.reading() as db:
        items = [i for i in reviews.list_items(db, visit.principal, commune=commune, limit=300)
                 if reviews.may_review(visit.principal, i)]
    names = {c: n for c, n in espace.communes_of(visit.principal)}
    return page(
        "relecture.html", visit=visit, title="File de relecture", status=status,
        waiting=[i for i in items if i.state in {"proposed", "accepted"}],
        decided=[i for i in items if i.state in {"refused", "done"}][:50],
        names=names, commune=commune, message=message or {
            "acceptee": "Livraison acceptée et appliquée.", "refusee": "Décision enregistrée.",
            "traite": "Signalement marqué comme traité.",
        }.get(request.args.get("fait", ""), ""),
    )


def decide(espace: Espace, request: Request, visit: Visit, item_id: int) -> Response:
    """Accept (and apply) or refuse a submission; mark a report done."""
    check_csrf(request, visit.session.csrf)
    action = request.form.get("action", "")
    comment = request.form.get("commentaire", "")
    try:
        with espace.store.reading() as db:
            item = reviews.get_item(db, visit.principal, item_id)
        if not reviews.may_review(visit.principal, item):
            raise NotFound("Cet élément n'est pas dans votre file de relecture.")
        if item.kind == "submission" and action == "accepter":
            upload = espace.uploads.get(str((item.payload or {}).get("upload", "")))
            layer = espace.layers.get(item.layer)
            if upload is None or layer is None:
                return queue_page(espace, request, visit, status=409,
                                  message="Le fichier de cette livraison n'est plus disponible : refusez-la.")
            apply_accepted(espace.store, visit.principal, item, delivery=upload.path(espace.uploads.root),
                           layer=layer, territory=espace.territory, sources_dir=espace.sources_dir,
                           comment=comment)
            espace.uploads.mark(upload, "applied")
            done = "acceptee"
        elif action == "refuser":
            with espace.store.writing() as db:
                reviews.decide(db, visit.principal, item_id, accept=False, comment=comment)
            done = "refusee"
        elif action == "traiter":
            with espace.store.writing() as db:
                reviews.mark_done(db, visit.principal, item_id, comment=comment)
            done = "traite"
        else:
            return queue_page(espace, request, visit, status=400, message="Action inconnue.")
    except reviews.ReviewError:
        raise NotFound("Cet élément n'est pas dans votre file de relecture, ou il est déjà décidé.") from None
    except ContributionError as e:
        return queue_page(espace, request, visit, status=409,
                          message=f"La livraison ne peut plus être appliquée, rien n'a changé : {e}")
    return redirect(f"{PREFIX}/relecture?fait={done}", code=303)
