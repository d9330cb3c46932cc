"""Prepares FerretDB's PostgreSQL tables for the platform's hot queries (the local default store).

FerretDB 1.24 on PostgreSQL keeps a collection as a table `<database>.<table>` of one `_jsonb`
column (the table name is in `<database>._ferretdb_database_metadata`) and sends a top-level
scalar equality of a filter to PostgreSQL as `_jsonb->'field' @> '<json value>'`, as a prepared
statement. Its own indexes are btree indexes on `_jsonb->'field'`, which `@>` cannot use: every
find, update and delete scans the whole table. What can serve it:

  CREATE INDEX ... USING gin ((_jsonb->'field') jsonb_path_ops)

and only when PostgreSQL plans each statement with its values (`plan_cache_mode =
force_custom_plan`; the generic plan of `_jsonb->$1 @> $2` never picks an expression index).
Measured on 200,000 documents: docs/benchmarks.md, "The local store".

`fastupdate = off`: by default a GIN index queues new entries in a pending list (up to 4 MB) that
every search reads in full until a vacuum or the list's limit merges it. These indexes serve
look-ups of one document by `_id` and small equality queries, between writes: measured on the
2.5M-member province, `find_one({_id})` on members read 200 pending pages and took 4.5 ms, 0.13 ms
once they were merged (docs/benchmarks.md). Entries go into the index at each write instead.

So every Mongo index a service declares (`mongo.ensure_indexes`) also names the fields its hot
queries filter on (`hot_fields`): this module creates one GIN index per such field, and one on
`_id` for every collection of the database (FerretDB's unique `_id` index is a btree too).
Only top-level fields: FerretDB pushes nothing else down (no `$in`, `$or`, `$exists`, ranges,
dotted paths), so such filters scan whatever the index (conventions.md: hot queries are
top-level equality).

Active only when FERRETDB_POSTGRESQL_URL names FerretDB's PostgreSQL database (deploy/local/infra.sh
sets it; it is also FerretDB's own variable for that URL); on MongoDB nothing here runs and the
declaration only creates ordinary Mongo indexes.

psql rather than a Python driver: PostgreSQL is only ever the local store behind FerretDB, the
client comes with the server's Debian packages, and the service images (which run on MongoDB)
need no driver for it. Idempotent (`IF NOT EXISTS`, one preparation at a time under an advisory
lock), so every process may run it at start; collections created later are covered by the next
`ensure_indexes`/`prepare` of their database.
"""
from __future__ import annotations

import glob
import logging
import shutil
import subprocess
from typing import Iterable, Mapping

from pymongo.database import Database
from pymongo.errors import OperationFailure

from . import settings

log = logging.getLogger(__name__)

URL_ENV = "FERRETDB_POSTGRESQL_URL"
METADATA_TABLE = "_ferretdb_database_metadata"
_LOCK_KEY = 5810_2026  # pg_advisory_lock key: one preparation at a time across processes


class StorePrepError(RuntimeError):
    pass


def postgresql_url() -> str:
    return settings.current().ferretdb_postgresql_url


def enabled() -> bool:
    return bool(postgresql_url())


def hot_fields(spec: Mapping[str, list[tuple]]) -> dict[str, list[str]]:
    """The fields a collection's hot queries filter on, from its Mongo index declaration
    (`mongo.ensure_indexes` format): every top-level field of every index, `_id` first."""
    out: dict[str, list[str]] = {}
    for coll, indexes in spec.items():
        fields = ["_id"]
        for keys, _options in indexes:
            names = [keys] if isinstance(keys, str) else [k for k, _ in keys]
            fields += [n for n in names if "." not in n and not n.startswith("$") and n not in fields]
        out[coll] = fields
    return out


def merge(*specs: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        for coll, fields in spec.items():
            have = out.setdefault(coll, ["_id"])
            have += [f for f in fields if f not in have]
    return out


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), "")
    if not found:
        raise StorePrepError("psql not found (Debian's postgresql-client): needed with " + URL_ENV)
    return found


def run_sql(sql: str, url: str | None = None, timeout: float = 300) -> str:
    """Run a script on FerretDB's PostgreSQL database; its tuples-only output (unaligned)."""
    res = subprocess.run([_psql(), url or postgresql_url(), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                         input=sql, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise StorePrepError(f"psql failed ({res.returncode}): {res.stderr.strip()[:2000]}")
    return res.stdout


def _ensure_collections(db: Database, names: Iterable[str]) -> None:
    """FerretDB creates a collection's table on its first write or index; create the declared ones
    now so that their GIN indexes exist before the first query."""
    existing = set(db.list_collection_names())
    for name in names:
        if name in existing:
            continue
        try:
            db.command("create", name)
        except OperationFailure as exc:
            if exc.code != 48:  # NamespaceExists: another process was quicker
                raise


def prepare(db: Database, hot: Mapping[str, Iterable[str]]) -> None:
    """GIN expression indexes for `hot` ({collection: [field, ...]}) and for the `_id` of every
    collection of `db`, and custom plans for the database. No-op without FERRETDB_POSTGRESQL_URL."""
    if not enabled():
        return
    hot = merge(hot)
    _ensure_collections(db, hot)
    pairs = [(coll, field) for coll, fields in hot.items() for field in fields]
    values = ", ".join(f"({_literal(c)}, {_literal(f)})" for c, f in pairs) or "(NULL, NULL)"
    schema = _literal(db.name)
    sql = f"""
SELECT pg_advisory_lock({_LOCK_KEY});
DO $prep$
DECLARE
  r record;
  tbl text;
  coll text;
  idx text;
BEGIN
  -- FerretDB prepares `_jsonb->$1 @> $2`: only a plan made with the values uses the GIN indexes.
  -- New sessions see it; FerretDB's pooled connections that are already open keep their setting
  -- (deploy/local/infra.sh also starts the server with it).
  EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
  IF to_regclass(format('%I.%I', {schema}, '{METADATA_TABLE}')) IS NULL THEN
    RETURN;  -- the database has no collection yet
  END IF;
  FOR r IN
      SELECT v.coll, v.field FROM (VALUES {values}) AS v(coll, field) WHERE v.coll IS NOT NULL
      UNION ALL
      SELECT NULL, '_id'  -- below: every collection's _id
  LOOP
    FOR tbl, coll IN EXECUTE format(
        'SELECT _jsonb->>''table'', _jsonb->>''_id'' FROM %I.%I WHERE $1 IS NULL OR _jsonb->''_id'' = to_jsonb($1)',
        {schema}, '{METADATA_TABLE}') USING r.coll
    LOOP
      idx := left(tbl, 40) || '_' || left(md5(tbl || '/' || r.field), 10) || '_gin';
      -- checked first: CREATE INDEX IF NOT EXISTS would still lock the table against writes
      IF to_regclass(format('%I.%I', {schema}, idx)) IS NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((_jsonb->%L) jsonb_path_ops) '
                       'WITH (fastupdate = off)', idx, {schema}, tbl, r.field);
      ELSIF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass(format('%I.%I', {schema}, idx))
                        AND 'fastupdate=off' = ANY(coalesce(reloptions, '{{}}'))) THEN
        -- an index made before fastupdate was off: switched, and its pending entries merged now
        EXECUTE format('ALTER INDEX %I.%I SET (fastupdate = off)', {schema}, idx);
        PERFORM gin_clean_pending_list(to_regclass(format('%I.%I', {schema}, idx)));
      END IF;
    END LOOP;
    IF r.coll IS NOT NULL AND NOT FOUND THEN
      RAISE EXCEPTION 'collection %.% has no table in FerretDB''s metadata', {schema}, r.coll;
    END IF;
  END LOOP;
END
$prep$;
SELECT pg_advisory_unlock({_LOCK_KEY});
"""
    run_sql(sql)
    log.debug("store prepared: %s, %d declared fields", db.name, len(pairs))


def gin_indexes(db_name: str) -> dict[str, list[str]]:
    """{table: [indexed expression, ...]} of the GIN indexes of a database's schema (for tests)."""
    out: dict[str, list[str]] = {}
    rows = run_sql(f"SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = {_literal(db_name)} "
                   f"AND indexdef LIKE '%USING gin%' ORDER BY 1, 2;")
    for line in rows.splitlines():
        if line:
            table, definition = line.split("|", 1)
            out.setdefault(table, []).append(definition)
    return out


def table_of(db_name: str, collection: str) -> str:
    """FerretDB's table for a collection (from its metadata table)."""
    t = run_sql(f"SELECT _jsonb->>'table' FROM {_ident(db_name)}.{METADATA_TABLE} "
                f"WHERE _jsonb->'_id' = to_jsonb({_literal(collection)}::text);").strip()
    if not t:
        raise StorePrepError(f"no table for {db_name}.{collection}")
    return t


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'
