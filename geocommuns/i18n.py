"""geocommuns.i18n: French first — the messages technicians read, through a gettext catalogue.

Source strings (msgids) are English, as gettext expects; French is the default language,
English is chosen with ``--lang en`` (:func:`set_language`), or the environment:
``GEOCOMMUNS_LANG``, then ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the first
set one that names ``fr`` or ``en``; ``C``/``POSIX`` and other languages give French).
The catalogue is ``geocommuns/locale/fr/LC_MESSAGES/geocommuns.po`` (package data),
compiled in memory by Babel on first use: there is no ``.mo`` to forget to rebuild.
``tests/test_i18n.py`` fails when a marked message has no French translation.

How to use it (any stage may import this module, like ``settings`` and ``errors``)::

    from geocommuns.i18n import N_, gettext as _, ngettext, translate

    console.print(_("rejected"))                                 # a fixed text, shown now
    ngettext("{n} row", "{n} rows", n).format(n=n)               # counted
    msg = N_("{value} is not a number").format(value=repr(t))   # kept in English in data...
    translate(reason)                                            # ...and shown translated

Data (reports as JSON, the rejects CSV, reasons compared by code) keeps the English text;
what a person reads goes through :func:`translate` at display time, which finds the
marked template a rendered English message came from (``N_`` + ``str.format`` with named
fields) and renders its French version with the same values. Messages joined with
``"; "`` are translated part by part; an unknown text is shown as it is.

After marking new messages, update the catalogue and translate what is new::

    pybabel extract -k N_ -k ngettext:1,2 --no-location --omit-header -o /tmp/geocommuns.pot geocommuns
    pybabel update -i /tmp/geocommuns.pot -d geocommuns/locale -D geocommuns -w 100 \
        --no-fuzzy-matching --ignore-obsolete
    # then write each empty msgstr of geocommuns/locale/fr/LC_MESSAGES/geocommuns.po in French

Keep the named fields (``{value}``) in the translation; a message's placeholders are
checked by the tests. A call inside an f-string is not seen by the extractor: write
``"[red]" + _("rejected") + "[/]"``, not ``f"[red]{_('rejected')}[/]"``.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

#: The catalogue's domain and folder.
DOMAIN = "geocommuns"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Languages of the catalogue; the first is the default.
LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
#: Environment variables read for the language, in order.
LANGUAGE_VARIABLES = ("GEOCOMMUNS_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_lock = threading.Lock()
_chosen: str | None = None


def language_from_environment(environ: dict[str, str] | None = None) -> str:
    """The language the environment asks for: ``fr`` (the default) or ``en``.

    Parameters
    ----------
    environ
        The environment (default: the process's).

    Returns
    -------
    str
        ``fr`` or ``en``.
    """
    env = os.environ if environ is None else environ
    for name in LANGUAGE_VARIABLES:
        value = env.get(name, "").strip()
        if not value:
            continue
        # LANGUAGE may list several (en_GB:fr); the first we know wins
        for part in value.split(":"):
            code = part.split(".")[0].split("_")[0].split("-")[0].lower()
            if code in LANGUAGES:
                return code
        return DEFAULT_LANGUAGE  # C, POSIX or a language without a catalogue
    return DEFAULT_LANGUAGE


def set_language(lang: str | None) -> str:
    """Choose the language of the messages for this process (None: from the environment).

    Parameters
    ----------
    lang
        ``fr``, ``en`` (a region is ignored: ``en_GB``), or None.

    Returns
    -------
    str
        The language now in use.

    Raises
    ------
    ValueError
        When the language has no catalogue.
    """
    global _chosen  # one language per process, as gettext has
    if lang is None:
        chosen = language_from_environment()
    else:
        chosen = lang.strip().split("_")[0].split("-")[0].lower()
        if chosen not in LANGUAGES:
            msg = f"unknown language {lang!r}; use one of: {', '.join(LANGUAGES)}"
            raise ValueError(msg)
    with _lock:
        _chosen = chosen
    return chosen


def language() -> str:
    """The language in use (chosen with :func:`set_language`, else the environment's)."""
    with _lock:
        if _chosen is not None:
            return _chosen
    return language_from_environment()


@functools.cache
def _catalog(lang: str) -> Catalog | None:
    """The Babel catalogue of ``lang`` read from its ``.po`` (None: English, the msgids)."""
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == "en" or not po.is_file():
        return None
    with po.open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


@functools.cache
def _translations(lang: str) -> _gettext.NullTranslations:
    """The catalogue of ``lang`` compiled in memory, as gettext reads it."""
    from babel.messages.mofile import write_mo

    catalog = _catalog(lang)
    if catalog is None:
        return _gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def gettext(message: str) -> str:
    """``message`` (an English msgid) in the language in use."""
    return _translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the language in use."""
    return _translations(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for the catalogue and return it unchanged (see :func:`translate`)."""
    return message


_FIELD = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching what ``template.format(**values)`` gives."""
    parts, seen, last = [], set(), 0
    for m in _FIELD.finditer(template):
        parts.append(re.escape(template[last : m.start()].replace("{{", "{").replace("}}", "}")))
        name = m.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        last = m.end()
    parts.append(re.escape(template[last:].replace("{{", "{").replace("}}", "}")))
    return re.compile("".join(parts), re.DOTALL)


@functools.cache
def _templates(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The catalogue's templates (msgids with named fields), most literal text first, then
    their heads (the text before the first ``": "``), which grouped reasons keep."""
    catalog = _catalog(lang)
    found = [
        (m.id, m.string)
        for m in (catalog or ())
        if isinstance(m.id, str) and isinstance(m.string, str) and m.string and _FIELD.search(m.id)
    ]
    # a reason grouped over many rows keeps only what comes before its first ": "
    # (geocommuns.ingest.report): "… is not one of" is the head of "{value} is not one of: {allowed}"
    heads = [
        (msgid.split(": ")[0], re.split(r"\s?: ", msgstr)[0])
        for msgid, msgstr in found
        if ": " in msgid
        and _FIELD.search(msgid.split(": ")[0])
        and len(_FIELD.sub("", msgid.split(": ")[0]).strip()) >= 8  # words, not just a field
    ]
    found.sort(key=lambda t: -len(_FIELD.sub("", t[0])))
    heads.sort(key=lambda t: -len(_FIELD.sub("", t[0])))
    return tuple((_pattern(msgid), msgstr) for msgid, msgstr in [*found, *heads])


class _Kept(dict[str, str]):
    """Values for ``str.format_map``; a field without a value stays as it is written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _translate_one(text: str, lang: str, depth: int = 0) -> str | None:
    found = _translations(lang).gettext(text)
    if found != text:
        return found
    for pattern, msgstr in _templates(lang):
        m = pattern.fullmatch(text)
        if m is not None:
            # a value may be a message itself ("{problem}; value left empty")
            values = {
                k: (_translate_one(v, lang, depth + 1) or v) if depth < 2 else v
                for k, v in m.groupdict().items()
            }
            return msgstr.format_map(_Kept(values))
    return None


def translate(text: str) -> str:
    """A rendered English message (an ``N_`` template filled in) in the language in use.

    Parameters
    ----------
    text
        The message as kept in data (English).

    Returns
    -------
    str
        Its translation with the same values; reasons joined with ``"; "`` are translated
        one by one; a text the catalogue does not know is returned as it is.
    """
    lang = language()
    if lang == "en" or not text:
        return text
    parts = text.split("; ")
    if len(parts) > 1:
        # several reasons of one row, joined: when each is a known message, each is translated
        each = [_translate_one(p, lang) for p in parts]
        if all(t is not None for t in each):
            return "; ".join(t for t in each if t is not None)
    whole = _translate_one(text, lang)
    if whole is not None:
        return whole
    return "; ".join(_translate_one(p, lang) or p for p in parts)
