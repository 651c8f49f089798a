"""geocommuns.serve.provider_postgis: a pygeoapi feature provider for the published PostGIS tables.

pygeoapi's stock PostgreSQL provider opens its connections through SQLAlchemy for every
provider instance (that is, every request) and counts every row of the table on every
page. This one:

- keeps one small connection pool per process and database (psycopg_pool), read-only
  sessions with a statement timeout;
- reads from the database's streaming replicas when there are some
  (``GEOCOMMUNS_DATABASE_REPLICA_URLS``), in turn, and from the primary inside
  :func:`primary_reads` (a request carrying a token: the writer reads its own writes);
- answers bbox queries with ``&&`` on the GiST index and items by id through the unique
  index on ``id`` (both created by ``geocommuns publish``);
- reads ``numberMatched`` of an unfiltered query from ``geocommuns_layers``, the
  per-layer row count that ``publish`` writes and triggers keep exact on every insert
  and delete, instead of counting the table;
- has PostgreSQL assemble each page as one JSON document;
- never serves, lists, filters or sorts on a field the layer marks ``sensitive``.

Configure it in ``pygeoapi-config.yml`` (``geocommuns config`` does, when
``GEOCOMMUNS_DATABASE_URL`` is set)::

    providers:
      - type: feature
        name: geocommuns.serve.provider_postgis.PostGISProvider
        data: ${GEOCOMMUNS_DATABASE_URL}    # a libpq URL, read from the environment
        table: equipements
        id_field: id
        title_field: nom
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderQueryError,
)

from geocommuns.publish.postgis import LAYERS_TABLE, redact
from geocommuns.serve.provider import (
    MATCH_COUNT_CAP,
    LayerProvider,
    ProviderBudgetExceeded,
    ProviderUnavailable,
    settings,
)

logger = logging.getLogger(__name__)

#: Connections per pool: gunicorn's sync workers serve one request at a time.
POOL_MAX = 4
#: Longest a query may run before PostgreSQL cancels it.
STATEMENT_TIMEOUT_MS = 15_000
#: Longest a request waits for a pooled connection (the database down: then a 503).
POOL_TIMEOUT_S = 10.0

_POOLS: dict[str, ConnectionPool[Any]] = {}
_COLUMNS: dict[tuple[str, str], set[str]] = {}
_LOCK = threading.Lock()
#: Whether the current request reads from the primary (set by :func:`primary_reads`).
_PRIMARY_READS: contextvars.ContextVar[bool] = contextvars.ContextVar("primary_reads", default=False)
#: Turns of the replicas, per process.
_TURNS = itertools.count()
#: A replica that did not answer is left aside this long (seconds), so that requests do
#: not each wait for it (:data:`POOL_TIMEOUT_S`) before reading elsewhere.
REPLICA_RETRY_S = 30.0
#: Replica URL to the monotonic time until which it is left aside.
_DOWN: dict[str, float] = {}


@contextlib.contextmanager
def primary_reads(active: bool = True) -> Iterator[None]:
    """Inside the block, the providers read from the primary, never from a replica.

    A client that has just written (Part 4, with its token) reads its own write: its
    requests are answered from the primary, which committed it, while anonymous reads
    go to the replicas (:attr:`geocommuns.settings.Settings.database_replica_urls`),
    which replay it a moment later.

    Parameters
    ----------
    active
        False leaves the choice as it is (a convenience for middlewares).
    """
    token = _PRIMARY_READS.set(True) if active else None
    try:
        yield
    finally:
        if token is not None:
            _PRIMARY_READS.reset(token)


def read_urls(data: str) -> list[str]:
    """The URLs a read of the database ``data`` may use now, in the order to try them.

    Anonymous reads of the project's database go to its replicas in turn (one after the
    other, per process), then, if none answers, to the primary (its read login, see
    :func:`role_url`); inside :func:`primary_reads`, or without replicas, to the primary
    only.

    Parameters
    ----------
    data
        The provider's ``data`` (environment substituted).

    Returns
    -------
    list of str
        libpq URLs, the first to try first.
    """
    primary = role_url(data, "read")
    current = settings()
    replicas = current.replica_urls if current.database_url and data == current.database_url else []
    if not replicas or _PRIMARY_READS.get():
        return [primary]
    now = time.monotonic()
    up = [u for u in replicas if _DOWN.get(u, 0.0) <= now]
    if not up:
        return [primary]
    turn = next(_TURNS) % len(up)
    return [*up[turn:], *up[:turn], primary]


def pool_for(url: str) -> ConnectionPool[Any]:
    """The process's connection pool to ``url`` (opened on first use).

    Parameters
    ----------
    url
        A libpq URL.

    Returns
    -------
    psycopg_pool.ConnectionPool
        Read-only, autocommit connections.
    """
    with _LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            options = (
                f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}"
            )
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX,
                kwargs={"autocommit": True, "options": options, "application_name": "geocommuns"},
                timeout=POOL_TIMEOUT_S,
                open=True,
                name="geocommuns",
            )
            _POOLS[url] = pool
        return pool


def role_url(data: str, purpose: Literal["read", "write"]) -> str:
    """The URL the API connects to the database ``data`` with, for reads or for writes.

    When ``data`` (a provider's configured URL) is the project's database
    (``GEOCOMMUNS_DATABASE_URL``), the API reads through ``GEOCOMMUNS_DATABASE_READ_URL``
    (a login that may write nothing) and writes through ``GEOCOMMUNS_DATABASE_WRITE_URL``
    (the layer tables and the journal only); each falls back to the owner's URL when
    unset. Any other URL is used as it is.

    Parameters
    ----------
    data
        The provider's ``data`` (environment substituted).
    purpose
        ``read`` (pygeoapi's provider, the fast path) or ``write`` (the edit service).

    Returns
    -------
    str
        The libpq URL to connect with.
    """
    current = settings()
    if not current.database_url or data != current.database_url:
        return data
    chosen = current.database_read_url if purpose == "read" else current.database_write_url
    return chosen or data


class PostGISProvider(LayerProvider):
    """pygeoapi feature provider reading one published layer table in PostGIS.

    Provider definition keys, besides pygeoapi's ``name``, ``type``, ``data`` (a libpq
    URL; write ``${GEOCOMMUNS_DATABASE_URL}`` to keep the password out of the file),
    ``id_field`` and ``title_field``: ``table`` (the layer id, required) and
    ``layers_dir`` (default the project's ``layers/``).
    """

    dialect = "postgis"

    def open(self, provider_def: dict[str, Any]) -> None:
        """Get the process's pool for the configured database."""
        url = self.data
        if not isinstance(url, str) or not url.strip() or url.startswith("${"):
            msg = (
                f"provider for {self.table!r}: 'data' must be a PostgreSQL URL; "
                "set GEOCOMMUNS_DATABASE_URL (e.g. postgresql://user@host:5432/db)"
            )
            raise ProviderConnectionError(msg)
        # the read login when the project's database is configured with separate roles;
        # each query picks the replica or the primary it reads from (read_urls)
        self.data_url = url
        self.url = role_url(url, "read")

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        urls = read_urls(self.data_url)
        for i, url in enumerate(urls):
            try:
                return self._run_on(url, sql, params)
            except ProviderUnavailable:
                if i == len(urls) - 1:
                    raise
                _DOWN[url] = time.monotonic() + REPLICA_RETRY_S
                logger.warning("%s unavailable, reading from %s for %g s", redact(url),
                               redact(urls[i + 1]), REPLICA_RETRY_S)
        raise AssertionError  # unreachable: the loop returns or raises

    def _run_on(self, url: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            pool = pool_for(url)
        except (psycopg.Error, PoolTimeout) as e:
            msg = f"cannot connect to {redact(url)} ({e}); check GEOCOMMUNS_DATABASE_URL"
            raise ProviderUnavailable(msg, user_msg="database unavailable; retry in a few seconds") from e
        try:
            with pool.connection() as con:
                rows: list[tuple[Any, ...]] = con.execute(sql, params, prepare=True).fetchall()
                return rows
        except (PoolTimeout, psycopg.OperationalError) as e:
            if isinstance(e, psycopg.errors.QueryCanceled):
                msg = f"table {self.table}: time budget exceeded ({STATEMENT_TIMEOUT_MS} ms); simplify the filter or retry later"
                logger.warning(msg)
                raise ProviderBudgetExceeded(msg, user_msg=msg) from e
            msg = f"{redact(url)}: no database connection available ({str(e).strip().splitlines()[0]})"
            logger.error(msg)
            raise ProviderUnavailable(msg, user_msg="database unavailable; retry in a few seconds") from e
        except psycopg.DataError as e:
            first = str(e).strip().splitlines()[0]
            raise ProviderInvalidQueryError(first, user_msg=first) from e
        except psycopg.Error as e:
            msg = f"table {self.table}: query failed ({str(e).strip().splitlines()[0]})"
            logger.error(msg)
            raise ProviderQueryError(msg) from e

    def table_columns(self) -> set[str]:
        """The columns of the layer's table (cached per process)."""
        key = (self.url, self.table)
        with _LOCK:
            cached = _COLUMNS.get(key)
        if cached is None:
            rows = self._run(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                [self.table],
            )
            cached = {r[0] for r in rows}
            if cached:
                with _LOCK:
                    _COLUMNS[key] = cached
        return cached

    # -- SQL ---------------------------------------------------------------------------

    def _feature_json(self, columns: list[str], *, skip_geometry: bool) -> str:
        """SQL building one feature as JSON (table alias ``t``)."""
        cols = ", ".join(f't."{c}"' for c in columns)
        props = f"(SELECT row_to_json(p) FROM (SELECT {cols}) p)" if cols else "'{}'::json"
        geometry = "NULL" if skip_geometry else "ST_AsGeoJSON(t.geom, 9)::json"
        return (
            f"json_build_object('type', 'Feature', 'id', t.\"{self.id_field}\", "
            f"'geometry', {geometry}, 'properties', {props})"
        )

    def _where(
        self,
        bbox: Sequence[float] | None,
        properties: Sequence[tuple[str, str]] | None,
        filterq: Any,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if bbox:
            if len(bbox) != 4:
                msg = "bbox must be minx,miny,maxx,maxy (3D bboxes are not supported)"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            clauses.append("t.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)")
            params += [float(v) for v in bbox]
        more, values = self.conditions(properties, filterq)
        clauses += more
        params += values
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def _count(self, where: str, params: list[Any]) -> int | None:
        """Matching rows: the layer's kept count when unfiltered, else counted up to
        :data:`MATCH_COUNT_CAP` (None: more than that)."""
        if not where:
            rows = self._run(f"SELECT features FROM {LAYERS_TABLE} WHERE layer = %s", [self.table])
            if rows:
                return int(rows[0][0])
            rows = self._run(f'SELECT count(*) FROM "{self.table}" t', [])
            return int(rows[0][0])
        rows = self._run(
            f'SELECT count(*) FROM (SELECT 1 FROM "{self.table}" t {where} LIMIT %s) c',
            [*params, MATCH_COUNT_CAP + 1],
        )
        count = int(rows[0][0])
        return None if count > MATCH_COUNT_CAP else count

    # -- pygeoapi interface ------------------------------------------------------------

    def page(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        filterq: Any = None,
    ) -> tuple[int | None, int, str]:
        """One page of features as GeoJSON text assembled by PostgreSQL.

        Parameters are those of :meth:`query`.

        Returns
        -------
        tuple
            ``numberMatched`` (None beyond :data:`MATCH_COUNT_CAP` when filtered),
            ``numberReturned`` and the JSON array of the features.
        """
        columns = self.columns(select_properties)
        where, params = self._where(bbox, properties, filterq)
        matched = self._count(where, params)
        if resulttype == "hits" or int(limit) <= 0:
            return matched, 0, "[]"
        order = self.order(sortby, "t.fid")
        # the page's keys first (a deep offset skips rows without building their JSON),
        # then the page assembled by PostgreSQL as one JSON array
        sql = (
            f"SELECT count(*), coalesce(json_agg({self._feature_json(columns, skip_geometry=skip_geometry)} "
            f"{order}), '[]')::text "
            f'FROM "{self.table}" t WHERE t.fid IN ('
            f'SELECT t.fid FROM "{self.table}" t {where} {order} LIMIT %s OFFSET %s)'
        )
        rows = self._run(sql, [*params, int(limit), int(offset)])
        return matched, int(rows[0][0]), str(rows[0][1])

    def feature_text(self, identifier: str) -> str | None:
        """The feature whose ``id`` is ``identifier`` as GeoJSON text (None when absent)."""
        columns = list(self._public)
        sql = (
            f"SELECT {self._feature_json(columns, skip_geometry=False)}::text "
            f'FROM "{self.table}" t WHERE t."{self.id_field}" = %s'
        )
        rows = self._run(sql, [str(identifier)])
        return str(rows[0][0]) if rows else None

    def __repr__(self) -> str:
        return f"<PostGISProvider> {redact(getattr(self, 'url', '') or '')}:{self.table}"
