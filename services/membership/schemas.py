"""Marshmallow schemas of the membership API: they validate input (400 naming the field) and
document the API in /openapi.json."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, utils, validate, validates_schema

from platformkit.fields import Cursor, Month, PlausibleDate, page_limit
from platformkit.web import StrictSchema

from .domain import (FOUNDING_METHODS, GENDERS, LEAVE_REASONS, POSITIONS, RATINGS, SECTORS, UNIT_KINDS)

Text = lambda n, **kw: fields.String(validate=validate.Length(min=1, max=n), **kw)  # noqa: E731
RANGE = "ISO date, 1900-01-01 .. 2100-12-31"
TODAY = "today in Vietnam (Asia/Ho_Chi_Minh, UTC+7), whatever the server's time zone"
BATCH_MAX_ITEMS = 500


def Dated(what: str, default: str = TODAY, **kw):  # noqa: N802 - a field factory, named like a field
    """An optional date whose default is documented in the OpenAPI description."""
    return PlausibleDate(load_default=None, metadata={"description": f"{what}. {RANGE}; default: {default}"}, **kw)


Strict = StrictSchema


class Versioned(Strict):
    version = fields.Integer(strict=True, validate=validate.Range(min=1),
                             metadata={"description": "the version read; a stale one gets 412"})


class FoundingIn(Strict):
    method = fields.String(required=True, validate=validate.OneOf(FOUNDING_METHODS))
    founding_member_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100000))
    founding_group = fields.List(Text(200), required=True, validate=validate.Length(max=50))
    decision_no = Text(100, required=True)
    decision_date = PlausibleDate(required=True)


class UnitIn(Strict):
    parent_id = fields.String(load_default=None, validate=validate.Length(max=64))
    name = Text(300, required=True)
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,40}$"))
    kind = fields.String(required=True, validate=validate.OneOf(UNIT_KINDS))
    level = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=9))
    sector = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SECTORS))
    effective_date = Dated("the day the unit starts operating (the CĐCS's founding counts in its month)")
    founding = fields.Nested(FoundingIn, load_default=None)


class UnitOut(Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    code = fields.String()
    kind = fields.String()
    level = fields.Integer()
    sector = fields.String(allow_none=True)
    parent_id = fields.String(allow_none=True)
    ancestors = fields.List(fields.String())
    status = fields.String()
    effective_date = fields.String()
    founding = fields.Dict(allow_none=True)
    committee = fields.Dict(allow_none=True)
    ratings = fields.Dict(allow_none=True)
    merged_into = fields.String(allow_none=True)
    scheduled = fields.Dict(allow_none=True, metadata={
        "description": "changes dated after today, by change id: kind (move, merge, dissolve), date, params, "
                       "requested_by, requested_on, and `failed` (why) when its rules refused it on the day"})
    version = fields.Integer()


class UnitPage(Schema):
    items = fields.List(fields.Nested(UnitOut))
    next_cursor = fields.String(allow_none=True)


class RenameIn(Versioned):
    name = Text(300, required=True)
    effective_date = Dated("the day the new name takes effect")


class MoveIn(Versioned):
    parent_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    effective_date = Dated("the day the unit moves under its new parent")


class MergeIn(Versioned):
    into_unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    effective_date = Dated("the day of the merger (members' transfers and child units' moves carry it too)")


class DissolveIn(Versioned):
    effective_date = Dated("the day the unit is dissolved")


class PositionIn(Strict):
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    position = fields.String(required=True, validate=validate.OneOf(POSITIONS))


class CommitteeIn(Versioned):
    term = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-\d{4}$"),
                         metadata={"example": "2023-2028"})
    date = PlausibleDate(required=True, metadata={"description": f"the day of the consolidation (required). {RANGE}"})
    positions = fields.List(fields.Nested(PositionIn), required=True, validate=validate.Length(min=1, max=60))


class RatingIn(Versioned):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    rating = fields.String(required=True, validate=validate.OneOf(RATINGS))


class ConfirmRatingIn(Versioned):
    rating = fields.String(load_default=None, validate=validate.OneOf(RATINGS),
                           metadata={"description": "the level above may change the proposed rating"})


class AdmitIn(Strict):
    full_name = Text(200, required=True)
    citizen_id = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{12}$",
                               error="citizen ID (CCCD) must be exactly 12 digits"))
    date_of_birth = PlausibleDate(not_after_today=True, required=True)
    gender = fields.String(required=True, validate=validate.OneOf(GENDERS))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\+?[0-9 .-]{8,15}$"))
    employer = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    is_official = fields.Boolean(load_default=False)
    admitted_on = Dated("the day the CĐCS decided the admission (not in the future)")


class ProfileIn(Versioned):
    full_name = Text(200)
    gender = fields.String(validate=validate.OneOf(GENDERS))
    phone = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 .-]{8,15}$"))
    employer = fields.String(allow_none=True, validate=validate.Length(max=300))
    is_official = fields.Boolean()
    date_of_birth = PlausibleDate(not_after_today=True)
    on = Dated("the day the change takes effect, e.g. the day the member became a union official (not in the "
               "future); the reports count the change in that month")


class MemberOut(Schema):
    id = fields.String(attribute="_id")
    full_name = fields.String()
    citizen_id = fields.String()
    date_of_birth = fields.String()
    gender = fields.String()
    phone = fields.String(allow_none=True)
    employer = fields.String(allow_none=True)
    is_official = fields.Boolean()
    unit_id = fields.String()
    status = fields.String()
    admitted_on = fields.String()
    approved_on = fields.String(allow_none=True)
    member_number = fields.String(allow_none=True)
    left_on = fields.String(allow_none=True)
    left_reason = fields.String(allow_none=True)
    refused_on = fields.String(allow_none=True)
    refused_reason = fields.String(allow_none=True)
    pending_transfer = fields.Dict(allow_none=True, metadata={
        "description": "a transfer request awaiting the receiving side: to_unit_id, letter_no, letter_date, "
                       "requested_by, requested_on"})
    transfer_letter = fields.Dict(allow_none=True, metadata={"description": "the letter of the last transfer"})
    version = fields.Integer()


class MemberPage(Schema):
    items = fields.List(fields.Nested(MemberOut))
    next_cursor = fields.String(allow_none=True)


class MemberQuery(Strict):
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "name, diacritics optional"})
    status = fields.String(validate=validate.OneOf(("admitted", "active", "left", "refused")))
    after = Cursor()
    limit = page_limit(50, 200)


class UnitQuery(Strict):
    after = Cursor()
    limit = page_limit(100, 500)
    kind = fields.String(validate=validate.OneOf(UNIT_KINDS))


class ActionIn(Versioned):
    on = Dated("the day of the act: approval (`approved_on`), card issue (`issued_on`) or reinstatement "
               "(`reinstated_on`)")


class RefuseIn(Versioned):
    reason = Text(500, required=True, metadata={"description": "why the level above refuses the admission"})
    on = Dated("the day of the refusal (`refused_on`)")


class TransferIn(Versioned):
    to_unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    on = Dated("the day of the transfer (`transferred_on`), or of the request")
    letter_no = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                              metadata={"description": "the transfer letter's number; required when the destination "
                                                       "is outside the caller's subtree (a request)"})
    letter_date = PlausibleDate(load_default=None, metadata={"description": f"the transfer letter's date ({RANGE}); "
                                                                            "required for a request"})


class TransferDecisionIn(Versioned):
    on = Dated("the day of the decision (`transferred_on` on acceptance)")


class TransferRefuseIn(Versioned):
    reason = Text(500, required=True, metadata={"description": "why the receiving side refuses the transfer"})
    on = Dated("the day of the refusal")


class TransferRequestQuery(Strict):
    after = Cursor()
    limit = page_limit(50, 200)


class LeaveIn(Versioned):
    reason = fields.String(required=True, validate=validate.OneOf(LEAVE_REASONS))
    on = Dated("the day the member left (`left_on`)")


class DuesIn(Strict):
    month = Month(required=True)
    salary = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10**10),
                            metadata={"description": "social-insurance salary, whole đồng"})
    paid = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=10**9))
    on_social_insurance_benefits = fields.Boolean(load_default=False)
    unpaid_leave_months = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=120))


class DuesOut(Schema):
    id = fields.String(attribute="_id")
    member_id = fields.String()
    unit_id = fields.String()
    month = fields.String()
    salary = fields.Integer()
    rate_permille = fields.Integer()
    due = fields.Integer()
    paid = fields.Integer()
    exempt_reason = fields.String(allow_none=True)


class ImportRow(Schema):
    row = fields.Integer()
    status = fields.String(metadata={"description": "admitted, already_admitted or rejected"})
    member_id = fields.String(allow_none=True)
    errors = fields.Dict(allow_none=True)


class ImportReport(Schema):
    file = fields.String()
    admitted = fields.Integer()
    already_admitted = fields.Integer()
    rejected = fields.Integer()
    rows = fields.List(fields.Nested(ImportRow))


class ImportFile(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


# ---------------------------------------------------------------- idempotency, lookup
class IdempotencyHeader(Schema):
    class Meta:
        unknown = EXCLUDE  # every other request header

    idempotency_key = fields.String(
        data_key="Idempotency-Key", load_default=None, validate=validate.Length(min=1, max=200),
        metadata={"description": "Optional, chosen by the client (e.g. a UUID), scoped to the token's subject and "
                                 "unit and to this operation. A retry with the same key and the same request "
                                 "returns the first answer (same status, same created id; a batch: the same "
                                 "per-item results, with `Idempotent-Replayed: true`) and changes nothing; the "
                                 "same key with a different request is a 422 naming this header."})


class LookupQuery(Strict):
    citizen_id = fields.String(validate=validate.Regexp(r"^[0-9]{12}$",
                               error="citizen ID (CCCD) must be exactly 12 digits"),
                               metadata={"description": "CCCD, 12 digits: the person's current record "
                                                        "(admitted or active), else their latest former one"})
    member_number = fields.String(validate=validate.Regexp(r"^[A-Z0-9]{4,20}$"),
                                  metadata={"description": "union card number"})

    @validates_schema
    def _exactly_one(self, data, **_kw):
        if ("citizen_id" in data) == ("member_number" in data):
            raise ValidationError("give exactly one of citizen_id or member_number", "citizen_id")


# ---------------------------------------------------------------- batches
class BatchItems(fields.List):
    """A batch's items: documented as a list of the item schema, but taken as they are, so that
    the endpoint validates each on its own (a bad item fails alone with its own 400, naming the
    field; the others are applied)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not utils.is_collection(value):
            raise self.make_error("invalid")
        return list(value)


def Items(item_schema):  # noqa: N802 - a field factory
    return BatchItems(fields.Nested(item_schema), required=True,
                      validate=validate.Length(min=1, max=BATCH_MAX_ITEMS),
                      metadata={"description": f"1 to {BATCH_MAX_ITEMS} items, each applied on its own (a 400 "
                                               "beyond); the answer lists every item in the same order"})


class DecisionItem(Strict):
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    decision = fields.String(required=True, validate=validate.OneOf(("approve", "refuse")))
    reason = Text(500, metadata={"description": "required to refuse"})
    version = fields.Integer(strict=True, validate=validate.Range(min=1),
                             metadata={"description": "the member's version read; a stale one gets 412"})

    @validates_schema
    def _reason_to_refuse(self, data, **_kw):
        if data.get("decision") == "refuse" and not (data.get("reason") or "").strip():
            raise ValidationError("a refusal states its reason", "reason")


class DecisionsIn(Strict):
    items = Items(DecisionItem)
    on = Dated("the day of every decision of the batch (`approved_on` / `refused_on`)")


class CardItem(Strict):
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Integer(strict=True, validate=validate.Range(min=1),
                             metadata={"description": "the member's version read; a stale one gets 412"})


class CardsIn(Strict):
    items = Items(CardItem)
    on = Dated("the day of issue of every card of the batch (`issued_on`; the card number carries its year)")


class RatingItem(Strict):
    unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    action = fields.String(required=True, validate=validate.OneOf(("propose", "confirm")),
                           metadata={"description": "propose (capability rating.propose) or confirm "
                                                    "(rating.confirm, by a federation unit above the CĐCS)"})
    rating = fields.String(validate=validate.OneOf(RATINGS),
                           metadata={"description": "required to propose; to confirm, a different rating "
                                                    "replaces the proposed one"})
    version = fields.Integer(strict=True, validate=validate.Range(min=1),
                             metadata={"description": "the unit's version read; a stale one gets 412"})

    @validates_schema
    def _rating_to_propose(self, data, **_kw):
        if data.get("action") == "propose" and not data.get("rating"):
            raise ValidationError("a proposal names its rating", "rating")


class RatingsIn(Strict):
    items = Items(RatingItem)


class ItemError(Schema):
    """The error of one item: the API's error body (without the request id)."""
    status = fields.Integer()
    code = fields.String()
    message = fields.String()
    errors = fields.Dict(metadata={"description": "field (of the item) -> messages"})


class MemberBrief(Schema):
    id = fields.String()
    unit_id = fields.String()
    status = fields.String()
    version = fields.Integer()
    approved_on = fields.String(allow_none=True)
    refused_on = fields.String(allow_none=True)
    member_number = fields.String(allow_none=True)
    card_issued_on = fields.String(allow_none=True)


class MemberItemResult(Schema):
    index = fields.Integer(metadata={"description": "the item's position in the request, from 0"})
    status = fields.Integer(metadata={"description": "the HTTP status the one-item endpoint would have answered"})
    member = fields.Nested(MemberBrief, metadata={"description": "the member after the act (2xx)"})
    error = fields.Nested(ItemError, metadata={"description": "why the item was refused (4xx)"})


class BatchCounts(Schema):
    total = fields.Integer()
    succeeded = fields.Integer()
    failed = fields.Integer()


class MemberBatchOut(BatchCounts):
    results = fields.List(fields.Nested(MemberItemResult))


class RatingBrief(Schema):
    id = fields.String(metadata={"description": "the CĐCS"})
    version = fields.Integer()
    year = fields.Integer()
    rating = fields.String()
    rating_status = fields.String(metadata={"description": "proposed or confirmed"})


class RatingItemResult(Schema):
    index = fields.Integer()
    status = fields.Integer()
    unit = fields.Nested(RatingBrief)
    error = fields.Nested(ItemError)


class RatingBatchOut(BatchCounts):
    results = fields.List(fields.Nested(RatingItemResult))
