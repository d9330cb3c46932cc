"""The HTTP surface of membership: a blueprint per area (units, members), one MethodView per resource
(URL rule). Every endpoint authenticates the caller's token and the service layer keeps it inside
its org-unit subtree."""
from flask import request
from flask.views import MethodView

from platformkit.auth import current_caller
from platformkit.web import localised_items, Blueprint, InvalidInput, error_responses, request_cache, requires

from . import commands, service
from .stores import stores
from .schemas import (BATCH_MAX_ITEMS, ActionIn, AdmitIn, CardItem, CardsIn, CommitteeIn, ConfirmRatingIn,
                      DecisionItem, DecisionsIn, DissolveIn, DuesIn, DuesOut, IdempotencyHeader, ImportFile,
                      ImportReport, LeaveIn, LookupQuery, MemberBatchOut, MemberOut, MemberPage, MemberQuery, MergeIn,
                      MoveIn, ProfileIn, RatingBatchOut, RatingIn, RatingItem, RatingsIn, RefuseIn, RenameIn,
                      TransferDecisionIn, TransferIn, TransferRefuseIn, TransferRequestQuery, UnitIn, Versioned, UnitOut, UnitPage, UnitQuery)

units = Blueprint("units", __name__, url_prefix="/units",
                  description="Org units as data: the hierarchy, CĐCS founding, committees, ratings")
members = Blueprint("members", __name__, url_prefix="/members",
                    description="Members' lifecycle: admission, approval, card, transfer, leaving, dues")

ERRORS = {400: "invalid input, per field", 401: "no valid token", 403: "outside the caller's subtree or role",
          404: "not found", 409: "conflict", 412: "stale version", 413: "the file has too many rows or bytes",
          422: "a rule refused it, or the Idempotency-Key was used for a different request"}
BATCH_ERRORS = {**ERRORS,
                400: f"invalid request (no items, more than {BATCH_MAX_ITEMS}, a bad `on`); a bad item is "
                     "answered in its own result, not here",
                403: "the role may not do this (an item outside the caller's subtree is a 403 in its own result)",
                409: "a request with the same Idempotency-Key is running this batch; retry shortly",
                422: "the Idempotency-Key was used for a different request"}
REPLAYED = "Idempotent-Replayed"
REPLAY_HEADERS = {REPLAYED: {"description": "`true` when the answer is the stored answer of an earlier request "
                                            "with the same Idempotency-Key (nothing was applied again)",
                             "schema": {"type": "string", "enum": ["true"]}}}


def documented(bp, codes=(400, 401, 403, 404, 409, 412, 422)):
    return error_responses(bp, ERRORS, codes)


def batch_answer(answer: dict, replayed: bool):
    # per-item errors are stored in English (a keyed retry replays them); localised when answering
    return localised_items(answer), 200, ({REPLAYED: "true"} if replayed else {})


# ---------------------------------------------------------------- units
@units.route("")
class Units(MethodView):
    @requires("unit.structure")
    @units.arguments(IdempotencyHeader, location="headers")
    @units.arguments(UnitIn)
    @units.response(201, UnitOut)
    @documented(units, (400, 401, 403, 404, 409, 422))
    def post(self, headers, body):
        """Create a unit under a parent (a CĐCS with its founding record); a retry with the same
        Idempotency-Key answers the unit created first (201) and creates nothing"""
        return service.create_unit(commands.CreateUnit(**body, idempotency_key=headers.get("idempotency_key")),
                                   current_caller(), stores())


@units.route("/ratings")
class RatingBatch(MethodView):
    @requires("rating.propose")
    @units.arguments(IdempotencyHeader, location="headers")
    @units.arguments(RatingsIn)
    @units.response(200, RatingBatchOut, headers=REPLAY_HEADERS)
    @error_responses(units, BATCH_ERRORS, (400, 401, 403, 409, 422))
    def post(self, headers, body):
        """Propose or confirm many CĐCS ratings, each on its own: the per-item results in order (each
        item's status is what the one-item endpoint would answer; confirming also needs rating.confirm)"""
        command = commands.RecordRatings(items=tuple(body["items"]), idempotency_key=headers.get("idempotency_key"))
        return batch_answer(*service.record_ratings(command, current_caller(), stores(), parse_item=RatingItem().load))


@units.route("/<unit_id>")
class Unit(MethodView):
    @requires("read")
    @units.response(200, UnitOut)
    @documented(units, (401, 403, 404))
    def get(self, unit_id):
        """One unit"""
        return service.read_unit(unit_id, current_caller(), stores())


@units.route("/<unit_id>/children")
class UnitChildren(MethodView):
    @requires("read")
    @units.arguments(UnitQuery, location="query")
    @units.response(200, UnitPage)
    @documented(units, (400, 401, 403, 404))
    def get(self, q, unit_id):
        """Direct children, cursor-paginated"""
        return service.children(unit_id, q, current_caller(), stores())


@units.route("/<unit_id>/subtree")
class UnitSubtree(MethodView):
    @requires("read")
    @units.arguments(UnitQuery, location="query")
    @units.response(200, UnitPage)
    @documented(units, (400, 401, 403, 404))
    def get(self, q, unit_id):
        """Every unit below, cursor-paginated"""
        return service.subtree(unit_id, q, current_caller(), stores())


@units.route("/<unit_id>/ancestors")
class UnitAncestors(MethodView):
    @requires("read")
    @units.response(200, UnitOut(many=True))
    @documented(units, (401, 403, 404))
    def get(self, unit_id):
        """The chain above the unit, root first, as far up as the caller may see"""
        return service.ancestors(unit_id, current_caller(), stores())


@units.route("/<unit_id>/rename")
class UnitRename(MethodView):
    @requires("unit.structure")
    @units.arguments(RenameIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id):
        """Rename, with an effective date"""
        return service.rename_unit(commands.RenameUnit(unit_id=unit_id, **body), current_caller(), stores())


@units.route("/<unit_id>/move")
class UnitMove(MethodView):
    @requires("unit.structure")
    @units.arguments(MoveIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id):
        """Move under another parent; its subtree and members follow. Dated after today (`effective_date`): recorded in the unit's `scheduled` and
        applied on that date (event `unit.change_scheduled` now, nothing else changes)"""
        return service.move_unit(commands.MoveUnit(unit_id=unit_id, **body), current_caller(), stores())


@units.route("/<unit_id>/merge")
class UnitMerge(MethodView):
    @requires("unit.structure")
    @units.arguments(MergeIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id):
        """Merge into another unit: child units and members follow, then the unit closes. Dated after today (`effective_date`): recorded in the unit's `scheduled` and
        applied on that date (event `unit.change_scheduled` now, nothing else changes)"""
        return service.merge_unit(commands.MergeUnit(unit_id=unit_id, **body), current_caller(), stores())


@units.route("/<unit_id>/dissolve")
class UnitDissolve(MethodView):
    @requires("unit.structure")
    @units.arguments(DissolveIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id):
        """Dissolve an empty unit. Dated after today (`effective_date`): recorded in the unit's `scheduled` and
        applied on that date (event `unit.change_scheduled` now, nothing else changes)"""
        return service.dissolve_unit(commands.DissolveUnit(unit_id=unit_id, **body), current_caller(), stores())


@units.route("/<unit_id>/scheduled-changes/<change_id>/cancel")
class UnitScheduledChangeCancel(MethodView):
    @requires("unit.structure")
    @units.arguments(Versioned)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id, change_id):
        """Cancel a move, merge or dissolution scheduled for a future date (the unit's `scheduled`)"""
        return service.cancel_scheduled(commands.CancelScheduledChange(unit_id=unit_id, change_id=change_id, **body),
                                        current_caller(), stores())


@units.route("/<unit_id>/committee")
class UnitCommittee(MethodView):
    @requires("unit.committee")
    @units.arguments(CommitteeIn)
    @units.response(200, UnitOut)
    @documented(units)
    def put(self, body, unit_id):
        """Record the executive committee (BCH) as consolidated (kiện toàn)"""
        command = commands.ConsolidateCommittee(unit_id=unit_id, **{**body, "positions": tuple(body["positions"])})
        return service.committee(command, current_caller(), stores())


@units.route("/<unit_id>/ratings")
class UnitRatings(MethodView):
    @requires("rating.propose")
    @units.arguments(RatingIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id):
        """Propose a CĐCS's quality rating for a year"""
        return service.propose_rating(commands.ProposeRating(unit_id=unit_id, **body), current_caller(), stores())


@units.route("/<unit_id>/ratings/<int:year>/confirm")
class UnitRatingConfirm(MethodView):
    @requires("rating.confirm")
    @units.arguments(ConfirmRatingIn)
    @units.response(200, UnitOut)
    @documented(units)
    def post(self, body, unit_id, year):
        """Confirm a rating (the level above)"""
        command = commands.ConfirmRating(unit_id=unit_id, year=year, **body)
        return service.confirm_rating(command, current_caller(), stores())


@units.route("/<unit_id>/members")
class UnitMembers(MethodView):
    @requires("member.enter")
    @units.arguments(IdempotencyHeader, location="headers")
    @units.arguments(AdmitIn)
    @units.response(201, MemberOut)
    @documented(units, (400, 401, 403, 404, 409, 422))
    def post(self, headers, body, unit_id):
        """Admit a member into a CĐCS (awaits approval by the level above); a retry with the same
        Idempotency-Key answers the member admitted first (201) and admits nobody"""
        command = commands.AdmitMember(unit_id=unit_id, **body, idempotency_key=headers.get("idempotency_key"))
        return service.admit(command, current_caller(), stores(), cache=request_cache())

    @requires("read")
    @units.arguments(MemberQuery, location="query")
    @units.response(200, MemberPage)
    @documented(units, (400, 401, 403, 404))
    def get(self, q, unit_id):
        """Members in the unit's subtree; `q` searches names with or without diacritics"""
        return service.list_members(unit_id, q, current_caller(), stores())


@units.route("/<unit_id>/transfer-requests")
class UnitTransferRequests(MethodView):
    @requires("read")
    @units.arguments(TransferRequestQuery, location="query")
    @units.response(200, MemberPage)
    @documented(units, (400, 401, 403, 404))
    def get(self, q, unit_id):
        """Incoming transfer requests: members of other subtrees whose transfer to this unit (or a
        CĐCS below it) awaits acceptance; each member's `pending_transfer` holds the request"""
        return service.transfer_requests(unit_id, q, current_caller(), stores())


@units.route("/<unit_id>/transfer-requests/<member_id>/accept")
class UnitTransferAccept(MethodView):
    @requires("member.transfer")
    @units.arguments(TransferDecisionIn)
    @units.response(200, MemberOut)
    @documented(units)
    def post(self, body, unit_id, member_id):
        """The receiving side (the destination CĐCS or a level above it) accepts a transfer request:
        the member moves now, with the request's letter"""
        return service.accept_transfer(commands.AcceptTransfer(unit_id=unit_id, member_id=member_id, **body),
                                       current_caller(), stores())


@units.route("/<unit_id>/transfer-requests/<member_id>/refuse")
class UnitTransferRefuse(MethodView):
    @requires("member.transfer")
    @units.arguments(TransferRefuseIn)
    @units.response(200, MemberOut)
    @documented(units)
    def post(self, body, unit_id, member_id):
        """The receiving side refuses a transfer request, with its reason: the member stays"""
        return service.refuse_transfer(commands.RefuseTransfer(unit_id=unit_id, member_id=member_id, **body),
                                       current_caller(), stores())


@units.route("/<unit_id>/members/import")
class UnitMembersImport(MethodView):
    @requires("member.enter")
    @units.arguments(IdempotencyHeader, location="headers")
    @units.arguments(ImportFile, location="files")
    @units.response(200, ImportReport, headers=REPLAY_HEADERS)
    @documented(units, (400, 401, 403, 404, 409, 413, 422))
    def post(self, headers, files, unit_id):
        """Admit a group from a CSV or XLSX file; a per-row report of what was admitted or rejected (a
        retry with the same Idempotency-Key: the first report, nothing admitted again)"""
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput("upload the file as multipart field 'file'", field="file")
        command = commands.ImportMembers(unit_id=unit_id, filename=upload.filename or "", content=upload.read(),
                                         idempotency_key=headers.get("idempotency_key"))
        return batch_answer(*service.import_members(command, current_caller(), stores(), parse_row=AdmitIn().load))


# ---------------------------------------------------------------- members
@members.route("/lookup")
class MemberLookup(MethodView):
    @requires("read")
    @members.arguments(LookupQuery, location="query")
    @members.response(200, MemberOut)
    @documented(members, (400, 401, 403, 404))
    def get(self, q):
        """A member by citizen ID (CCCD) or union card number: the person's current record (admitted or
        active), else their latest former one; 403 outside the caller's subtree"""
        return service.lookup_member(q, current_caller(), stores())


@members.route("/approvals")
class ApprovalBatch(MethodView):
    @requires("member.approve")
    @members.arguments(IdempotencyHeader, location="headers")
    @members.arguments(DecisionsIn)
    @members.response(200, MemberBatchOut, headers=REPLAY_HEADERS)
    @error_responses(members, BATCH_ERRORS, (400, 401, 403, 409, 422))
    def post(self, headers, body):
        """Approve or refuse many admissions (the level above the CĐCS), each on its own: the per-item
        results in order (each item's status is what the one-item endpoint would answer)"""
        command = commands.DecideAdmissions(items=tuple(body["items"]), on=body.get("on"),
                                            idempotency_key=headers.get("idempotency_key"))
        return batch_answer(*service.decide_admissions(command, current_caller(), stores(),
                                                      parse_item=DecisionItem().load))


@members.route("/cards")
class CardBatch(MethodView):
    @requires("member.approve")
    @members.arguments(IdempotencyHeader, location="headers")
    @members.arguments(CardsIn)
    @members.response(200, MemberBatchOut, headers=REPLAY_HEADERS)
    @error_responses(members, BATCH_ERRORS, (400, 401, 403, 409, 422))
    def post(self, headers, body):
        """Issue many union cards, each on its own: the per-item results in order"""
        command = commands.IssueCards(items=tuple(body["items"]), on=body.get("on"),
                                      idempotency_key=headers.get("idempotency_key"))
        return batch_answer(*service.issue_cards(command, current_caller(), stores(), parse_item=CardItem().load))


@members.route("/<member_id>")
class Member(MethodView):
    @requires("read")
    @members.response(200, MemberOut)
    @documented(members, (401, 403, 404))
    def get(self, member_id):
        """One member"""
        return service.read_member(member_id, current_caller(), stores())

    @requires("member.enter")
    @members.arguments(ProfileIn)
    @members.response(200, MemberOut)
    @documented(members)
    def patch(self, body, member_id):
        """Update the profile"""
        changes = {k: v for k, v in body.items() if k not in ("version", "on")}  # only the fields sent
        command = commands.UpdateProfile(member_id=member_id, changes=changes, on=body.get("on"),
                                         version=body.get("version"))
        return service.update_profile(command, current_caller(), stores())


@members.route("/<member_id>/approve")
class MemberApprove(MethodView):
    @requires("member.approve")
    @members.arguments(ActionIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Approve an admission (the level above the CĐCS)"""
        return service.approve(commands.ApproveMember(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/refuse")
class MemberRefuse(MethodView):
    @requires("member.approve")
    @members.arguments(RefuseIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Refuse an admission (the level above the CĐCS): the record closes as refused and is never
        approved later; the person may be admitted again"""
        return service.refuse(commands.RefuseAdmission(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/card")
class MemberCard(MethodView):
    @requires("member.approve")
    @members.arguments(ActionIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Issue the union card with a unique member number"""
        return service.issue_card(commands.IssueCard(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/transfer")
class MemberTransfer(MethodView):
    @requires("member.transfer")
    @members.arguments(TransferIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Transfer to another CĐCS (also across provinces). Inside the caller's subtree the member
        moves now; outside it this records a transfer REQUEST (letter_no and letter_date required)
        that the receiving side accepts or refuses (/units/{unit_id}/transfer-requests)"""
        return service.transfer(commands.TransferMember(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/transfer-request/cancel")
class MemberTransferCancel(MethodView):
    @requires("member.transfer")
    @members.arguments(TransferDecisionIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """The sending side withdraws its pending transfer request"""
        return service.cancel_transfer(commands.CancelTransfer(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/leave")
class MemberLeave(MethodView):
    @requires("member.enter")
    @members.arguments(LeaveIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Leaving: resignation, removal from the rolls, death"""
        return service.leave(commands.RecordLeaving(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/reinstate")
class MemberReinstate(MethodView):
    @requires("member.enter")
    @members.arguments(ActionIn)
    @members.response(200, MemberOut)
    @documented(members)
    def post(self, body, member_id):
        """Reinstate a member who left"""
        return service.reinstate(commands.ReinstateMember(member_id=member_id, **body), current_caller(), stores())


@members.route("/<member_id>/dues")
class MemberDues(MethodView):
    @requires("member.enter")
    @members.arguments(DuesIn)
    @members.response(200, DuesOut)
    @documented(members)
    def post(self, body, member_id):
        """Record a month's dues: the due amount follows the rule in force that month. Naturally
        idempotent (one record per member and month): the same figures again change nothing"""
        return service.record_dues(commands.RecordDues(member_id=member_id, **body), current_caller(), stores())

    @requires("read")
    @members.response(200, DuesOut(many=True))
    @documented(members, (401, 403, 404))
    def get(self, member_id):
        """A member's dues, month by month"""
        return service.member_dues(member_id, current_caller(), stores())
