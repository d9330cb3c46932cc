"""`Idempotency-Key` on the POSTs that create something: a client that did not get an answer (a
timeout, a dropped connection, a 503) sends the same request again with the same key and gets the
FIRST answer (same status, same id, same body) while nothing is created a second time.

How a service uses it:
* the operation declares the header (`@bp.arguments(IdempotencyHeader, location="headers")`), so it
  is a header parameter of the operation in /openapi.json;
* `Request.of(caller, key, *what)` scopes the client's key to the caller (the token's subject: two
  clients choosing the same key never meet) and fingerprints the request (`what`: the parsed body and
  the path parameters that name what is acted on);
* the created document carries `stamp()` as top-level fields, under a SPARSE UNIQUE index
  (`index()`): the guard is the unique insert itself, which is atomic on MongoDB and on FerretDB
  (a look-up followed by a conditional update is not atomic on FerretDB 1.24). A retry looks the key
  up first; two racing first attempts both insert and the loser's insert fails on the index, after
  which it finds the winner's document and answers with it;
* `check(first)` refuses the same key with a different request: 422 naming the header (IETF draft
  "The Idempotency-Key HTTP Header Field": a reused key with another payload is 422).

Sparse: documents created without a key have no such field (a non-sparse unique index would treat
every missing key as the same null on MongoDB).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from .auth import Caller
from .errors import RuleViolated

HEADER = "Idempotency-Key"
KEY = "idempotency_key"
FINGERPRINT = "request_fingerprint"
FIELDS = (KEY, FINGERPRINT)
HIDDEN = {KEY: 0, FINGERPRINT: 0}  # a projection that keeps them out of answers


class IdempotencyHeader(Schema):
    """The header, as a flask-smorest `headers` argument (documents it in the OpenAPI)."""

    class Meta:
        unknown = EXCLUDE  # every other request header

    idempotency_key = fields.String(
        data_key=HEADER, load_default=None, validate=validate.Length(min=1, max=200),
        metadata={"description": "Client-chosen key (at most 200 characters), scoped to the caller. A retry "
                                 "with the same key and the same request returns the first answer (same "
                                 "status and id) and creates nothing; the same key with a different request "
                                 "is refused with 422 naming this header."})


def index(name: str = KEY) -> tuple[str, dict[str, Any]]:
    """The sparse unique index of a collection whose documents are created with a key."""
    return (KEY, {"name": name, "unique": True, "sparse": True})


def fingerprint_of(request: Any) -> str:
    """What a retry with the same key must repeat: a hash of the request (keys sorted)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(*parts: Any) -> str:
    return fingerprint_of(list(parts))


class KeyReused(RuleViolated):
    def __init__(self) -> None:
        super().__init__(f"this {HEADER} was used for a different request", HEADER)


@dataclass(frozen=True)
class Request:
    key: str | None  # scoped to the caller; None when the client sent no key
    fingerprint: str

    @classmethod
    def of(cls, caller: Caller, key: str | None, *what: Any) -> "Request":
        # unambiguous (a subject or a key containing the separator cannot make another pair's key)
        scoped = json.dumps([caller.subject, key], ensure_ascii=False, separators=(",", ":")) if key else None
        return cls(scoped, fingerprint(*what))

    def stamp(self) -> dict[str, str]:
        """The fields the created document carries (none without a key)."""
        return {KEY: self.key, FINGERPRINT: self.fingerprint} if self.key else {}

    def check(self, first: dict) -> None:
        """`first` was created with this key: the request must be the same one."""
        if first.get(FINGERPRINT) != self.fingerprint:
            raise KeyReused()
