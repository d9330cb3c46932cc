"""Marshmallow schemas of the membership API: they validate input (400 naming the field) and
document the API in /openapi.json."""
from marshmallow import Schema, fields, validate

from platformkit.fields import Month, PlausibleDate
from platformkit.web import StrictSchema

from .domain import (FOUNDING_METHODS, GENDERS, LEAVE_REASONS, POSITIONS, RATINGS, SECTORS, UNIT_KINDS)

Text = lambda n, **kw: fields.String(validate=validate.Length(min=1, max=n), **kw)  # noqa: E731


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
    effective_date = PlausibleDate(load_default=None)
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
    version = fields.Integer()


class UnitPage(Schema):
    items = fields.List(fields.Nested(UnitOut))
    next_cursor = fields.String(allow_none=True)


class RenameIn(Versioned):
    name = Text(300, required=True)
    effective_date = PlausibleDate(load_default=None)


class MoveIn(Versioned):
    parent_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    effective_date = PlausibleDate(load_default=None)


class MergeIn(Versioned):
    into_unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    effective_date = PlausibleDate(load_default=None)


class DissolveIn(Versioned):
    effective_date = PlausibleDate(load_default=None)


class PositionIn(Strict):
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    position = fields.String(required=True, validate=validate.OneOf(POSITIONS))


class CommitteeIn(Versioned):
    term = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-\d{4}$"),
                         metadata={"example": "2023-2028"})
    date = PlausibleDate(required=True)
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
    admitted_on = PlausibleDate(load_default=None)


class ProfileIn(Versioned):
    full_name = Text(200)
    gender = fields.String(validate=validate.OneOf(GENDERS))
    phone = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 .-]{8,15}$"))
    employer = fields.String(allow_none=True, validate=validate.Length(max=300))
    is_official = fields.Boolean()
    date_of_birth = PlausibleDate(not_after_today=True)


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
    version = fields.Integer()


class MemberPage(Schema):
    items = fields.List(fields.Nested(MemberOut))
    next_cursor = fields.String(allow_none=True)


class MemberQuery(Strict):
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "name, diacritics optional"})
    status = fields.String(validate=validate.OneOf(("admitted", "active", "left")))
    after = fields.String(validate=validate.Length(max=64), metadata={"description": "cursor from next_cursor"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class UnitQuery(Strict):
    after = fields.String(validate=validate.Length(max=64))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    kind = fields.String(validate=validate.OneOf(UNIT_KINDS))


class ActionIn(Versioned):
    on = PlausibleDate(load_default=None)


class TransferIn(Versioned):
    to_unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    on = PlausibleDate(load_default=None)


class LeaveIn(Versioned):
    reason = fields.String(required=True, validate=validate.OneOf(LEAVE_REASONS))
    on = PlausibleDate(load_default=None)


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
