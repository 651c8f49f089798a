"""Schemathesis over the whole OpenAPI document, both backends, anonymous and with a token.

The document the server publishes (pygeoapi's, made self-contained, with the media types
and statuses the service really answers and the Part 4 writes: geocommuns.serve.openapi,
openapi_responses, openapi_edits) is fuzzed on a server of this module's own:

- the reads anonymously;
- the Part 4 writes (the operations declaring the ``bearerAuth`` scheme) with a
  contributor's token of the whole EPCI, in the examples, fuzzing and stateful phases
  (the links of a creation lead to reading, replacing, updating and deleting the created
  feature; tests/serve/schemathesis_hooks.py makes half of the generated bodies plausible
  so that creations succeed).

Every response is checked: no server error, and status code, content type, headers and
body as the document says. ``GEOCOMMUNS_SCHEMATHESIS_EXAMPLES`` sets the examples per
operation (default 3, about a minute per backend; docs/api.md gives the measured run).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ogcserver import sample_database, served_sample

from geocommuns.contrib.auth import add_user
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.journal import ensure_schema as ensure_journal
from geocommuns.ingest.sqldb import Db, connect_postgis, gpkg_writer, open_readonly

pytestmark = pytest.mark.slow  # a real server per backend, schemathesis as a client

EXAMPLES = os.environ.get("GEOCOMMUNS_SCHEMATHESIS_EXAMPLES", "3")
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
))
HERE = Path(__file__).resolve().parent


@dataclass
class Fuzzed:
    url: str
    backend: str
    token: str
    gpkg: Path
    database_url: str | None

    @contextlib.contextmanager
    def reading(self) -> Iterator[Db]:
        if self.database_url:
            db = connect_postgis(self.database_url)
        else:
            db = Db(open_readonly(self.gpkg), "sqlite")
        try:
            yield db
        finally:
            db.close()


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           layers: dict[str, LayerDef]) -> Iterator[Fuzzed]:
    backend = str(request.param)
    database_url = sample_database(request, backend)
    folder = tmp_path_factory.mktemp(f"schemathesis-{backend}")
    with served_sample(folder, layers, backend, database_url=database_url) as srv:
        gpkg = folder / "geocommuns.gpkg"
        writer = (contextlib.closing(connect_postgis(database_url)) if database_url
                  else gpkg_writer(gpkg))
        with writer as db:
            token = add_user(db, "fuzz", "contributor", epci="200023737")
            ensure_journal(db)
        yield Fuzzed(srv.url, backend, token, gpkg, database_url)


def schemathesis(served: Fuzzed, out: Path) -> str:
    """Run schemathesis on the served document; its whole output (the run must pass).

    The reads go anonymously; the operations that declare the ``bearerAuth`` security
    scheme (the Part 4 writes) carry the contributor's token (schemathesis' OpenAPI-aware
    authentication, from a configuration file).
    """
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe is not None, "schemathesis not installed (pip install -e .[test])"
    # a worker's first write loads the territory (seconds, more on a loaded machine): the
    # request timeout leaves room for it
    config = out / "schemathesis.toml"
    config.write_text(f'[auth.openapi.bearerAuth]\nbearer = "{served.token}"\n', encoding="utf-8")
    argv = [exe, "--config-file", str(config), "run", f"{served.url}/openapi?f=json", "--checks", CHECKS,
            "--max-examples", EXAMPLES, "--seed", "46042", "--phases", "examples,fuzzing,stateful",
            "--request-timeout", "60", "--exclude-path-regex", "^/(processes|jobs)",
            "--suppress-health-check", "all", "--workers", "2"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=5400, cwd=out, env=env)
    (out.parent / f"schemathesis-{served.backend}.txt").write_text(run.stdout + run.stderr, encoding="utf-8")
    summary = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, summary
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated is not None, summary
    assert int(generated[1]) == int(generated[2]) > 100, summary
    return run.stdout


def test_every_answer_conforms_to_the_document(served: Fuzzed, tmp_path: Path) -> None:
    output = schemathesis(served, tmp_path)
    # the Part 4 operations were exercised with the token: features were created (the
    # documented examples at least), and the stateful phase ran on the writes' links
    with served.reading() as db:
        created = db.execute(
            "SELECT count(*) FROM geocommuns_journal WHERE actor = %s AND action = 'create'", ["fuzz"]
        ).fetchone()
    assert created is not None and created[0] >= 5, output[-3000:]
    assert re.search(r"Stateful \(in", output), output[-3000:]
    links = re.search(r"API Links:\s+(\d+) covered", output)
    assert links is not None, output[-3000:]
