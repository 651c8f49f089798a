"""geocommuns.definitions.service: the typed model of a territory's service file (``geocommuns.yml``).

The service file at a project's root says who publishes (the EPCI, its contact), which
territory the project covers, where its layer definitions and commune deliveries live, how
the service presents itself (title and description in French and English, licence), which
base maps the citizen map offers, which languages are served and under which public URLs,
and which websites may embed the map. The pygeoapi configuration, the citizen map, the
exports' metadata and the dashboard are generated from it: no territory, EPCI, contact or
tile URL is written in Python.

Examples
--------
>>> service = service_from_root(Path("."))            # doctest: +SKIP
>>> service.epci.siren                                  # doctest: +SKIP
'200023737'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from geocommuns.errors import ServiceDefinitionError
from geocommuns.settings import SERVICE_FILE as SERVICE_FILE

Language = Literal["fr", "en"]
LANGUAGES: tuple[Language, ...] = ("fr", "en")

_SIREN = re.compile(r"^\d{9}$")
_SIRET = re.compile(r"^\d{14}$")
_ORIGIN = re.compile(r"^(https?://[^/\s]+|'self'|'none')$")
#: One part of a territory spec (parts are joined by ``+``, as ``territory_from_spec`` reads them).
_TERRITORY_PART = re.compile(
    r"^(epci:\d{9}|departement:(\d{2,3}|2[AB])|region:\d{2}|commune:\d[\dAB]\d{3}|france)$"
)


class ServiceModel(BaseModel):
    """Base of the service file's sections: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Localised(ServiceModel):
    """A text in French (required) and, for visitors and foreign clients, English."""

    fr: str = Field(min_length=1)
    en: str | None = None

    def text(self, lang: str = "fr") -> str:
        """The text in ``lang``, French when there is no such translation."""
        return self.en if lang == "en" and self.en else self.fr


class Epci(ServiceModel):
    """The publishing intercommunality (établissement public de coopération intercommunale)."""

    name: str = Field(min_length=1)
    #: Required for an EPCI; a département-wide project's publisher may leave it out until
    #: it is known (the national exports then leave out the columns that need it).
    siren: str | None = None
    #: SIREN + NIC of the establishment that publishes (the ``COLL_SIRET`` of national schemas).
    siret: str | None = None
    url: str | None = None

    @field_validator("siren")
    @classmethod
    def _check_siren(cls, value: str | None) -> str | None:
        if value is not None and not _SIREN.match(value):
            raise ValueError(
                "a SIREN has 9 digits (look it up on annuaire-entreprises.data.gouv.fr)"
            )
        return value

    @model_validator(mode="after")
    def _check_siret(self) -> Epci:
        if self.siret is not None and not (
            self.siren and _SIRET.match(self.siret) and self.siret.startswith(self.siren)
        ):
            raise ValueError(
                f"siret {self.siret!r} must have 14 digits and start with the SIREN {self.siren}"
            )
        return self


class Contact(ServiceModel):
    """The service's point of contact, published in the API's metadata and on the home page."""

    name: str = Field(min_length=1)
    position: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str = "France"
    url: str | None = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"{value!r} is not an e-mail address (write it as sig@example.fr)")
        return value


class Licence(ServiceModel):
    """The default licence of the communes' data (each layer may declare its own)."""

    id: str = "etalab-2.0"
    title: str = "Licence Ouverte / Open Licence 2.0"
    url: str = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"


class BaseMap(ServiceModel):
    """One base map of the citizen map.

    ``kind`` is ``xyz`` (a ``{z}/{x}/{y}`` tile URL: OpenStreetMap, a self-hosted tile
    server), ``wmts`` (a WMTS in the Web Mercator tile matrix, e.g. the Géoplateforme's
    Plan IGN, given as its KVP GetTile URL with ``{z}``, ``{x}``, ``{y}``) or ``outlines``
    (no tiles: the communes' outlines only, also the fallback when tiles cannot load).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    kind: Literal["xyz", "wmts", "outlines"]
    title: Localised
    url: str | None = None
    #: Plain text shown in the map's attribution control (linked to ``attribution_url``).
    attribution: str | None = None
    attribution_url: str | None = None
    max_zoom: int = Field(default=19, ge=1, le=22)

    @model_validator(mode="after")
    def _check_tiles(self) -> BaseMap:
        if self.kind == "outlines":
            return self
        if not self.url:
            raise ValueError(
                f"base map {self.id!r} ({self.kind}) needs a url with {{z}}, {{x}} and {{y}}"
            )
        if not all(part in self.url for part in ("{z}", "{x}", "{y}")):
            raise ValueError(f"base map {self.id!r}: url must contain {{z}}, {{x}} and {{y}}")
        if not self.attribution:
            raise ValueError(
                f"base map {self.id!r} needs an attribution (the tile provider's licence requires it)"
            )
        return self


class Urls(ServiceModel):
    """Where the service is published (used in links, the catalogue and embed snippets)."""

    #: The public base URL of the API, the map and the technician space.
    public: str = "http://127.0.0.1:5000"

    @field_validator("public")
    @classmethod
    def _check_public(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://sig.example.fr)")
        return value.rstrip("/")


class Embedding(ServiceModel):
    """Which websites may show the citizen map in an ``<iframe>``."""

    #: Origins allowed by ``Content-Security-Policy: frame-ancestors`` (``'self'`` always is).
    frame_ancestors: list[str] = Field(default_factory=list)

    @field_validator("frame_ancestors")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme and host only, e.g. https://www.douelle.fr"
                )
        return value


class EspaceSettings(ServiceModel):
    """The technician web space (``/espace/``)."""

    #: Deliveries submitted in the space wait in the review queue until the EPCI accepts
    #: them (``false``: they are applied at once, journaled).
    review: bool = False


class Paths(ServiceModel):
    """Where the project's definitions and data live, relative to the service file."""

    layers: Path = Path("layers")
    sources: Path = Path("geodata/sources")


class Service(ServiceModel):
    """A territory's service file (``geocommuns.yml``)."""

    territory: str
    epci: Epci
    title: Localised
    description: Localised
    keywords: dict[Literal["fr", "en"], list[str]] = Field(default_factory=dict)
    contact: Contact
    licence: Licence = Licence()
    basemaps: list[BaseMap] = Field(min_length=1)
    languages: list[Language] = Field(default_factory=lambda: list(LANGUAGES))
    urls: Urls = Urls()
    embedding: Embedding = Embedding()
    espace: EspaceSettings = EspaceSettings()
    paths: Paths = Paths()

    @field_validator("territory")
    @classmethod
    def _check_territory(cls, value: str) -> str:
        if not all(_TERRITORY_PART.match(part.strip()) for part in value.split("+")):
            raise ValueError(
                f"{value!r} is not a territory spec: write epci:SIREN, departement:CODE, "
                "region:CODE or commune:INSEE, several joined by '+' (e.g. "
                "epci:123456789 for an EPCI's SIREN)"
            )
        return value

    @field_validator("languages")
    @classmethod
    def _french_first(cls, value: list[Language]) -> list[Language]:
        if not value or value[0] != "fr":
            raise ValueError("French comes first: write languages: [fr, en] (or [fr])")
        return value

    @model_validator(mode="after")
    def _unique_basemaps(self) -> Service:
        ids = [basemap.id for basemap in self.basemaps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"basemaps: each id must be unique, got {ids}")
        return self


def _where(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def service_from_file(path: Path) -> Service:
    """Read and validate a service file.

    Parameters
    ----------
    path
        The ``geocommuns.yml`` file.

    Returns
    -------
    Service
        The validated service.

    Raises
    ------
    ServiceDefinitionError
        The file is missing, not YAML, or a key is wrong; the message names the key and
        says how to fix it.
    """
    if not path.is_file():
        raise ServiceDefinitionError(
            f"{path}: no service file. Create it (copy the example project's {SERVICE_FILE}) "
            "or run `geocommuns init DIR --epci SIREN`."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ServiceDefinitionError(
            f"{path}: not valid YAML ({error}). Fix the indentation or quoting."
        ) from None
    if not isinstance(raw, dict):
        raise ServiceDefinitionError(
            f"{path}: expected a mapping of keys (territory, epci, contact…)."
        )
    try:
        return Service.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{_where(item)}: {item['msg']}" for item in error.errors())
        raise ServiceDefinitionError(f"{path}: {problems}") from None


def service_from_root(root: Path) -> Service:
    """Read the service file at a project's root (``ROOT/geocommuns.yml``)."""
    return service_from_file(root / SERVICE_FILE)
