"""Tests of geocommuns.serve.provider: what the GeoPackage and PostGIS providers share."""

from __future__ import annotations

from geocommuns.serve.provider import settings


def test_settings_follow_the_working_folder_and_environment(tmp_path, monkeypatch):
    first = settings()
    assert settings() is first  # read once while nothing changes
    (tmp_path / "layers").mkdir()
    monkeypatch.delenv("GEOCOMMUNS_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings().root == tmp_path
    monkeypatch.setenv("GEOCOMMUNS_OUTPUT", "elsewhere.gpkg")
    assert settings().output.name == "elsewhere.gpkg"
