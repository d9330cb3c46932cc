"""Request and response shapes of the welfare API (marshmallow 4). Shape checks only (types,
enums, ranges): a failure here is a 400 naming the field, and nothing is written. Rules that need
state (budget, beneficiary status, approving level) are in domain.py."""
from marshmallow import EXCLUDE, Schema, fields, validate

from platformkit.fields import Cursor, PlausibleDate, page_limit

from . import domain

MONEY = validate.Range(min=1, max=10**13)  # whole đồng; 10,000 bn is far above any programme


def Money(**kw):
    return fields.Integer(strict=True, validate=MONEY, **kw)


class IdempotencyHeader(Schema):
    class Meta:
        unknown = EXCLUDE  # every other request header

    idempotency_key = fields.String(data_key="Idempotency-Key", load_default=None,
                                    validate=validate.Length(min=1, max=200),
                                    metadata={"description": "Client-chosen key; a retry with the same key "
                                                             "returns the first result and never acts twice."})


class PageArgs(Schema):
    after = Cursor()
    limit = page_limit(100, 500)


NEXT_CURSOR = "`after` for the next page; null on the last page"


# ---------------------------------------------------------------- programmes

class ProgrammeIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    kind = fields.String(required=True, validate=validate.OneOf(domain.PROGRAMME_KINDS))
    unit_id = fields.String(required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "The owning unit (e.g. a province LĐLĐ)."})
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    budget = Money(required=True)
    funding_sources = fields.List(fields.String(validate=validate.OneOf(domain.FUNDING_SOURCES)),
                                  required=True, validate=validate.Length(min=1, max=len(domain.FUNDING_SOURCES)))
    description = fields.String(load_default="", validate=validate.Length(max=2000))


class ProgrammeOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    description = fields.String()
    unit_id = fields.String()
    ancestors = fields.List(fields.String())
    unit_level = fields.Integer(allow_none=True)
    year = fields.Integer()
    budget = fields.Integer()
    remaining = fields.Integer(metadata={"description": "budget minus the amounts of approved cases"})
    reserved = fields.Integer()
    funding_sources = fields.List(fields.String())
    status = fields.String()
    created_at = fields.String()
    version = fields.Integer()


class ProgrammeListArgs(PageArgs):
    year = fields.Integer(validate=validate.Range(min=2000, max=2100))  # as ProgrammeIn.year
    kind = fields.String(validate=validate.OneOf(domain.PROGRAMME_KINDS))
    unit_id = fields.String()


class ProgrammeList(Schema):
    items = fields.List(fields.Nested(ProgrammeOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})


# ---------------------------------------------------------------- cases

class FundingShareSchema(Schema):
    source = fields.String(required=True, validate=validate.OneOf(domain.FUNDING_SOURCES))
    amount = Money(required=True)


class LoanTermsIn(Schema):
    term_months = fields.Integer(required=True, strict=True,
                                 validate=validate.Range(min=1, max=domain.MAX_LOAN_TERM_MONTHS))


class CaseIn(Schema):
    programme_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    member_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    hardship_type = fields.String(required=True, validate=validate.OneOf(domain.HARDSHIP_TYPES))
    amount = Money(required=True)
    form = fields.String(required=True, validate=validate.OneOf(domain.FORMS))
    funding = fields.List(fields.Nested(FundingShareSchema), required=True,
                          validate=validate.Length(min=1, max=len(domain.FUNDING_SOURCES)),
                          metadata={"description": "Split across the programme's sources; the shares "
                                                   "add up exactly to `amount`."})
    requested_on = PlausibleDate(load_default=None)
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    loan = fields.Nested(LoanTermsIn, load_default=None, metadata={"description": "micro_loan only"})


class LoanTermsOut(Schema):
    principal = fields.Integer()
    term_months = fields.Integer()
    disbursed_on = fields.String()
    repaid_total = fields.Integer()
    outstanding = fields.Integer()
    repaid_on = fields.String()


class CaseOut(Schema):
    id = fields.String()
    programme_id = fields.String()
    programme_kind = fields.String()
    programme_year = fields.Integer()
    programme_unit_id = fields.String()
    member_id = fields.String()
    member_name = fields.String()
    unit_id = fields.String()
    ancestors = fields.List(fields.String())
    hardship_type = fields.String()
    amount = fields.Integer()
    form = fields.String()
    funding = fields.List(fields.Nested(FundingShareSchema))
    note = fields.String()
    status = fields.String(metadata={"description": "requested -> approved -> disbursed, or rejected"})
    requested_on = fields.String()
    requested_by = fields.String()
    requested_by_unit_id = fields.String()
    approved_on = fields.String()
    approved_by = fields.String()
    approved_by_unit_id = fields.String()
    approved_level = fields.Integer(allow_none=True)
    rejected_on = fields.String()
    rejection_reason = fields.String()
    rejected_by_unit_id = fields.String()
    rejected_level = fields.Integer(allow_none=True)
    disbursed_on = fields.String()
    disbursed_by_unit_id = fields.String()
    loan = fields.Nested(LoanTermsOut, allow_none=True)
    version = fields.Integer()


class CaseListArgs(PageArgs):
    programme_id = fields.String()
    programme_kind = fields.String(validate=validate.OneOf(domain.PROGRAMME_KINDS))
    status = fields.String(validate=validate.OneOf(domain.CASE_STATUSES))
    member_id = fields.String()
    unit_id = fields.String()


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})


class VersionPin(Schema):
    version = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1),
                             metadata={"description": "The version you read; 412 if the case changed since."})


class ApproveIn(VersionPin):
    approved_on = PlausibleDate(load_default=None)


class RejectIn(VersionPin):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    rejected_on = PlausibleDate(load_default=None)


class DisburseIn(VersionPin):
    disbursed_on = PlausibleDate(load_default=None)


# ---------------------------------------------------------------- loans

class InstalmentOut(Schema):
    no = fields.Integer()
    due_on = fields.String()
    amount = fields.Integer()
    paid = fields.Integer()
    unpaid = fields.Integer()
    settled_on = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "paid, paid_late, overdue, partially_paid, pending"})


class RepaymentOut(Schema):
    seq = fields.Integer()
    amount = fields.Integer()
    paid_on = fields.String()


class LoanOut(Schema):
    id = fields.String()
    case_id = fields.String()
    programme_id = fields.String()
    member_id = fields.String()
    unit_id = fields.String()
    case_status = fields.String()
    version = fields.Integer()
    as_of = fields.String()
    principal = fields.Integer()
    term_months = fields.Integer()
    disbursed_on = fields.String()
    repaid_total = fields.Integer()
    outstanding = fields.Integer()
    due_to_date = fields.Integer()
    overdue_amount = fields.Integer()
    days_overdue = fields.Integer()
    status = fields.String(metadata={"description": "current, overdue, repaid (as of `as_of`), "
                                                    "or not_disbursed"})
    next_due_on = fields.String(allow_none=True)
    next_due_amount = fields.Integer()
    instalments = fields.List(fields.Nested(InstalmentOut))
    repayments = fields.List(fields.Nested(RepaymentOut))


class LoanArgs(Schema):
    as_of = PlausibleDate(load_default=None, metadata={"description": "default: today (Vietnam)"})


class LoanListArgs(PageArgs, LoanArgs):
    programme_id = fields.String()
    member_id = fields.String()
    unit_id = fields.String()
    status = fields.String(validate=validate.OneOf(("current", "overdue", "repaid")))


class LoanList(Schema):
    items = fields.List(fields.Nested(LoanOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": NEXT_CURSOR})


class RepaymentIn(VersionPin):
    amount = Money(required=True)
    paid_on = PlausibleDate(load_default=None)
