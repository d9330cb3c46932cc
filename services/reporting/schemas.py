"""Marshmallow schemas of the reporting API (validation and OpenAPI)."""
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from platformkit.fields import Month
from platformkit.web import StrictSchema

from .indicators import CATALOGUE
from .periods import MAX_MONTHS, BadPeriod, check_span, parse


Strict = StrictSchema


class PeriodQuery(Strict):
    period = fields.String(required=True, metadata={"example": "2025-SY",
                           "description": "2025-07, 2025-Q3, 2025-H1 (to 31 May), 2025-SY (to 30 Nov), 2025, 2025-01..2025-06"})
    indicators = fields.String(metadata={"description": "comma-separated indicator codes (default: the headline set)"})

    @validates("period")
    def _period(self, value, **_):
        try:
            parse(value)
        except BadPeriod as exc:
            raise ValidationError(str(exc)) from exc

    @validates("indicators")
    def _indicators(self, value, **_):
        unknown = [c for c in value.split(",") if c and c not in CATALOGUE]
        if unknown:
            raise ValidationError(f"unknown indicators {unknown}")


class SeriesQuery(Strict):
    indicator = fields.String(required=True, validate=validate.OneOf(sorted(CATALOGUE)))
    first = Month(required=True)
    last = Month(required=True, metadata={"description": f"at most {MAX_MONTHS} months after `first`"})

    @validates_schema
    def _range(self, data, **_):
        if "first" in data and "last" in data and data["first"] <= data["last"]:  # reversed: 422 below
            try:
                check_span(data["first"], data["last"])
            except BadPeriod as exc:
                raise ValidationError(str(exc), field_name="last") from exc


class YearQuery(Strict):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))


class TargetIn(Strict):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    indicator = fields.String(required=True, validate=validate.OneOf(sorted(CATALOGUE)))
    value = fields.Float(required=True, validate=validate.Range(min=0, max=1e15), allow_nan=False)


class TargetOut(Schema):
    unit = fields.String()
    year = fields.Integer()
    indicator = fields.String()
    value = fields.Float()
    assigned_by = fields.String()
    version = fields.Integer()


class Row(Schema):
    indicator = fields.String()
    name_vi = fields.String()
    name_en = fields.String()
    unit = fields.String()
    kind = fields.String()
    group = fields.String()
    actual = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    attainment_pct = fields.Float(allow_none=True)


class UnitRef(Schema):
    id = fields.String()
    name = fields.String()
    code = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    sector = fields.String(allow_none=True)
    ancestors = fields.List(fields.String())
    status = fields.String(allow_none=True)


class PeriodOut(Schema):
    code = fields.String()
    first_month = fields.String()
    last_month = fields.String()


class UnitView(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.Nested(PeriodOut)
    rows = fields.List(fields.Nested(Row))


class ChildRows(Schema):
    unit = fields.Nested(UnitRef)
    rows = fields.List(fields.Nested(Row))


class ChildrenView(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.Nested(PeriodOut)
    total = fields.List(fields.Nested(Row))
    children = fields.List(fields.Nested(ChildRows))


class Point(Schema):
    month = fields.String()
    value = fields.Float(allow_none=True)


class SeriesView(Schema):
    unit = fields.Nested(UnitRef)
    indicator = fields.String()
    name_vi = fields.String()
    points = fields.List(fields.Nested(Point))


class RatingShare(Schema):
    rating = fields.String()
    name_vi = fields.String()
    count = fields.Integer()
    share_pct = fields.Float(allow_none=True)


class RatingsView(Schema):
    unit = fields.Nested(UnitRef)
    year = fields.Integer()
    rated = fields.Integer()
    shares = fields.List(fields.Nested(RatingShare))
    by_sector = fields.List(fields.Dict())


class IndicatorOut(Schema):
    code = fields.String()
    name_vi = fields.String()
    name_en = fields.String()
    unit = fields.String()
    kind = fields.String()
    numerator = fields.String(allow_none=True)
    denominator = fields.String(allow_none=True)
    group = fields.String()


class Me(Schema):
    subject = fields.String()
    roles = fields.List(fields.String())
    unit = fields.Nested(UnitRef, allow_none=True)
