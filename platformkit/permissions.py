"""The role model: which roles may perform which kind of operation. One table, enforced in one
place (platformkit.web checks it before an endpoint parses its input), documented in
docs/security.md and tested as roles x operations by tests/auth.

A token names a subject, its roles and one org unit. The roles:
  operator  `admin` at unit `*`: the platform operator; creates root units, does anything.
  admin     a federation's administrator for its subtree: structure (create, rename, move, merge,
            dissolve units below its own unit), plus everything an officer does.
  officer   daily work in its subtree: members, dues, committees, ratings, training, welfare,
            targets. What an officer may *decide* depends on the level of its unit: approvals,
            confirmations and case decisions are made by a federation unit above the CĐCS (the
            domain rules check that level; a CĐCS officer holds the same role but decides nothing
            for its own CĐCS).
  viewer    reads only.
  service   another system (HR, payroll, e-learning): reads and enters data; decides nothing.
Every operation is also confined to the token's subtree (platformkit.auth.check_scope).
"""
from __future__ import annotations

from typing import Iterable

from .auth import PLATFORM_SCOPE, Caller

OPERATOR = "operator"
ROLES = (OPERATOR, "admin", "officer", "viewer", "service")

# capability -> the roles that hold it, and what it covers (the table in docs/security.md).
CAPABILITIES: dict[str, tuple[frozenset[str], str]] = {
    "read": (frozenset(ROLES), "read anything in the subtree"),
    "unit.structure": (frozenset({OPERATOR, "admin"}),
                       "create a unit below its own (incl. founding a CĐCS); rename, move, merge, "
                       "dissolve a unit below its own"),
    "unit.committee": (frozenset({OPERATOR, "admin", "officer"}), "record a CĐCS executive committee"),
    "rating.propose": (frozenset({OPERATOR, "admin", "officer"}), "propose a CĐCS quality rating"),
    "rating.confirm": (frozenset({OPERATOR, "admin", "officer"}),
                       "confirm a rating (level rule: a federation unit above the CĐCS)"),
    "member.enter": (frozenset({OPERATOR, "admin", "officer", "service"}),
                     "admit, import, change a profile, record dues, leave, reinstate"),
    "member.approve": (frozenset({OPERATOR, "admin", "officer"}),
                       "approve or refuse an admission, issue a card (level rule: a federation unit above the CĐCS)"),
    "member.transfer": (frozenset({OPERATOR, "admin", "officer"}),
                        "transfer a member (a destination outside the subtree makes it a request); accept or "
                        "refuse a request into the subtree; cancel one's own request"),
    "training.manage": (frozenset({OPERATOR, "admin", "officer"}),
                        "register and retire courses; plan, open, start, close, cancel classes"),
    "training.record": (frozenset({OPERATOR, "admin", "officer", "service"}),
                        "enrol, withdraw, attendance, completion, dissemination sessions"),
    "welfare.programme": (frozenset({OPERATOR, "admin", "officer"}), "create a care programme with its budget"),
    "welfare.request": (frozenset({OPERATOR, "admin", "officer", "service"}),
                        "request a case, disburse an approved case, record a loan repayment"),
    "welfare.decide": (frozenset({OPERATOR, "admin", "officer"}),
                       "approve or reject a case (level rule: a unit above the case's CĐCS)"),
    "target.assign": (frozenset({OPERATOR, "admin", "officer"}),
                      "assign a target to a unit below (level rule: by a level above the unit)"),
    "report.read": (frozenset(ROLES), "read periodic reports, their status tree and rates in the subtree"),
    "report.submit": (frozenset({OPERATOR, "admin", "officer"}),
                      "save and submit the unit's OWN periodic report (level rule: the token's unit is the reporting unit)"),
    "report.approve": (frozenset({OPERATOR, "admin", "officer"}),
                       "approve, return or reopen a periodic report (level rule: a unit above the reporting unit)"),
    "report.settings": (frozenset({OPERATOR, "admin"}), "set the periodic report deadlines of a unit's subtree"),
}


def roles_of(caller: Caller) -> frozenset[str]:
    """The model's roles of a token: `admin` at `*` is the platform operator."""
    roles = set(caller.roles)
    if caller.unit_id == PLATFORM_SCOPE and "admin" in roles:
        roles.add(OPERATOR)
    if caller.unit_id == PLATFORM_SCOPE:
        roles &= {OPERATOR, "viewer"}  # above every root only the operator acts; a viewer may read
    return frozenset(roles & set(ROLES))


def allowed(caller: Caller, capability: str) -> bool:
    holders, _ = CAPABILITIES[capability]
    return bool(roles_of(caller) & holders)


def holders(capability: str) -> frozenset[str]:
    return CAPABILITIES[capability][0]


def table_rows(roles: Iterable[str] = ROLES) -> list[list[str]]:
    """The table as rows (capability, description, one mark per role), for docs and tests."""
    roles = list(roles)
    return [[cap, text, *("yes" if r in held else "-" for r in roles)]
            for cap, (held, text) in CAPABILITIES.items()]
