"""Reporting service layer: which generation is live, scope checks against reporting's own
hierarchy (built from membership events), targets. The targets' handlers take
`(command, caller, stores)` (commands.py, stores.py; the list: its arguments, then caller and
stores), the views' read handlers `(arguments..., caller, stores)`: the database only through
stores.py (the projector and the rebuild are entrypoints with their own)."""
from __future__ import annotations

from platformkit import mongo, paging
from platformkit.auth import PLATFORM_SCOPE, Caller, Forbidden, check_scope
from platformkit.errors import AlreadyExists, RuleViolated

from . import commands as c
from . import views
from .indicators import CATALOGUE
from .periods import parse
from .store import Generation
from .stores import TARGET_INDEXES, Stores

SERVICE = "reporting"


def setup(db) -> None:
    """The targets' indexes and the active generation's collections (a setup step of the runner,
    given the service's database)."""
    mongo.ensure_indexes(db, TARGET_INDEXES)
    Stores(db).live().setup()


def scoped_unit(caller: Caller, unit_id: str, gen: Generation) -> dict:
    unit = views.unit_info(gen, unit_id)
    check_scope(caller, unit["_id"], unit.get("ancestors", []))
    return unit


def path_scope(view_args: dict, stores: Stores) -> tuple[str, list[str]] | None:
    """The unit a request path names, for the scope check before input is parsed (None: unknown
    here, the endpoint answers 404)."""
    unit_id = view_args.get("unit_id")
    unit = stores.live().unit(unit_id) if unit_id else None
    return (unit["_id"], unit.get("ancestors", [])) if unit else None


def codes_from(q: dict) -> list[str] | None:
    raw = q.get("indicators")
    return [c for c in raw.split(",") if c] if raw else None


def unit_view(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    gen = stores.live()
    scoped_unit(caller, unit_id, gen)  # scope: the caller's subtree on the CURRENT hierarchy, as_of or not
    if q.get("as_of"):
        return views.unit_view_as_of(gen, stores.target_docs, unit_id, parse(q["period"]), q["as_of"].isoformat(),
                                     codes_from(q))
    return views.unit_view(gen, stores.target_docs, unit_id, parse(q["period"]), codes_from(q))


def children_view(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    gen = stores.live()
    scoped_unit(caller, unit_id, gen)  # scope: the caller's subtree on the CURRENT hierarchy, as_of or not
    if q.get("as_of"):
        return views.children_view_as_of(gen, stores.target_docs, unit_id, parse(q["period"]), q["as_of"].isoformat(),
                                         codes_from(q), q.get("include_closed"), q.get("after"), q.get("limit"))
    return views.children_view(gen, stores.target_docs, unit_id, parse(q["period"]), codes_from(q),
                               q.get("include_closed"), q.get("after"), q.get("limit"))


def series_view(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    gen = stores.live()
    scoped_unit(caller, unit_id, gen)
    if q["first"] > q["last"]:
        raise RuleViolated("first month is after the last", field="first")
    return views.series_view(gen, unit_id, q["indicator"], q["first"], q["last"])


def ratings_view(unit_id: str, year: int, caller: Caller, stores: Stores) -> dict:
    gen = stores.live()
    scoped_unit(caller, unit_id, gen)
    return views.ratings_view(gen, stores.target_docs, unit_id, year)


def me(caller: Caller, stores: Stores) -> dict:
    gen = stores.live()
    if caller.unit_id == PLATFORM_SCOPE:
        roots = list(gen.units.find({"is_root": True}).limit(50)) or \
            list(gen.units.find({"parent_id": None}).limit(50))  # a generation built before is_root: one scan
        # a real root before a provisional one (a unit heard of only as an ancestor)
        root = next((r for r in roots if not r.get("provisional")), roots[0] if roots else None)
        unit = views.unit_out(root, views.path_of(gen, root)) if root else None
    else:
        doc = gen.units.find_one({"_id": caller.unit_id})
        unit = views.unit_out(doc, views.path_of(gen, doc)) if doc else None
    return {"subject": caller.subject, "roles": list(caller.roles), "unit": unit}


def set_target(command: c.SetTarget, caller: Caller, stores: Stores) -> dict:
    """A target is assigned to a unit by a level above it (its parent or higher)."""
    unit_id = command.unit_id
    unit = views.unit_info(stores.live(), unit_id)
    check_scope(caller, unit["_id"], unit.get("ancestors", []), write=True)
    if caller.unit_id != PLATFORM_SCOPE and caller.unit_id not in unit.get("ancestors", []):
        raise Forbidden("targets are assigned by the level above the unit")
    ind = CATALOGUE[command.indicator]
    if ind.kind == "ratio" and command.value > 100:
        raise RuleViolated("a ratio's target is a percentage (0-100)", field="value")
    key = f"{unit_id}|{command.indicator}|{command.year}"
    fields = {"unit": unit_id, "parent_id": unit.get("parent_id"), "year": command.year,
              "indicator": command.indicator, "value": views.figure(ind, command.value),
              "assigned_by": caller.unit_id}
    # Written through the repository (platformkit/repository.py) like every aggregate: a second
    # assignment of the same target is a change committed by a unique insert, never an update of
    # the target document that a concurrent one could erase on FerretDB.
    targets = stores.targets
    if targets.get(key) is None:
        try:
            targets.create({"_id": key, **fields}, [])
            return _target_out(targets.load(key))
        except AlreadyExists:
            if targets.get(key) is None:  # inserted by a request that died before committing it
                targets.finish_create({"_id": key, **fields}, [])
    return _target_out(targets.command(key, lambda _doc: ({"$set": fields}, [])))


def _target_out(doc: dict) -> dict:
    """A count's target answers as an integer (targets stored before counts were kept whole too)."""
    ind = CATALOGUE.get(doc["indicator"])
    return {**doc, "value": views.figure(ind, doc["value"])} if ind else doc


def list_targets(unit_id: str, q: dict, caller: Caller, stores: Stores) -> dict:
    """The targets of a year set for the unit and its children of that year (closed ones too: a
    target stays with the year it was set for), each followed by those it carries from closed
    predecessors (`carried_from`); a page of units at a time (`limit` units, each with all its
    targets), by unit id."""
    gen = stores.live()
    unit = scoped_unit(caller, unit_id, gen)
    year = q["year"]
    by_id = {unit_id: unit, **{k["_id"]: k for k in views.children_of_year(gen, unit_id, year)}}
    page, next_cursor = paging.page_of_list(sorted(by_id), lambda u: [u], q.get("after"), q["limit"])
    own = [t for u in page for t in views.targets_of(stores.target_docs, u, year)]
    carried = views.carried_targets(gen, stores.target_docs, [by_id[u] for u in page], year)
    return {"items": [_target_out(t) for t in own + carried], "next_cursor": next_cursor}
