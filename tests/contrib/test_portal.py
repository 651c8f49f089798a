"""The logic of the technician web space (geocommuns.contrib.portal), without HTTP.

Sessions (hashed ids, expiry, idle timeout, sign-out), sign-in slowed down per account
and per address, deliveries kept safely (types, cap, zipped shapefiles, names), the
French advice of grouped reasons and the rejected rows' CSV, the assistant's value map and
the declaration it writes, read back by the command line's own loader and harmonisation.
"""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import zipfile
from pathlib import Path

import espace_samples as samples
import pytest

from geocommuns.contrib.portal import assistant as assist
from geocommuns.contrib.portal.check import advice_of, check_delivery, rejects_csv
from geocommuns.contrib.portal.sessions import SessionStore
from geocommuns.contrib.portal.throttle import FREE_PER_ACCOUNT, SignInThrottle, wait_for
from geocommuns.contrib.portal.uploads import UploadError, Uploads, safe_name
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef, source_from_yaml
from geocommuns.definitions.territory import Territory
from geocommuns.ingest.build import harmonise_source
from geocommuns.settings import Settings


def _store(tmp_path: Path, **kw: dt.timedelta) -> SessionStore:
    return SessionStore(tmp_path / "s.sqlite", lifetime=kw.get("lifetime", dt.timedelta(hours=8)),
                        idle=kw.get("idle", dt.timedelta(hours=1)))


def test_sessions_are_stored_hashed_and_end_at_sign_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    opened = store.open("douelle")
    found = store.find(opened.secret)
    assert found is not None and found.user == "douelle" and found.csrf == opened.csrf
    with sqlite3.connect(tmp_path / "s.sqlite") as con:
        stored = [r[0] for r in con.execute("SELECT id_hash FROM sessions")]
    assert opened.secret not in stored and len(stored[0]) == 64  # only a SHA-256 is kept
    assert store.find(opened.secret[:-1] + "x") is None
    store.close(opened.secret)
    assert store.find(opened.secret) is None


def test_sessions_expire_and_time_out_when_idle(tmp_path: Path) -> None:
    expired = _store(tmp_path, lifetime=dt.timedelta(seconds=-1))
    assert expired.find(expired.open("a").secret) is None
    idle = _store(tmp_path, idle=dt.timedelta(seconds=-1))
    assert idle.find(idle.open("b").secret) is None
    both = _store(tmp_path)
    for _ in range(3):
        both.open("c")
    assert both.close_user("c") == 3


def test_failed_sign_ins_wait_longer_and_longer(tmp_path: Path) -> None:
    throttle = SignInThrottle(tmp_path / "s.sqlite")
    assert [wait_for(n, 3) for n in range(6)] == [0, 0, 0, 1, 2, 4]
    for _ in range(FREE_PER_ACCOUNT):
        assert throttle.wait("Douelle", "10.0.0.1") == 0
        throttle.failed("Douelle", "10.0.0.1")
    # the account counts (any spelling of its name), from any address
    assert throttle.wait("douelle", "10.0.0.2") >= 1
    throttle.failed("douelle", "10.0.0.2")
    assert throttle.wait("douelle", "10.0.0.3") >= 2
    assert throttle.wait("cahors", "10.0.0.9") == 0  # another account, another address: free
    throttle.succeeded("douelle")
    assert throttle.wait("douelle", "10.0.0.7") == 0
    # many accounts from one address: the address waits too
    for i in range(12):
        throttle.failed(f"user{i}", "10.6.6.6")
    assert throttle.wait("someone-else", "10.6.6.6") >= 1


def test_uploads_keep_accepted_files_under_the_cap(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "depots", max_bytes=1000)
    kept = uploads.save(user="u", commune="46088", layer="tiers_lieux", filename="C:\\x\\..\\a b.csv",
                        stream=io.BytesIO(b"a;b\n1;2\n"))
    assert kept.filename == "a b.csv" and kept.path(uploads.root).read_bytes() == b"a;b\n1;2\n"
    assert uploads.get(kept.id) == kept and uploads.get("../etc") is None
    assert uploads.of_user("u") == [kept] and uploads.of_user("v") == []
    with pytest.raises(UploadError, match="taille maximale"):
        uploads.save(user="u", commune="46088", layer="x", filename="big.csv", stream=io.BytesIO(b"x" * 1001))
    with pytest.raises(UploadError, match="type de fichier accepté"):
        uploads.save(user="u", commune="46088", layer="x", filename="a.exe", stream=io.BytesIO(b"x"))
    with pytest.raises(UploadError, match="vide"):
        uploads.save(user="u", commune="46088", layer="x", filename="a.csv", stream=io.BytesIO(b""))
    assert [p.name for p in uploads.root.iterdir()] == [kept.id]  # refused ones leave nothing
    assert safe_name("../../<script>.csv") == "_script_.csv"


def test_zipped_shapefile_is_unpacked_safely(tmp_path: Path) -> None:
    name, content = samples.vector_bytes("shapefile", tmp_path / "shp")
    uploads = Uploads(tmp_path / "depots", max_bytes=1_000_000)
    kept = uploads.save(user="u", commune="46088", layer="tiers_lieux", filename=name, stream=io.BytesIO(content))
    assert kept.file == "douelle.shp" and (kept.folder(uploads.root) / "douelle.dbf").is_file()
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../evil.shp", b"x")
        zf.writestr("../../evil.dbf", b"x")
    kept = uploads.save(user="u", commune="46088", layer="t", filename="e.zip", stream=io.BytesIO(evil.getvalue()))
    assert kept.file == "evil.shp" and (kept.folder(uploads.root) / "evil.shp").is_file()
    assert not (tmp_path / "evil.shp").exists()
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.shp", b"x")
        zf.writestr("b.shp", b"x")
    with pytest.raises(UploadError, match="un seul shapefile"):
        uploads.save(user="u", commune="46088", layer="t", filename="two.zip", stream=io.BytesIO(two.getvalue()))


def _douelle_source(tmp_path: Path, content: bytes) -> SourceDef:
    declared = assist.declared_source(Settings().path(Settings().sources_dir), "46088", "tiers_lieux")
    assert declared is not None, "the sample Douelle declaration is expected in the sources folder"
    delivery = tmp_path / "douelle.csv"
    delivery.write_bytes(content)
    return declared.model_copy(update={"path": delivery})


def test_grouped_reasons_in_french_and_rejects_csv(tmp_path: Path, layers: dict[str, LayerDef],
                                                   grand_cahors: Territory) -> None:
    rows = samples.csv_bytes().decode().splitlines()
    # 40 rows without a name: one group, not 40 lines
    many = [rows[0]] + [";".join([f"X{i}", "", "Coworking", "Payant", "a", "46140", "1.3658", "44.4688", "", "", "02/04/2026"])
                        for i in range(40)]
    source = _douelle_source(tmp_path, ("\n".join(many) + "\n").encode())
    result = check_delivery(source, layers["tiers_lieux"], grand_cahors, Settings())
    advice = advice_of(result.report, layers["tiers_lieux"])
    assert len(advice) == 1 and advice[0].count == 40
    assert advice[0].title == "Valeur obligatoire absente" and advice[0].field_title == "Nom"
    assert advice[0].rows_text == "lignes 1, 2, 3, 4, 5…" and "Remplissez" in advice[0].todo
    lines = rejects_csv(result.report, layers["tiers_lieux"]).splitlines()
    assert lines[0].startswith("ligne;champ;motif;que faire;") and len(lines) == 41
    assert all("Remplissez" in line for line in lines[1:])


def test_rejects_csv_neutralises_formulas(tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = samples.csv_bytes().decode().splitlines()
    hostile = rows[1].replace("Coworking", '=HYPERLINK("https://evil.example","x")')
    source = _douelle_source(tmp_path, "\n".join([rows[0], hostile, ""]).encode())
    result = check_delivery(source, layers["tiers_lieux"], grand_cahors, Settings())
    text = rejects_csv(result.report, layers["tiers_lieux"])
    assert ";=HYPERLINK" not in text and "'=HYPERLINK" in text


def test_assistant_value_map_writes_the_declaration_the_cli_reads(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    layer = layers["tiers_lieux"]
    source = _douelle_source(tmp_path, samples.csv_bytes(flawed=True))
    before = check_delivery(source, layer, grand_cahors, Settings())
    assert before.report.rows_rejected == 1
    view = assist.assistant_for(source, layer, before.report.info.get("crs"))
    category = next(vm for vm in view.value_maps if vm.field.name == "categorie")
    unknown = next(c for c in category.choices if c.raw == samples.UNKNOWN_CATEGORY)
    assert unknown.target == "" and not unknown.automatic
    assert any(c.automatic and c.target == "coworking" for c in category.choices)
    assert view.geometry.x == "Longitude" and view.detected_crs == "EPSG:4326"
    form = {f"map.{c.field.name}": (c.columns[0] if c.columns else "") for c in view.fields}
    form.update({"geom.x": "Longitude", "geom.y": "Latitude", "geom.crs": "EPSG:4326"})
    for i, choice in enumerate(category.choices):
        form[f"raw.categorie.{i}"] = choice.raw
        form[f"val.categorie.{i}"] = "atelier_partage" if choice.raw == samples.UNKNOWN_CATEGORY else choice.target
    chosen = assist.source_from_form(source, layer, form, view.columns)
    assert chosen.values["categorie"] == {samples.UNKNOWN_CATEGORY: "atelier_partage"}
    assert check_delivery(chosen, layer, grand_cahors, Settings()).report.rows_rejected == 0
    written = assist.save_declaration(chosen, sources_dir=tmp_path / "sources", insee="46088",
                                      commune="Douelle", delivery=source.path)  # type: ignore[arg-type]
    assert written == tmp_path / "sources" / "46088-douelle" / "tiers_lieux.yml"
    again = source_from_yaml(written)
    assert again.id == "46088-douelle-tiers_lieux" and again.path is not None and again.path.is_file()
    assert harmonise_source(again, layer, grand_cahors).report.rows_rejected == 0
    with pytest.raises(assist.AssistantError, match="n'est pas une valeur permise"):
        assist.source_from_form(source, layer, {**form, "val.categorie.0": "cinema"}, view.columns)
    with pytest.raises(assist.AssistantError, match="n'existe pas"):
        assist.source_from_form(source, layer, {**form, "map.nom": "Inconnue"}, view.columns)


def test_a_declaration_for_another_layout_falls_back_to_guesses(tmp_path: Path, layers: dict[str, LayerDef]) -> None:
    name, content = samples.vector_bytes("geojson", tmp_path / "v")
    delivery = tmp_path / name
    delivery.write_bytes(content)
    declared = SourceDef(id="x", layer="tiers_lieux", path=delivery, mapping={"nom": "Absente"},
                         geometry={"x": "X", "y": "Y"}, values={"frais": {"A": "payant"}})  # type: ignore[arg-type]
    fitted = assist.fitted_to_file(declared, layers["tiers_lieux"])
    assert fitted.mapping == {} and fitted.geometry.x is None and fitted.values == declared.values
    fine = declared.model_copy(update={"mapping": {"nom": "Nom du lieu"}, "geometry": declared.geometry.model_copy(update={"x": None, "y": None})})
    assert assist.fitted_to_file(fine, layers["tiers_lieux"]) == fine


def test_a_check_is_made_once_per_file_and_declaration(tmp_path: Path, layers: dict[str, LayerDef],
                                                       grand_cahors: Territory) -> None:
    from geocommuns.contrib.portal.check import CheckCache

    cache = CheckCache(size=2)
    source = _douelle_source(tmp_path, samples.csv_bytes(flawed=True))
    first = cache.check(source, layers["tiers_lieux"], grand_cahors, Settings())
    assert cache.check(source, layers["tiers_lieux"], grand_cahors, Settings()) is first
    mapped = source.model_copy(update={"values": {"categorie": {samples.UNKNOWN_CATEGORY: "fablab"}}})
    other = cache.check(mapped, layers["tiers_lieux"], grand_cahors, Settings())
    assert other is not first and other.report.rows_rejected == 0 and first.report.rows_rejected == 1
    assert source.path is not None
    source.path.write_bytes(samples.csv_bytes())  # the file changed: checked again
    assert cache.check(source, layers["tiers_lieux"], grand_cahors, Settings()).report.rows_rejected == 0
