"""geocommuns.ingest.values: turn one raw cell into the typed value a field expects.

Each parser takes the raw text and returns the clean value, or a value and a warning
when it had to repair something (a four-digit postcode), or raises ``ValueProblem``
naming what is wrong. Types follow Table Schema; formats add French identifiers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers

from geocommuns.definitions.layerdef import FieldDef
from geocommuns.i18n import N_
from geocommuns.ingest.hours import french_to_osm

#: Cell contents that mean "no value" in files communes really send.
MISSING = frozenset({"", "na", "n/a", "#n/d", "#n/a", "nan", "none", "null", "nr", "-", "?"})

_TRUE = frozenset({"oui", "o", "yes", "y", "true", "vrai", "1", "x", "gratuit", "t"})
_FALSE = frozenset({"non", "n", "no", "false", "faux", "0", "payant", "f"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
_INSEE = re.compile(r"^([013-9]\d|2[AB1-9])\d{3}$")
_FINESS = re.compile(r"^\d[0-9AB]\d{7}$")
_ENUM_ARRAY_SPLIT = re.compile(r"\s*[|;,/+]\s*|\s+et\s+")
_ARRAY_SPLIT = re.compile(r"\s*[|;]\s*")
_BARE_DOMAIN = re.compile(r"^(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?$", re.IGNORECASE)
_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y")


class ValueProblem(ValueError):
    """A raw value cannot be turned into what its field expects."""


@dataclass(frozen=True)
class Parsed:
    """A parsed value and, when something was repaired, a warning saying what."""

    value: Any
    warning: str | None = None


def is_missing(raw: Any) -> bool:
    """Whether a raw cell means "no value"."""
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True
    return isinstance(raw, str) and raw.strip().lower() in MISSING


#: Text that :func:`text_of` leaves as it is: words separated by single spaces.
_CLEAN_TEXT = re.compile(r"\S+(?: \S+)*")
_WHOLE_NUMBER_TEXT = re.compile(r"\d+\.0")


def text_of(raw: Any) -> str:
    """The cell as clean text: ``46000.0`` read by a spreadsheet becomes ``46000``."""
    if type(raw) is str and _CLEAN_TEXT.fullmatch(raw) and not raw.endswith(".0"):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    text = str(raw).strip()
    if _WHOLE_NUMBER_TEXT.fullmatch(text):
        text = text[:-2]
    return " ".join(text.split()) if "\n" not in text else text.strip()


def fold(text: str) -> str:
    """Lower-case ASCII with ``_`` for separators, to compare enum values and column names."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")


def parse_number(text: str) -> float:
    """Parse a number written with a decimal comma or point, spaces as thousands separators."""
    cleaned = text.replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        msg = N_("{value} is not a number").format(value=repr(text))
        raise ValueProblem(msg) from None
    if math.isnan(value) or math.isinf(value):
        msg = N_("{value} is not a finite number").format(value=repr(text))
        raise ValueProblem(msg)
    return value


def _integer(text: str) -> Parsed:
    value = parse_number(text)
    if not value.is_integer():
        msg = N_("{value} is not a whole number").format(value=repr(text))
        raise ValueProblem(msg)
    return Parsed(int(value))


def _number(text: str) -> Parsed:
    return Parsed(parse_number(text))


def _boolean(text: str) -> Parsed:
    key = fold(text)
    if key in _TRUE:
        return Parsed(True)
    if key in _FALSE:
        return Parsed(False)
    msg = N_("{value} is not a yes/no value (use oui/non)").format(value=repr(text))
    raise ValueProblem(msg)


def parse_date(text: str) -> dt.date:
    """Parse ``dd/mm/yyyy``, ISO ``yyyy-mm-dd`` (with or without a time) and close variants."""
    candidate = text.strip()
    try:
        return dt.date.fromisoformat(candidate[:10])
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(candidate.split(" ")[0], fmt).date()
        except ValueError:
            continue
    msg = N_("{value} is not a date (use dd/mm/yyyy or yyyy-mm-dd)").format(value=repr(text))
    raise ValueProblem(msg)


def _date(text: str) -> Parsed:
    year = re.fullmatch(r"(1[89]\d\d|2\d\d\d)", text.strip())
    if year:
        return Parsed(
            f"{year.group(1)}-01-01",
            N_("{value} gives only the year; read as 1 January").format(value=repr(text)),
        )
    return Parsed(parse_date(text).isoformat())


def _datetime(text: str) -> Parsed:
    try:
        return Parsed(dt.datetime.fromisoformat(text).isoformat())
    except ValueError:
        return Parsed(parse_date(text).isoformat())


def _padded_code(text: str, *, length: int, label: str) -> Parsed:
    digits = text.replace(" ", "")
    if digits.isdigit() and len(digits) == length - 1:
        return Parsed(
            "0" + digits,
            N_("{label} {value} had lost its leading zero; read as {fixed}").format(
                label=label, value=repr(text), fixed=repr("0" + digits)
            ),
        )
    if not (digits.isdigit() and len(digits) == length):
        msg = N_("{value} is not a {length}-digit {label}").format(
            value=repr(text), length=length, label=label
        )
        raise ValueProblem(msg)
    return Parsed(digits)


def _postcode(text: str) -> Parsed:
    return _padded_code(text, length=5, label=N_("postcode"))


def _siret(text: str) -> Parsed:
    return _padded_code(text, length=14, label="SIRET")


def _insee(text: str) -> Parsed:
    code = text.replace(" ", "").upper()
    if code.isdigit() and len(code) == 4:
        return Parsed(
            "0" + code, N_("INSEE code {value} had lost its leading zero").format(value=repr(text))
        )
    if not _INSEE.match(code):
        msg = N_("{value} is not an INSEE commune code (5 characters, e.g. 46042)").format(
            value=repr(text)
        )
        raise ValueProblem(msg)
    return Parsed(code)


def _finess(text: str) -> Parsed:
    code = text.replace(" ", "").upper()
    if code.isdigit() and len(code) == 8:
        return Parsed(
            "0" + code, N_("FINESS {value} had lost its leading zero").format(value=repr(text))
        )
    if not _FINESS.match(code):
        msg = N_("{value} is not a FINESS number (9 characters)").format(value=repr(text))
        raise ValueProblem(msg)
    return Parsed(code)


#: Regions whose national numbers a French file writes like metropolitan ones (0590…, 0262…).
_FRENCH_REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


def _phone(text: str) -> Parsed:
    number = None
    for region in _FRENCH_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            break
        if phonenumbers.is_valid_number(number):
            break
    if number is None or not phonenumbers.is_valid_number(number):
        msg = N_("{value} is not a valid phone number").format(value=repr(text))
        raise ValueProblem(msg)
    return Parsed(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _email(text: str) -> Parsed:
    value = text.strip().removeprefix("mailto:")
    if not _EMAIL.match(value):
        msg = N_("{value} is not an e-mail address").format(value=repr(text))
        raise ValueProblem(msg)
    return Parsed(value.lower())


def _uri(text: str) -> Parsed:
    value = text.strip()
    if value.lower().startswith("www.") or _BARE_DOMAIN.match(value):
        return Parsed(
            "https://" + value,
            N_("web address {value} had no scheme; https added").format(value=repr(text)),
        )
    if not re.match(r"^https?://[^\s/]+\.[^\s]+", value, flags=re.IGNORECASE):
        msg = N_("{value} is not a web address (https://…)").format(value=repr(text))
        raise ValueProblem(msg)
    return Parsed(value)


def _opening_hours(text: str) -> Parsed:
    value = text.strip()
    converted = french_to_osm(value)
    if converted is None:
        msg = N_(
            "{value} is not in OpenStreetMap opening_hours syntax and could not be "
            "converted (e.g. 'Mo-Fr 08:30-12:00,13:30-17:30; Sa 09:00-12:00')"
        ).format(value=repr(value))
        raise ValueProblem(msg)
    return Parsed(converted)


_FORMATS: dict[str, Callable[[str], Parsed]] = {
    "insee": _insee,
    "postcode": _postcode,
    "siret": _siret,
    "finess": _finess,
    "phone": _phone,
    "email": _email,
    "uri": _uri,
    "opening_hours": _opening_hours,
}
_TYPES: dict[str, Callable[[str], Parsed]] = {
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
}


def _match_enum(value: str, enum: list[str]) -> str:
    if value in enum:
        return value
    folded = {fold(e): e for e in enum}
    key = fold(value)
    if key in folded:
        return folded[key]
    msg = N_("{value} is not one of: {allowed}").format(value=repr(value), allowed=", ".join(enum))
    raise ValueProblem(msg)


def _check_constraints(value: Any, field: FieldDef) -> Any:
    c = field.constraints
    if isinstance(value, str):
        if c.enum is not None:
            value = _match_enum(value, c.enum)
        if c.pattern is not None and not re.fullmatch(c.pattern, value):
            msg = N_("{value} does not match the pattern {pattern}").format(
                value=repr(value), pattern=c.pattern
            )
            raise ValueProblem(msg)
        if c.max_length is not None and len(value) > c.max_length:
            msg = N_("is {length} characters long, more than {limit}").format(
                length=len(value), limit=c.max_length
            )
            raise ValueProblem(msg)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if c.minimum is not None and value < c.minimum:
            msg = N_("{value} is below the minimum {minimum}").format(
                value=value, minimum=f"{c.minimum:g}"
            )
            raise ValueProblem(msg)
        if c.maximum is not None and value > c.maximum:
            msg = N_("{value} is above the maximum {maximum}").format(
                value=value, maximum=f"{c.maximum:g}"
            )
            raise ValueProblem(msg)
    return value


def parse_value(raw: Any, field: FieldDef) -> Parsed:
    """Parse one raw cell for ``field``.

    Parameters
    ----------
    raw
        The cell as read (text, number, list for arrays), never missing.
    field
        The field definition (type, format, constraints).

    Returns
    -------
    Parsed
        The value (``str``, ``int``, ``float``, ``bool`` or a list of ``str`` for arrays;
        dates as ISO text) and an optional warning.

    Raises
    ------
    ValueProblem
        When the value cannot be read as the field expects.
    """
    if field.type == "array":
        splitter = _ENUM_ARRAY_SPLIT if field.constraints.enum else _ARRAY_SPLIT
        items = raw if isinstance(raw, list) else splitter.split(text_of(raw))
        values: list[str] = []
        for item in items:
            if is_missing(item):
                continue
            clean = _check_constraints(text_of(item), field)
            if clean not in values:
                values.append(clean)
        if not values:
            msg = N_("holds no value")
            raise ValueProblem(msg)
        return Parsed(values)
    if isinstance(raw, bool) and field.type == "boolean":
        return Parsed(raw)
    text = text_of(raw)
    parser = _TYPES.get(field.type) or _FORMATS.get(field.format)
    parsed = parser(text) if parser else Parsed(text)
    return Parsed(_check_constraints(parsed.value, field), parsed.warning)


#: A plain number as spreadsheets write it: parsed with ``float`` after ``,`` -> ``.``.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:[.,][0-9]+)?")


def code_column(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Group a raw column by value, so each distinct value is parsed once.

    Delivered files repeat the same values a lot. Text cells are grouped by their exact
    value; other cells (numbers, dates, booleans from spreadsheets and vector files) by
    :func:`text_of`, which is all the parsers look at; lists (OpenStreetMap arrays) each
    stay apart.

    Parameters
    ----------
    values
        The column's cells, in row order.

    Returns
    -------
    tuple
        ``codes`` (one integer per row) and ``uniques`` (the first raw cell of each code).
    """
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if len(array) and pd.api.types.infer_dtype(array, skipna=False) == "string":
        codes, uniques = pd.factorize(array, use_na_sentinel=False)
        return np.asarray(codes, dtype=np.intp), list(uniques)
    index: dict[str, int] = {}
    out = np.empty(len(array), dtype=np.intp)
    firsts: list[Any] = []
    for i, value in enumerate(array):
        if isinstance(value, list):
            out[i] = len(firsts)
            firsts.append(value)
            continue
        key = text_of(value)
        code = index.get(key)
        if code is None:
            code = index[key] = len(firsts)
            firsts.append(value)
        out[i] = code
    return out, firsts


def objects(items: Sequence[Any]) -> np.ndarray:
    """A 1-d object array holding ``items`` as they are (lists stay list cells)."""
    return np.fromiter(items, dtype=object, count=len(items))


def parse_values(
    raws: Sequence[Any], field: FieldDef
) -> tuple[list[Any], list[str | None], list[str | None]]:
    """:func:`parse_value` for each (never missing) raw value, without raising.

    Plain text fields (no format, enum or pattern) skip the dispatch: their value is the
    clean text, checked against ``maxLength``.

    Returns
    -------
    tuple
        Per raw value: the value (``None`` when it has a problem), the warning and the
        problem (the ``ValueProblem`` message), each ``None`` when there is none.
    """
    values: list[Any] = []
    warnings: list[str | None] = []
    problems: list[str | None] = []
    c = field.constraints
    if field.type == "string" and field.format == "default" and not (c.enum or c.pattern):
        limit = c.max_length
        values = [text_of(raw) for raw in raws]
        warnings = [None] * len(values)
        problems = [
            N_("is {length} characters long, more than {limit}").format(
                length=len(text), limit=limit
            )
            if limit is not None and len(text) > limit
            else None
            for text in values
        ]
        return [None if p else v for v, p in zip(values, problems, strict=True)], warnings, problems
    for raw in raws:
        try:
            parsed = parse_value(raw, field)
        except ValueProblem as e:
            values.append(None)
            warnings.append(None)
            problems.append(str(e))
        else:
            values.append(parsed.value)
            warnings.append(parsed.warning)
            problems.append(None)
    return values, warnings, problems


def numbers_of(
    values: Sequence[Any] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Parse a column of numbers as ``parse_number(text_of(cell))`` does, cell by cell.

    Plain numbers (``6373997,80``, ``44.4475``, finite non-zero floats) take a fast path
    with the same result; every other cell goes through :func:`is_missing` and
    :func:`parse_number`.

    Returns
    -------
    tuple
        The numbers (NaN where missing or wrong), a mask of missing cells, and the
        problem of each wrong cell by row index.
    """
    match = _PLAIN_NUMBER.fullmatch
    fast = [
        float(v.replace(",", "."))
        if type(v) is str and match(v)
        else v
        if type(v) is float and v and math.isfinite(v)
        else None
        for v in values
    ]
    missing = np.zeros(len(fast), dtype=bool)
    problems: dict[int, str] = {}
    for i, number in enumerate(fast):
        if number is not None:
            continue
        raw = values[i]
        if is_missing(raw):
            missing[i] = True
            continue
        try:
            fast[i] = parse_number(text_of(raw))
        except ValueProblem as e:
            problems[i] = str(e)
    out = np.array([math.nan if v is None else v for v in fast], dtype=float)
    return out, missing, problems
