"""The HTTP surface of reporting: views, drill-down, series, ratings, exports, targets, the
indicator catalogue, one MethodView per resource (URL rule). Every endpoint checks the caller's token
against reporting's hierarchy."""
import re

from flask import Response
from flask.views import MethodView

from platformkit.auth import current_caller
from platformkit.web import Blueprint, error_responses, requires

from . import commands, exports, service
from .indicators import CATALOGUE
from .schemas import (ChildrenQuery, ChildrenView, ExportQuery, IndicatorOut, Me, PeriodQuery, RatingsView, SeriesQuery,
                      SeriesView, TargetIn, TargetOut, TargetPage, TargetQuery, UnitView, YearQuery)
from .stores import stores

views = Blueprint("views", __name__, url_prefix="/views", description="Rolled-up attainment views")
targets = Blueprint("targets", __name__, url_prefix="/targets", description="Targets assigned downward")
catalogue = Blueprint("catalogue", __name__, url_prefix="", description="Indicators and the caller")

ERRORS = {400: "invalid input, per field", 401: "no valid token", 403: "outside the caller's subtree",
          404: "unit not known to reporting", 422: "a rule refused it"}


def documented(bp, codes=(400, 401, 403, 404)):
    return error_responses(bp, ERRORS, codes)


@views.route("/<unit_id>")
class UnitFigures(MethodView):
    @requires("read", heavy=True)
    @views.arguments(PeriodQuery, location="query")
    @views.response(200, UnitView)
    @documented(views)
    def get(self, q, unit_id):
        """A unit's own figures for a period: actual, target, % of plan per indicator"""
        return service.unit_view(unit_id, q, current_caller(), stores())


@views.route("/<unit_id>/children")
class UnitChildren(MethodView):
    @requires("read", heavy=True)
    @views.arguments(ChildrenQuery, location="query")
    @views.response(200, ChildrenView)
    @documented(views)
    def get(self, q, unit_id):
        """Drill-down: the unit's total and its children side by side, each with its status and path, a page
        of children at a time (by name)"""
        return service.children_view(unit_id, q, current_caller(), stores())


@views.route("/<unit_id>/series")
class UnitSeries(MethodView):
    @requires("read", heavy=True)
    @views.arguments(SeriesQuery, location="query")
    @views.response(200, SeriesView)
    @documented(views, (400, 401, 403, 404, 422))
    def get(self, q, unit_id):
        """Month by month values of one indicator"""
        return service.series_view(unit_id, q, current_caller(), stores())


@views.route("/<unit_id>/ratings")
class UnitRatings(MethodView):
    @requires("read", heavy=True)
    @views.arguments(YearQuery, location="query")
    @views.response(200, RatingsView)
    @documented(views)
    def get(self, q, unit_id):
        """CĐCS quality ratings at the year's 30 November cut-off: the share of the ELIGIBLE CĐCS (operating
        12 months by then) at each confirmed grade and good or better, overall and by sector, against targets"""
        return service.ratings_view(unit_id, q["year"], current_caller(), stores())


def _download(body: bytes, mimetype: str, name: str) -> Response:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)  # a unit code as typed must not break the header
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@views.route("/<unit_id>/export.csv")
class UnitExportCsv(MethodView):
    @requires("read", heavy=True)
    @views.arguments(ExportQuery, location="query")
    @views.response(200, description=("CSV (UTF-8 with BOM): unit rows with their status, indicator columns actual / "
                                     "target / % / reached; text that could start a formula is prefixed with '"))
    @documented(views)
    def get(self, q, unit_id):
        """Export the drill-down view as CSV"""
        view = service.children_view(unit_id, q, current_caller(), stores())
        return _download(exports.to_csv(view), "text/csv; charset=utf-8", f"chi-tieu-{view['unit']['code'] or unit_id}-{q['period']}.csv")


@views.route("/<unit_id>/export.xlsx")
class UnitExportXlsx(MethodView):
    @requires("read", heavy=True)
    @views.arguments(ExportQuery, location="query")
    @views.response(200, description=("XLSX workbook: unit rows with their status, indicator columns actual / target / "
                                     "% / reached; text that could start a formula is prefixed with '"))
    @documented(views)
    def get(self, q, unit_id):
        """Export the drill-down view as an Excel workbook"""
        view = service.children_view(unit_id, q, current_caller(), stores())
        return _download(exports.to_xlsx(view), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         f"chi-tieu-{view['unit']['code'] or unit_id}-{q['period']}.xlsx")


@targets.route("/<unit_id>")
class UnitTargets(MethodView):
    @requires("target.assign")
    @targets.arguments(TargetIn)
    @targets.response(200, TargetOut)
    @documented(targets, (400, 401, 403, 404, 422))
    def put(self, body, unit_id):
        """Assign (or change) a unit's target for a year and indicator; by a level above the unit"""
        return service.set_target(commands.SetTarget(unit_id=unit_id, **body), current_caller(), stores())

    @requires("read")
    @targets.arguments(TargetQuery, location="query")
    @targets.response(200, TargetPage)
    @documented(targets)
    def get(self, q, unit_id):
        """Targets of the unit and its children for a year, a page of units at a time"""
        return service.list_targets(unit_id, q, current_caller(), stores())


@catalogue.route("/indicators")
class Indicators(MethodView):
    @requires("read")
    @catalogue.response(200, IndicatorOut(many=True))
    @documented(catalogue, (401,))
    def get(self):
        """The indicator catalogue"""
        current_caller()
        return list(CATALOGUE.values())


@catalogue.route("/me")
class Caller(MethodView):
    @requires("read")
    @catalogue.response(200, Me)
    @documented(catalogue, (401,))
    def get(self):
        """Who the token names, and the unit the dashboard should open"""
        return service.me(current_caller(), stores())
