"""What a caller asks welfare to do: one frozen dataclass per verb, built by api.py from a validated
body (or by a job/test directly) and handed to a handler in service.py with the caller and the
stores. Pure data: no driver, no web layer. `version` is the version the caller read (412 if it
is no longer current); `idempotency_key` is the client's key, where the operation takes one.

`request()` gives back the request as the HTTP body carried it: its fingerprint is what a retry
with the same Idempotency-Key must repeat (the same fingerprint as before commands existed, so a
retry spanning a deploy is still recognised)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class FundingLine:
    source: str
    amount: int


@dataclass(frozen=True)
class CreateProgramme:
    unit_id: str
    name: str
    kind: str
    year: int
    budget: int
    funding_sources: tuple[str, ...]
    description: str = ""
    idempotency_key: str | None = None

    def request(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "unit_id": self.unit_id, "year": self.year,
                "budget": self.budget, "funding_sources": list(self.funding_sources),
                "description": self.description}


@dataclass(frozen=True)
class RequestCase:
    programme_id: str
    member_id: str
    hardship_type: str
    amount: int
    form: str
    funding: tuple[FundingLine, ...]
    requested_on: date | None = None
    note: str = ""
    loan_term_months: int | None = None  # micro_loan programmes only
    idempotency_key: str | None = None

    def request(self) -> dict[str, Any]:
        return {"programme_id": self.programme_id, "member_id": self.member_id,
                "hardship_type": self.hardship_type, "amount": self.amount, "form": self.form,
                "funding": [{"source": f.source, "amount": f.amount} for f in self.funding],
                "requested_on": self.requested_on, "note": self.note,
                "loan": None if self.loan_term_months is None else {"term_months": self.loan_term_months}}


@dataclass(frozen=True)
class ApproveCase:
    case_id: str
    approved_on: date | None = None  # default: today (Vietnam)
    version: int | None = None


@dataclass(frozen=True)
class RejectCase:
    case_id: str
    reason: str
    rejected_on: date | None = None
    version: int | None = None


@dataclass(frozen=True)
class DisburseCase:
    case_id: str
    disbursed_on: date | None = None
    version: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RecordRepayment:
    case_id: str
    amount: int
    paid_on: date | None = None
    version: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class FollowUnitMove:
    """Upkeep after `membership.unit.moved` (the consumer's, no caller): programmes and cases of
    the moved unit and of the units below it take their new ancestors from the membership view."""
    unit_id: str
