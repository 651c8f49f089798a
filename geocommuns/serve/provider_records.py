"""geocommuns.serve.provider_records: the ``catalogue`` collection (OGC API – Records), read-only.

pygeoapi serves OGC API – Records through its record providers; geocommuns uses its TinyDB
catalogue provider on the table ``geocommuns refresh`` writes
(:func:`geocommuns.publish.catalogue.write_catalogue`), with two changes:

- queries are built as TinyDB query objects. pygeoapi 0.21's provider pastes the request's
  ``q``, property values, ``datetime`` and ``bbox`` into Python source that it then runs
  with ``eval``: a ``q`` holding a quote would run code on the server;
- the table is only ever read (opened in TinyDB's read mode, or an empty in-memory table
  while no refresh has written it yet, so that the service starts on a fresh project).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.provider.tinydb_ import TinyDBCatalogueProvider
from shapely.geometry import shape
from tinydb import Query, TinyDB
from tinydb.storages import MemoryStorage

LOGGER = logging.getLogger(__name__)
#: The property holding each record's searchable text (written by the catalogue).
ANYTEXT = "_metadata-anytext"


def _matches_terms(term: str) -> Callable[[Any], bool]:
    """``q`` semantics of OGC API – Records: every word of ``term`` appears (case-insensitive)."""
    words = [w.casefold() for w in term.split()]
    return lambda text: isinstance(text, str) and all(w in text.casefold() for w in words)


def _bbox(values: list[float]) -> tuple[float, float, float, float]:
    if len(values) != 4:
        msg = "bbox needs 4 numbers: minx,miny,maxx,maxy"
        raise ProviderInvalidQueryError(msg)
    return float(values[0]), float(values[1]), float(values[2]), float(values[3])


class RecordsProvider(TinyDBCatalogueProvider):  # type: ignore[misc]
    """pygeoapi's TinyDB catalogue provider, read-only and without ``eval``."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        BaseProvider.__init__(self, provider_def)
        self._excludes = [ANYTEXT]
        self._fields: dict[str, dict[str, str]] = {}
        if Path(self.data).is_file():
            self.db = TinyDB(self.data, access_mode="r")
        else:
            LOGGER.warning("no catalogue yet at %s: run 'geocommuns refresh'", self.data)
            self.db = TinyDB(storage=MemoryStorage)
        self.get_fields()

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, Any]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Records matching the request, as a GeoJSON feature collection.

        Parameters are pygeoapi's (see ``BaseProvider.query``); ``q`` is a comma-separated
        list of alternatives, each a space-separated list of words that must all appear
        in the record's title, description or keywords.
        """
        record = Query()
        tests: list[Any] = []
        if bbox:
            minx, miny, maxx, maxy = _bbox(list(bbox))

            def intersects(geometry: Any) -> bool:
                try:
                    gx0, gy0, gx1, gy1 = (float(v) for v in shape(geometry).bounds)
                except (ValueError, TypeError, AttributeError, KeyError):
                    return False
                return gx0 <= maxx and gx1 >= minx and gy0 <= maxy and gy1 >= miny

            tests.append(record.geometry.test(intersects))
        if datetime_:
            field = self.time_field or "updated"
            begin, _, end = (
                datetime_.partition("/") if "/" in datetime_ else (datetime_, "", datetime_)
            )
            if begin not in ("", ".."):
                tests.append(
                    record.properties[field].test(lambda v, b=begin: isinstance(v, str) and v >= b)
                )
            if end not in ("", ".."):
                tests.append(
                    record.properties[field].test(
                        lambda v, e=end: isinstance(v, str) and v[: len(e)] <= e
                    )
                )
        for name, value in properties or []:
            tests.append(record.properties[str(name)].test(lambda v, w=value: str(v) == str(w)))
        if q:
            alternatives = [_matches_terms(t) for t in q.split(",") if t.strip()]
            if alternatives:
                tests.append(
                    record.properties[ANYTEXT].test(lambda text: any(a(text) for a in alternatives))
                )
        if tests:
            condition = tests[0]
            for more in tests[1:]:
                condition = condition & more
            results = [dict(r) for r in self.db.search(condition)]
        else:
            results = [dict(r) for r in self.db.all()]
        collection: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [],
            "numberMatched": len(results),
        }
        if resulttype == "hits":
            collection["numberReturned"] = 0
            return collection
        if sortby:
            key, reverse = sortby[0]["property"], sortby[0].get("order") == "-"
            if not re.match(r"^[A-Za-z_][\w-]*$", key):
                msg = f"cannot sort by {key!r}"
                raise ProviderInvalidQueryError(msg)
            results.sort(key=lambda r: str(r.get("properties", {}).get(key, "")), reverse=reverse)
        page = [
            self._public(r, select_properties, skip_geometry)
            for r in results[offset : offset + limit]
        ]
        collection["features"] = page
        collection["numberReturned"] = len(page)
        return collection

    def _public(
        self, record: dict[str, Any], select: list[str] | None, skip_geometry: bool
    ) -> dict[str, Any]:
        """A record as served: without its search text, selected properties only."""
        out = dict(record)
        props = {k: v for k, v in (out.get("properties") or {}).items() if k not in self._excludes}
        if select:
            props = {k: v for k, v in props.items() if k in select}
        out["properties"] = props
        if skip_geometry:
            out["geometry"] = None
        return out

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """One record by id."""
        found = self.db.get(Query().id == str(identifier))
        if found is None:
            msg = "record does not exist"
            raise ProviderItemNotFoundError(msg)
        return self._public(dict(found), None, False)

    def create(self, item: Any) -> str:
        """Refused: the catalogue is written by ``geocommuns refresh`` only."""
        msg = "the catalogue is read-only"
        raise ProviderInvalidQueryError(msg)

    def update(self, identifier: str, item: Any) -> bool:
        """Refused (read-only)."""
        msg = "the catalogue is read-only"
        raise ProviderInvalidQueryError(msg)

    def delete(self, identifier: str) -> bool:
        """Refused (read-only)."""
        msg = "the catalogue is read-only"
        raise ProviderInvalidQueryError(msg)

    def __repr__(self) -> str:
        return f"<RecordsProvider> {self.data}"
