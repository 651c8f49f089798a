"""Tests of geocommuns.serve.middleware.framing: who may frame the citizen map."""

from __future__ import annotations

from pathlib import Path

import pytest
from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.framing import frame_ancestors_policy, project_frame_ancestors
from geocommuns.serve.middleware.static import static_files


def test_policy_lists_self_then_the_allowed_origins_once():
    assert frame_ancestors_policy([]) == "frame-ancestors 'self'"
    assert frame_ancestors_policy(["https://www.douelle.fr", "'self'", "https://www.douelle.fr"]) == (
        "frame-ancestors 'self' https://www.douelle.fr"
    )
    assert frame_ancestors_policy(["https://a.fr", "'none'"]) == "frame-ancestors 'none'"


def test_map_answers_carry_the_policy_and_nothing_else_does(tmp_path: Path):
    site = tmp_path / "webmap"
    site.mkdir()
    (site / "index.html").write_text("<h1>Carte</h1>", encoding="utf-8")
    client = Client(static_files(site, ["https://www.douelle.fr"])(downstream))
    policy = "frame-ancestors 'self' https://www.douelle.fr"
    for path in ("/map/", "/map", "/map/missing.js"):
        assert client.get(path).headers["Content-Security-Policy"] == policy, path
    assert "Content-Security-Policy" not in client.get("/collections").headers


def test_origins_come_from_the_project_service_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import yaml

    root = Path(__file__).resolve().parents[3]
    service = yaml.safe_load((root / "geocommuns.yml").read_text(encoding="utf-8"))
    service["embedding"] = {"frame_ancestors": ["https://www.mairie-pradines.fr"]}
    (tmp_path / "geocommuns.yml").write_text(yaml.safe_dump(service, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GEOCOMMUNS_ROOT", str(tmp_path))
    monkeypatch.setenv("GEOCOMMUNS_LAYERS_DIR", str(root / "layers"))
    assert project_frame_ancestors() == ["https://www.mairie-pradines.fr"]
    monkeypatch.setenv("GEOCOMMUNS_ROOT", str(tmp_path / "elsewhere"))
    assert project_frame_ancestors() == []
