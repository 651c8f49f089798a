"""bench.stock_shim: run stock pygeoapi with a ``sqlite3`` that can load SpatiaLite.

pygeoapi's ``SQLiteGPKG`` provider calls ``enable_load_extension``, which the Python
build of the venv lacks. This module puts ``pysqlite3`` (package ``pysqlite3-binary``) in
place of ``sqlite3`` before pygeoapi is imported, then exposes pygeoapi's Flask app for
gunicorn (``bench.stock_shim:app``). ``python -m bench.stock_shim CONFIG OUTPUT`` writes
the OpenAPI document of CONFIG with the same shim (pygeoapi instantiates the providers).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def install() -> None:
    """Make ``import sqlite3`` return ``pysqlite3.dbapi2``.

    Raises
    ------
    ImportError
        When pysqlite3 is missing (``pip install -e '.[bench]'``).
    """
    try:
        import pysqlite3.dbapi2 as dbapi2  # type: ignore[import-not-found]
    except ImportError as e:
        msg = "pysqlite3 is missing; run: .venv/bin/pip install -e '.[bench]'"
        raise ImportError(msg) from e
    sys.modules["sqlite3"] = dbapi2


def __getattr__(name: str) -> Any:
    """``app``: pygeoapi's Flask application, imported behind the shim on first use."""
    if name == "app":
        install()
        from pygeoapi.flask_app import APP

        return APP
    raise AttributeError(name)


def main() -> None:
    """Write the OpenAPI document of a configuration: ``python -m bench.stock_shim CONFIG OUT``."""
    install()
    from pygeoapi.openapi import generate_openapi_document

    config, output = Path(sys.argv[1]), Path(sys.argv[2])
    output.write_text(
        generate_openapi_document(config, "yaml", fail_on_invalid_collection=True),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
