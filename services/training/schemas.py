"""Request and response schemas: they validate input (400 naming the field, before anything is
written) and describe the API in /openapi.json. The domain re-checks its own rules."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from platformkit.fields import Cursor, PlausibleDate, page_limit

from . import domain

CODE = validate.Regexp(re.compile(domain.CODE_PATTERN.pattern, re.IGNORECASE), error="2-40 characters: capital letters, digits, '.', '_' or '-'")
ID = validate.Length(min=1, max=100)


def _date_str(**kw):
    """Dates are stored and returned as ISO strings."""
    return fields.String(metadata={"format": "date", **kw.pop("metadata", {})}, **kw)


class PageQuery(Schema):
    after = Cursor()
    limit = page_limit(100, 500)
    unit_id = fields.String(validate=ID, metadata={"description": "only this unit's subtree (within yours)"})


# ---------------------------------------------------------------- courses

class CourseIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(validate=validate.Length(max=4000))
    topic = fields.String(required=True, validate=validate.OneOf(domain.TOPICS))
    audience = fields.String(required=True, validate=validate.OneOf(domain.AUDIENCES))
    format = fields.String(load_default="in_person", validate=validate.OneOf(domain.FORMATS))
    duration_days = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(min=1, max=domain.MAX_DURATION_DAYS))
    min_attendance_percent = fields.Integer(
        load_default=domain.DEFAULT_MIN_ATTENDANCE_PERCENT, strict=True,
        validate=validate.Range(*domain.MIN_ATTENDANCE_PERCENT_RANGE),
        metadata={"description": "share of class days a member must attend to complete"})
    owner_unit_id = fields.String(required=True, validate=ID)


class CourseOut(Schema):
    id = fields.String(attribute="_id")
    code = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    topic = fields.String()
    audience = fields.String()
    format = fields.String()
    duration_days = fields.Integer()
    min_attendance_percent = fields.Integer()
    owner_unit_id = fields.String()
    owner_ancestors = fields.List(fields.String())
    status = fields.String()
    version = fields.Integer()


class CourseQuery(PageQuery):
    topic = fields.String(validate=validate.OneOf(domain.TOPICS))
    status = fields.String(validate=validate.OneOf(("active", "retired")))


# ---------------------------------------------------------------- classes

class ClassIn(Schema):
    course_id = fields.String(required=True, validate=ID)
    code = fields.String(required=True, validate=CODE,
                         metadata={"description": "unique; certificate numbers are derived from it"})
    name = fields.String(validate=validate.Length(min=1, max=300))
    organising_unit_id = fields.String(required=True, validate=ID)
    start_date = PlausibleDate(required=True)
    days = fields.List(PlausibleDate(), validate=validate.Length(min=1, max=domain.MAX_DURATION_DAYS),
                       metadata={"description": "the class days; default: consecutive days from start_date"})
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=domain.MAX_CAPACITY))
    format = fields.String(validate=validate.OneOf(domain.FORMATS))
    location = fields.String(validate=validate.Length(max=300))


class ClassOut(Schema):
    id = fields.String(attribute="_id")
    code = fields.String()
    name = fields.String()
    course_id = fields.String()
    course_code = fields.String()
    topic = fields.String()
    audience = fields.String()
    format = fields.String()
    min_attendance_percent = fields.Integer()
    organising_unit_id = fields.String()
    organising_ancestors = fields.List(fields.String())
    location = fields.String(allow_none=True)
    days = fields.List(_date_str())
    start_date = _date_str()
    end_date = _date_str()
    capacity = fields.Integer()
    seats_taken = fields.Integer()
    status = fields.String(metadata={"enum": list(domain.CLASS_STATUSES)})
    certificates_issued = fields.Integer(attribute="certificate_seq")
    closed_on = _date_str(allow_none=True)
    cancelled_on = _date_str(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    version = fields.Integer()


class ClassQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(domain.CLASS_STATUSES))
    course_id = fields.String(validate=ID)
    topic = fields.String(validate=validate.OneOf(domain.TOPICS))


class DatedIn(Schema):
    on = PlausibleDate(metadata={"description": "date of the act; default today"})


class CancelIn(DatedIn):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


# ---------------------------------------------------------------- enrolments, attendance, completion

class EnrolmentIn(DatedIn):
    member_id = fields.String(required=True, validate=ID)


class WithdrawIn(DatedIn):
    reason = fields.String(validate=validate.Length(max=1000))


class EnrolmentOut(Schema):
    class_id = fields.String()
    member_id = fields.String()
    full_name = fields.String(allow_none=True)
    unit_id = fields.String()
    ancestors = fields.List(fields.String())
    is_official = fields.Boolean()
    status = fields.String(metadata={"enum": list(domain.ENROLMENT_STATUSES)})
    enrolled_on = _date_str()
    attended = fields.List(_date_str())
    score = fields.Float(allow_none=True)
    grade = fields.String(allow_none=True)
    certificate_no = fields.String(allow_none=True)
    assessed_on = _date_str(allow_none=True)
    withdrawn_on = _date_str(allow_none=True)
    reason = fields.String(allow_none=True)


class MemberEnrolmentQuery(Schema):
    member_id = fields.String(required=True, validate=ID)


class AttendanceIn(Schema):
    date = PlausibleDate(required=True)
    present = fields.List(fields.String(validate=ID), required=True,
                          validate=validate.Length(max=domain.MAX_CAPACITY),
                          metadata={"description": "members present that day; every other enrolled member "
                                                   "is recorded absent"})


class AttendanceOut(Schema):
    class_id = fields.String()
    date = _date_str()
    present = fields.List(fields.String())
    absent = fields.List(fields.String())
    version = fields.Integer()


class CompletionIn(DatedIn):
    score = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=10),
                         metadata={"description": "final score on the 10-point scale; pass mark 5"})


class CompletionOut(EnrolmentOut):
    required_days = fields.Integer()
    days_count = fields.Integer()
    version = fields.Integer()


class CertificateOut(Schema):
    certificate_no = fields.String()
    member_id = fields.String()
    full_name = fields.String(allow_none=True)
    unit_id = fields.String()
    class_id = fields.String()
    class_code = fields.String()
    course_id = fields.String()
    course_code = fields.String()
    class_name = fields.String()
    topic = fields.String()
    organising_unit_id = fields.String()
    grade = fields.String()
    score = fields.Float()
    issued_on = _date_str()


# ---------------------------------------------------------------- dissemination

class ReachedIn(Schema):
    unit_id = fields.String(required=True, validate=ID)
    members_reached = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                                     metadata={"description": "attendees of this unit NOT listed in member_ids "
                                                              "(a head count): lượt only"})


class DisseminationIn(Schema):
    organising_unit_id = fields.String(required=True, validate=ID)
    topic = fields.String(required=True, validate=validate.Length(min=1, max=500),
                          metadata={"description": "the resolution or document disseminated"})
    document_ref = fields.String(validate=validate.Length(max=200))
    held_on = PlausibleDate(required=True)
    format = fields.String(load_default="in_person", validate=validate.OneOf(domain.FORMATS))
    audience = fields.String(load_default="members", validate=validate.OneOf(domain.AUDIENCES))
    member_ids = fields.List(
        fields.String(validate=ID), load_default=list,
        validate=validate.Length(max=domain.MAX_MEMBERS_PER_SESSION),
        metadata={"description": "the members reached: active members of the organising unit's subtree (a "
                                 "member listed twice is reached once). They count toward lượt and toward the "
                                 "members and CĐCS reached (each once a year in reporting)"})
    reached = fields.List(fields.Nested(ReachedIn), load_default=list,
                          validate=validate.Length(max=domain.MAX_UNITS_PER_SESSION),
                          metadata={"description": "head counts per unit of attendees not identified by member "
                                                   "id: they count toward lượt only, never toward the shares"})

    @validates_schema
    def _who(self, data, **_kw):
        ids = [r["unit_id"] for r in data.get("reached", [])]
        if len(set(ids)) != len(ids):
            raise ValidationError("a unit is listed twice", "reached")
        if not data.get("reached") and not data.get("member_ids"):
            raise ValidationError("list the members reached (member_ids) and/or head counts per unit of "
                                  "attendees not identified (reached)", "member_ids")


class ReachedOut(Schema):
    unit_id = fields.String()
    ancestors = fields.List(fields.String())
    members_reached = fields.Integer(metadata={"description": "lượt in this unit: identified + unidentified"})
    identified = fields.Integer(metadata={"description": "members of this unit listed in member_ids"})
    unidentified = fields.Integer(metadata={"description": "the head count given for this unit"})


class DisseminationOut(Schema):
    id = fields.String(attribute="_id")
    organising_unit_id = fields.String()
    organising_ancestors = fields.List(fields.String())
    topic = fields.String()
    document_ref = fields.String(allow_none=True)
    held_on = _date_str()
    format = fields.String()
    audience = fields.String()
    member_ids = fields.List(fields.String(), metadata={"description": "the members reached, each once (not in "
                                                                       "lists)"})
    reached = fields.List(fields.Nested(ReachedOut))
    cdcs_ids = fields.List(fields.String(), metadata={"description": "the CĐCS with at least one member reached"})
    members_reached = fields.Integer(metadata={"description": "lượt: members identified + attendees not identified"})
    members_identified = fields.Integer()
    unidentified = fields.Integer()
    units_reached = fields.Integer()
    cdcs_reached = fields.Integer()
    version = fields.Integer()



# ---------------------------------------------------------------- pages (platformkit.paging)
NEXT_CURSOR = "`after` for the next page; null on the last page"


class CoursePage(Schema):
    items = fields.List(fields.Nested(CourseOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})


class ClassPage(Schema):
    items = fields.List(fields.Nested(ClassOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})


class DisseminationPage(Schema):
    items = fields.List(fields.Nested(DisseminationOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})
