"""geocommuns.publish.schemacheck: find a national schema's file and validate a CSV against it.

Validation uses frictionless (Table Schema). The schema is looked for in the schemas folder
(``GEOCOMMUNS_SCHEMAS_DIR``), then downloaded from the layer's ``national_schema.schema_url``
into that folder when the network allows; when neither works the caller gets a
:class:`SchemaUnavailableError` that says what to do.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import GeocommunsError


class SchemaUnavailableError(GeocommunsError):
    """The national schema's JSON is neither in the schemas folder nor downloadable."""


@dataclass
class SchemaValidation:
    """The outcome of validating one CSV against its national schema."""

    csv: Path
    schema: Path
    valid: bool
    rows: int
    errors: list[str] = field(default_factory=list)


def schema_file(layer: LayerDef, schemas_dir: Path, *, fetch: bool = True, timeout: float = 10.0) -> Path:
    """The local path of the layer's national schema, downloading it if needed and allowed.

    Parameters
    ----------
    layer
        A layer with a ``national_schema`` that names a ``file``.
    schemas_dir
        Folder to look in (and to save a downloaded schema to).
    fetch
        Whether to download the schema from ``schema_url`` when it is not in the folder.
    timeout
        Seconds to wait for the download.

    Returns
    -------
    pathlib.Path
        The schema's JSON file.

    Raises
    ------
    SchemaUnavailableError
        When the file is absent and cannot be downloaded.
    """
    schema = layer.national_schema
    if schema is None or not schema.file:
        msg = f"layer {layer.id!r} follows no national schema file (national_schema.file)"
        raise SchemaUnavailableError(msg)
    local = schemas_dir / schema.file
    if local.is_file():
        return local
    if not fetch or not schema.schema_url:
        msg = (
            f"{schema.name} {schema.version}: {local} is absent; put the schema's JSON there "
            f"or set GEOCOMMUNS_SCHEMAS_DIR to the folder that holds {schema.file}"
        )
        raise SchemaUnavailableError(msg)
    try:
        with urllib.request.urlopen(schema.schema_url, timeout=timeout) as response:
            body = response.read()
        json.loads(body)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        msg = (
            f"{schema.name} {schema.version}: {local} is absent and {schema.schema_url} "
            f"could not be downloaded ({reason}); download it by hand into {schemas_dir} "
            "or set GEOCOMMUNS_SCHEMAS_DIR to a folder that holds it"
        )
        raise SchemaUnavailableError(msg) from e
    schemas_dir.mkdir(parents=True, exist_ok=True)
    local.write_bytes(body)
    return local


def schema_columns(path: Path) -> list[str]:
    """The column names a Table Schema file declares, in order."""
    descriptor = _descriptor(path)
    return [f["name"] for f in descriptor.get("fields", [])]


def _descriptor(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        msg = f"{path}: not a readable Table Schema JSON ({e}); download it again"
        raise SchemaUnavailableError(msg) from e
    if not isinstance(data, dict):
        msg = f"{path}: a Table Schema must be a JSON object"
        raise SchemaUnavailableError(msg)
    return data


def validate_csv(csv_path: Path, schema_path: Path) -> SchemaValidation:
    """Validate ``csv_path`` against the Table Schema ``schema_path`` with frictionless.

    Returns
    -------
    SchemaValidation
        ``valid`` and one line per error (row, field, error type and note).
    """
    from frictionless import Resource, Schema

    # frictionless refuses absolute paths unless trusted: give it the file's folder as base
    # and the schema as a parsed descriptor.
    schema = Schema.from_descriptor(_descriptor(schema_path))
    resource = Resource(path=csv_path.name, basepath=str(csv_path.parent), schema=schema)
    report = resource.validate()
    errors = [
        f"row {row or '-'} {name or '-'}: {kind}: {note}"
        for row, name, kind, note in report.flatten(["rowNumber", "fieldName", "type", "note"])
    ]
    task = report.tasks[0] if report.tasks else None
    rows = int(task.stats.get("rows", 0) or 0) if task is not None else 0
    return SchemaValidation(csv=csv_path, schema=schema_path, valid=report.valid, rows=rows, errors=errors)
