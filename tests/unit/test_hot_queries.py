"""Hot queries are top-level equalities (conventions.md; issue #14 item 3).

FerretDB 1.24 pushes only top-level scalar equality down to PostgreSQL (`_jsonb->'f' @> v`, served
by the GIN indexes of platformkit/store_prep.py); `$in`, `$or`, `$exists`, `$ne`, ranges and
`$regex` are answered by reading the whole collection. So a query operator may appear in the code
only where a full read is not at stake, each place named below with why. A new use fails this
test: ask an equality instead (a stored array such as a `scope`, `mongo.find_by_ids` for `_id`
look-ups, `paging.page_union` for an OR of equalities, an inequality checked in code on what an
equality found), or add the place here with its reason. An entry no longer used fails too, so that
the list only shrinks.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATORS = {"$in", "$or", "$exists", "$ne", "$nin", "$gt", "$gte", "$lt", "$lte", "$regex"}

# (file, function) -> why its operators are no full read of a hot collection
ALLOWED: dict[tuple[str, str], str] = {
    ("platformkit/paging.py", "_after_step"):
        "a cursor step: one range on a sort field, ANDed with the list's equalities",
    ("platformkit/repository.py", "Repository._materialise"):
        "by _id: a guard on the one copy (it never goes backwards)",
    ("platformkit/membership_view.py", "apply_versioned"):
        "by _id: a version guard on the one view document",
    ("platformkit/memory_store.py", "<module>"): "the in-memory store's list of the operators it implements",
    ("platformkit/memory_store.py", "_condition"): "the in-memory store implements the operators",
    ("platformkit/memory_store.py", "matches"): "the in-memory store implements the operators",
    ("services/membership/batch.py", "prune"): "a daily job deleting old batches, not a request path",
    ("services/training/view.py", "apply_membership_batch"):
        "by _id: a guard on the one view document",
    ("services/reporting/generations/mongo.py", "MongoGeneration._apply_ops"):
        "the projector's guard on ONE document by `_id` (applied offset below this one, or none yet): "
        "FerretDB looks the document up by `_id` and checks the rest on it",
}


def sources() -> list[Path]:
    return sorted(ROOT.glob("services/**/*.py")) + sorted(ROOT.glob("platformkit/*.py"))


def operator_uses(source: str) -> list[tuple[str, str, int]]:
    """(enclosing function's qualified name or "<module>", operator, line) of each string
    constant that is a query operator."""
    found: list[tuple[str, str, int]] = []

    def walk(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                is_def = not isinstance(child, ast.ClassDef)
                walk(child, [*scope, child.name], in_function or is_def)
                continue
            if isinstance(child, ast.Constant) and child.value in OPERATORS:
                found.append((".".join(scope) if in_function else "<module>", child.value, child.lineno))
            walk(child, scope, in_function)
    walk(ast.parse(source), [], False)
    return found


def test_query_operators_only_where_allowed():
    seen: set[tuple[str, str]] = set()
    unexpected = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        for function, operator, line in operator_uses(path.read_text(encoding="utf-8")):
            seen.add((rel, function))
            if (rel, function) not in ALLOWED:
                unexpected.append(f"{rel}:{line} {function}: {operator}")
    assert not unexpected, "query operators outside the allow-list (ask equalities):\n" + "\n".join(unexpected)
    assert not set(ALLOWED) - seen, f"allow-list entries no longer used (remove them): {sorted(set(ALLOWED) - seen)}"


def test_the_check_sees_operators_in_functions_methods_and_lambdas():
    source = '''
FILTER = {"$in": 1}
def find(c):
    return c.find({"a": {"$ne": 1}})
class Store:
    def page(self):
        step = {"x": {"$gt" if True else "$lt": 1}}
        return lambda: {"$or": [step]}
    def plain(self):
        return {"a": "$in the text"}
'''
    uses = operator_uses(source)
    assert {(f, op) for f, op, _ in uses} == {("<module>", "$in"), ("find", "$ne"), ("Store.page", "$gt"),
                                              ("Store.page", "$lt"), ("Store.page", "$or")}
