"""geocommuns.ingest.hours: opening hours as people write them, into OSM ``opening_hours``.

Producers rarely write OpenStreetMap syntax. They write day columns (``h_lundi`` =
``09:00 - 12:00 / 13:30 - 17:00``), half-day columns (``lundi matin``), and French
sentences and lists: « du lundi au vendredi de 9h à 12h et de 14h à 17h », « lundi matin :
8h30-12h / lundi après-midi : 13h30-17h » (also as an HTML list), « fermé le mercredi »,
« sur rendez-vous », « 24h/24 », « 9h-12h30 », « 9h12h ». :func:`french_to_osm` reads
those; what it cannot read with certainty it refuses (``None``), so that the caller keeps
the text as written rather than publishing a guess.

The reading is a small scanner: the text is cut into tokens (days, "au" between two days,
half-days, time ranges, « fermé », « sur rendez-vous », « 24h/24 »), each clause gives some
days and some time ranges, and the week is rewritten in OSM's compact form (days with the
same ranges grouped, ``Mo-Fr 09:00-12:00,14:00-17:00; Sa 09:00-12:00``). Any word it does
not know makes the whole text unconvertible.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

import opening_hours

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_WORDS = {
    "lundi": 0, "lun": 0, "mardi": 1, "mar": 1, "mercredi": 2, "mer": 2, "jeudi": 3, "jeu": 3,
    "vendredi": 4, "ven": 4, "samedi": 5, "sam": 5, "dimanche": 6, "dim": 6,
}
#: Words that say nothing about the hours ("le lundi", "ouvert du ... au ...").
_FILLERS = frozenset(
    ["le", "la", "les", "l", "de", "du", "des", "d", "et", "a", "au", "aux", "ouvert", "ouverte", "ouverture", "horaires", "horaire", "accueil", "public", "tous", "toutes", "chaque", "jours", "jour", ":", ",", "/", "-", "&", "+", "=", "(", ")", "h", "ferme", "fermee", "fermes", "fermees", "fermeture"]
)
_HALF_DAYS = {"matin": "am", "matins": "am", "matinee": "am", "am": "am",
              "apresmidi": "pm", "pm": "pm", "aprem": "pm"}
#: Text meaning "hours not given": the day is left unknown, never invented.
_UNKNOWN = re.compile(r"(?:horaires?\s+)?non\s+communiques?|^\s*n\.?c\.?\s*$")
_APPOINTMENT = re.compile(r"\b(?:uniquement\s+|seulement\s+)?sur\s+(?:rendez[\s-]*vous|rdv)\b")
_ALWAYS = re.compile(
    r"\b24\s*h?\s*/\s*24\s*h?(?:\s*,?\s*(?:et\s+)?7\s*j?\s*/\s*7\s*j?)?|\b7\s*j?\s*/\s*7\s*j?"
)
#: « 00:00 - 00:00 »: a placeholder for "no slot" in the France services lists.
_EMPTY_SLOT = re.compile(r"(?<![\d:])0?0\s*[:h]\s*00\s*-\s*0?0\s*[:h]\s*00(?!\d)\s*/?")
#: Signs of French hours: a day name or a time written « 9h ».
_FRENCH = re.compile(r"\b(?:lun|mar|mer|jeu|ven|sam|dim)[a-z]*\b|\d\s*h\b|\d\s*h\s*\d")
_CLOSED = re.compile(r"\b(?:ferme|fermee|fermes|fermees|fermeture)\b")
#: A time: 9h, 9h30, 9 h 30, 09:00, 9:00, 12h00; a range is two times with -, à, jusqu'à.
_TIME = r"(\d{1,2})\s*(?:h\s*(\d{2})?|:(\d{2}))"
_RANGE_SEP = r"\s*(?:-|–|—|\ba\b|\bau\b|jusqu'a|>)?\s*"
_RANGE = re.compile(_TIME + _RANGE_SEP + _TIME + r"(?!\d)")
_TOKEN = re.compile(
    r"(?P<range>\d{1,2}\s*(?:h\s*(?:\d{2})?|:\d{2})" + _RANGE_SEP
    + r"\d{1,2}\s*(?:h\s*(?:\d{2})?|:\d{2})(?!\d))"
    r"|(?P<word>[a-z]+)|(?P<sep>[;\n|.]|//)|(?P<other>\S)"
)


@dataclass
class _Week:
    """Time ranges per day, days closed, and whether opening is on appointment."""

    ranges: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    appointment: bool = False
    always: bool = False

    def add(self, days: list[int], times: list[tuple[str, str]]) -> None:
        for d in days:
            slots = self.ranges.setdefault(d, [])
            slots.extend(t for t in times if t not in slots)
            slots.sort()


def _plain(text: str) -> str:
    """Lower-case ASCII, HTML tags turned into clause breaks, entities decoded."""
    text = re.sub(r"<\s*(?:br|/?li|/?p|/?ul|/?div)[^>]*>", "\n", text, flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = text.replace("\u2019", "'")
    text = re.sub(r"\b(lun|mar|mer|jeu|ven|sam|dim)\.", r"\1 ", text)
    return re.sub(r"apres[\s-]*midi", "apresmidi", text)


def _hhmm(hour: str, minute: str | None) -> str | None:
    h, m = int(hour), int(minute or 0)
    if h > 24 or m > 59 or (h == 24 and m):
        return None
    return f"{h:02d}:{m:02d}"


def _days_of(words: list[str]) -> list[int] | None:
    """Days named by a clause's words: lists (« lundi, mardi et jeudi ») and ranges
    (« du lundi au vendredi », « lundi-vendredi »); ``None`` when it names none."""
    days: list[int] = []
    pending_range = False
    for w in words:
        if w in _DAY_WORDS or w.rstrip("s") in _DAY_WORDS:
            d = _DAY_WORDS.get(w, _DAY_WORDS.get(w.rstrip("s"), 0))
            if pending_range and days:
                start = days[-1]
                span = range(start + 1, d + 1) if d > start else [*range(start + 1, 7), *range(d + 1)]
                days.extend(x for x in span if x not in days)
            elif d not in days:
                days.append(d)
            pending_range = False
        elif w in {"au", "a", "-"}:
            pending_range = bool(days)
    return days or None


def _clauses(text: str) -> list[list[tuple[str, str]]] | None:
    """Tokens grouped into clauses; ``None`` when a word is not understood.

    A clause ends at a separator (``;``, a new line, ``.``, ``|``, ``//``), or where a new
    day starts after times were given (« lundi 9h-12h mardi 14h-17h »).
    """
    clauses: list[list[tuple[str, str]]] = [[]]
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group(0)
        current = clauses[-1]
        if kind == "sep":
            clauses.append([])
            continue
        if kind == "word":
            base = value.rstrip("s") if value.rstrip("s") in _DAY_WORDS else value
            starts = base in _DAY_WORDS or _CLOSED.fullmatch(value) is not None
            if starts and any(k == "range" for k, _ in current):
                clauses.append([])
                current = clauses[-1]
            if value not in _FILLERS and base not in _DAY_WORDS and value not in _HALF_DAYS:
                return None
        elif kind == "other" and value not in _FILLERS:
            return None
        current.append((kind, value))
    return [c for c in clauses if c]


def _read_clause(clause: list[tuple[str, str]], week: _Week, last_days: list[int] | None) -> list[int] | bool | None:
    """Add one clause to ``week``; gives the days it named (for the next clause), or
    ``False`` when the clause cannot be read."""
    words = [v for k, v in clause if k in {"word", "other"}]
    days = _days_of(words)
    times: list[tuple[str, str]] = []
    for k, v in clause:
        if k != "range":
            continue
        m = _RANGE.fullmatch(v.strip())
        if not m:
            return False
        start = _hhmm(m.group(1), m.group(2) or m.group(3))
        end = _hhmm(m.group(4), m.group(5) or m.group(6))
        if start is None or end is None or end <= start:
            return False
        times.append((start, end))
    half = {_HALF_DAYS[w] for w in words if w in _HALF_DAYS}
    kinds = [k if k != "word" or v not in _HALF_DAYS else "half" for k, v in clause]
    if "half" in kinds and "range" in kinds and kinds[::-1].index("half") < kinds[::-1].index("range"):
        # « 9h-12h30 / sur RDV : après-midi »: a half-day after the last hours has none.
        return False
    if not times:
        # A half-day or a day named without any time: the hours are not known.
        return False if (days or half) else last_days
    week.add(days if days is not None else (last_days or list(range(7))), times)
    return days if days is not None else last_days


def french_to_osm(text: str) -> str | None:
    """Read opening hours written in French (or already in OSM syntax) as ``opening_hours``.

    Parameters
    ----------
    text
        The cell as written.

    Returns
    -------
    str or None
        Valid OSM ``opening_hours`` text, or ``None`` when the text cannot be read with
        certainty (the caller then keeps it as written).

    Examples
    --------
    >>> french_to_osm("du lundi au vendredi de 9h à 12h et de 14h à 17h")
    'Mo-Fr 09:00-12:00,14:00-17:00'
    >>> french_to_osm("lundi matin : 8h30-12h / lundi après-midi : 13h30-17h")
    'Mo 08:30-12:00,13:30-17:00'
    """
    stripped = text.strip()
    if not stripped:
        return None
    converted = _read_french(_plain(stripped))
    if converted is None and opening_hours.validate(stripped) and not _FRENCH.search(_plain(stripped)):
        return stripped
    return converted


def _read_french(plain: str) -> str | None:
    """:func:`french_to_osm` on text already made plain."""
    plain = _EMPTY_SLOT.sub(" ", plain)
    week = _Week()
    if _APPOINTMENT.search(plain):
        week.appointment = True
        plain = _APPOINTMENT.sub(" ", plain)
    if _ALWAYS.search(plain):
        week.always = True
        plain = _ALWAYS.sub(" ", plain)
    plain = _UNKNOWN.sub(" ", plain)
    # « 9h12h », « 9h-12h30 », « 9h à 12h », « 09:00 - 12:00 » all become one range token.
    plain = re.sub(r"(\d)\s*h\s*(\d{1,2})\s*h", lambda m: f"{m.group(1)}h-{m.group(2)}h", plain)
    clauses = _clauses(plain)
    if clauses is None:
        return None
    last_days: list[int] | None = None
    for clause in clauses:
        words = [v for k, v in clause if k == "word"]
        if _CLOSED.search(" ".join(words)):
            days = _days_of(words)
            if days is None or any(k == "range" for k, _ in clause):
                return None
            if any(w in _HALF_DAYS for w in words):
                return None
            week.closed.update(days)
            continue
        result = _read_clause(clause, week, last_days)
        if result is False:
            return None
        last_days = result if isinstance(result, list) else last_days
    return _to_osm(week)


def _to_osm(week: _Week) -> str | None:
    comment = ' "sur rendez-vous"' if week.appointment else ""
    if week.always:
        if week.ranges or week.closed:
            return None
        return "24/7" + comment
    for d in week.closed:
        week.ranges.pop(d, None)
    if not week.ranges:
        if week.appointment and not week.closed:
            return '"sur rendez-vous"'
        return None
    # Days with the same ranges are written once: "Mo-Fr 09:00-12:00", "Mo,We,Fr ...".
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for d in sorted(week.ranges):
        groups.setdefault(tuple(week.ranges[d]), []).append(d)
    rules = []
    for times, days in groups.items():
        span = _day_spans(days)
        slots = ",".join(f"{a}-{b}" for a, b in times)
        rules.append((f"{span} {slots}" if len(days) < 7 else slots) + comment)
    value = "; ".join(rules)
    return value if opening_hours.validate(value) else None


def _day_spans(days: list[int]) -> str:
    """``[0, 1, 2, 4]`` gives ``Mo-We,Fr``."""
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(
        DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" if len(r) > 2 else f"{DAYS[r[0]]},{DAYS[r[1]]}"
        for r in runs
    )


#: Column names for days and half-days: ``h_lundi``, ``lundi matin``, ``mardi_am``.
_COLUMN_DAY = re.compile(r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)")


def column_label(column: str) -> str | None:
    """The day (and half-day) a column stands for, from its name: ``h_lundi`` gives
    ``lundi``, ``Lundi après-midi`` gives ``lundi apres-midi``; ``None`` when it names none."""
    plain = _plain(column.replace("_", " "))
    day = _COLUMN_DAY.search(plain)
    if not day:
        return None
    half = next((_HALF_DAYS[w] for w in re.split(r"[\s-]+", plain) if w in _HALF_DAYS), None)
    return day.group(1) + {"am": " matin", "pm": " apres-midi", None: ""}[half]


def label_cells(labelled: list[tuple[str, str]]) -> str:
    """Day columns written as one French text: ``lundi : 09:00 - 12:00 ; mardi : …``.

    A cell that says the place is closed (« fermé ») becomes « fermé le <day> » when it is
    a whole day, and is left out when it is a half-day (the other half says the hours).
    """
    parts = []
    for label, cell in labelled:
        value = _EMPTY_SLOT.sub(" ", cell).strip(" /-")
        if not value:
            continue
        if _UNKNOWN.fullmatch(_plain(value).strip()):
            continue
        if _CLOSED.fullmatch(_plain(value).strip()):
            if " " not in label:
                parts.append(f"fermé le {label}")
            continue
        parts.append(f"{label} : {value}")
    return " ; ".join(parts)
