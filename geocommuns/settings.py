"""geocommuns.settings: paths and options, from the environment (``GEOCOMMUNS_*``) or ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder holding ``layers/``, from ``start`` upwards.

    Falls back to the checkout this package was installed from, so ``geocommuns validate``
    works from any folder a technician keeps deliveries in.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "layers").is_dir():
            return folder
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "layers").is_dir() else here


class Settings(BaseSettings):
    """Run-time settings.

    Every path is relative to ``root`` unless given absolute. Set them with environment
    variables prefixed ``GEOCOMMUNS_`` (for example ``GEOCOMMUNS_TERRITORY=departement:46``)
    or in a ``.env`` file in the working directory.
    """

    model_config = SettingsConfigDict(env_prefix="GEOCOMMUNS_", env_file=".env", extra="ignore")

    root: Path = Field(default_factory=find_root)
    layers_dir: Path = Path("layers")
    sources_dir: Path = Path("geodata/sources")
    output: Path = Path("geodata/geocommuns.gpkg")
    report_dir: Path = Path("geodata")
    webmap_dir: Path = Path("webmap")
    territory: str = "epci:200023737"
    database_url: str | None = None
    #: Where ``geocommuns export`` writes the open-data downloads.
    export_dir: Path = Path("geodata/export")
    #: Folder holding the national schemas' JSON files (``national_schema.file``); a schema
    #: missing here is downloaded from its ``schema_url`` into it when online.
    schemas_dir: Path = Path("geodata/schemas")
    #: Layers up to this many features keep a per-feature log of what each import changed
    #: (``geocommuns history``); larger layers log the journal of human changes only.
    history_max_features: int = 250_000
    #: A Base Adresse Nationale / Base Adresse Locale CSV: rows with an address and no
    #: coordinates are placed from it (offline).
    address_reference: Path | None = None
    #: Ask the national address API for such rows when no reference file is set (online).
    address_api: bool = False
    address_api_url: str = "https://api-adresse.data.gouv.fr"
    #: Where the address API's answers are cached.
    address_cache_dir: Path = Path("geodata/cache/adresses")
    #: Minimum score (0 to 1) for a row to be placed from its address.
    address_threshold: float = 0.8
    #: Longest a GeoPackage query of the service may run (milliseconds) before it is
    #: interrupted and answered 503 (PostGIS: the pool's statement_timeout).
    query_budget_ms: int = 10_000

    def path(self, value: Path) -> Path:
        """Resolve ``value`` against ``root``."""
        return value if value.is_absolute() else self.root / value
