"""HTTP API of welfare under /api/v1: programmes, cases (request, approve, reject, disburse) and
micro-loans (position as of a date, repayments), one MethodView per resource (URL rule). Views only
translate HTTP <-> handlers: a view builds the command (commands.py) from the validated body and
calls its handler (service.py) with the request's caller and the process's stores; every handler
checks the caller's scope against the unit it touches (and its ancestors), and list endpoints
return the caller's subtree only.

Statuses: 400 invalid input (field named, nothing written), 401 no token, 403 outside the token's
subtree or a read-only role, 404 unknown id, 409 wrong status or Idempotency-Key reused for another
request, 412 stale `version`, 422 rule violated (budget, beneficiary left, the CĐCS approving its
own case: only a level above the case's CĐCS approves or rejects).
"""

from flask.views import MethodView

from platformkit.auth import current_caller
from platformkit.web import Blueprint, error_responses, requires

from . import commands as c
from . import schemas as s
from . import service
from .stores import stores

ERRORS = {
    400: "Invalid input: `errors` names each field; nothing was written.",
    401: "Missing or invalid bearer token.",
    403: "The unit is outside the token's subtree, or the role may not write.",
    404: "No such resource.",
    409: "The case is not in a status that allows this, or the Idempotency-Key was used for "
         "another request.",
    412: "The `version` given is not the current one: reload and retry.",
    422: "A business rule refuses it: `errors` names the field (amount over the remaining budget, "
         "funding source not in the programme, beneficiary left, approving unit not above the CĐCS...), "
         "or a programme's Idempotency-Key was used for a different request (`errors` names the header).",
}


def documents(bp: Blueprint, *codes: int):
    """Document the error answers an endpoint can give (all share platformkit's ApiError)."""
    return error_responses(bp, ERRORS, codes)


programmes = Blueprint("programmes", __name__, url_prefix="/programmes",
                       description="Welfare programmes (Tết Sum vầy, Mái ấm Công đoàn, Quỹ Trợ vốn ...) "
                                   "and their budgets.")
cases = Blueprint("cases", __name__, url_prefix="/cases",
                  description="Support cases: a beneficiary member, an amount and its funding split, "
                              "approved by the level above the CĐCS, then disbursed.")
loans = Blueprint("loans", __name__, url_prefix="/loans",
                  description="Micro-loans (cases of a micro_loan programme): schedule, repayments, "
                              "outstanding balance, overdue status as of a date.")


@programmes.route("")
class Programmes(MethodView):
    @requires("welfare.programme")
    @programmes.arguments(s.IdempotencyHeader, location="headers")
    @programmes.arguments(s.ProgrammeIn)
    @programmes.response(201, s.ProgrammeOut, description="Created, or for a retry with the same Idempotency-Key "
                                                         "the programme the first request created (201 both).")
    @documents(programmes, 400, 401, 403, 422)
    def post(self, headers, body):
        """Create a programme owned by a unit in the caller's subtree. The same Idempotency-Key with a
        different body: 422 naming the header."""
        command = c.CreateProgramme(**{**body, "funding_sources": tuple(body["funding_sources"])},
                                    idempotency_key=headers.get("idempotency_key"))
        return service.create_programme(command, current_caller(), stores())

    @requires("read")
    @programmes.arguments(s.ProgrammeListArgs, location="query")
    @programmes.response(200, s.ProgrammeList)
    @documents(programmes, 400, 401)
    def get(self, args):
        """Programmes owned by the caller's unit or a unit below it."""
        return service.list_programmes(args, current_caller(), stores())


@programmes.route("/<programme_id>")
class Programme(MethodView):
    @requires("read")
    @programmes.response(200, s.ProgrammeOut)
    @documents(programmes, 401, 403, 404)
    def get(self, programme_id):
        return service.get_programme(programme_id, current_caller(), stores())


@cases.route("")
class Cases(MethodView):
    @requires("welfare.request")
    @cases.arguments(s.IdempotencyHeader, location="headers")
    @cases.arguments(s.CaseIn)
    @cases.response(201, s.CaseOut, description="Created.")
    @cases.alt_response(200, schema=s.CaseOut, success=True,
                        description="A retry with the same Idempotency-Key: the case created first.")
    @documents(cases, 400, 401, 403, 409, 422)
    def post(self, headers, body):
        """Request support for a member (known here and not left) under a programme covering its CĐCS."""
        loan = body.pop("loan")
        command = c.RequestCase(**{**body, "funding": tuple(c.FundingLine(**f) for f in body["funding"])},
                                loan_term_months=None if loan is None else loan["term_months"],
                                idempotency_key=headers.get("idempotency_key"))
        case, created = service.request_case(command, current_caller(), stores())
        return case, (201 if created else 200)

    @requires("read")
    @cases.arguments(s.CaseListArgs, location="query")
    @cases.response(200, s.CaseList)
    @documents(cases, 400, 401)
    def get(self, args):
        """Cases of the caller's subtree, the newest request first (then by id).

        A page may hold fewer than `limit` cases while `next_cursor` is not null: a sparse filter
        over a large subtree is read a bounded number of periods per page; follow the cursor."""
        return service.list_cases(args, current_caller(), stores())


@cases.route("/<case_id>")
class Case(MethodView):
    @requires("read")
    @cases.response(200, s.CaseOut)
    @documents(cases, 401, 403, 404)
    def get(self, case_id):
        return service.get_case(case_id, current_caller(), stores())


@cases.route("/<case_id>/approve")
class CaseApprove(MethodView):
    @requires("welfare.decide")
    @cases.arguments(s.ApproveIn)
    @cases.response(200, s.CaseOut)
    @documents(cases, 400, 401, 403, 404, 409, 412, 422)
    def post(self, body, case_id):
        """Approve a requested case: the caller's unit must be above the case's CĐCS; the amount is
        reserved from the programme's remaining budget (422 if it does not fit)."""
        return service.approve_case(c.ApproveCase(case_id=case_id, **body), current_caller(), stores())


@cases.route("/<case_id>/reject")
class CaseReject(MethodView):
    @requires("welfare.decide")
    @cases.arguments(s.RejectIn)
    @cases.response(200, s.CaseOut)
    @documents(cases, 400, 401, 403, 404, 409, 412, 422)
    def post(self, body, case_id):
        """Reject a requested case with a reason (same approving rule as approve)."""
        return service.reject_case(c.RejectCase(case_id=case_id, **body), current_caller(), stores())


@cases.route("/<case_id>/disburse")
class CaseDisburse(MethodView):
    @requires("welfare.request")
    @cases.arguments(s.IdempotencyHeader, location="headers")
    @cases.arguments(s.DisburseIn)
    @cases.response(200, s.CaseOut, description="Disbursed now, or earlier by a request with the same "
                                                "Idempotency-Key (never paid twice).")
    @documents(cases, 400, 401, 403, 404, 409, 412, 422)
    def post(self, headers, body, case_id):
        """Record that an approved case was paid or handed over; a micro-loan's schedule starts here."""
        command = c.DisburseCase(case_id=case_id, idempotency_key=headers.get("idempotency_key"), **body)
        case, _ = service.disburse_case(command, current_caller(), stores())
        return case


@loans.route("")
class Loans(MethodView):
    @requires("read")
    @loans.arguments(s.LoanListArgs, location="query")
    @loans.response(200, s.LoanList)
    @documents(loans, 400, 401)
    def get(self, args):
        """Disbursed micro-loans of the caller's subtree with their position as of `as_of`."""
        return service.list_loans(args, current_caller(), stores())


@loans.route("/<case_id>")
class Loan(MethodView):
    @requires("read")
    @loans.arguments(s.LoanArgs, location="query")
    @loans.response(200, s.LoanOut)
    @documents(loans, 400, 401, 403, 404)
    def get(self, args, case_id):
        """Schedule, repayments, outstanding balance and overdue status as of `as_of`."""
        return service.get_loan(case_id, args.get("as_of"), current_caller(), stores())


@loans.route("/<case_id>/repayments")
class LoanRepayments(MethodView):
    @requires("welfare.request")
    @loans.arguments(s.IdempotencyHeader, location="headers")
    @loans.arguments(s.RepaymentIn)
    @loans.response(201, s.LoanOut, description="Recorded; the loan as of the payment day.")
    @loans.alt_response(200, schema=s.LoanOut, success=True,
                        description="A retry with the same Idempotency-Key: recorded once, earlier.")
    @documents(loans, 400, 401, 403, 404, 409, 412, 422)
    def post(self, headers, body, case_id):
        """Record a (partial, late) repayment; it settles the oldest instalments first."""
        command = c.RecordRepayment(case_id=case_id, idempotency_key=headers.get("idempotency_key"), **body)
        loan, created = service.record_repayment(command, current_caller(), stores())
        return loan, (201 if created else 200)


BLUEPRINTS = [programmes, cases, loans]
