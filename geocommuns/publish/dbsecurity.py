"""geocommuns.publish.dbsecurity: database logins and row-level security for QGIS editing.

Technicians edit the shared layers from QGIS by connecting to PostGIS with a login of
their own. The database itself then enforces what the API enforces:

- **group roles** hold every grant, user logins only inherit one of them:
  ``geocommuns_reader`` (public fields of the public layers, no writes),
  ``geocommuns_partner`` (public fields of every layer, restricted ones included, no
  writes), ``geocommuns_contributor``,
  ``geocommuns_editor``, ``geocommuns_admin``, and the API's ``geocommuns_api_read``
  (reads only) and ``geocommuns_api_write`` (Part 4 writes: the layer tables and the journal);
- **row-level security** on each layer table: every row is readable, but a login may
  insert, change or delete only the rows its user may edit (``geocommuns_may_write``:
  the layer in the user's rights, the commune in their territory), looked up in
  ``geocommuns_users`` at each statement, so adding or revoking a user needs no DDL on the
  layer tables; a change of a row the user may not edit, or moving a feature out of their
  territory, is refused with a French message;
- **sensitive values per row**: in the table, only admins (and the API's read role) may
  read the sensitive columns; each layer has a view, ``<layer>_qgis`` (security barrier),
  showing every column with the sensitive values of the rows the login may edit and NULL
  elsewhere (a contributor reads their territory's, never another commune's; readers and
  partners never). QGIS projects read and edit the layers through these views;
- **triggers compute what is computed** whatever the client sends (``id``, ``code_insee``,
  ``commune``, ``epci`` from the geometry and the ``geocommuns_communes`` table,
  ``longitude``/``latitude``, source, licence, attribution, provenance, ``date_maj``),
  and **constraints** generated from the layer definition (required, enum, pattern,
  lengths, bounds) check every new row;
- a **journal trigger** writes one ``geocommuns_journal`` entry per row a login changes
  (``via = 'qgis'``, whole documents before and after, as the API writes them), in the
  same transaction. Writes of the owner (publish, replay) and of the API's roles are not
  journaled here: the API journals itself.

Everything is generated from the layer definitions and (re)applied by
:func:`secure_layer` to each new table inside the publish transaction.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import psycopg
from psycopg import sql

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.errors import GeocommunsError

#: Group roles per user role kind (users table ``role``), plus the API's roles.
GROUPS = {
    "reader": "geocommuns_reader",
    "partner": "geocommuns_partner",
    "contributor": "geocommuns_contributor",
    "editor": "geocommuns_editor",
    "admin": "geocommuns_admin",
}
API_READ = "geocommuns_api_read"
API_WRITE = "geocommuns_api_write"
EDITING_GROUPS = ("geocommuns_contributor", "geocommuns_editor", "geocommuns_admin")
#: Every group a login may be given: the users' role kinds, and the API's two roles
#: (logins for the service: ``api_read`` for pygeoapi's reads, ``api_write`` for Part 4).
LOGIN_GROUPS = {**GROUPS, "api_read": API_READ, "api_write": API_WRITE}
COMMUNES_TABLE = "geocommuns_communes"
#: The users table of :mod:`geocommuns.contrib.auth` (looked up by name at run time).
USERS_TABLE = "geocommuns_users"
JOURNAL_TABLE = "geocommuns_journal"
#: The ``via`` of journal entries written by the database for a login's change.
VIA = "qgis"
#: Computed fields a login's change keeps from the stored row (or sets on insert).
_KEPT = ("id", "source", "source_id", "osm_id", "licence", "attribution", "merged_from", "provenance")

_COMMUNES_DDL = f"""
CREATE TABLE IF NOT EXISTS {COMMUNES_TABLE} (
    code_insee text PRIMARY KEY,
    commune text NOT NULL,
    epci text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX IF NOT EXISTS {COMMUNES_TABLE}_geom ON {COMMUNES_TABLE} USING gist (geom)
"""

#: Shared functions: who the session is, and what they may write (SECURITY DEFINER: a
#: login needs no grant on the users table).
_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION geocommuns_principal_role() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE r text;
BEGIN
    IF to_regclass('{USERS_TABLE}') IS NULL THEN RETURN NULL; END IF;
    SELECT role INTO r FROM {USERS_TABLE} WHERE name = session_user::text AND revoked_at IS NULL;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION geocommuns_may_write(p_layer text, p_insee text, p_epci text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE u record;
BEGIN
    IF to_regclass('{USERS_TABLE}') IS NULL OR p_insee IS NULL THEN RETURN false; END IF;
    SELECT role, commune, epci, layers INTO u FROM {USERS_TABLE}
     WHERE name = session_user::text AND revoked_at IS NULL;
    IF NOT FOUND OR u.role NOT IN ('contributor', 'editor', 'admin') THEN RETURN false; END IF;
    IF u.role = 'admin' THEN RETURN true; END IF;
    IF cardinality(u.layers) > 0 AND NOT p_layer = ANY(u.layers) THEN RETURN false; END IF;
    IF u.role = 'editor' THEN RETURN true; END IF;
    IF u.commune IS NOT NULL THEN RETURN u.commune = p_insee; END IF;
    RETURN u.epci IS NOT NULL AND u.epci = p_epci;
END $$;

CREATE OR REPLACE FUNCTION geocommuns_journal_login() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r text := geocommuns_principal_role();
    b jsonb;
    a jsonb;
BEGIN
    IF r IS NULL THEN RETURN NULL; END IF;
    IF TG_OP <> 'INSERT' THEN
        b := (to_jsonb(OLD) - 'fid' - 'geom')
             || jsonb_build_object('geometry', ST_AsGeoJSON(OLD.geom, 9)::jsonb);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        a := (to_jsonb(NEW) - 'fid' - 'geom')
             || jsonb_build_object('geometry', ST_AsGeoJSON(NEW.geom, 9)::jsonb);
    END IF;
    IF TG_OP = 'UPDATE' AND b = a THEN RETURN NULL; END IF;
    INSERT INTO {JOURNAL_TABLE} (actor, role, via, layer, feature_id, action, before, after)
    VALUES (session_user::text, r, '{VIA}', TG_TABLE_NAME, coalesce(a ->> 'id', b ->> 'id'),
            CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
            b, a);
    RETURN NULL;
END $$;
"""


class DbSecurityError(GeocommunsError):
    """A database login cannot be created or changed as asked."""


def ensure_roles(conn: psycopg.Connection[Any]) -> None:
    """Create the group roles when missing (cluster-wide, NOLOGIN) and let them connect."""
    for role in (*GROUPS.values(), API_READ, API_WRITE):
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {}) THEN "
                "CREATE ROLE {} NOLOGIN; END IF; END $$"
            ).format(sql.Literal(role), sql.Identifier(role))
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(role)
            )
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))


def install(conn: psycopg.Connection[Any]) -> None:
    """Create the roles, the communes table and the shared functions (idempotent).

    The journal and users tables need not exist yet (the functions look them up when run).
    """
    ensure_roles(conn)
    conn.execute(_COMMUNES_DDL)
    conn.execute(_FUNCTIONS)
    everyone = sql.SQL(", ").join(map(sql.Identifier, [*GROUPS.values(), API_READ, API_WRITE]))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(COMMUNES_TABLE), everyone))
    # The layers' statement triggers keep geocommuns_layers up to date for any writer.
    conn.execute(
        "DO $$ BEGIN IF to_regprocedure('geocommuns_layer_changed()') IS NOT NULL THEN "
        "ALTER FUNCTION geocommuns_layer_changed() SECURITY DEFINER; END IF; END $$"
    )


def publish_communes(conn: psycopg.Connection[Any], communes: gpd.GeoDataFrame) -> int:
    """Replace the communes table (code_insee, commune, epci, outline) in one transaction.

    Parameters
    ----------
    conn
        An owner connection (autocommit).
    communes
        The territory's communes (:attr:`Territory.communes`, EPSG:4326).

    Returns
    -------
    int
        The communes written.
    """
    with conn.transaction():
        install(conn)
        conn.execute(f"DELETE FROM {COMMUNES_TABLE}")
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {COMMUNES_TABLE} (code_insee, commune, epci, geom) "
                "VALUES (%s, %s, %s, ST_Multi(ST_SetSRID(ST_GeomFromWKB(%s), 4326)))",
                [
                    (r.code_insee, r.commune, r.epci if isinstance(r.epci, str) else None,
                     r.geometry.wkb)
                    for r in communes.itertuples()
                ],
            )
    return len(communes)


# -- per layer ---------------------------------------------------------------------------


def _check(field: FieldDef) -> list[tuple[str, sql.Composed]]:
    """The CHECK constraints a field's definition asks for (name suffix, expression)."""
    col = sql.Identifier(field.name)
    c = field.constraints
    checks: list[tuple[str, sql.Composed]] = []
    if c.required:
        checks.append(("required", sql.SQL("{} IS NOT NULL").format(col)))
    if c.enum:
        values = sql.SQL(", ").join(map(sql.Literal, c.enum))
        if field.type == "array":
            checks.append(("enum", sql.SQL("{} <@ ARRAY[{}]::text[]").format(col, values)))
        else:
            checks.append(("enum", sql.SQL("{}::text IN ({})").format(col, values)))
    if c.pattern and field.type == "string":
        checks.append(("pattern", sql.SQL("{} ~ {}").format(col, sql.Literal(c.pattern))))
    if c.max_length is not None and field.type == "string":
        checks.append(("maxlength", sql.SQL("char_length({}) <= {}").format(col, sql.Literal(c.max_length))))
    if c.minimum is not None and field.type in {"integer", "number"}:
        checks.append(("minimum", sql.SQL("{} >= {}").format(col, sql.Literal(c.minimum))))
    if c.maximum is not None and field.type in {"integer", "number"}:
        checks.append(("maximum", sql.SQL("{} <= {}").format(col, sql.Literal(c.maximum))))
    return checks


def constraint_name(layer: LayerDef, field: str, kind: str) -> str:
    """The name of the constraint checking ``kind`` on ``field`` (what a refused commit shows)."""
    return f"{layer.id}_{field}_{kind}"


def _computed_function(layer: LayerDef) -> sql.Composed:
    """The BEFORE trigger function of a layer: rights, place and computed fields of a login's row."""
    names = {f.name for f in layer.fields}
    kept = [n for n in _KEPT if n in names]
    other = [f.name for f in layer.fields if f.computed and f.name not in {
        *kept, "code_insee", "commune", "epci", "longitude", "latitude", "imported_at"}]
    keep_old = "".join(f"        NEW.{n} := OLD.{n};\n" for n in [*kept, *other])
    clear_new = "".join(f"        NEW.{n} := NULL;\n" for n in other if n not in _KEPT)
    body = f"""
CREATE OR REPLACE FUNCTION {{fn}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c record;
BEGIN
    IF geocommuns_principal_role() IS NULL THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP <> 'INSERT' AND NOT geocommuns_may_write(TG_TABLE_NAME, OLD.code_insee, OLD.epci) THEN
        RAISE EXCEPTION 'geocommuns : vous ne pouvez pas modifier les objets de % (%), hors de vos droits sur la couche %',
            coalesce(OLD.commune, 'hors territoire'), coalesce(OLD.code_insee, '-'), TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    IF NEW.geom IS NULL THEN
        RAISE EXCEPTION 'geocommuns : un objet de % doit avoir une position', TG_TABLE_NAME
            USING ERRCODE = 'not_null_violation';
    END IF;
    SELECT code_insee, commune, epci INTO c FROM {COMMUNES_TABLE}
     WHERE ST_Intersects(geom, NEW.geom) ORDER BY code_insee LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'geocommuns : la position (%, %) est hors du territoire', ST_X(NEW.geom), ST_Y(NEW.geom)
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT geocommuns_may_write(TG_TABLE_NAME, c.code_insee, c.epci) THEN
        RAISE EXCEPTION 'geocommuns : la position est dans la commune de % (%), hors de vos droits',
            c.commune, c.code_insee USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.code_insee := c.code_insee;
    NEW.commune := c.commune;
    NEW.epci := c.epci;
    NEW.longitude := ST_X(NEW.geom);
    NEW.latitude := ST_Y(NEW.geom);
    NEW.imported_at := date_trunc('second', now());
    NEW.date_maj := current_date;
    IF TG_OP = 'UPDATE' THEN
{keep_old}    ELSE
        NEW.source := 'contribution-' || c.code_insee;
        NEW.source_id := coalesce(NEW.source_id, substr(md5(random()::text || clock_timestamp()::text), 1, 12));
        NEW.id := NEW.source || '--' || NEW.source_id;
        NEW.osm_id := NULL;
        NEW.licence := {{licence}};
        NEW.attribution := 'Commune de ' || c.commune;
        NEW.merged_from := NULL;
        NEW.provenance := jsonb_build_object('*', '{VIA}:' || session_user::text)::text;
{clear_new}    END IF;
    RETURN NEW;
END $$"""
    return sql.SQL(body).format(
        fn=sql.Identifier(f"geocommuns_{layer.id}_computed"), licence=sql.Literal(layer.licence.id)
    )


def secure_layer(cur: psycopg.Cursor[Any], layer: LayerDef, table: str) -> None:
    """Apply grants, row-level security, triggers and constraints to a layer's table.

    Called by :func:`geocommuns.publish.postgis.publish_layer` on the new table, before it
    is swapped in, inside the publish transaction (so a published table is never
    unprotected).

    Parameters
    ----------
    cur
        A cursor of the owner's connection, inside the publish transaction.
    layer
        The layer definition (fields, sensitive flags, constraints, licence).
    table
        The table's current name (``<layer>__new`` while publishing).
    """
    install(cur.connection)
    t = sql.Identifier(table)
    fid_seq = cur.execute("SELECT pg_get_serial_sequence(%s, 'fid')", [table]).fetchone()
    public_cols = sql.SQL(", ").join(
        [sql.Identifier("fid"), *(sql.Identifier(f.name) for f in layer.fields if not f.sensitive),
         sql.Identifier("geom")]
    )
    editors = sql.SQL(", ").join(map(sql.Identifier, EDITING_GROUPS))
    # Readers see the public layers only; partners the restricted ones too (public fields).
    public_readers = [GROUPS["partner"], *([GROUPS["reader"]] if layer.access == "public" else [])]
    # Contributors and editors read the sensitive columns of the rows they may edit only:
    # through the layer's view (:func:`_view_statements`), never in the table.
    row_readers = sql.SQL(", ").join(map(sql.Identifier, [*public_readers, GROUPS["contributor"], GROUPS["editor"]]))
    statements: list[sql.Composed] = [
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(t),
        sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(public_cols, t, row_readers),
        sql.SQL("GRANT SELECT ON {} TO {}, {}").format(t, sql.Identifier(GROUPS["admin"]), sql.Identifier(API_READ)),
        sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(t, editors),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(t, sql.Identifier(API_WRITE)),
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t),
        sql.SQL("CREATE POLICY geocommuns_read ON {} FOR SELECT USING (true)").format(t),
        sql.SQL("CREATE POLICY geocommuns_api_write ON {} FOR ALL TO {} USING (true) WITH CHECK (true)").format(
            t, sql.Identifier(API_WRITE)),
        sql.SQL(
            "CREATE POLICY geocommuns_insert ON {} FOR INSERT TO {} "
            "WITH CHECK (geocommuns_may_write({}, code_insee, epci))"
        ).format(t, editors, sql.Literal(layer.id)),
        # Rows the user may not edit are refused with a reason by the BEFORE trigger (a
        # USING filter would make QGIS's UPDATE change nothing without any error).
        sql.SQL(
            "CREATE POLICY geocommuns_update ON {} FOR UPDATE TO {} USING (true) "
            "WITH CHECK (geocommuns_may_write({}, code_insee, epci))"
        ).format(t, editors, sql.Literal(layer.id)),
        sql.SQL("CREATE POLICY geocommuns_delete ON {} FOR DELETE TO {} USING (true)").format(t, editors),
        _computed_function(layer),
        sql.SQL(
            "CREATE TRIGGER geocommuns_computed BEFORE INSERT OR UPDATE OR DELETE ON {} "
            "FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(t, sql.Identifier(f"geocommuns_{layer.id}_computed")),
        sql.SQL(
            "CREATE TRIGGER geocommuns_journal AFTER INSERT OR UPDATE OR DELETE ON {} "
            "FOR EACH ROW EXECUTE FUNCTION geocommuns_journal_login()"
        ).format(t),
    ]
    if fid_seq and fid_seq[0]:
        statements.append(
            sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}, {}").format(
                sql.SQL(fid_seq[0]), editors, sql.Identifier(API_WRITE))
        )
    for f in layer.fields:
        for kind, expression in _check(f):
            statements.append(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID").format(
                    t, sql.Identifier(constraint_name(layer, f.name, kind)), expression)
            )
    statements += _view_statements(layer, table, public_readers)
    for statement in statements:
        cur.execute(statement)


def view_name(layer: LayerDef) -> str:
    """The view QGIS projects read and edit a layer through (``<layer>_qgis``)."""
    return f"{layer.id}_qgis"


def _view_statements(layer: LayerDef, table: str, readers: list[str]) -> list[sql.Composed]:
    """The layer's view: every column, sensitive values only on the rows the login may edit.

    The view (``security_barrier``, owned by the owner) shows a sensitive value where
    ``geocommuns_may_write`` allows the session's login (the API's rule: a contributor's
    territory, an editor's layers, an admin everywhere), NULL elsewhere, so QGIS can read
    every column of it. Writes through the view go to the table by an INSTEAD OF trigger
    run as the owner, in which the table's own triggers still judge the session's login
    (rights, place, computed fields, journal); a sensitive value the login left
    unchanged keeps the stored one.
    """
    t = sql.Identifier(table)
    v = sql.Identifier(view_name(layer))
    fn = sql.Identifier(f"geocommuns_{layer.id}_qgis_write")
    where = sql.SQL("geocommuns_may_write({}, t.code_insee, t.epci)").format(sql.Literal(layer.id))
    shown = [
        sql.SQL("CASE WHEN {} THEN t.{} END AS {}").format(where, sql.Identifier(f.name), sql.Identifier(f.name))
        if f.sensitive else sql.SQL("t.{}").format(sql.Identifier(f.name))
        for f in layer.fields
    ]
    names = [*(f.name for f in layer.fields), "geom"]
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    new_values = sql.SQL(", ").join(sql.SQL("NEW.{}").format(sql.Identifier(n)) for n in names)
    sets = sql.SQL(", ").join(
        sql.SQL("{0} = CASE WHEN NEW.{0} IS NOT DISTINCT FROM OLD.{0} THEN t.{0} ELSE NEW.{0} END").format(
            sql.Identifier(f.name))
        if f.sensitive else sql.SQL("{0} = NEW.{0}").format(sql.Identifier(f.name))
        for f in layer.fields
    )
    body = sql.SQL("""
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {layer} ({columns}) VALUES ({new_values}) RETURNING fid INTO NEW.fid;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE {layer} t SET {sets}, geom = NEW.geom WHERE t.fid = OLD.fid;
        RETURN NEW;
    END IF;
    DELETE FROM {layer} WHERE fid = OLD.fid;
    RETURN OLD;
END $$""").format(fn=fn, layer=sql.Identifier(layer.id), columns=columns, new_values=new_values, sets=sets)
    editors = sql.SQL(", ").join(map(sql.Identifier, EDITING_GROUPS))
    return [
        sql.SQL("DROP VIEW IF EXISTS {}").format(v),
        sql.SQL("CREATE VIEW {} WITH (security_barrier = true) AS SELECT t.fid, {}, t.geom FROM {} t").format(
            v, sql.SQL(", ").join(shown), t),
        body,
        sql.SQL("CREATE TRIGGER geocommuns_write INSTEAD OF INSERT OR UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()").format(v, fn),
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(v),
        sql.SQL("GRANT SELECT ON {} TO {}").format(v, sql.SQL(", ").join(map(sql.Identifier, readers))),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(v, editors),
    ]


def grant_store_tables(conn: psycopg.Connection[Any]) -> None:
    """Grants of the API's roles on the store's own tables (journal, users, meta, bookkeeping).

    Both read them; the write role may also add journal entries, nothing else (the ETag
    secret is made here, by the owner, so that the write role only reads it).
    """
    from geocommuns.ingest.journal import META_TABLE, REVIEWS_TABLE, etag_secret
    from geocommuns.ingest.sqldb import Db

    if conn.execute("SELECT to_regclass(%s)", [META_TABLE]).fetchone() != (None,):
        etag_secret(Db(conn, "postgres"))
    reads = ("geocommuns_users", "geocommuns_journal", "geocommuns_meta", "geocommuns_layers",
             "geocommuns_conflicts")
    for table in reads:
        if conn.execute("SELECT to_regclass(%s)", [table]).fetchone() == (None,):
            continue
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}, {}").format(
            sql.Identifier(table), sql.Identifier(API_READ), sql.Identifier(API_WRITE)))
    if conn.execute("SELECT to_regclass(%s)", [JOURNAL_TABLE]).fetchone() != (None,):
        conn.execute(sql.SQL("GRANT INSERT ON {} TO {}").format(
            sql.Identifier(JOURNAL_TABLE), sql.Identifier(API_WRITE)))
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'seq')", [JOURNAL_TABLE]).fetchone()
        if seq and seq[0]:
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                sql.SQL(seq[0]), sql.Identifier(API_WRITE)))
    if conn.execute("SELECT to_regclass(%s)", [REVIEWS_TABLE]).fetchone() != (None,):
        # the review queue: the write role queues citizens' reports and technicians'
        # submissions and records decisions; the read role never sees it (e-mails)
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
            sql.Identifier(REVIEWS_TABLE), sql.Identifier(API_WRITE)))
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [REVIEWS_TABLE]).fetchone()
        if seq and seq[0]:
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                sql.SQL(seq[0]), sql.Identifier(API_WRITE)))


# -- logins ------------------------------------------------------------------------------


def _login_exists(conn: psycopg.Connection[Any], name: str) -> tuple[bool, bool] | None:
    """(can log in, is a geocommuns login) of role ``name``, or None when it does not exist."""
    row = conn.execute(
        "SELECT r.rolcanlogin, EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "WHERE m.member = r.oid AND g.rolname = ANY(%s)) FROM pg_roles r WHERE r.rolname = %s",
        [list(LOGIN_GROUPS.values()), name],
    ).fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def create_login(conn: psycopg.Connection[Any], name: str, role: str) -> str:
    """Create the PostgreSQL login of a user, member of its role's group; return its password.

    ``role`` is a user's role kind (reader, partner, contributor, editor, admin) or one of the
    API's (``api_read``: reads only; ``api_write``: the layer tables and the journal).

    The password is shown once (PostgreSQL keeps only its SCRAM verifier). An existing
    geocommuns login of that name (a user revoked then added again) gets a new password
    and group.

    Raises
    ------
    DbSecurityError
        When a role of that name exists and is not a geocommuns login (``postgres``...).
    """
    if role not in LOGIN_GROUPS:
        msg = f"unknown role {role!r}; use one of: {', '.join(LOGIN_GROUPS)}"
        raise DbSecurityError(msg)
    ensure_roles(conn)
    password = secrets.token_urlsafe(18)
    found = _login_exists(conn, name)
    if found is not None and not found[1]:
        msg = f"a database role {name!r} already exists and is not a geocommuns login; choose another name"
        raise DbSecurityError(msg)
    user = sql.Identifier(name)
    with conn.transaction():
        conn.execute("SET LOCAL password_encryption = 'scram-sha-256'")
        verb = "CREATE" if found is None else "ALTER"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN INHERIT PASSWORD {}").format(user, sql.Literal(password)))
        for group in LOGIN_GROUPS.values():
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), user))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(LOGIN_GROUPS[role]), user))
    if role in {"api_read", "api_write"}:
        grant_store_tables(conn)
    return password


#: Default names of the API's two logins (cluster-wide, like every PostgreSQL role).
API_READ_LOGIN = "geocommuns_api_lecture"
API_WRITE_LOGIN = "geocommuns_api_ecriture"


def login_url(database_url: str, user: str, password: str) -> str:
    """``database_url`` (the owner's) with another user and password, as a libpq URL."""
    info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(database_url).items() if v}
    info.pop("user", None)
    info.pop("password", None)
    host = info.pop("host", "")
    port = info.pop("port", "")
    dbname = info.pop("dbname", "")
    if host.startswith("/"):  # a Unix socket folder: a query parameter, not a host name
        info["host"] = host
        host = ""
    where = f"{host}:{port}" if host and port else host
    if port and not host:
        info["port"] = port
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(info.items()))
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{where}/{quote(dbname, safe='')}"
        + (f"?{query}" if query else "")
    )


def service_logins(
    conn: psycopg.Connection[Any],
    database_url: str,
    *,
    read_login: str = API_READ_LOGIN,
    write_login: str = API_WRITE_LOGIN,
) -> dict[str, str]:
    """Create (or give new passwords to) the API's read and write logins; their URLs.

    The read login (group ``geocommuns_api_read``) reads the layers and the store's
    tables and writes nothing; the write login (``geocommuns_api_write``) may change the
    layer tables and add journal entries, nothing else. Both inherit their grants from
    their group, which ``geocommuns publish`` refreshes on every new table, so the logins
    never need to be made again after a publish. The store's own tables are made here,
    by the owner, when missing (the write login may not create them).

    Parameters
    ----------
    conn
        An owner connection (autocommit).
    database_url
        The owner's URL (host, port and database of the returned URLs).
    read_login, write_login
        The logins' names.

    Returns
    -------
    dict
        ``{"read": url, "write": url}``, each with its new password (shown once).
    """
    from geocommuns.ingest.journal import ensure_schema as ensure_journal
    from geocommuns.ingest.sqldb import Db

    if read_login == write_login:
        msg = f"the read and write logins must differ (both {read_login!r})"
        raise DbSecurityError(msg)
    install(conn)
    ensure_journal(Db(conn, "postgres"))
    return {
        "read": login_url(database_url, read_login, create_login(conn, read_login, "api_read")),
        "write": login_url(database_url, write_login, create_login(conn, write_login, "api_write")),
    }


def disable_login(conn: psycopg.Connection[Any], name: str) -> int:
    """Forbid a user's login at once: NOLOGIN, and its open sessions terminated.

    Returns
    -------
    int
        The sessions terminated (0 when the user had no login).
    """
    found = _login_exists(conn, name)
    if found is None or not found[1]:
        return 0
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
        [name],
    ).fetchall()
    return len(rows)


def login_state(conn: psycopg.Connection[Any], name: str) -> str:
    """``login``, ``disabled`` or ``none``: the state of a user's database login."""
    found = _login_exists(conn, name)
    if found is None or not found[1]:
        return "none"
    return "login" if found[0] else "disabled"
