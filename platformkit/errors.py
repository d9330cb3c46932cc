"""The refusals: why a command or a read is refused, with no dependency on HTTP, a driver or a
framework, so that domain rules, handlers, repositories and the web layer share them.

Each refusal carries the HTTP status that tells the truth and a stable `code` (the web layer,
platformkit/web.py, turns them into the ApiError JSON body; a batch turns them into per-item
errors), a `message` shown to the caller (translated by platformkit/messages_vi.py on request) and
optionally the `field` it is about (the body then names it under `errors`).

    InvalidInput    400  the input is malformed (per-field messages)
    Unauthenticated 401  no valid token
    Forbidden       403  a valid token, but outside its role or subtree
    NotFound        404  what the request names does not exist
    Conflict        409  it clashes with what exists (a taken code, an operation under way)
    StaleVersion    412  the aggregate changed since the caller read it
    TooLarge        413  the input is beyond the platform's bounds
    RuleViolated    422  a business rule refuses it
"""
from __future__ import annotations


class Refusal(Exception):
    """Base of every refusal. `str(exc)` is what the raiser passed; `message` is the text shown."""
    status = 422
    code = "rule_violated"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(Refusal):
    status, code = 400, "invalid_input"


class Unauthenticated(Refusal):
    """No valid token (HTTP 401)."""
    status, code = 401, "unauthorized"


class Forbidden(Refusal):
    """Valid token, but outside its subtree or role (HTTP 403)."""
    status, code = 403, "forbidden"


class NotFound(Refusal):
    """`message` is the whole text ("unit u1 not found")."""
    status, code = 404, "not_found"


class Conflict(Refusal):
    status, code = 409, "conflict"


class RuleViolated(Refusal):
    status, code = 422, "rule_violated"


class TooLarge(Refusal):
    status, code = 413, "too_large"


class StaleVersion(Refusal):
    """The document changed since the caller read it (HTTP 412). Raised with what changed (an id,
    or "<id> is at version 3, not 2"); the text shown asks the caller to reload it."""
    status, code = 412, "stale_version"

    def __init__(self, what: str, field: str | None = None):
        super().__init__(what, field)
        self.message = f"{what} was changed by someone else; reload it"


class Contended(Refusal):
    """A command whose caller sent no version kept losing the race to commit for the repository's
    retry time (HTTP 503 with Retry-After): never a 412, that caller cannot be stale."""
    status, code = 503, "busy"


class DocumentNotFound(NotFound):
    """A repository found no document with that id (raised with the id alone)."""

    def __init__(self, what: str, field: str | None = None):
        super().__init__(what, field)
        self.message = f"{what} not found"


class AlreadyExists(Conflict):
    """A unique index refused an insert (raised with the clashing key)."""

    def __init__(self, what: str, field: str | None = None):
        super().__init__(what, field)
        self.message = f"already exists: {what}"
