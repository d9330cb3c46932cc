"""platformkit/contract.py is the one home of the event contract: no topic or group name is written
anywhere else in production code, the prefix is applied in one place, and the event types it lists
are the ones docs/events.md describes."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from platformkit import contract, settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [p for d in ("platformkit", "services") for p in (ROOT / d).rglob("*.py")]
CONTRACT_NAMES = {*contract.DOMAIN_TOPICS, *contract.FIXED_GROUPS, "reporting-projector"}
# A topic-like literal: anything ending in .events or .dlq, or naming a contract group.
TOPIC_LIKE = re.compile(r"(^|[^\w])[\w.-]*\.(events|dlq)$|^(training|welfare)-membership-view$|^reporting-projector")


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def topic_literals(source: str, name: str) -> list[tuple[int, str]]:
    tree = ast.parse(source, name)
    skip = docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and (node.value in CONTRACT_NAMES or TOPIC_LIKE.search(node.value))]


def test_no_topic_or_group_literal_outside_the_contract():
    offenders = [f"{p.relative_to(ROOT)}:{line}: {value!r}" for p in PRODUCTION
                 if p != ROOT / "platformkit" / "contract.py"
                 for line, value in topic_literals(p.read_text(), str(p))]
    assert not offenders, "name topics and groups through platformkit.contract:\n" + "\n".join(offenders)


def test_the_literal_check_sees_a_literal():
    source = ('"""membership.events in a docstring is fine"""\nTOPIC = "welfare.events"\n'
              'GROUP = "training-membership-view"\nOTHER = "events"\n')
    assert [v for _, v in topic_literals(source, "bad.py")] == ["welfare.events", "training-membership-view"]


def test_the_prefix_is_applied_once(monkeypatch):
    monkeypatch.setenv("TOPIC_PREFIX", "t9.")
    assert contract.topic(contract.MEMBERSHIP_EVENTS) == "t9.membership.events"
    assert contract.group(contract.WELFARE_MEMBERSHIP_VIEW) == "t9.welfare-membership-view"
    assert contract.dead_letter_topic(contract.WELFARE_MEMBERSHIP_VIEW) == "t9.welfare-membership-view.dlq"
    assert contract.logical("t9.training.events") == contract.TRAINING_EVENTS
    assert contract.topics(contract.REPORTING_SOURCES) == ["t9.membership.events", "t9.training.events",
                                                           "t9.welfare.events"]
    monkeypatch.delenv("TOPIC_PREFIX")
    assert settings.current().topic_prefix == ""
    assert contract.topic(contract.WELFARE_EVENTS) == "welfare.events"


def test_reporting_partition_keys_come_from_the_contract(monkeypatch):
    from services.reporting.store import partition_key
    monkeypatch.setenv("TOPIC_PREFIX", "ab1.")
    assert partition_key("ab1.membership.events", 2) == "m2"
    assert partition_key("ab1.welfare.events", 0) == "w0"
    # another run's topic is not this run's source: it gets the fallback key, not 'm'
    assert partition_key("zz.membership.events", 2).startswith("x")


def documented_types() -> dict[str, set[str]]:
    """docs/events.md: the type column of the tables under each `## <topic>` heading."""
    out: dict[str, set[str]] = {}
    current = None
    for line in (ROOT / "docs" / "events.md").read_text().splitlines():
        m = re.match(r"## (\S+\.events)\b", line)
        if m:
            current = out.setdefault(m.group(1), set())
            continue
        m = re.match(r"\| `([a-z_]+(?:\.[a-z_]+)+\.v\d+)` \|", line)
        if m and current is not None:
            current.add(m.group(1))
    return out


def test_event_types_are_the_documented_ones():
    docs = documented_types()
    code = {t: set(types) for t, types in contract.EVENT_TYPES.items() if types}
    assert docs == code


@pytest.mark.parametrize("topic", contract.DOMAIN_TOPICS)
def test_every_topic_lists_its_types(topic):
    assert topic in contract.EVENT_TYPES
    source = topic.split(".")[0]
    assert all(t.startswith(source + ".") for t in contract.EVENT_TYPES[topic])


def test_one_name_for_an_event_before_its_envelope():
    from services.training import domain as training
    from services.welfare import domain as welfare
    assert welfare.Event is contract.Event and training.Event is contract.Event
    env = contract.Event("welfare.case.requested.v1", {"case_id": "c1"}).envelope("welfare", "c1", 3)
    assert (env.source, env.type, env.subject, env.aggregateversion, env.data) == \
        ("welfare", "welfare.case.requested.v1", "c1", 3, {"case_id": "c1"})


def documented_fields() -> dict[str, set[str]]:
    """docs/events.md: per type, the identifiers its row names plus those its section's prose names
    for every event of the section (common fields, class facts, case fields, ...)."""
    rows: dict[str, str] = {}
    prose: dict[str, str] = {}
    section = None
    for line in (ROOT / "docs" / "events.md").read_text().splitlines():
        m = re.match(r"## (\S+\.events)\b", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"\| `([a-z_]+(?:\.[a-z_]+)+\.v\d+)` \|(.*)", line)
        if m and section:
            rows[m.group(1)] = section + "\0" + m.group(2)
        elif section:
            prose[section] = prose.get(section, "") + " " + line
    ident = re.compile(r"[a-z][a-z0-9_]*")

    def names(text: str) -> set[str]:
        return {n for chunk in re.findall(r"`([^`]*)`", text) for n in ident.findall(chunk)}
    out = {}
    for type_, row in rows.items():
        section, text = row.split("\0")
        out[type_] = names(text) | names(prose[section])
        if "same as registered" in text:
            out[type_] |= out.get(type_.replace("retired", "registered"), set())
    return out


def test_event_data_fields_are_the_documented_ones():
    """Code (contract.EVENT_DATA, checked on every committed event in tests) and docs/events.md
    name the same fields for every type."""
    docs = documented_fields()
    assert set(docs) == set(contract.EVENT_DATA)
    undocumented = {t: sorted(f - docs[t]) for t, f in contract.EVENT_DATA.items() if f - docs[t]}
    assert not undocumented


def test_an_event_missing_a_contract_field_is_refused():
    full = {f: None for f in contract.EVENT_DATA["membership.member.left.v1"]}
    good = contract.Event("membership.member.left.v1", full).envelope("membership", "m1", 2)
    contract.check_events([good])
    short = {k: v for k, v in full.items() if k != "left_on"}
    with pytest.raises(contract.ContractBroken, match="left_on"):
        contract.check_events([contract.Event("membership.member.left.v1", short).envelope("membership", "m1", 2)])
