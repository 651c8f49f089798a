"""geocommuns' overrides of pygeoapi's HTML pages: offline assets, French messages.

The HTML pages load nothing from another origin (no stylesheet, script or font URL in
http(s)), and every ``{% trans %}`` text of the pages a visitor meets has its French
message in ``geocommuns/serve/locale`` (French is the service's default language), whose
compiled ``messages.mo`` says exactly what ``messages.po`` says.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pygeoapi
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from geocommuns.serve.app import LOCALE, TEMPLATES

PO = LOCALE / "fr" / "LC_MESSAGES" / "messages.po"
MO = LOCALE / "fr" / "LC_MESSAGES" / "messages.mo"
PYGEOAPI_TEMPLATES = Path(pygeoapi.__file__).parent / "templates"
#: pygeoapi's pages a visitor of geocommuns meets that geocommuns does not override.
PYGEOAPI_PAGES = (
    "landing_page.html",
    "conformance.html",
    "exception.html",
    "collections/index.html",
    "collections/queryables.html",
    "collections/schema.html",
)
_TRANS = re.compile(r"{%-? trans -?%}(.*?){%-? endtrans -?%}", re.S)
_REMOTE_ASSET = re.compile(
    r"""<(?:link|script|img)\b[^>]*\b(?:href|src)\s*=\s*["']https?://""", re.I
)


def _overrides() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_the_compiled_messages_are_the_catalogue() -> None:
    with PO.open("rb") as fh:
        catalogue = read_po(fh)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    with MO.open("rb") as fh:
        shipped = read_mo(fh)
    assert {m.id: m.string for m in shipped if m.id} == {m.id: m.string for m in catalogue if m.id}
    assert MO.read_bytes() == compiled.getvalue(), "run the babel compile step of messages.po again"


def test_every_page_text_has_its_french_message() -> None:
    with PO.open("rb") as fh:
        french = {m.id: m.string for m in read_po(fh) if m.id}
    pages = [*_overrides(), *(PYGEOAPI_TEMPLATES / p for p in PYGEOAPI_PAGES)]
    texts = {
        t
        for page in pages
        for t in _TRANS.findall(page.read_text(encoding="utf-8"))
        if "{{" not in t
    }
    assert texts, "no {% trans %} text found"
    missing = sorted(t for t in texts if not french.get(t))
    assert missing == []


def test_no_page_loads_an_asset_from_another_origin() -> None:
    for page in _overrides():
        text = page.read_text(encoding="utf-8")
        assert not _REMOTE_ASSET.search(text), page
    # pygeoapi's own frame does (which is why it is overridden)
    assert _REMOTE_ASSET.search((PYGEOAPI_TEMPLATES / "_base.html").read_text(encoding="utf-8"))
