"""Marshmallow schemas of the periodic reports API (validation and OpenAPI)."""
from marshmallow import Schema, fields, validate

from platformkit.web import StrictSchema

from ..schemas import Figure, Row, UnitRef
from .forms import ENTERED

PERIOD_HELP = "YYYY-H1 (half-year to 31 May), YYYY-SY (year to 30 November) or YYYY-Qn (quarterly member changes)"
MAX_COUNT = 1_000_000_000


class ReportQuery(StrictSchema):
    period = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(H1|SY|Q[1-4])$", error=PERIOD_HELP),
                           metadata={"description": PERIOD_HELP, "example": "2025-H1"})


class EnteredViewQuery(StrictSchema):
    period = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(H1|SY)$",
                                                                   error="YYYY-H1 or YYYY-SY"),
                           metadata={"example": "2025-H1"})
    basis = fields.String(load_default="approved", validate=validate.OneOf(["approved", "live"]),
                          metadata={"description": "approved: the frozen figures of approved reports; live: the latest entries"})


EnteredIn = StrictSchema.from_dict(
    {f.code: fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_COUNT),
                            metadata={"description": f"{f.name_vi} ({f.unit})"}) for f in ENTERED},
    name="EnteredIn")


class ReportIn(StrictSchema):
    entered = fields.Nested(EnteredIn, metadata={"description": "the unit's OWN figures (its children's approved "
                                                                "reports are added to them); missing ones count 0"})
    step_no = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT),
                             metadata={"description": "the step the caller last read; refused (422) if the report moved on"})


class DecisionIn(StrictSchema):
    reason = fields.String(validate=validate.Length(max=2000),
                           metadata={"description": "required to return or reopen a report"})


class FormRow(Schema):
    code = fields.String()
    name_vi = fields.String()
    name_en = fields.String()
    unit = fields.String()
    source = fields.String(metadata={"description": "computed (from the views at the cut-off) or entered"})
    value = fields.Integer(metadata={"description": "the report's figure: frozen once submitted"})
    live = fields.Integer(allow_none=True, metadata={"description": "computed: the live figure now"})
    adjustment = fields.Integer(allow_none=True, metadata={"description": "computed: live minus the frozen figure"})
    own = fields.Integer(allow_none=True)
    from_children = fields.Integer(allow_none=True, metadata={"description": "sum of the children's approved reports"})


class ReportOut(Schema):
    id = fields.String()
    unit = fields.Nested(UnitRef)
    period = fields.String()
    kind = fields.String()
    kind_name = fields.String()
    cutoff = fields.String()
    due_date = fields.String()
    status = fields.String(metadata={"description": "draft, submitted, approved, returned"})
    step_no = fields.Integer()
    frozen = fields.Boolean()
    first_submitted_on = fields.String(allow_none=True)
    on_time = fields.Boolean(allow_none=True)
    approved_at = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    returned_reason = fields.String(allow_none=True)
    unionisation_pct = Figure(allow_none=True)
    rows = fields.List(fields.Nested(FormRow))


class StepOut(Schema):
    step_no = fields.Integer()
    step = fields.String()
    by_unit_id = fields.String(allow_none=True)
    by_subject = fields.String(allow_none=True)
    at = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class Rates(Schema):
    expected = fields.Integer()
    submitted = fields.Integer()
    on_time = fields.Integer()
    late = fields.Integer()
    missing = fields.Integer()
    approved = fields.Integer()
    returned = fields.Integer()
    completeness_pct = Figure(allow_none=True)
    on_time_pct = Figure(allow_none=True)


class Entry(Schema):
    status = fields.String(metadata={"description": "missing, draft, submitted, approved, returned"})
    due_date = fields.String()
    first_submitted_on = fields.String(allow_none=True)
    submitted = fields.Boolean()
    on_time = fields.Boolean(allow_none=True)
    late = fields.Boolean()
    missing = fields.Boolean()


class ChildEntry(Entry):
    unit = fields.Nested(UnitRef)
    has_children = fields.Boolean()
    rates = fields.Nested(Rates, allow_none=True)


class StatusTree(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.String()
    kind = fields.String()
    cutoff = fields.String()
    own = fields.Nested(Entry)
    rates = fields.Nested(Rates)
    children = fields.List(fields.Nested(ChildEntry))


class FollowUp(Entry):
    unit = fields.Nested(UnitRef)


class Completeness(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.String()
    rates = fields.Nested(Rates)
    rows = fields.List(fields.Nested(Row))
    late = fields.List(fields.Nested(FollowUp))
    missing = fields.List(fields.Nested(FollowUp))


class EnteredView(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.String()
    basis = fields.String()
    reports_counted = fields.Integer()
    rows = fields.List(fields.Nested(Row))


DueDays = fields.Dict(keys=fields.String(validate=validate.OneOf(["1", "2", "3", "4"])),
                      values=fields.Integer(strict=True, validate=validate.Range(min=0, max=366)))


class DueDaysIn(StrictSchema):
    half_year = DueDays
    year = fields.Dict(keys=fields.String(validate=validate.OneOf(["1", "2", "3", "4"])),
                       values=fields.Integer(strict=True, validate=validate.Range(min=0, max=366)))
    quarter = fields.Dict(keys=fields.String(validate=validate.OneOf(["1", "2", "3", "4"])),
                          values=fields.Integer(strict=True, validate=validate.Range(min=0, max=366)))


class SettingsIn(StrictSchema):
    due_days = fields.Nested(DueDaysIn, required=True, metadata={
        "description": "per form kind, per level (4 CĐCS .. 1 central): days after the cut-off"})


class SettingsOut(Schema):
    unit_id = fields.String()
    own = fields.Boolean(metadata={"description": "set on this unit (else inherited or the defaults)"})
    due_days = fields.Dict()
