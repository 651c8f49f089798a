"""geocommuns.settings: paths and options, from the environment (``GEOCOMMUNS_*``) or ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geocommuns.errors import ServiceDefinitionError

#: The service file at a project's root (validated by ``definitions.service``).
SERVICE_FILE = "geocommuns.yml"


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder holding ``layers/`` or a service file, upwards.

    Falls back to the checkout this package was installed from, so ``geocommuns validate``
    works from any folder a technician keeps deliveries in.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "layers").is_dir() or (folder / SERVICE_FILE).is_file():
            return folder
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "layers").is_dir() else here


def service_defaults(root: Path) -> dict[str, str]:
    """The settings a project's service file gives: ``territory``, ``layers_dir``, ``sources_dir``.

    Only these three keys are read here (``paths.layers``, ``paths.sources``,
    ``territory``); the whole file is validated by ``definitions.service``. No service
    file gives no defaults.

    Raises
    ------
    ServiceDefinitionError
        The file is not YAML or not a mapping.
    """
    path = root / SERVICE_FILE
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        msg = f"{path}: not valid YAML ({error}). Fix the indentation or quoting."
        raise ServiceDefinitionError(msg) from None
    if not isinstance(raw, dict):
        msg = f"{path}: expected a mapping of keys (territory, epci, paths…)."
        raise ServiceDefinitionError(msg)
    section = raw.get("paths")
    paths: dict[str, Any] = section if isinstance(section, dict) else {}
    found = {
        "territory": raw.get("territory"),
        "layers_dir": paths.get("layers"),
        "sources_dir": paths.get("sources"),
    }
    return {key: str(value) for key, value in found.items() if value}


class Settings(BaseSettings):
    """Run-time settings.

    Every path is relative to ``root`` unless given absolute. Set them with environment
    variables prefixed ``GEOCOMMUNS_`` (for example ``GEOCOMMUNS_TERRITORY=departement:46``)
    or in a ``.env`` file in the working directory. ``territory``, ``layers_dir`` and
    ``sources_dir`` default to the root's service file (``territory``, ``paths.layers``,
    ``paths.sources``); an environment variable or an argument overrides it.
    """

    model_config = SettingsConfigDict(env_prefix="GEOCOMMUNS_", env_file=".env", extra="ignore")

    root: Path = Field(default_factory=find_root)
    layers_dir: Path = Path("layers")
    sources_dir: Path = Path("geodata/sources")
    output: Path = Path("geodata/geocommuns.gpkg")
    report_dir: Path = Path("geodata")
    webmap_dir: Path = Path("webmap")
    #: The territory spec (``epci:SIREN``, ``departement:CODE``, ``commune:INSEE``…); from
    #: the service file, or the example project's when the root has none.
    territory: str = ""
    database_url: str | None = None
    #: The API's reads (pygeoapi's provider, the fast path): a login of the
    #: ``geocommuns_api_read`` group, which may write nothing (``geocommuns db-roles``).
    #: Unset: ``database_url``. Read through :func:`geocommuns.serve.provider_postgis.role_url`.
    database_read_url: str | None = None
    #: The API's Part 4 writes: a login of the ``geocommuns_api_write`` group (the layer
    #: tables and the journal only). Unset: ``database_url``.
    database_write_url: str | None = None
    #: Hot standbys of the database (PostgreSQL streaming replicas), one libpq URL or
    #: several separated by spaces: the API's anonymous reads go to them in turn, the
    #: reads of a request carrying a token (a writer reading its own writes) and every
    #: write go to the primary. Unset: everything on the primary.
    database_replica_urls: str = ""
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

    @model_validator(mode="before")
    @classmethod
    def _service_file_defaults(cls, data: Any) -> Any:
        """Fill territory and folders from the service file where nothing else set them."""
        if not isinstance(data, dict):
            return data
        root = Path(data["root"]) if data.get("root") else find_root()
        found = service_defaults(root)
        if "territory" not in found:
            # a scratch folder without a service file: the example project's territory
            example = service_defaults(Path(__file__).resolve().parents[1]).get("territory")
            found.update({"territory": example} if example else {})
        return {**found, **data}

    @model_validator(mode="after")
    def _role_urls_default_to_the_owner(self) -> Settings:
        """The read and write URLs are the owner's (``database_url``) unless set."""
        if self.database_read_url is None:
            self.database_read_url = self.database_url
        if self.database_write_url is None:
            self.database_write_url = self.database_url
        return self

    @property
    def replica_urls(self) -> list[str]:
        """:attr:`database_replica_urls` as a list (empty: no replica)."""
        return self.database_replica_urls.split()

    def path(self, value: Path) -> Path:
        """Resolve ``value`` against ``root``."""
        return value if value.is_absolute() else self.root / value
