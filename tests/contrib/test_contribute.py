"""Bulk contributions (``geocommuns contribute``) and the users / audit commands, on a real PostGIS.

The layer starts as Cahors' sample delivery of recycling containers, harmonised and
published as a build would; a new delivery drops one container, renames one and adds
one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import project

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.contribute import ContributionError, contribute
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.sourcedef import source_from_yaml
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.journal import ensure_schema as ensure_audit
from geocommuns.ingest.journal import recent
from geocommuns.publish.postgis import publish_layer

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / service_from_root(ROOT).paths.sources
DELIVERY = SOURCES / "46042-cahors" / "pav_cahors.csv"
PREFIX = "46042-cahors-conteneurs--"


@pytest.fixture
def published(database_url, layers, grand_cahors):
    """The conteneurs layer as built from Cahors' sample delivery, and three users."""
    source = source_from_yaml(SOURCES / "46042-cahors" / "conteneurs.yml")
    built = harmonise_source(source, layers["conteneurs"], grand_cahors)
    # the sample delivery holds rows made to be rejected; the contributions below leave them out
    assert {r.row for r in built.report.rejects} == BAD_ROWS
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        publish_layer(conn, built.features, layers["conteneurs"])
        conn.execute("DROP TABLE IF EXISTS geocommuns_users, geocommuns_journal, geocommuns_conflicts, geocommuns_meta")
        add_user(conn, "cahors", "contributor", commune="46042")
        add_user(conn, "pradines", "contributor", commune="46224")
        ensure_audit(conn)
    return len(built.features)


#: Data rows (1 = first record) of the sample delivery that harmonisation rejects.
BAD_ROWS = {8, 12, 16}


def lines() -> list[str]:
    """The sample delivery without the rows made to be rejected."""
    rows = DELIVERY.read_text(encoding="cp1252").splitlines()
    return [r for i, r in enumerate(rows) if i not in BAD_ROWS]


def delivery(tmp_path: Path, rows: list[str], name: str = "nouvelle.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="cp1252")
    return path


def new_delivery(tmp_path: Path) -> Path:
    """Sample delivery edited: PAV-002 gone, PAV-003 renamed, PAV-999 added (sample data)."""
    rows = [r for r in lines() if not r.startswith("PAV-002;")]
    rows = [r.replace("Point d'apport De L'Église", "Point d'apport Champollion", 1)
            if r.startswith("PAV-003;") else r for r in rows]
    first = next(r for r in rows if r.startswith("PAV-001;")).split(";")
    first[0], first[1], first[6] = "PAV-999", "Point d'apport nouveau (exemple)", "576120,00"
    return delivery(tmp_path, [*rows, ";".join(first)])


def table_state(url: str) -> tuple[dict[str, str], int]:
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute("SELECT id, md5((to_jsonb(t) - 'fid')::text) FROM conteneurs t").fetchall())
        audit = conn.execute("SELECT count(*) FROM geocommuns_journal").fetchone()[0]
    return rows, audit


def run(database_url: str, layers, grand_cahors, path: Path, *, user: str = "cahors", dry_run: bool = False):
    return contribute(database_url, path, layers["conteneurs"], "46042", grand_cahors,
                      user=user, sources_dir=SOURCES, dry_run=dry_run)


def test_dry_run_lists_changes_and_writes_nothing(tmp_path, database_url, layers, grand_cahors, published):
    before = table_state(database_url)
    plan = run(database_url, layers, grand_cahors, new_delivery(tmp_path), dry_run=True)
    assert [c.feature_id for c in plan.added] == [PREFIX + "PAV-999"]
    assert [c.feature_id for c in plan.removed] == [PREFIX + "PAV-002"]
    assert [(c.feature_id, c.fields) for c in plan.changed] == [(PREFIX + "PAV-003", ["nom"])]
    assert plan.unchanged == published - 2
    assert not plan.applied
    assert table_state(database_url) == before


def test_apply_changes_the_layer_in_one_go_with_audit_rows(tmp_path, database_url, layers, grand_cahors, published):
    rows_before, _ = table_state(database_url)
    plan = run(database_url, layers, grand_cahors, new_delivery(tmp_path))
    assert plan.applied
    rows_after, audited = table_state(database_url)
    changed = {k for k in rows_before.keys() | rows_after.keys() if rows_before.get(k) != rows_after.get(k)}
    assert changed == {PREFIX + "PAV-999", PREFIX + "PAV-002", PREFIX + "PAV-003"}
    assert audited == 3
    with psycopg.connect(database_url) as conn:
        entries = {e.feature_id: e for e in recent(conn, limit=10)}
        nom = conn.execute("SELECT nom FROM conteneurs WHERE id = %s", [PREFIX + "PAV-003"]).fetchone()[0]
        count = conn.execute("SELECT features FROM geocommuns_layers WHERE layer = 'conteneurs'").fetchone()[0]
    assert nom == "Point d'apport Champollion"
    assert count == published  # one removed, one added: numberMatched stays exact
    assert entries[PREFIX + "PAV-002"].action == "delete" and entries[PREFIX + "PAV-002"].after is None
    assert entries[PREFIX + "PAV-999"].action == "create" and entries[PREFIX + "PAV-999"].before is None
    renamed = entries[PREFIX + "PAV-003"]
    assert renamed.action == "replace" and renamed.actor == "cahors" and renamed.via == "contribute"
    # imported_at (second resolution) changes too unless the publication was within the same second
    assert renamed.changed_fields() in (["imported_at", "nom"], ["nom"])
    # the same delivery again changes nothing
    again = run(database_url, layers, grand_cahors, new_delivery(tmp_path))
    assert (again.added, again.changed, again.removed) == ([], [], [])
    assert table_state(database_url)[1] == 3


@pytest.mark.parametrize("spoil", ["bad_row", "other_commune", "other_user"])
def test_failed_contribution_leaves_the_layer_unchanged(tmp_path, database_url, layers, grand_cahors, published, spoil):
    before = table_state(database_url)
    rows = lines()
    user = "cahors"
    if spoil == "bad_row":
        rows[3] = rows[3].replace(";Textile;", ";Plutonium;")
    elif spoil == "other_commune":
        # PAV-004 moved into Pradines
        parts = rows[4].split(";")
        x, y = project(1.4011, 44.4648, "EPSG:2154")
        parts[6], parts[7] = f"{x:.2f}".replace(".", ","), f"{y:.2f}".replace(".", ",")
        rows[4] = ";".join(parts)
    else:
        user = "pradines"
    with pytest.raises(ContributionError) as e:
        run(database_url, layers, grand_cahors, delivery(tmp_path, [*rows, *new_delivery(tmp_path).read_text(encoding="cp1252").splitlines()[-1:]]), user=user)
    assert "nothing was changed" in str(e.value) or "may not" in str(e.value)
    assert table_state(database_url) == before


@pytest.mark.slow
def test_users_and_audit_commands(tmp_path, database_url, published):
    env = {**os.environ, "GEOCOMMUNS_DATABASE_URL": database_url}
    exe = [str(Path(sys.executable).parent / "geocommuns")]

    def cli(*args: str, code: int = 0, env_columns: str = "80") -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*exe, *args], cwd=ROOT, env={**env, "COLUMNS": env_columns},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        return done

    token = cli("users", "add", "douelle", "--role", "contributor", "--commune", "46088").stdout.strip().splitlines()[-1]
    assert token.startswith("gct_")
    cli("users", "add", "x", "--role", "contributor", "--commune", "75056", code=2)
    cli("users", "add", "y", "--role", "editor", code=2)
    cli("users", "add", "z", "--role", "admin", "--expires", "2020-01-01", code=2)  # past
    cli("users", "add", "z", "--role", "admin", "--expires", "bientôt", code=2)
    expiring = cli("users", "add", "z", "--role", "admin", "--expires", "2099-12-31").stdout
    assert expiring.strip().splitlines()[-1].startswith("gct_")
    listed = cli("users", "list").stdout
    assert "douelle" in listed and "commune:46088" in listed and token.split("_", 2)[2] not in listed
    cli("users", "revoke", "douelle")
    cli("users", "revoke", "douelle", code=2)
    path = new_delivery(tmp_path)
    dry = cli("contribute", str(path), "--layer", "conteneurs", "--commune", "46042", "--as", "cahors", "--dry-run").stdout
    assert "added: 1" in dry and "removed: 1" in dry and "changed: 1" in dry and "nothing written" in dry
    cli("contribute", str(path), "--layer", "conteneurs", "--commune", "46042", "--as", "cahors")
    audit = [json.loads(x) for x in cli("audit", "--layer", "conteneurs", "--json").stdout.splitlines()]
    assert sorted((a["action"], a["feature_id"], a["actor"], a["via"]) for a in audit) == [
        ("create", PREFIX + "PAV-999", "cahors", "contribute"),
        ("delete", PREFIX + "PAV-002", "cahors", "contribute"),
        ("replace", PREFIX + "PAV-003", "cahors", "contribute"),
    ]
    assert "PAV-003" in cli("audit", env_columns="200").stdout
