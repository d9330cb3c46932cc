"""Membership's handlers, `handler(command, caller, stores)`, on the in-memory store
(platformkit/memory_store.py running the real Repository): no broker, no server. Each command
handler: the happy path (the state and the events its change documents carry), a rule refusal, a
scope refusal and a stale version where it takes one (nothing written), and the replay of an
Idempotency-Key where it takes one."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from platformkit import paging
from platformkit.auth import PLATFORM_SCOPE, Caller, Forbidden
from platformkit.errors import Conflict, InvalidInput, RuleViolated, StaleVersion
from platformkit.errors import NotFound as Missing
from platformkit.memory_store import MemoryDatabase
from services.membership import commands as c
from services.membership import service
from services.membership.stores import INDEXES, Stores

ADMIN = Caller("operator", ("admin",), PLATFORM_SCOPE)
PAST = date(2020, 1, 1)
FOUNDING = {"method": "standard", "founding_member_count": 7, "founding_group": ["Lê Văn An", "Phạm Thị Bình", "Hoàng Công"],
            "decision_no": "QĐ-1", "decision_date": PAST}


def officer(unit_id: str, roles=("officer",)) -> Caller:
    return Caller(f"officer-of-{unit_id}", roles, unit_id)


@pytest.fixture
def st() -> Stores:
    return Stores(MemoryDatabase().with_indexes(INDEXES))


def unit(st, name, code, kind, level, parent=None, sector=None, caller=ADMIN, key=None) -> dict:
    return service.create_unit(c.CreateUnit(name=name, code=code, kind=kind, level=level, parent_id=parent,
                                            sector=sector, effective_date=PAST,
                                            founding=FOUNDING if kind == "cdcs" else None, idempotency_key=key),
                               caller, st)


@pytest.fixture
def tree(st) -> dict[str, str]:
    """Vietnam > HCM > two communes > CĐCS; Hà Nội > one commune > one CĐCS (as tests/membership)."""
    vn = unit(st, "Tổng Liên đoàn", "TLD", "central", 1)["_id"]
    hcm = unit(st, "LĐLĐ TP Hồ Chí Minh", "HCM", "province", 2, vn)["_id"]
    hn = unit(st, "LĐLĐ TP Hà Nội", "HN", "province", 2, vn)["_id"]
    c1 = unit(st, "Công đoàn phường Sài Gòn", "HCM-SG", "commune", 3, hcm)["_id"]
    c2 = unit(st, "Công đoàn xã Bình Chánh", "HCM-BC", "commune", 3, hcm)["_id"]
    c3 = unit(st, "Công đoàn phường Ba Đình", "HN-BD", "commune", 3, hn)["_id"]
    s1 = unit(st, "CĐCS Công ty May Việt", "HCM-SG-001", "cdcs", 4, c1, "non_state")["_id"]
    s2 = unit(st, "CĐCS Trường Lê Quý Đôn", "HCM-SG-002", "cdcs", 4, c1, "public_admin")["_id"]
    s3 = unit(st, "CĐCS Điện tử Bình Chánh", "HCM-BC-001", "cdcs", 4, c2, "non_state")["_id"]
    s4 = unit(st, "CĐCS Bệnh viện Ba Đình", "HN-BD-001", "cdcs", 4, c3, "public_admin")["_id"]
    return dict(vn=vn, hcm=hcm, hn=hn, c1=c1, c2=c2, c3=c3, s1=s1, s2=s2, s3=s3, s4=s4)


def snapshot(st) -> dict:
    """Every stored document (empty collections aside: a read may create one in the fake)."""
    out = {}
    for name in st.db.list_collection_names():
        docs = sorted(st.db[name].find({}), key=lambda d: str(d["_id"]))
        if docs:
            out[name] = docs
    return out


def events(st, aggregate_id: str, store: str = "members") -> list[str]:
    """The event types the aggregate's change documents committed, in order."""
    changes = getattr(st, store).changes.find({"aggregate_id": aggregate_id}).sort("seq", 1)
    return [e["type"].removeprefix("membership.").removesuffix(".v1") for ch in changes for e in ch.get("outbox") or []]


def refused(st, exc_type, handler, command, caller, **kw):
    """The handler refuses with `exc_type` and writes nothing."""
    before = snapshot(st)
    with pytest.raises(exc_type):
        handler(command, caller, st, **kw)
    assert snapshot(st) == before


def admitted(st, tree, cid="079190000001", unit_key="s1", name="Nguyễn Thị Hà", **extra) -> dict:
    return service.admit(c.AdmitMember(unit_id=tree[unit_key], full_name=name, citizen_id=cid,
                                       date_of_birth=date(1990, 5, 17), gender="female", admitted_on=PAST, **extra),
                         officer(tree[unit_key]), st)


def active(st, tree, cid="079190000001", unit_key="s1") -> dict:
    m = admitted(st, tree, cid, unit_key)
    above = st.units.get(tree[unit_key])["parent_id"]
    return service.approve(c.ApproveMember(member_id=m["_id"], on=PAST), officer(above), st)


# ---------------------------------------------------------------- units
def test_create_unit_commits_its_events_and_replays_its_key(st, tree):
    hcm_officer = officer(tree["hcm"])
    cmd = dict(name="CĐCS Mới", code="HCM-SG-009", kind="cdcs", level=4, parent=tree["c1"], sector="non_state")
    first = unit(st, **cmd, caller=hcm_officer, key="k1")
    assert first["status"] == "active" and first["ancestors"] == [tree["vn"], tree["hcm"], tree["c1"]]
    assert events(st, first["_id"], "units") == ["unit.created", "cdcs.founded"]
    before = snapshot(st)
    assert unit(st, **cmd, caller=hcm_officer, key="k1")["_id"] == first["_id"]  # a retry: the first unit
    assert snapshot(st) == before
    with pytest.raises(RuleViolated):  # the key with another request
        unit(st, **{**cmd, "name": "Khác"}, caller=hcm_officer, key="k1")
    assert snapshot(st) == before
    with pytest.raises(RuleViolated):  # a commune's level is above its parent's
        unit(st, "Xã", "X", "commune", 2, tree["hcm"], caller=hcm_officer)
    with pytest.raises(Forbidden):  # Hà Nội creates nothing under Hồ Chí Minh
        unit(st, "Xã", "X", "commune", 3, tree["hcm"], caller=officer(tree["hn"]))
    with pytest.raises(Conflict):  # the code is taken
        unit(st, "Xã", "HCM-SG", "commune", 3, tree["hcm"], caller=hcm_officer)
    assert snapshot(st) == before


def test_rename_unit(st, tree):
    renamed = service.rename_unit(c.RenameUnit(unit_id=tree["s1"], name="CĐCS May Việt Tiến", effective_date=PAST),
                                  officer(tree["c1"]), st)
    assert renamed["name"] == "CĐCS May Việt Tiến" and events(st, tree["s1"], "units")[-1] == "unit.renamed"
    refused(st, StaleVersion, service.rename_unit, c.RenameUnit(tree["s1"], "X", version=1), officer(tree["c1"]))
    refused(st, RuleViolated, service.rename_unit, c.RenameUnit(tree["s1"], "X"), officer(tree["s1"]))  # by itself
    refused(st, Forbidden, service.rename_unit, c.RenameUnit(tree["s1"], "X"), officer(tree["hn"]))


def test_move_unit_now_with_its_members_paths(st, tree):
    m = active(st, tree)
    moved = service.move_unit(c.MoveUnit(unit_id=tree["c1"], parent_id=tree["hn"]), ADMIN, st)
    assert moved["ancestors"] == [tree["vn"], tree["hn"]] and events(st, tree["c1"], "units")[-1] == "unit.moved"
    assert st.units.get(tree["s1"])["ancestors"] == [tree["vn"], tree["hn"], tree["c1"]]
    assert st.members.get(m["_id"])["unit_path"] == [tree["vn"], tree["hn"], tree["c1"], tree["s1"]]
    refused(st, RuleViolated, service.move_unit, c.MoveUnit(tree["c1"], tree["hn"]), ADMIN)  # there already
    refused(st, StaleVersion, service.move_unit, c.MoveUnit(tree["c2"], tree["hn"], version=9), ADMIN)
    refused(st, Forbidden, service.move_unit, c.MoveUnit(tree["c2"], tree["hn"]), officer(tree["hcm"]))


def test_a_scheduled_move_is_applied_on_its_day_once_and_a_cancelled_one_never(st, tree):
    day = service.today() + timedelta(days=30)
    scheduled = service.move_unit(c.MoveUnit(tree["s3"], tree["c1"], effective_date=day), officer(tree["hcm"]), st)
    (change_id, entry), = scheduled["scheduled"].items()
    assert scheduled["parent_id"] == tree["c2"] and entry["kind"] == "move"
    assert events(st, tree["s3"], "units")[-1] == "unit.change_scheduled"
    other = service.dissolve_unit(c.DissolveUnit(tree["s2"], effective_date=day), officer(tree["c1"]), st)
    (other_id, _), = other["scheduled"].items()
    refused(st, RuleViolated, service.cancel_scheduled, c.CancelScheduledChange(tree["s2"], "sc-none"), officer(tree["c1"]))
    refused(st, StaleVersion, service.cancel_scheduled, c.CancelScheduledChange(tree["s2"], other_id, version=1),
            officer(tree["c1"]))
    refused(st, Forbidden, service.cancel_scheduled, c.CancelScheduledChange(tree["s2"], other_id), officer(tree["hn"]))
    cancelled = service.cancel_scheduled(c.CancelScheduledChange(tree["s2"], other_id), officer(tree["c1"]), st)
    assert not cancelled.get("scheduled") and events(st, tree["s2"], "units")[-1] == "unit.change_cancelled"

    assert service.apply_due(day - timedelta(days=1), st) == []
    assert service.apply_due(day, st) == [change_id]
    assert service.apply_due(day, st) == []
    after = st.units.get(tree["s3"])
    assert after["parent_id"] == tree["c1"] and not after.get("scheduled") and st.units.get(tree["s2"])["status"] == "active"
    assert events(st, tree["s3"], "units")[-1] == "unit.moved"


def test_merge_unit_moves_members_and_closes(st, tree):
    m = active(st, tree, unit_key="s2")
    refused(st, RuleViolated, service.merge_unit, c.MergeUnit(tree["s2"], tree["c2"]), officer(tree["hcm"]))  # tier
    refused(st, StaleVersion, service.merge_unit, c.MergeUnit(tree["s2"], tree["s1"], version=7), officer(tree["c1"]))
    refused(st, Forbidden, service.merge_unit, c.MergeUnit(tree["s2"], tree["s1"]), officer(tree["hn"]))
    merged = service.merge_unit(c.MergeUnit(tree["s2"], tree["s1"]), officer(tree["c1"]), st)
    assert merged["status"] == "merged" and merged["merged_into"] == tree["s1"]
    assert events(st, tree["s2"], "units")[-1] == "unit.merged"
    assert st.members.get(m["_id"])["unit_id"] == tree["s1"] and events(st, m["_id"])[-1] == "member.transferred"


def test_dissolve_unit(st, tree):
    active(st, tree)
    refused(st, RuleViolated, service.dissolve_unit, c.DissolveUnit(tree["s1"]), officer(tree["c1"]))  # has a member
    refused(st, StaleVersion, service.dissolve_unit, c.DissolveUnit(tree["s2"], version=5), officer(tree["c1"]))
    refused(st, Forbidden, service.dissolve_unit, c.DissolveUnit(tree["s2"]), officer(tree["c3"]))
    gone = service.dissolve_unit(c.DissolveUnit(tree["s2"]), officer(tree["c1"]), st)
    assert gone["status"] == "dissolved" and events(st, tree["s2"], "units")[-1] == "unit.dissolved"


def test_consolidate_committee(st, tree):
    chair, other = active(st, tree)["_id"], active(st, tree, "079190000002")["_id"]
    positions = ({"member_id": chair, "position": "chair"}, {"member_id": other, "position": "member"})
    cmd = c.ConsolidateCommittee(tree["s1"], "2023-2028", date(2023, 5, 1), positions)
    refused(st, RuleViolated, service.committee, c.ConsolidateCommittee(tree["s1"], "2023-2028", date(2023, 5, 1),
                                                                          positions[1:]), officer(tree["s1"]))  # no chair
    refused(st, StaleVersion, service.committee, c.ConsolidateCommittee(tree["s1"], "2023-2028", date(2023, 5, 1),
                                                                          positions, version=99), officer(tree["s1"]))
    refused(st, Forbidden, service.committee, cmd, officer(tree["s2"]))
    done = service.committee(cmd, officer(tree["s1"]), st)
    assert done["committee"]["term"] == "2023-2028" and events(st, tree["s1"], "units")[-1] == "committee.consolidated"


def test_propose_and_confirm_a_rating(st, tree):
    proposed = service.propose_rating(c.ProposeRating(tree["s1"], 2024, "good"), officer(tree["s1"]), st)
    assert proposed["ratings"]["2024"]["status"] == "proposed" and events(st, tree["s1"], "units")[-1] == "cdcs.rated"
    refused(st, RuleViolated, service.propose_rating, c.ProposeRating(tree["c1"], 2024, "good"), officer(tree["c1"]))
    refused(st, StaleVersion, service.propose_rating, c.ProposeRating(tree["s1"], 2024, "excellent", version=1),
            officer(tree["s1"]))
    refused(st, Forbidden, service.propose_rating, c.ProposeRating(tree["s1"], 2024, "good"), officer(tree["s4"]))

    refused(st, RuleViolated, service.confirm_rating, c.ConfirmRating(tree["s1"], 2024), officer(tree["s1"]))  # itself
    refused(st, RuleViolated, service.confirm_rating, c.ConfirmRating(tree["s1"], 2023), officer(tree["c1"]))  # none
    refused(st, StaleVersion, service.confirm_rating, c.ConfirmRating(tree["s1"], 2024, version=1), officer(tree["c1"]))
    refused(st, Forbidden, service.confirm_rating, c.ConfirmRating(tree["s1"], 2024), officer(tree["c3"]))
    confirmed = service.confirm_rating(c.ConfirmRating(tree["s1"], 2024, "excellent"), officer(tree["c1"]), st)
    entry = confirmed["ratings"]["2024"]
    assert (entry["status"], entry["rating"]) == ("confirmed", "excellent")
    assert events(st, tree["s1"], "units")[-2:] == ["cdcs.rated", "cdcs.rated"]


# ---------------------------------------------------------------- members
def test_admit_commits_its_event_and_replays_its_key(st, tree):
    m = admitted(st, tree, idempotency_key="adm-1")
    assert m["status"] == "admitted" and m["unit_path"][-1] == tree["s1"] and events(st, m["_id"]) == ["member.admitted"]
    before = snapshot(st)
    assert admitted(st, tree, idempotency_key="adm-1")["_id"] == m["_id"]
    assert snapshot(st) == before
    with pytest.raises(RuleViolated):
        admitted(st, tree, name="Người Khác", idempotency_key="adm-1")
    young = c.AdmitMember(tree["s1"], "Bé Con", "079190000009", date.today() - timedelta(days=365 * 10), "male")
    refused(st, RuleViolated, service.admit, young, officer(tree["s1"]))
    refused(st, RuleViolated, service.admit, c.AdmitMember(tree["c1"], "Ai Đó", "079190000009", date(1990, 1, 1), "male"),
            officer(tree["c1"]))  # not a CĐCS
    refused(st, Conflict, service.admit, c.AdmitMember(tree["s2"], "Trùng", m["citizen_id"], date(1990, 1, 1), "male"),
            officer(tree["s2"]))  # the citizen ID is active already
    refused(st, Forbidden, service.admit, c.AdmitMember(tree["s1"], "Ai Đó", "079190000009", date(1990, 1, 1), "male"),
            officer(tree["s2"]))


def test_approve_and_refuse_an_admission(st, tree):
    m, n = admitted(st, tree), admitted(st, tree, "079190000002")
    refused(st, RuleViolated, service.approve, c.ApproveMember(m["_id"]), officer(tree["s1"]))  # not the level above
    refused(st, StaleVersion, service.approve, c.ApproveMember(m["_id"], version=3), officer(tree["c1"]))
    refused(st, Forbidden, service.approve, c.ApproveMember(m["_id"]), officer(tree["c2"]))
    approved = service.approve(c.ApproveMember(m["_id"], on=date(2020, 2, 1)), officer(tree["c1"]), st)
    assert approved["status"] == "active" and events(st, m["_id"]) == ["member.admitted", "member.approved"]

    refused(st, RuleViolated, service.refuse, c.RefuseAdmission(m["_id"], "muộn"), officer(tree["c1"]))  # active now
    refused(st, StaleVersion, service.refuse, c.RefuseAdmission(n["_id"], "thiếu hồ sơ", version=4), officer(tree["c1"]))
    refused(st, Forbidden, service.refuse, c.RefuseAdmission(n["_id"], "thiếu hồ sơ"), officer(tree["hn"]))
    no = service.refuse(c.RefuseAdmission(n["_id"], "thiếu hồ sơ"), officer(tree["c1"]), st)
    assert no["status"] == "refused" and "active_citizen_id" not in st.members.coll.find_one({"_id": n["_id"]})
    assert events(st, n["_id"])[-1] == "member.refused"


def test_issue_card_draws_a_province_number(st, tree):
    m, waiting = active(st, tree), admitted(st, tree, "079190000002")
    refused(st, RuleViolated, service.issue_card, c.IssueCard(waiting["_id"]), officer(tree["c1"]))  # not active
    refused(st, StaleVersion, service.issue_card, c.IssueCard(m["_id"], version=1), officer(tree["c1"]))
    refused(st, Forbidden, service.issue_card, c.IssueCard(m["_id"]), officer(tree["c3"]))
    carded = service.issue_card(c.IssueCard(m["_id"], on=date(2024, 3, 1)), officer(tree["c1"]), st)
    assert carded["member_number"].startswith("HCM") and events(st, m["_id"])[-1] == "member.card_issued"
    refused(st, Conflict, service.issue_card, c.IssueCard(m["_id"]), officer(tree["c1"]))  # once


def test_transfer_inside_the_subtree_moves_now(st, tree):
    m = active(st, tree)
    refused(st, RuleViolated, service.transfer, c.TransferMember(m["_id"], tree["s1"]), officer(tree["c1"]))  # there
    refused(st, StaleVersion, service.transfer, c.TransferMember(m["_id"], tree["s2"], version=1), officer(tree["c1"]))
    refused(st, Forbidden, service.transfer, c.TransferMember(m["_id"], tree["s2"]), officer(tree["s2"]))
    moved = service.transfer(c.TransferMember(m["_id"], tree["s2"], letter_no="CV-1", letter_date=PAST),
                             officer(tree["c1"]), st)
    assert moved["unit_id"] == tree["s2"] and moved["transfer_letter"]["letter_no"] == "CV-1"
    assert events(st, m["_id"])[-1] == "member.transferred"


def test_a_transfer_request_is_accepted_refused_or_cancelled(st, tree):
    m, n, o = active(st, tree), active(st, tree, "079190000002"), active(st, tree, "079190000003")
    sender, receiver = officer(tree["c1"]), officer(tree["c3"])
    request = lambda member: c.TransferMember(member, tree["s4"], letter_no="CV-9", letter_date=PAST)  # noqa: E731
    refused(st, InvalidInput, service.transfer, c.TransferMember(m["_id"], tree["s4"]), sender)  # no letter
    for member in (m, n, o):
        asked = service.transfer(request(member["_id"]), sender, st)
        assert asked["unit_id"] == tree["s1"] and asked["pending_transfer"]["to_unit_id"] == tree["s4"]
        assert events(st, member["_id"])[-1] == "member.transfer_requested"
    assert [x["_id"] for x in service.transfer_requests(tree["c3"], {"limit": 10}, receiver, st)["items"]] == \
        sorted([m["_id"], n["_id"], o["_id"]])

    refused(st, StaleVersion, service.accept_transfer, c.AcceptTransfer(tree["c3"], m["_id"], version=1), receiver)
    refused(st, Forbidden, service.accept_transfer, c.AcceptTransfer(tree["c3"], m["_id"]), officer(tree["c2"]))
    refused(st, Missing, service.accept_transfer, c.AcceptTransfer(tree["c2"], m["_id"]), officer(tree["c2"]))
    accepted = service.accept_transfer(c.AcceptTransfer(tree["c3"], m["_id"]), receiver, st)
    assert accepted["unit_id"] == tree["s4"] and not accepted.get("pending_transfer")
    assert events(st, m["_id"])[-1] == "member.transferred"

    refused(st, InvalidInput, service.refuse_transfer, c.RefuseTransfer(tree["c3"], n["_id"]), receiver)  # no reason
    refused(st, StaleVersion, service.refuse_transfer, c.RefuseTransfer(tree["c3"], n["_id"], "đủ người", version=1),
            receiver)
    refused(st, Forbidden, service.refuse_transfer, c.RefuseTransfer(tree["c3"], n["_id"], "đủ người"), officer(tree["c2"]))
    kept = service.refuse_transfer(c.RefuseTransfer(tree["c3"], n["_id"], "đủ người"), receiver, st)
    assert kept["unit_id"] == tree["s1"] and events(st, n["_id"])[-1] == "member.transfer_refused"

    refused(st, RuleViolated, service.cancel_transfer, c.CancelTransfer(n["_id"]), sender)  # nothing pending now
    refused(st, StaleVersion, service.cancel_transfer, c.CancelTransfer(o["_id"], version=1), sender)
    refused(st, Forbidden, service.cancel_transfer, c.CancelTransfer(o["_id"]), receiver)
    withdrawn = service.cancel_transfer(c.CancelTransfer(o["_id"]), sender, st)
    assert not withdrawn.get("pending_transfer") and events(st, o["_id"])[-1] == "member.transfer_cancelled"


def test_leave_and_reinstate(st, tree):
    m = active(st, tree)
    refused(st, RuleViolated, service.reinstate, c.ReinstateMember(m["_id"]), officer(tree["s1"]))  # has not left
    refused(st, StaleVersion, service.leave, c.RecordLeaving(m["_id"], "resigned", version=1), officer(tree["s1"]))
    refused(st, Forbidden, service.leave, c.RecordLeaving(m["_id"], "resigned"), officer(tree["s2"]))
    left = service.leave(c.RecordLeaving(m["_id"], "resigned", on=date(2024, 1, 5)), officer(tree["s1"]), st)
    assert (left["status"], left["left_reason"]) == ("left", "resigned") and events(st, m["_id"])[-1] == "member.left"
    refused(st, RuleViolated, service.leave, c.RecordLeaving(m["_id"], "resigned"), officer(tree["s1"]))  # left already
    refused(st, StaleVersion, service.reinstate, c.ReinstateMember(m["_id"], version=1), officer(tree["s1"]))
    refused(st, Forbidden, service.reinstate, c.ReinstateMember(m["_id"]), officer(tree["s2"]))
    back = service.reinstate(c.ReinstateMember(m["_id"]), officer(tree["s1"]), st)
    assert back["status"] == "active" and events(st, m["_id"])[-1] == "member.reinstated"


def test_update_profile_changes_only_what_was_sent(st, tree):
    m = active(st, tree)
    changed = service.update_profile(c.UpdateProfile(m["_id"], {"phone": None, "is_official": True}, on=date(2024, 2, 1)),
                                     officer(tree["s1"]), st)
    assert changed["phone"] is None and changed["is_official"] is True and changed["full_name"] == m["full_name"]
    assert events(st, m["_id"])[-1] == "member.profile_updated"
    refused(st, InvalidInput, service.update_profile, c.UpdateProfile(m["_id"], {"full_name": "  "}), officer(tree["s1"]))
    refused(st, StaleVersion, service.update_profile, c.UpdateProfile(m["_id"], {"phone": "0909"}, version=1),
            officer(tree["s1"]))
    refused(st, Forbidden, service.update_profile, c.UpdateProfile(m["_id"], {"phone": "0909"}), officer(tree["s2"]))


def test_record_dues_is_naturally_idempotent(st, tree):
    m, waiting = active(st, tree), admitted(st, tree, "079190000002")
    cmd = c.RecordDues(m["_id"], "2024-03", salary=10_000_000, paid=100_000)
    dues = service.record_dues(cmd, officer(tree["s1"]), st)
    assert (dues["due"], dues["rate_permille"]) == (100_000, 10) and events(st, dues["_id"], "dues") == ["dues.recorded"]
    before = snapshot(st)
    assert service.record_dues(cmd, officer(tree["s1"]), st)["due"] == 100_000  # the same figures: nothing new
    assert snapshot(st) == before
    refused(st, RuleViolated, service.record_dues, c.RecordDues(waiting["_id"], "2024-03", 1), officer(tree["s1"]))
    refused(st, Forbidden, service.record_dues, cmd, officer(tree["s2"]))
    assert [d["month"] for d in service.member_dues(m["_id"], officer(tree["s1"]), st)] == ["2024-03"]


# ---------------------------------------------------------------- reads
def test_reads_are_scoped(st, tree):
    m = active(st, tree)
    assert service.read_unit(tree["s1"], officer(tree["c1"]), st)["_id"] == tree["s1"]
    assert [u["_id"] for u in service.ancestors(tree["s1"], officer(tree["c1"]), st)] == [tree["c1"]]
    assert {u["_id"] for u in service.children(tree["c1"], {"limit": 10}, ADMIN, st)["items"]} == {tree["s1"], tree["s2"]}
    assert len(service.subtree(tree["hcm"], {"limit": 50}, ADMIN, st)["items"]) == 5
    assert [x["_id"] for x in service.list_members(tree["hcm"], {"limit": 10, "q": "nguyen thi ha"}, ADMIN, st)["items"]] \
        == [m["_id"]]
    assert service.lookup_member({"citizen_id": m["citizen_id"]}, officer(tree["c1"]), st)["_id"] == m["_id"]
    assert service.path_scope({"member_id": m["_id"]}, st) == (tree["s1"], [tree["vn"], tree["hcm"], tree["c1"]])
    for read, args in ((service.read_unit, (tree["s1"],)), (service.read_member, (m["_id"],)),
                       (service.list_members, (tree["s1"], {"limit": 5})), (service.member_dues, (m["_id"],)),
                       (service.lookup_member, ({"citizen_id": m["citizen_id"]},))):
        with pytest.raises(Forbidden):
            read(*args, officer(tree["hn"]), st)


# ---------------------------------------------------------------- batches
def parse_admission(row: dict) -> dict:
    """What the API's AdmitIn would give (a test stand-in for the marshmallow schema)."""
    if len(row.get("citizen_id", "")) != 12:
        raise InvalidInput("citizen ID (CCCD) must be exactly 12 digits", field="citizen_id")
    return {"full_name": row["full_name"], "citizen_id": row["citizen_id"],
            "date_of_birth": date.fromisoformat(row["date_of_birth"]), "gender": row["gender"], "phone": None,
            "employer": None, "is_official": False, "admitted_on": None}


def test_import_members_reports_each_row_and_replays_its_key(st, tree):
    csv = ("full_name,citizen_id,date_of_birth,gender\nLê Văn An,079190000011,1990-01-01,nam\n"
           "Sai Số,12,1990-01-01,nữ\n").encode()
    cmd = c.ImportMembers(tree["s1"], "nhom.csv", csv, idempotency_key="imp-1")
    report, replayed = service.import_members(cmd, officer(tree["s1"]), st, parse_row=parse_admission)
    assert not replayed and (report["admitted"], report["rejected"]) == (1, 1)
    admitted_id = report["rows"][0]["member_id"]
    assert events(st, admitted_id) == ["member.admitted"] and st.members.get(admitted_id)["gender"] == "male"
    before = snapshot(st)
    assert service.import_members(cmd, officer(tree["s1"]), st, parse_row=parse_admission) == (report, True)
    assert snapshot(st) == before
    again, _ = service.import_members(c.ImportMembers(tree["s1"], "nhom.csv", csv), officer(tree["s1"]), st,
                                      parse_row=parse_admission)
    assert again["already_admitted"] == 1 and again["admitted"] == 0
    refused(st, InvalidInput, service.import_members, c.ImportMembers(tree["s1"], "nhom.txt", csv), officer(tree["s1"]),
            parse_row=parse_admission)
    refused(st, Forbidden, service.import_members, c.ImportMembers(tree["s1"], "nhom.csv", csv), officer(tree["s2"]),
            parse_row=parse_admission)


def test_decide_admissions_item_by_item_and_replays_its_key(st, tree):
    m, n, elsewhere = admitted(st, tree), admitted(st, tree, "079190000002"), admitted(st, tree, "079190000003", "s4")
    items = ({"member_id": m["_id"], "decision": "approve"},
             {"member_id": n["_id"], "decision": "refuse", "reason": "thiếu hồ sơ"},
             {"member_id": elsewhere["_id"], "decision": "approve"})
    cmd = c.DecideAdmissions(items, on=date(2020, 3, 1), idempotency_key="dec-1")
    answer, replayed = service.decide_admissions(cmd, officer(tree["c1"]), st, parse_item=dict)
    assert [r["status"] for r in answer["results"]] == [200, 200, 403] and not replayed
    assert events(st, m["_id"])[-1] == "member.approved" and events(st, n["_id"])[-1] == "member.refused"
    assert events(st, elsewhere["_id"]) == ["member.admitted"]
    before = snapshot(st)
    assert service.decide_admissions(cmd, officer(tree["c1"]), st, parse_item=dict) == (answer, True)
    assert snapshot(st) == before
    with pytest.raises(RuleViolated):  # the key with another request
        service.decide_admissions(c.DecideAdmissions(items[:1], idempotency_key="dec-1"), officer(tree["c1"]), st,
                                  parse_item=dict)
    again, _ = service.decide_admissions(c.DecideAdmissions(items[:1]), officer(tree["c1"]), st, parse_item=dict)
    assert again["results"][0]["status"] == 422  # approved already: a rule refusal of that item only


def test_issue_cards_item_by_item(st, tree):
    m, waiting = active(st, tree), admitted(st, tree, "079190000002")
    items = ({"member_id": m["_id"]}, {"member_id": waiting["_id"]}, {"member_id": m["_id"], "version": 1})
    cmd = c.IssueCards(items, on=date(2024, 3, 1), idempotency_key="cards-1")
    answer, _ = service.issue_cards(cmd, officer(tree["c1"]), st, parse_item=dict)
    assert [r["status"] for r in answer["results"]] == [200, 422, 412]
    assert events(st, m["_id"]).count("member.card_issued") == 1
    before = snapshot(st)
    assert service.issue_cards(cmd, officer(tree["c1"]), st, parse_item=dict) == (answer, True)
    assert snapshot(st) == before
    outside, _ = service.issue_cards(c.IssueCards(items[:1]), officer(tree["c3"]), st, parse_item=dict)
    assert outside["results"][0]["status"] == 403


def test_record_ratings_item_by_item(st, tree):
    items = ({"unit_id": tree["s1"], "year": 2024, "action": "propose", "rating": "good"},
             {"unit_id": tree["s1"], "year": 2024, "action": "confirm"},
             {"unit_id": tree["s4"], "year": 2024, "action": "propose", "rating": "good"},
             {"unit_id": tree["s2"], "year": 2024, "action": "propose", "rating": "good", "version": 9})
    cmd = c.RecordRatings(items, idempotency_key="rate-1")
    answer, _ = service.record_ratings(cmd, officer(tree["c1"], ("officer", "admin")), st, parse_item=dict)
    assert [r["status"] for r in answer["results"]] == [200, 200, 403, 412]
    assert answer["results"][1]["unit"]["rating_status"] == "confirmed"
    before = snapshot(st)
    assert service.record_ratings(cmd, officer(tree["c1"], ("officer", "admin")), st, parse_item=dict) == (answer, True)
    assert snapshot(st) == before


# ---------------------------------------------------------------- name search (stored terms)
def search(st, tree, q, limit=10, after=None) -> tuple[list[str], str | None]:
    page = service.list_members(tree["hcm"], {"limit": limit, "q": q, **({"after": after} if after else {})}, ADMIN, st)
    return [m["full_name"] for m in page["items"]], page["next_cursor"]


def test_name_search_finds_whole_words_in_order(st, tree):
    long_name = "Công Tằng Tôn Nữ Thị Thu Hà An Bình Minh"  # 10 words: longer than the longest stored run
    for i, name in enumerate(["Nguyễn Thị Hà", "Nguyễn Thị Hải", "Trần Thị Hà", "Hà Thị Nguyễn", long_name]):
        admitted(st, tree, cid=f"07919000010{i}", name=name)
    assert sorted(search(st, tree, "nguyen thi ha")[0]) == ["Nguyễn Thị Hà"]
    assert sorted(search(st, tree, "THỊ HÀ")[0]) == ["Nguyễn Thị Hà", "Trần Thị Hà"]  # not "Thị Thu Hà"
    assert search(st, tree, "thu ha an")[0] == [long_name]
    assert search(st, tree, "ha thi")[0] == ["Hà Thị Nguyễn"]  # the words in order, not any order
    assert search(st, tree, "thi h")[0] == []  # whole words only
    # a search longer than the stored runs: its first run asked, the rest checked on what it found
    assert search(st, tree, "tang ton nu thi thu ha an binh minh")[0] == [long_name]
    assert search(st, tree, "tang ton nu thi thu ha an binh")[0] == [long_name]
    assert search(st, tree, "tang ton nu thi thu ha an binh nguyen")[0] == []
    # a renamed member is found by the new name only
    m = st.members.coll.find_one({"full_name": "Trần Thị Hà"})
    service.update_profile(c.UpdateProfile(member_id=m["_id"], changes={"full_name": "Trần Văn Long"}),
                           officer(tree["s1"]), st)
    assert search(st, tree, "tran thi ha")[0] == [] and search(st, tree, "van long")[0] == ["Trần Văn Long"]
    renamed = st.members.changes.find_one({"aggregate_id": m["_id"], "seq": 2})["outbox"][0]["data"]
    assert renamed["changed"] == ["full_name"]  # the derived search fields are no change of their own


def test_a_long_name_search_pages_by_cursor(st, tree):
    words = "an binh chau dung giang hoa khanh lam minh"  # 9 words
    names = [f"{words} {suffix}" for suffix in ("nam", "oanh", "phuc", "quang", "son")]
    for i, name in enumerate(names):
        admitted(st, tree, cid=f"07919000020{i}", name=name)
    admitted(st, tree, cid="079190000299", name="an binh chau dung giang hoa khanh lam nam")  # first 8 words only
    seen, cursor = [], None
    while True:
        page, cursor = search(st, tree, words, limit=2, after=paging.decode(cursor) if cursor else None)
        seen += page
        if cursor is None:
            break
    assert seen == sorted(seen, key=lambda n: st.members.coll.find_one({"full_name": n})["_id"])  # by _id
    assert sorted(seen) == sorted(names)


def test_backfill_gives_members_stored_before_name_terms_their_terms_once(st, tree):
    m = active(st, tree)
    st.members.coll.update_one({"_id": m["_id"]}, {"$unset": {"name_terms": ""}})  # as stored before
    assert search(st, tree, "nguyen thi ha")[0] == []
    assert service.backfill_name_terms(st) == 1
    assert search(st, tree, "nguyen thi ha")[0] == ["Nguyễn Thị Hà"]
    assert st.members.get(m["_id"])["version"] == m["version"]  # upkeep: no caller's version goes stale
    assert events(st, m["_id"]) == ["member.admitted", "member.approved"]  # and no event
    st.members.coll.update_one({"_id": m["_id"]}, {"$unset": {"name_terms": ""}})
    assert service.backfill_name_terms(st) == 0  # done once: later starts skip the scan
