"""geocommuns.ingest.geocode: positions for rows that give an address and no coordinates.

Many commune spreadsheets list addresses without coordinates. Two geocoders find them:

- :class:`AddressReference` (offline): a Base Adresse Nationale or Base Adresse Locale CSV
  declared in the settings (``GEOCOMMUNS_ADDRESS_REFERENCE``). Both national formats are
  read from their documented columns: BAN ``adresses-<dep>.csv`` (``numero``, ``rep``,
  ``nom_voie``, ``code_postal``, ``code_insee``, ``nom_commune``, ``lon``, ``lat``) and BAL
  1.3/1.4 (``numero``, ``suffixe``, ``voie_nom``, ``commune_insee``, ``commune_nom``,
  ``long``, ``lat``). Streets are compared after normalisation (abbreviations « av. »,
  « bd », « pl. », « st », articles, case, accents, hyphens), within the row's commune
  (INSEE code, else commune name, else postcode), and scored;
- :class:`AddressApi` (online): the national address API's batch endpoint
  (``/search/csv/``), each answer cached on disk; when the API cannot be reached it fails
  at once, with one message for the whole source.

A row is placed only when its best candidate scores at least the threshold; otherwise it
is rejected and the reason names that candidate and its score.
"""

from __future__ import annotations

import csv
import difflib
import functools
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from geocommuns.errors import ConfigError
from geocommuns.settings import Settings

#: Minimum score for a row to be placed (1 = same number, same street).
DEFAULT_THRESHOLD = 0.8
#: The national address API (api-adresse.data.gouv.fr, now served by the Géoplateforme).
ADDRESS_API = "https://api-adresse.data.gouv.fr"

#: Abbreviations of street types and saints, as written in French addresses.
_ABBREVIATIONS = {
    "av": "avenue", "ave": "avenue", "bd": "boulevard", "bld": "boulevard", "boul": "boulevard",
    "bvd": "boulevard", "pl": "place", "r": "rue", "rte": "route", "che": "chemin",
    "chem": "chemin", "ch": "chemin", "imp": "impasse", "all": "allee", "crs": "cours",
    "fg": "faubourg", "fbg": "faubourg", "sq": "square", "qu": "quai", "qua": "quai",
    "pas": "passage", "esp": "esplanade", "prom": "promenade", "res": "residence",
    "lot": "lotissement", "ham": "hameau", "st": "saint", "ste": "sainte", "mal": "marechal",
    "gal": "general", "gen": "general", "dr": "docteur", "pdt": "president", "prof": "professeur",
    "ave.": "avenue",
}
_ARTICLES = frozenset({"le", "la", "les", "l", "de", "du", "des", "d", "a", "au", "aux", "et"})
_NUMBER = re.compile(
    r"^\s*(\d{1,5})\s*(bis|ter|quater|quinquies|[a-z](?![a-z]))?\s*[,\s]\s*(.+)$", re.IGNORECASE
)
_SUFFIXES = {"b": "bis", "t": "ter", "q": "quater"}


def normalise_street(text: str) -> str:
    """A street name reduced for comparison.

    ``"Bd Léon-Gambetta"``, ``"BOULEVARD LEON GAMBETTA"`` and ``"boulevard Léon Gambetta"``
    all give ``"boulevard leon gambetta"``; ``"Av. de la Libération"`` gives
    ``"avenue liberation"``.
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = re.sub(r"[^a-z0-9]+", " ", plain.replace("'", " ")).split()
    out = [_ABBREVIATIONS.get(w, w) for w in words]
    return " ".join(w for w in out if w not in _ARTICLES)


def split_address(text: str) -> tuple[str | None, str]:
    """``"73 bis bd Gambetta"`` gives ``("73 bis", "bd Gambetta")``; no number gives ``None``."""
    match = _NUMBER.match(text.strip())
    if not match:
        return None, text.strip()
    number, suffix, street = match.groups()
    suffix = (suffix or "").lower()
    suffix = _SUFFIXES.get(suffix, suffix)
    return (f"{int(number)} {suffix}".strip(), street.strip())


@dataclass(frozen=True)
class Query:
    """One row's address: the text, and what says where to look (any may be missing)."""

    address: str
    postcode: str | None = None
    code_insee: str | None = None
    commune: str | None = None


@dataclass(frozen=True)
class Match:
    """The best candidate for a query, with its score (0 to 1)."""

    lon: float
    lat: float
    label: str
    score: float
    code_insee: str | None = None


@dataclass
class Outcome:
    """What a geocoder found for each query (``None``: no candidate at all)."""

    matches: list[Match | None]
    #: Set when the geocoder could not run at all (the API unreachable): one message.
    failure: str | None = None
    provider: str = ""


class Geocoder(Protocol):
    """Finds a position for each address."""

    threshold: float

    def geocode(self, queries: Sequence[Query]) -> Outcome:
        """The best candidate of each query."""
        ...


@dataclass(frozen=True)
class _Entry:
    number: str | None
    street: str
    label: str
    postcode: str
    code_insee: str
    commune: str
    lon: float
    lat: float


#: (BAN column, BAL column) for each value read.
_COLUMNS = {
    "numero": ("numero", "numero"),
    "rep": ("rep", "suffixe"),
    "voie": ("nom_voie", "voie_nom"),
    "code_postal": ("code_postal", "code_postal"),
    "code_insee": ("code_insee", "commune_insee"),
    "commune": ("nom_commune", "commune_nom"),
    "lon": ("lon", "long"),
    "lat": ("lat", "lat"),
}


@dataclass
class AddressReference:
    """An offline geocoder over a BAN or BAL CSV file.

    Parameters
    ----------
    path
        The CSV (``;`` or ``,`` separated, UTF-8).
    threshold
        Minimum score to place a row.
    """

    path: Path
    threshold: float = DEFAULT_THRESHOLD
    _by_insee: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)
    _by_postcode: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)
    _by_commune: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            msg = f"address reference {self.path} cannot be read ({e}); check GEOCOMMUNS_ADDRESS_REFERENCE"
            raise ConfigError(msg) from e
        first = text.split("\n", 1)[0]
        reader = csv.DictReader(io.StringIO(text), delimiter=";" if first.count(";") > first.count(",") else ",")
        columns = reader.fieldnames or []
        kind = 0 if "nom_voie" in columns else 1
        optional = {"rep", "code_postal"}  # BAL files have no postcode
        missing = [names[kind] for key, names in _COLUMNS.items() if names[kind] not in columns and key not in optional]
        if missing:
            msg = (
                f"{self.path}: not a BAN or BAL address file (columns {', '.join(missing)} "
                "are missing)"
            )
            raise ConfigError(msg)
        for row in reader:
            get = {key: (row.get(names[kind]) or "").strip() for key, names in _COLUMNS.items()}
            try:
                lon, lat = float(get["lon"]), float(get["lat"])
            except ValueError:
                continue
            number = f"{get['numero']} {get['rep']}".strip().lower() or None
            if number == "99999":  # BAL: a place without a number
                number = None
            label = " ".join(p for p in (number, get["voie"]) if p)
            entry = _Entry(
                number=number,
                street=normalise_street(get["voie"]),
                label=f"{label}, {get['code_postal']} {get['commune']}".strip(", "),
                postcode=get["code_postal"],
                code_insee=get["code_insee"],
                commune=normalise_street(get["commune"]),
                lon=lon,
                lat=lat,
            )
            self._by_insee.setdefault(entry.code_insee, []).append(entry)
            self._by_postcode.setdefault(entry.postcode, []).append(entry)
            self._by_commune.setdefault(entry.commune, []).append(entry)

    @property
    def provider(self) -> str:
        """How the provenance names this geocoder."""
        return f"adresses:{self.path.name}"

    def _candidates(self, query: Query) -> Iterable[_Entry]:
        # The most precise first: a postcode can be shared by many communes (46090: 18).
        if query.code_insee and query.code_insee in self._by_insee:
            return self._by_insee[query.code_insee]
        commune = normalise_street(query.commune) if query.commune else None
        if commune and commune in self._by_commune:
            entries = self._by_commune[commune]
            same_postcode = [e for e in entries if e.postcode == query.postcode]
            return same_postcode or entries
        if query.postcode and query.postcode in self._by_postcode:
            return self._by_postcode[query.postcode]
        return []

    def geocode(self, queries: Sequence[Query]) -> Outcome:
        """The best candidate of each query, scored.

        The score is 0.7 × the street similarity (``difflib`` ratio of the normalised
        names) + 0.3 when the number (and its suffix) is the same; a number the reference
        lacks on that street gives the street's nearest number and 0.15.
        """
        return Outcome([self._best(q) for q in queries], provider=self.provider)

    def _best(self, query: Query) -> Match | None:
        number, street_text = split_address(query.address)
        street = normalise_street(street_text)
        best: tuple[float, _Entry] | None = None
        for entry in self._candidates(query):
            similarity = difflib.SequenceMatcher(None, street, entry.street).ratio()
            score = 0.7 * similarity + _number_score(number, entry.number)
            if best is None or score > best[0]:
                best = (score, entry)
        if best is None:
            return None
        score, entry = best
        return Match(entry.lon, entry.lat, entry.label, round(score, 3), entry.code_insee)


def _number_score(wanted: str | None, found: str | None) -> float:
    if wanted is None or found is None:
        return 0.3 if wanted == found else 0.0
    if wanted == found:
        return 0.3
    digits_w, digits_f = wanted.split()[0], found.split()[0]
    if digits_w == digits_f:
        return 0.2  # same number, another suffix
    # The nearest number on the street: a little credit, decreasing with the gap.
    gap = abs(int(digits_w) - int(digits_f))
    return 0.15 / (1 + gap)


@dataclass
class AddressApi:
    """The national address API, in batch, each answer cached on disk.

    Parameters
    ----------
    cache_dir
        Where answers are kept (one JSON file per distinct query).
    url
        The API's base URL.
    timeout
        Seconds to wait for the API; it is tried once per source.
    threshold
        Minimum score (the API's ``result_score``) to place a row.
    """

    cache_dir: Path
    url: str = ADDRESS_API
    timeout: float = 10.0
    threshold: float = DEFAULT_THRESHOLD

    @property
    def provider(self) -> str:
        """How the provenance names this geocoder."""
        return f"api:{self.url}"

    def cache_file(self, query: Query) -> Path:
        """The file that keeps the answer to ``query``."""
        text = json.dumps([query.address, query.postcode, query.code_insee, query.commune])
        return self.cache_dir / f"{hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()}.json"

    def geocode(self, queries: Sequence[Query]) -> Outcome:
        """Answers from the cache, the others from one batch request."""
        matches: list[Match | None] = [None] * len(queries)
        todo: list[int] = []
        for i, q in enumerate(queries):
            cached = self.cache_file(q)
            if cached.exists():
                matches[i] = _match_from_json(json.loads(cached.read_text(encoding="utf-8")))
            else:
                todo.append(i)
        if not todo:
            return Outcome(matches, provider=self.provider)
        try:
            answers = self._batch([queries[i] for i in todo])
        except OSError as e:
            msg = (
                f"l'API Adresse ({self.url}) est injoignable ({e}) : "
                f"{len(todo)} adresse(s) non géocodée(s) / the address API cannot be reached"
            )
            return Outcome(matches, failure=msg, provider=self.provider)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for i, answer in zip(todo, answers, strict=True):
            self.cache_file(queries[i]).write_text(json.dumps(answer, ensure_ascii=False), encoding="utf-8")
            matches[i] = _match_from_json(answer)
        return Outcome(matches, provider=self.provider)

    def _batch(self, queries: list[Query]) -> list[dict[str, str]]:
        """POST the queries as CSV to ``/search/csv/``; the answer adds ``result_*`` columns."""
        import httpx

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["q", "postcode", "citycode"])
        for q in queries:
            writer.writerow([q.address, q.postcode or "", q.code_insee or ""])
        try:
            response = httpx.post(
                f"{self.url}/search/csv/",
                files={"data": ("adresses.csv", out.getvalue().encode(), "text/csv")},
                data={"columns": "q", "postcode": "postcode", "citycode": "citycode"},
                timeout=self.timeout,
            )
            response.raise_for_status()
        except httpx.HTTPError as e:
            raise OSError(f"{type(e).__name__}: {e}") from e
        rows = list(csv.DictReader(io.StringIO(response.text)))
        if len(rows) != len(queries):
            msg = f"the address API answered {len(rows)} rows for {len(queries)}"
            raise OSError(msg)
        return rows


def _match_from_json(row: dict[str, str]) -> Match | None:
    try:
        return Match(
            lon=float(row["longitude"]),
            lat=float(row["latitude"]),
            label=row.get("result_label", ""),
            score=round(float(row["result_score"]), 3),
            code_insee=row.get("result_citycode") or None,
        )
    except (KeyError, ValueError):
        return None


def geocoder_from_settings(settings: Settings) -> Geocoder | None:
    """The geocoder the settings declare: the address file, else the API, else none."""
    if settings.address_reference is not None:
        return reference_from_file(settings.path(settings.address_reference), settings.address_threshold)
    if settings.address_api:
        return AddressApi(
            cache_dir=settings.path(settings.address_cache_dir),
            url=settings.address_api_url,
            threshold=settings.address_threshold,
        )
    return None


@functools.cache
def reference_from_file(path: Path, threshold: float = DEFAULT_THRESHOLD) -> AddressReference:
    """An :class:`AddressReference`, read once per file and threshold."""
    return AddressReference(path, threshold)
