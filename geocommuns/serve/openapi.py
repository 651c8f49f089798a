"""geocommuns.serve.openapi: make pygeoapi's OpenAPI document self-contained.

pygeoapi 0.21 writes ``$ref`` links to the OGC schema repositories
(``schemas.opengis.net``, ``raw.githubusercontent.com``) for shared parameters and
responses. A client with no internet access (an intranet, a test machine) cannot resolve
them, and OpenAPI tooling (validators, code generators, schemathesis) stops on them.
:func:`self_contained` replaces each remote reference by a local component that says the
same thing in a few lines, so the document served at ``/openapi`` stands on its own.
"""

from __future__ import annotations

from typing import Any

_EXCEPTION = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
}
_LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "hreflang": {"type": "string"},
        "title": {"type": "string"},
    },
}


def _json(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "object"}}}}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
    }


#: Local components standing in for the remote ones, by kind and name.
COMPONENTS: dict[str, dict[str, Any]] = {
    "parameters": {
        "featureId": {
            "name": "featureId",
            "in": "path",
            "description": "Identifier of a feature.",
            "required": True,
            "schema": {"type": "string"},
        },
        "sortby": {
            "name": "sortby",
            "in": "query",
            "description": "Properties to sort by, comma-separated; prefix '-' for descending.",
            "required": False,
            "style": "form",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        # the catalogue collection (OGC API - Records)
        "q": {
            "name": "q",
            "in": "query",
            "description": "Words searched in the records' text; commas separate alternatives.",
            "required": False,
            "style": "form",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        "datetime": {
            "name": "datetime",
            "in": "query",
            "description": "A date, or an interval 'start/end' ('..' open), of the records' update date.",
            "required": False,
            "schema": {"type": "string"},
        },
    },
    "responses": {
        "LandingPage": _json("The landing page."),
        "Collection": _json("A collection's metadata."),
        "Features": _json("A page of features.", "application/geo+json"),
        "Feature": _json("A feature.", "application/geo+json"),
        "InvalidParameter": _error("A query parameter has an invalid value."),
        "NotFound": _error("The requested resource does not exist."),
        "ServerError": _error("A server error occurred."),
    },
    "schemas": {"exception": _EXCEPTION, "link": _LINK},
}


def _local(ref: str) -> str | None:
    """The local reference standing in for a remote ``$ref`` (None when unknown)."""
    name = ref.rsplit("/", 1)[-1].removesuffix(".yaml")
    for kind, components in COMPONENTS.items():
        if name in components and (f"/{kind}/" in ref or kind == "schemas"):
            return f"#/components/{kind}/{name}"
    return None


def self_contained(document: dict[str, Any]) -> dict[str, Any]:
    """Replace the remote ``$ref`` links of an OpenAPI document by local components.

    Parameters
    ----------
    document
        The OpenAPI document (modified in place).

    Returns
    -------
    dict
        The same document, with the local components it now refers to.

    Raises
    ------
    ValueError
        When a remote reference has no local stand-in (a new pygeoapi release added
        one): add it to :data:`COMPONENTS`.
    """
    used: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(("http://", "https://")):
                local = _local(ref)
                if local is None:
                    msg = f"OpenAPI document refers to {ref}: add a local stand-in in geocommuns/openapi.py"
                    raise ValueError(msg)
                node["$ref"] = local
                _, _, kind, name = local.split("/")
                used.add((kind, name))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    if any(kind == "responses" for kind, _ in used):
        used.add(("schemas", "exception"))
    components = document.setdefault("components", {})
    for kind, name in sorted(used):
        components.setdefault(kind, {}).setdefault(name, COMPONENTS[kind][name])
    return document
