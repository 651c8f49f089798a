"""geocommuns.serve.openapi_responses: every answer the service gives, documented.

pygeoapi's OpenAPI document says its answers are JSON, but the same operations answer
HTML (``f=html`` or a browser's ``Accept``), JSON-LD (``f=jsonld``), CSV (``f=csv`` on
items) and JSON Schema (queryables, schema); and geocommuns' middlewares answer ``503``
when a query exceeds its time budget or the database is unreachable. A client reading
the document (or a tool checking the answers against it, such as schemathesis'
``content_type_conformance`` and ``status_code_conformance``) would find them
undocumented; and pygeoapi's queryables schema does not describe its own answers.
:func:`documented_responses` declares them, on the shared response components and on
every operation.
"""

from __future__ import annotations

from typing import Any

_HTML = {"text/html": {"schema": {"type": "string"}}}
_JSONLD = {"application/ld+json": {"schema": {"type": "object"}}}
_CSV = {"text/csv": {"schema": {"type": "string"}}}
#: Media types each response component also answers in (besides what pygeoapi says).
ALTERNATES: dict[str, dict[str, Any]] = {
    "LandingPage": {**_HTML, **_JSONLD},
    "Collection": {**_HTML, **_JSONLD},
    "Features": {**_HTML, **_JSONLD, **_CSV},
    "Feature": {**_HTML, **_JSONLD},
    "InvalidParameter": {**_HTML, **_JSONLD},
    "NotFound": {**_HTML, **_JSONLD},
    "ServerError": {**_HTML, **_JSONLD},
}
#: What a queryables or schema answer is: a JSON Schema of the collection's properties
#: (pygeoapi's own component wrongly asks for a ``queryables`` array).
QUERYABLES_SCHEMA = {
    "type": "object",
    "required": ["type", "properties"],
    "properties": {"type": {"type": "string"}, "properties": {"type": "object"}},
}
#: gunicorn answers a request line longer than 4094 bytes before the application sees it.
TOO_LONG = {"description": "The request line is too long (over 4094 bytes)."}
UNAVAILABLE = {
    "description": "The query exceeded its time budget, or the database is busy or unreachable: retry.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
}


def documented_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the media types and statuses the service really answers.

    Parameters
    ----------
    document
        The OpenAPI document, made self-contained
        (:func:`geocommuns.serve.openapi.self_contained`; modified in place).

    Returns
    -------
    dict
        The same document.
    """
    responses = document.setdefault("components", {}).setdefault("responses", {})
    for name, extra in ALTERNATES.items():
        if name in responses:
            content = responses[name].setdefault("content", {})
            for media, value in extra.items():
                content.setdefault(media, value)
    schemas = document["components"].setdefault("schemas", {})
    if "queryables" in schemas:
        schemas["queryables"] = dict(QUERYABLES_SCHEMA)
    queryables = responses.get("Queryables")
    if queryables is not None:
        content = queryables.setdefault("content", {})
        schema = content.get("application/json", {"schema": {"type": "object"}})
        content.setdefault("application/schema+json", schema)
        content.update({k: v for k, v in {**_HTML, **_JSONLD}.items() if k not in content})
    responses.setdefault("ServiceUnavailable", UNAVAILABLE)
    responses.setdefault("TooLong", TOO_LONG)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            answers = operation.setdefault("responses", {})
            answers.setdefault("414", {"$ref": "#/components/responses/TooLong"})
            if path.startswith("/collections/") and method == "get":
                answers.setdefault("503", {"$ref": "#/components/responses/ServiceUnavailable"})
    return document
