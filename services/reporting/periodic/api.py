"""The HTTP surface of periodic reports (/api/v1/periodic/...), one MethodView per resource (URL rule); an
action (submit, approve, return, reopen) is its own resource. Every endpoint checks the caller's
capability (platformkit.permissions) and its subtree (the unit in the path, before input is
parsed; the workflow's own rules in service.py)."""
from flask.views import MethodView

from platformkit.auth import current_caller
from platformkit.web import Blueprint, error_responses, requires

from .. import commands as c
from ..api import _download
from ..stores import stores
from . import exports, service
from .schemas import (Completeness, DecisionIn, EnteredView, EnteredViewQuery, ReportIn, ReportOut, SettingsIn,
                      SettingsOut, StatusTree, StepOut)

periodic = Blueprint("periodic", __name__, url_prefix="/periodic",
                     description="Periodic reports: submitted by each unit, approved level by level, frozen at the cut-off")

ERRORS = {400: "invalid input, per field", 401: "no valid token", 403: "outside the caller's subtree, or not its step",
          404: "unit not known to reporting", 409: "a concurrent request changed the report first",
          422: "a rule refused it (status, children not approved, unit not active at the cut-off)"}
READ = (400, 401, 403, 404)
WRITE = (400, 401, 403, 404, 409, 422)


def documented(codes):
    return error_responses(periodic, ERRORS, codes)


@periodic.route("/<unit_id>/<period>/report")
class Report(MethodView):
    @requires("report.read")
    @periodic.response(200, ReportOut)
    @documented(READ)
    def get(self, unit_id, period):
        """A unit's report for a period: computed figures (frozen once submitted, with the live figure and
        the adjustment), entered figures (own, from approved children, total), status and due date"""
        return service.report_view(unit_id, period, current_caller(), stores())

    @requires("report.submit")
    @periodic.arguments(ReportIn)
    @periodic.response(200, ReportOut)
    @documented(WRITE)
    def put(self, body, unit_id, period):
        """Save the unit's own entered figures as a draft (the unit itself; a draft or returned report)"""
        return service.save(c.SaveReport(unit_id=unit_id, period=period, **body), current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/submit")
class ReportSubmit(MethodView):
    @requires("report.submit")
    @periodic.arguments(ReportIn)
    @periodic.response(200, ReportOut)
    @documented(WRITE)
    def post(self, body, unit_id, period):
        """Submit the unit's own report (once every child report it expects is approved; else 422 naming them)"""
        return service.save(c.SubmitReport(unit_id=unit_id, period=period, **body), current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/approve")
class ReportApprove(MethodView):
    @requires("report.approve")
    @periodic.arguments(DecisionIn)
    @periodic.response(200, ReportOut)
    @documented(WRITE)
    def post(self, body, unit_id, period):
        """Approve a submitted report (a unit above the reporting unit): its figures are frozen"""
        return service.decide(c.ApproveReport(unit_id, period, body.get("reason")), current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/return")
class ReportReturn(MethodView):
    @requires("report.approve")
    @periodic.arguments(DecisionIn)
    @periodic.response(200, ReportOut)
    @documented(WRITE)
    def post(self, body, unit_id, period):
        """Return a submitted report with a reason (a unit above): the unit corrects and resubmits it"""
        return service.decide(c.ReturnReport(unit_id, period, body.get("reason")), current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/reopen")
class ReportReopen(MethodView):
    @requires("report.approve")
    @periodic.arguments(DecisionIn)
    @periodic.response(200, ReportOut)
    @documented(WRITE)
    def post(self, body, unit_id, period):
        """Reopen an approved report with a reason (a unit above only): it goes back to the unit as returned"""
        return service.decide(c.ReopenReport(unit_id, period, body.get("reason")), current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/history")
class ReportHistory(MethodView):
    @requires("report.read")
    @periodic.response(200, StepOut(many=True))
    @documented(READ)
    def get(self, unit_id, period):
        """Every step of the report: which step, by which unit and person, when, with what reason"""
        return service.history(unit_id, period, current_caller(), stores())


@periodic.route("/<unit_id>/<period>/report/export.csv")
class ReportExportCsv(MethodView):
    @requires("report.read")
    @periodic.response(200, description="CSV (UTF-8 with BOM) in the upward-report layout; formula-like text neutralised")
    @documented(READ)
    def get(self, unit_id, period):
        """The report as CSV, laid out as reported upward"""
        view = service.report_view(unit_id, period, current_caller(), stores())
        return _download(exports.to_csv(view), "text/csv; charset=utf-8", f"bao-cao-{unit_id}-{period}.csv")


@periodic.route("/<unit_id>/<period>/report/export.xlsx")
class ReportExportXlsx(MethodView):
    @requires("report.read")
    @periodic.response(200, description="XLSX workbook in the upward-report layout; formula-like text neutralised")
    @documented(READ)
    def get(self, unit_id, period):
        """The report as an Excel workbook, laid out as reported upward"""
        view = service.report_view(unit_id, period, current_caller(), stores())
        return _download(exports.to_xlsx(view), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         f"bao-cao-{unit_id}-{period}.xlsx")


@periodic.route("/<unit_id>/<period>/status")
class ReportStatus(MethodView):
    @requires("report.read", heavy=True)
    @periodic.response(200, StatusTree)
    @documented(READ)
    def get(self, unit_id, period):
        """The status tree of a period: the unit's own report and its children's (submitted, approved,
        returned, late, missing), with the rates summed over each child's subtree (drill-down)"""
        return service.status_tree(unit_id, period, current_caller(), stores())


@periodic.route("/<unit_id>/<period>/completeness")
class PeriodCompleteness(MethodView):
    @requires("report.read", heavy=True)
    @periodic.response(200, Completeness)
    @documented(READ)
    def get(self, unit_id, period):
        """Completeness and on-time rates over the subtree, against their targets, and the late and missing units"""
        return service.completeness(unit_id, period, current_caller(), stores())


@periodic.route("/<unit_id>/entered")
class UnitEntered(MethodView):
    @requires("report.read", heavy=True)
    @periodic.arguments(EnteredViewQuery, location="query")
    @periodic.response(200, EnteredView)
    @documented(READ)
    def get(self, q, unit_id):
        """The entered indicators of the subtree (initiatives, workforce, unionisation rate, ...) rolled
        up as sums, live or as approved, against their targets"""
        return service.entered_view(unit_id, q["period"], q["basis"], current_caller(), stores())


@periodic.route("/settings/<unit_id>")
class UnitSettings(MethodView):
    @requires("report.read")
    @periodic.response(200, SettingsOut)
    @documented(READ)
    def get(self, unit_id):
        """The report deadlines that apply to a unit (its own, inherited from its province, or the defaults)"""
        return service.get_settings(unit_id, current_caller(), stores())

    @requires("report.settings")
    @periodic.arguments(SettingsIn)
    @periodic.response(200, SettingsOut)
    @documented(WRITE)
    def put(self, body, unit_id):
        """Set the report deadlines of a unit's subtree (a province sets its own): days after the cut-off per level"""
        return service.set_deadlines(c.SetDeadlines(unit_id=unit_id, **body), current_caller(), stores())
