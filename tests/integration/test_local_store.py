"""The local store (FerretDB 1.24 on PostgreSQL) serves every declared hot query from an index.

FerretDB sends a top-level scalar equality as `_jsonb->$1 @> $2`, a prepared statement; only the
GIN expression indexes of platformkit/store_prep.py (and custom plans) can serve it. For each
collection the services declare, its PostgreSQL table is filled with 200,000 documents in
FerretDB's own shape (a template document inserted through FerretDB, cloned by generate_series),
and PostgreSQL is asked for the plan of exactly the statement FerretDB prepares, executed more
than five times (when the generic plan would take over without force_custom_plan): a sequential
scan fails the test. On MongoDB (MONGO_URL) the same declarations are checked with `explain`.
"""
from __future__ import annotations

import json

import pytest

from platformkit import mongo, store_prep
from services.membership import stores as membership
from services.reporting import stores as reporting
from services.reporting.store import Generation
from services.training import stores as training
from services.welfare import stores as welfare

pytestmark = pytest.mark.integration

DOCS = 200_000
ARRAY_FIELDS = {"ancestors", "owner_ancestors", "organising_ancestors", "unit_path", "owner_scope", "organising_scope",
                "enrolled_member_ids", "certificate_nos", "name_terms", "scope", "scope_periods"}
BOOL_FIELDS = {"outbox_pending", "paths_dirty"}
INT_FIELDS = {"year", "seq"}


def declared() -> dict[str, tuple[dict[str, list[tuple]], dict[str, list[str]]]]:
    """{service: (index spec, hot fields)}: what each service's start-up declares."""
    gen = Generation(mongo.database("reporting"), 0)
    reporting_spec = {**gen.indexes(), "targets": reporting.TARGET_INDEXES["targets"]}
    # One bucket of each kind stands for all of them (same declaration, same shape).
    reporting_hot = {name: fields for name, fields in gen.hot_fields().items()
                     if name.endswith(("_agg_00", "_state_00", "_journal"))}
    return {
        "membership": (membership.INDEXES, {}),
        "training": (training.INDEXES, {}),
        "welfare": (welfare.INDEXES, {}),
        "reporting": (reporting_spec, reporting_hot),
    }


def unique_fields(indexes: list[tuple]) -> set[str]:
    out = set()
    for keys, options in indexes:
        if options.get("unique"):
            out |= {keys} if isinstance(keys, str) else {k for k, _ in keys}
    return out


def sql_value(field: str, unique: bool) -> tuple[str, str]:
    """(SQL expression over g for the filler, JSON of a value that some documents hold)."""
    if field in ARRAY_FIELDS:  # a unit's path: 50 provinces, 5,000 units
        return "jsonb_build_array('root', 'p' || (g % 50), 'u' || (g % 5000))", json.dumps("u1234")
    if field in BOOL_FIELDS:  # pending: a few
        return "to_jsonb(g % 1000 = 0)", "true"
    if field in INT_FIELDS:
        return ("to_jsonb(g)" if unique else "to_jsonb(2000 + g % 30)"), ("12345" if unique else "2015")
    if unique or field == "_id":
        return "to_jsonb('k' || g)", json.dumps("k12345")
    return "to_jsonb('v' || (g % 20000))", json.dumps("v1234")


def template(field: str):
    """A value of the field's type (FerretDB records each field's type in the document's `$s`)."""
    return ["root", "p0", "u0"] if field in ARRAY_FIELDS else False if field in BOOL_FIELDS \
        else 2000 if field in INT_FIELDS else "t"


def fill(db, coll: str, fields: list[str], unique: set[str]) -> str:
    """DOCS documents in FerretDB's table of `coll`; its table name."""
    doc = {f: template(f) for f in fields if f != "_id"}
    db[coll].insert_one({"_id": "template", **doc})
    table = store_prep.table_of(db.name, coll)
    sets = ", ".join(f"'{f}', {sql_value(f, f in unique)[0]}" for f in fields)
    # UNLOGGED: a test table dropped at the end needs no write-ahead log (a third of the fill time).
    store_prep.run_sql(f"""
        ALTER TABLE "{db.name}"."{table}" SET UNLOGGED;
        INSERT INTO "{db.name}"."{table}" (_jsonb)
        SELECT t._jsonb || jsonb_build_object({sets})
          FROM "{db.name}"."{table}" t, generate_series(1, {DOCS - 1}) AS g
         WHERE t._jsonb->'_id' = '"template"';""", timeout=600)
    return table


def plan(db_name: str, table: str, conditions: list[tuple[str, str]]) -> str:
    """PostgreSQL's plans of FerretDB's prepared statement, executed 7 times."""
    params = ", ".join(["text", "jsonb"] * len(conditions))
    where = " AND ".join(f"_jsonb->${2 * i + 1} @> ${2 * i + 2}" for i in range(len(conditions)))
    args = ", ".join(f"'{f}', '{v}'" for f, v in conditions)
    script = [f'PREPARE q({params}) AS SELECT _jsonb FROM "{db_name}"."{table}" WHERE {where};']
    script += [f"EXPLAIN EXECUTE q({args});"] * 7
    return store_prep.run_sql("\n".join(script))


def test_every_declared_hot_query_is_served_by_an_index(isolated):
    failures = []
    checked = 0
    seen: set[str] = set()  # the read model's collections are declared by training and welfare alike
    for service, (spec, extra) in declared().items():
        db = mongo.database(f"store{service}")
        hot = store_prep.merge(store_prep.hot_fields(spec), extra)
        try:
            if not store_prep.enabled():
                mongo.ensure_indexes(db, spec, hot=extra)
                checked += sum(_check_mongo(db, coll, fields, failures) for coll, fields in hot.items())
                continue
            # The documents first, then the service's start-up declaration (Mongo indexes and, through
            # store_prep, the GIN indexes): one index build over 200,000 rows instead of upkeep per row.
            tables = {coll: fill(db, coll, fields, unique_fields(spec.get(coll, [])))
                      for coll, fields in hot.items() if coll not in seen}
            mongo.ensure_indexes(db, spec, hot=extra)
            for coll, table in tables.items():
                seen.add(coll)
                fields, unique = hot[coll], unique_fields(spec.get(coll, []))
                store_prep.run_sql(f'ANALYZE "{db.name}"."{table}";')
                for field in fields:
                    value = sql_value(field, field in unique)[1]
                    p = plan(db.name, table, [(field, value)])
                    checked += 1
                    if "Seq Scan" in p or "Index" not in p:
                        failures.append(f"{db.name}.{coll} {{{field}: {value}}}:\n{p}")
                # ANDed equalities (compound declarations): still served
                for keys, _ in spec.get(coll, []):
                    if not isinstance(keys, str) and len(keys) > 1:
                        conds = [(k, sql_value(k, k in unique)[1]) for k, _ in keys]
                        p = plan(db.name, table, conds)
                        checked += 1
                        if "Seq Scan" in p or "Index" not in p:
                            failures.append(f"{db.name}.{coll} {conds}:\n{p}")
                # the table holds them (counted in SQL: FerretDB's count decodes every document) and
                # FerretDB itself reads the filled documents and finds the declared value
                rows = int(store_prep.run_sql(f'SELECT count(*) FROM "{db.name}"."{table}";'))
                assert rows >= DOCS, (coll, rows)
                want = json.loads(sql_value(fields[-1], fields[-1] in unique)[1])
                assert db[coll].find_one({fields[-1]: want}) is not None, (coll, fields[-1], want)
        finally:
            mongo.client().drop_database(db.name)
    assert checked >= 40, checked
    assert not failures, "sequential scans:\n" + "\n\n".join(failures)


def _check_mongo(db, coll, fields, failures) -> int:
    n = 0
    db[coll].insert_one({f: "x" for f in fields if f != "_id"})
    for field in fields:
        explained = json.dumps(db[coll].find({field: "x"}).explain().get("queryPlanner", {}), default=str)
        n += 1
        if "IXSCAN" not in explained and "IDHACK" not in explained and "EXPRESS" not in explained:
            failures.append(f"{db.name}.{coll} {{{field}}}: {explained[:500]}")
    return n


def test_preparation_is_idempotent_and_sets_custom_plans(isolated):
    db = mongo.database("storeprep")
    mongo.ensure_indexes(db, membership.INDEXES)
    if not store_prep.enabled():
        assert sorted(db.members.index_information())  # only Mongo indexes on MongoDB
        return
    first = store_prep.gin_indexes(db.name)
    mongo.ensure_indexes(db, membership.INDEXES)
    db.later.insert_one({"_id": 1})  # a collection created by a plain write: its _id at the next run
    store_prep.prepare(db, {})
    again = store_prep.gin_indexes(db.name)
    assert {t: v for t, v in again.items() if t in first} == first
    members = store_prep.table_of(db.name, "members")
    assert any("'unit_id'" in d and "jsonb_path_ops" in d for d in first[members])
    assert not any("enrolments" in d for ds in first.values() for d in ds)
    assert store_prep.table_of(db.name, "later") in again
    assert store_prep.run_sql("SHOW plan_cache_mode;").strip() == "force_custom_plan"


def test_gin_indexes_keep_no_pending_list_and_older_ones_are_switched(isolated):
    """Every GIN index is made with fastupdate off (no pending list that each look-up reads in
    full); one made before that by an older preparation is switched at the next one."""
    db = mongo.database("storeprep")
    mongo.ensure_indexes(db, membership.INDEXES)
    if not store_prep.enabled():
        return  # MongoDB: no GIN indexes
    members = store_prep.table_of(db.name, "members")
    definitions = store_prep.gin_indexes(db.name)[members]
    assert definitions and all("fastupdate=off" in d for d in definitions), definitions
    name = store_prep.run_sql(
        f"SELECT indexname FROM pg_indexes WHERE schemaname = '{db.name}' AND tablename = '{members}' "
        "AND indexdef LIKE '%USING gin%' LIMIT 1;").strip()
    store_prep.run_sql(f'ALTER INDEX "{db.name}"."{name}" SET (fastupdate = on);')
    assert any("fastupdate='on'" in d for d in store_prep.gin_indexes(db.name)[members])
    store_prep.prepare(db, {})
    assert all("fastupdate=off" in d for d in store_prep.gin_indexes(db.name)[members])
