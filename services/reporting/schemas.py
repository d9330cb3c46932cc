"""Marshmallow schemas of the reporting API (validation and OpenAPI)."""
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from platformkit.fields import Cursor, Month, PlausibleDate, page_limit
from platformkit.web import StrictSchema

from .indicators import CATALOGUE
from .periods import MAX_MONTHS, BadPeriod, check_span, parse


Strict = StrictSchema


class Figure(fields.Number):
    """A figure as JSON: a count stays an integer (155, never 155.0); a ratio, a percentage or a
    share is a number with at most two decimals (views.py decides which a value is)."""
    num_type = float

    def _format_num(self, value):
        if isinstance(value, bool):
            raise ValidationError("not a number")
        if isinstance(value, int):
            return value
        return round(float(value), 2)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else self._format_num(value)


class PeriodQuery(Strict):
    period = fields.String(required=True, metadata={"example": "2025-SY",
                           "description": "2025-07, 2025-Q3, 2025-H1 (to 31 May), 2025-SY (to 30 Nov), 2025, 2025-01..2025-06"})
    indicators = fields.String(metadata={"description": "comma-separated indicator codes (default: the headline set)"})
    as_of = PlausibleDate(metadata={"example": "2024-12-31", "description": (
        "ISO date, 1900-01-01 .. 2100-12-31: compute the period's figures with the hierarchy as it was on that "
        "date (the units below the unit then, its children then); absent: the current hierarchy. The "
        "caller's scope is checked on the current hierarchy either way.")})

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


class ExportQuery(PeriodQuery):
    include_closed = fields.Boolean(metadata={"description": (
        "true: every child, dissolved and merged ones too; false: only the children operating; "
        "absent: those operating and those closed on or after the period's first day (they still count "
        "for the period, so the children add up to the total). Closed children are marked by `status`.")})


class ChildrenQuery(ExportQuery):
    """The drill-down in pages of children (by name); an export holds every child."""
    after = Cursor()
    limit = page_limit(200, 500, "children")


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


class TargetQuery(YearQuery):
    after = Cursor()
    limit = page_limit(200, 500, "units (each with all its targets)")


class TargetIn(Strict):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    indicator = fields.String(required=True, validate=validate.OneOf(sorted(CATALOGUE)))
    value = fields.Float(required=True, validate=validate.Range(min=0, max=1e15), allow_nan=False,
                         metadata={"description": "a count (people, units, times, đồng) is whole; a % is 0-100"})

    @validates_schema
    def _whole_counts(self, data, **_):
        ind = CATALOGUE.get(data.get("indicator"))
        value = data.get("value")
        if ind is not None and ind.kind != "ratio" and value is not None and not float(value).is_integer():
            raise ValidationError(f"a target of {ind.code} counts {ind.unit}: a whole number", field_name="value")


class TargetOut(Schema):
    unit = fields.String()
    year = fields.Integer()
    indicator = fields.String()
    value = Figure()
    assigned_by = fields.String()
    version = fields.Integer()
    carried_from = fields.String(metadata={"description": "a target of a closed predecessor this unit carries"})


class TargetPage(Schema):
    items = fields.List(fields.Nested(TargetOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": "`after` for the next page; null on the last page"})


class Row(Schema):
    indicator = fields.String()
    name_vi = fields.String()
    name_en = fields.String()
    unit = fields.String()
    kind = fields.String()
    group = fields.String()
    actual = Figure(allow_none=True)
    target = Figure(allow_none=True)
    attainment_pct = Figure(allow_none=True)
    reached = fields.Boolean(allow_none=True, metadata={
        "description": "actual >= target (a % compared exactly); null without a target or an actual"})
    carried_from = fields.List(fields.String(), metadata={
        "description": "closed units (merged into this one, or dissolved with their CĐCS moved here) whose target "
                       "of the year this target includes"})
    carried_to = fields.List(fields.String(), metadata={
        "description": "a closed unit's successors, which carry its target of the year (counted once above)"})


class PathStep(Schema):
    id = fields.String()
    code = fields.String(allow_none=True)
    name = fields.String()


class UnitRef(Schema):
    id = fields.String()
    name = fields.String()
    code = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    sector = fields.String(allow_none=True)
    ancestors = fields.List(fields.String())
    status = fields.String(allow_none=True, metadata={"description": "active, dissolved or merged"})
    closed_on = fields.String(allow_none=True, metadata={"description": "the date it was dissolved or merged"})
    merged_into = fields.String(allow_none=True)
    predecessors = fields.List(fields.String(), metadata={
        "description": "closed units this one succeeds: merged into it, or dissolved with their CĐCS moved here"})
    successors = fields.List(fields.String(), metadata={
        "description": "closed: the unit it merged into, or the units its CĐCS moved to before it was dissolved"})
    includes_merged = fields.List(fields.String(), metadata={
        "description": "merged units (formerly under the same parent) whose figures and targets this row includes, "
                       "because the view no longer lists them itself"})
    path = fields.List(fields.Nested(PathStep), metadata={"description": "its ancestors, root first"})


class PeriodOut(Schema):
    code = fields.String()
    first_month = fields.String()
    last_month = fields.String()


class HierarchyOut(Schema):
    kind = fields.String(metadata={"description": "`current` or `as_of`"})
    as_of = fields.String(allow_none=True, metadata={"description": "the date whose hierarchy was used; null: current"})


class UnitView(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.Nested(PeriodOut)
    hierarchy = fields.Nested(HierarchyOut, metadata={"description": "which hierarchy the figures were summed over"})
    rows = fields.List(fields.Nested(Row))


class ChildRows(Schema):
    unit = fields.Nested(UnitRef)
    rows = fields.List(fields.Nested(Row))


class ChildrenView(Schema):
    unit = fields.Nested(UnitRef)
    period = fields.Nested(PeriodOut)
    hierarchy = fields.Nested(HierarchyOut, metadata={"description": "which hierarchy the figures were summed over"})
    total = fields.List(fields.Nested(Row))
    children = fields.List(fields.Nested(ChildRows))
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "`after` for the next page of children; null on the last page"})


class Point(Schema):
    month = fields.String()
    value = Figure(allow_none=True)


class SeriesView(Schema):
    unit = fields.Nested(UnitRef)
    indicator = fields.String()
    name_vi = fields.String()
    points = fields.List(fields.Nested(Point))


class RatingShare(Schema):
    rating = fields.String(metadata={"description": "a grade, or good_or_better (excellent + good)"})
    name_vi = fields.String()
    count = fields.Integer()
    share_pct = Figure(allow_none=True, metadata={"description": "of the CĐCS eligible for rating"})
    target = Figure(allow_none=True)
    attainment_pct = Figure(allow_none=True)
    reached = fields.Boolean(allow_none=True)


class SectorRatings(Schema):
    sector = fields.String()
    name_vi = fields.String()
    eligible = fields.Integer()
    rated = fields.Integer()
    rated_pct = Figure(allow_none=True)
    good_or_better = fields.Nested(RatingShare)
    ratings = fields.List(fields.Nested(RatingShare))


class RatingsView(Schema):
    unit = fields.Nested(UnitRef)
    year = fields.Integer()
    cutoff = fields.String(metadata={"description": "30 November of the year"})
    eligible = fields.Integer(metadata={"description": "CĐCS operating 12 months by the cut-off and active then"})
    rated = fields.Integer(metadata={"description": "of those, rated (confirmed by the level above)"})
    rated_pct = Figure(allow_none=True)
    shares = fields.List(fields.Nested(RatingShare))
    good_or_better = fields.Nested(RatingShare)
    by_sector = fields.List(fields.Nested(SectorRatings))


class IndicatorOut(Schema):
    code = fields.String()
    name_vi = fields.String()
    name_en = fields.String()
    unit = fields.String()
    kind = fields.String()
    numerator = fields.String(allow_none=True)
    denominator = fields.String(allow_none=True)
    group = fields.String()
    annual = fields.Boolean(metadata={"description": "read at the period's 30 November cut-off"})


class Me(Schema):
    subject = fields.String()
    roles = fields.List(fields.String())
    unit = fields.Nested(UnitRef, allow_none=True)
