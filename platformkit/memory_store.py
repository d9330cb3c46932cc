"""An in-memory database for handler tests: the part of pymongo's Database/Collection API the
platform uses, limited to the Mongo subset every service keeps (/work/shared/conventions.md).

Why a fake store and not a fake repository: a handler reads through the repository
(platformkit/repository.py: load, decide, commit a change document with its events) AND through a
few queries (lists, look-ups, a read model). Running the real Repository over this database tests
the handler's rules, scope checks and events with the SAME commit protocol as production (unique
change ids, materialised copies, idempotency stamps) and no broker or server. It also enforces the
subset: an operator outside it (`$lookup`, `$expr`, an aggregation, a transaction) raises
`OutsideSubset`, so a handler test fails when a service drifts out of what FerretDB supports.

Semantics kept: unique (and sparse unique) indexes refuse duplicates with DuplicateKeyError;
equality on an array field matches an element; dotted paths; `$in $nin $ne $exists $gt $gte $lt
$lte $or $and $regex` in filters; `$set $unset $inc $max $push ($each) $setOnInsert` in updates;
sort, skip, limit, projections (inclusion or exclusion). Documents are deep-copied in and out, as
a server would. Not thread-safe by design: handler tests are single-threaded (concurrency is
tested against the real store, tests/membership/test_concurrency.py)."""
from __future__ import annotations

import copy
import re
from typing import Any, Iterable, Iterator

from pymongo.errors import BulkWriteError, DuplicateKeyError

FILTER_OPERATORS = {"$in", "$nin", "$ne", "$exists", "$gt", "$gte", "$lt", "$lte", "$regex", "$options", "$eq"}
UPDATE_OPERATORS = {"$set", "$unset", "$inc", "$max", "$push", "$setOnInsert"}
_MISSING = object()


class OutsideSubset(NotImplementedError):
    """A query or update the platform's Mongo subset does not allow (conventions.md)."""


# ---------------------------------------------------------------- pure matching
def _values(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted path (through arrays, as Mongo does); [] when absent."""
    head, _, rest = path.partition(".")
    if isinstance(doc, list):
        if head.isdigit():
            return _values(doc[int(head)], rest) if int(head) < len(doc) and rest else (
                [doc[int(head)]] if int(head) < len(doc) else [])
        return [v for item in doc for v in _values(item, path)]
    if not isinstance(doc, dict) or head not in doc:
        return []
    return _values(doc[head], rest) if rest else [doc[head]]


def _candidates(values: list[Any]) -> list[Any]:
    """A value and, for arrays, their elements (equality on an array field matches an element)."""
    out: list[Any] = []
    for v in values:
        out.append(v)
        if isinstance(v, list):
            out.extend(v)
    return out


def _comparable(a: Any, b: Any) -> bool:
    return a is not None and b is not None and (type(a) is type(b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)))


def _condition(values: list[Any], cond: Any) -> bool:
    if not (isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond)):
        return _equals(values, cond)
    for name, arg in cond.items():
        if name not in FILTER_OPERATORS:
            raise OutsideSubset(f"filter operator {name}")
        cands = _candidates(values)
        if name == "$eq" and not _equals(values, arg):
            return False
        if name == "$in" and not any(_equals(values, a) for a in arg):
            return False
        if name == "$nin" and any(_equals(values, a) for a in arg):
            return False
        if name == "$ne" and _equals(values, arg):
            return False
        if name == "$exists" and bool(values) != bool(arg):
            return False
        if name in ("$gt", "$gte", "$lt", "$lte"):
            test = {"$gt": lambda v: v > arg, "$gte": lambda v: v >= arg,
                    "$lt": lambda v: v < arg, "$lte": lambda v: v <= arg}[name]
            if not any(_comparable(v, arg) and test(v) for v in cands):
                return False
        if name == "$regex":
            flags = re.I if "i" in cond.get("$options", "") else 0
            if not any(isinstance(v, str) and re.search(arg, v, flags) for v in cands):
                return False
    return True


def _equals(values: list[Any], wanted: Any) -> bool:
    if wanted is None:
        return not values or any(v is None for v in _candidates(values))
    return any(v == wanted for v in _candidates(values))


def matches(doc: dict[str, Any], query: dict[str, Any] | None) -> bool:
    for key, cond in (query or {}).items():
        if key in ("$or", "$and"):
            results = (matches(doc, q) for q in cond)
            if not (any(results) if key == "$or" else all(results)):
                return False
        elif key.startswith("$"):
            raise OutsideSubset(f"query operator {key}")
        elif not _condition(_values(doc, key), cond):
            return False
    return True


def _project(doc: dict[str, Any], projection: Any) -> dict[str, Any]:
    if not projection:
        return doc
    if isinstance(projection, (list, tuple)):
        projection = {f: 1 for f in projection}
    include = {k for k, v in projection.items() if v and k != "_id"}
    if include:
        out = {"_id": doc["_id"]} if projection.get("_id", 1) and "_id" in doc else {}
        for path in include:
            head = path.split(".")[0]  # a dotted inclusion keeps its top-level field (enough here)
            if head in doc:
                out[head] = doc[head]
        return out
    return {k: v for k, v in doc.items() if projection.get(k, 1)}


def _sort_key(spec: list[tuple[str, int]]):
    def key(doc: dict) -> tuple:
        parts = []
        for field, _direction in spec:
            vals = _values(doc, field)
            v = vals[0] if vals else None
            parts.append((v is not None, str(type(v)) if v is not None else "", v if v is not None else 0))
        return tuple(parts)
    return key


def _sorted(docs: list[dict], spec: list[tuple[str, int]]) -> list[dict]:
    for field, direction in reversed(spec):  # stable sorts, last key first
        docs = sorted(docs, key=_sort_key([(field, direction)]), reverse=direction < 0)
    return docs


def _set_path(doc: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _get_path(doc: dict, path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _unset_path(doc: dict, path: str) -> None:
    head, _, last = path.rpartition(".")
    parent = _get_path(doc, head) if head else doc
    if isinstance(parent, dict):
        parent.pop(last, None)


def apply_update(doc: dict[str, Any], update: dict[str, Any], inserting: bool = False) -> dict[str, Any]:
    if not update or not all(k.startswith("$") for k in update):
        raise OutsideSubset("an update must use operators (replace_one replaces)")
    doc = copy.deepcopy(doc)
    for operator, fields in update.items():
        if operator not in UPDATE_OPERATORS:
            raise OutsideSubset(f"update operator {operator}")
        for path, value in fields.items():
            current = _get_path(doc, path)
            if operator == "$set" or (operator == "$setOnInsert" and inserting):
                _set_path(doc, path, copy.deepcopy(value))
            elif operator == "$unset":
                _unset_path(doc, path)
            elif operator == "$inc":
                _set_path(doc, path, (0 if current is _MISSING else current) + value)
            elif operator == "$max":
                if current is _MISSING or value > current:
                    _set_path(doc, path, value)
            elif operator == "$push":
                items = value["$each"] if isinstance(value, dict) and "$each" in value else [value]
                _set_path(doc, path, (([] if current is _MISSING else list(current)) + copy.deepcopy(list(items))))
    return doc


# ---------------------------------------------------------------- results
class InsertOneResult:
    def __init__(self, inserted_id: Any):
        self.inserted_id = inserted_id
        self.acknowledged = True


class UpdateResult:
    def __init__(self, matched: int, modified: int, upserted_id: Any = None):
        self.matched_count, self.modified_count, self.upserted_id = matched, modified, upserted_id
        self.acknowledged = True
        self.raw_result = {"n": matched + (1 if upserted_id is not None else 0)}


class DeleteResult:
    def __init__(self, deleted: int):
        self.deleted_count = deleted
        self.acknowledged = True


class Cursor:
    def __init__(self, docs: list[dict], projection: Any):
        self._docs, self._projection = docs, projection
        self._skip, self._limit = 0, 0

    def sort(self, key: Any, direction: int = 1) -> "Cursor":
        spec = [(key, direction)] if isinstance(key, str) else list(key)
        self._docs = _sorted(self._docs, spec)
        return self

    def skip(self, n: int) -> "Cursor":
        self._skip = n
        return self

    def limit(self, n: int) -> "Cursor":
        self._limit = n
        return self

    def __iter__(self) -> Iterator[dict]:
        docs = self._docs[self._skip:]
        if self._limit:
            docs = docs[:self._limit]
        return iter([copy.deepcopy(_project(d, self._projection)) for d in docs])


# ---------------------------------------------------------------- collections
class MemoryCollection:
    def __init__(self, database: "MemoryDatabase", name: str):
        self.database, self.name = database, name
        self.docs: dict[Any, dict] = {}
        self.unique: list[tuple[list[str], bool, str]] = []  # (fields, sparse, name)
        self.full_name = f"{database.name}.{name}"

    # indexes
    def create_index(self, keys: Any, unique: bool = False, sparse: bool = False, name: str | None = None,
                     **_options: Any) -> str:
        fields = [keys] if isinstance(keys, str) else [k for k, _ in keys]
        name = name or "_".join(fields)
        if unique and all(u[2] != name for u in self.unique):
            self.unique.append((fields, sparse, name))
        return name

    def _check_unique(self, doc: dict, replacing: Any = _MISSING) -> None:
        for other_id, other in self.docs.items():
            if other_id == doc["_id"] and (replacing is _MISSING or replacing != other_id):
                raise DuplicateKeyError(f"E11000 duplicate key _id {doc['_id']!r} in {self.name}", 11000,
                                        {"keyValue": {"_id": doc["_id"]}})
        for fields, sparse, name in self.unique:
            key = tuple(_get_path(doc, f) for f in fields)
            if sparse and all(k is _MISSING for k in key):
                continue
            key = tuple(None if k is _MISSING else k for k in key)
            for other_id, other in self.docs.items():
                if other_id == doc["_id"] or (replacing is not _MISSING and other_id == replacing):
                    continue
                theirs = tuple(_get_path(other, f) for f in fields)
                if sparse and all(t is _MISSING for t in theirs):
                    continue
                if tuple(None if t is _MISSING else t for t in theirs) == key:
                    raise DuplicateKeyError(f"E11000 duplicate key {name} {key!r} in {self.name}", 11000,
                                            {"keyValue": dict(zip(fields, key))})

    # reads
    def _matching(self, query: dict | None) -> list[dict]:
        return [d for d in list(self.docs.values()) if matches(d, query)]  # copied: other threads write

    def find(self, filter: dict | None = None, projection: Any = None, *, sort: Any = None, limit: int = 0,
             skip: int = 0, **_options: Any) -> Cursor:
        cursor = Cursor(self._matching(filter), projection)
        if sort:
            cursor.sort(sort)
        return cursor.skip(skip).limit(limit)

    def find_one(self, filter: Any = None, projection: Any = None, *, sort: Any = None, **_options: Any) -> dict | None:
        if filter is not None and not isinstance(filter, dict):
            filter = {"_id": filter}
        for doc in self.find(filter, projection, sort=sort, limit=1):
            return doc
        return None

    def count_documents(self, filter: dict, limit: int = 0, **_options: Any) -> int:
        n = len(self._matching(filter))
        return min(n, limit) if limit else n

    def distinct(self, key: str, filter: dict | None = None) -> list:
        seen: list = []
        for d in self._matching(filter):
            for v in _candidates(_values(d, key)):
                if v not in seen and not isinstance(v, list):
                    seen.append(v)
        return seen

    # writes
    def insert_one(self, doc: dict) -> InsertOneResult:
        if "_id" not in doc:
            doc["_id"] = f"mem{len(self.docs) + 1}:{id(doc)}"
        stored = copy.deepcopy(doc)
        self._check_unique(stored)
        self.docs[stored["_id"]] = stored
        return InsertOneResult(stored["_id"])

    def insert_many(self, docs: Iterable[dict], ordered: bool = True) -> Any:
        errors = []
        ids = []
        for i, doc in enumerate(docs):
            try:
                ids.append(self.insert_one(doc).inserted_id)
            except DuplicateKeyError as exc:
                errors.append({"index": i, "code": 11000, "errmsg": str(exc)})
                if ordered:
                    break
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(ids)})
        result = InsertOneResult(None)
        result.inserted_ids = ids
        return result

    def replace_one(self, filter: dict, replacement: dict, upsert: bool = False) -> UpdateResult:
        if any(k.startswith("$") for k in replacement):
            raise OutsideSubset("replace_one takes a document, not operators")
        found = self._matching(filter)[:1]
        if not found:
            if not upsert:
                return UpdateResult(0, 0)
            new = {**{k: v for k, v in filter.items() if not k.startswith("$") and not isinstance(v, dict)},
                   **copy.deepcopy(replacement)}
            self.insert_one(new)
            return UpdateResult(0, 0, new["_id"])
        old = found[0]
        new = {**copy.deepcopy(replacement), "_id": old["_id"]}
        self._check_unique(new, replacing=old["_id"])
        self.docs[old["_id"]] = new
        return UpdateResult(1, int(new != old))

    def _update(self, filter: dict, update: dict, upsert: bool, many: bool) -> UpdateResult:
        found = self._matching(filter)
        if not many:
            found = found[:1]
        if not found:
            if not upsert:
                return UpdateResult(0, 0)
            base = {k: v for k, v in filter.items() if not k.startswith("$") and not isinstance(v, dict)}
            new = apply_update(base, update, inserting=True)
            self.insert_one(new)
            return UpdateResult(0, 0, new["_id"])
        modified = 0
        for old in found:
            new = apply_update(old, update)
            new["_id"] = old["_id"]
            self._check_unique(new, replacing=old["_id"])
            modified += int(new != old)
            self.docs[old["_id"]] = new
        return UpdateResult(len(found), modified)

    def update_one(self, filter: dict, update: dict, upsert: bool = False) -> UpdateResult:
        return self._update(filter, update, upsert, many=False)

    def update_many(self, filter: dict, update: dict, upsert: bool = False) -> UpdateResult:
        return self._update(filter, update, upsert, many=True)

    def delete_one(self, filter: dict) -> DeleteResult:
        for d in self._matching(filter)[:1]:
            del self.docs[d["_id"]]
            return DeleteResult(1)
        return DeleteResult(0)

    def delete_many(self, filter: dict) -> DeleteResult:
        gone = self._matching(filter)
        for d in gone:
            del self.docs[d["_id"]]
        return DeleteResult(len(gone))

    def bulk_write(self, requests: list, ordered: bool = True) -> Any:
        """pymongo's UpdateOne/ReplaceOne/InsertOne/DeleteOne request objects (their documented
        constructor arguments, read back from the attributes pymongo keeps them in)."""
        for r in requests:
            kind = type(r).__name__
            if kind == "UpdateOne":
                self.update_one(r._filter, r._doc, upsert=bool(r._upsert))
            elif kind == "UpdateMany":
                self.update_many(r._filter, r._doc, upsert=bool(r._upsert))
            elif kind == "ReplaceOne":
                self.replace_one(r._filter, r._doc, upsert=bool(r._upsert))
            elif kind == "InsertOne":
                self.insert_one(r._doc)
            elif kind in ("DeleteOne", "DeleteMany"):
                (self.delete_one if kind == "DeleteOne" else self.delete_many)(r._filter)
            else:
                raise OutsideSubset(f"bulk request {kind}")

        class Result:
            bulk_api_result = {"nInserted": 0, "nUpserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0,
                               "upserted": [], "writeErrors": [], "writeConcernErrors": []}
        return Result()

    def drop(self) -> None:
        self.docs.clear()

    def aggregate(self, *_args: Any, **_kwargs: Any) -> Any:
        raise OutsideSubset("aggregate: services keep to find/count (FerretDB pushes down none of it)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise OutsideSubset(f"Collection.{name} is not part of the platform's subset (or not faked yet)")


class MemoryDatabase:
    """`db[name]` and `db.name` give the same MemoryCollection, created on first use."""

    def __init__(self, name: str = "memory"):
        self.name = name
        self._collections: dict[str, MemoryCollection] = {}

    def __getitem__(self, name: str) -> MemoryCollection:
        if name not in self._collections:
            self._collections[name] = MemoryCollection(self, name)
        return self._collections[name]

    def __getattr__(self, name: str) -> MemoryCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def list_collection_names(self) -> list[str]:
        return [n for n, c in self._collections.items() if c.docs]

    def command(self, name: str, *_args: Any, **_kwargs: Any) -> dict:
        if name == "ping":
            return {"ok": 1.0}
        raise OutsideSubset(f"command {name}")

    def with_indexes(self, spec: dict[str, list[tuple]]) -> "MemoryDatabase":
        """The unique indexes of a service's INDEXES declaration (what refuses duplicates)."""
        for coll, indexes in spec.items():
            for keys, options in indexes:
                self[coll].create_index(keys, **options)
        return self
