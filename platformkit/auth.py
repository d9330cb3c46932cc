"""Signed bearer tokens (HS256 JWT) naming the caller, its roles and the org unit whose subtree it
may see and change. Every business endpoint authenticates through `current_caller()` and checks a
target unit with `require_in_scope(unit_id, ancestors)`.

Key rotation: TOKEN_SECRET signs; TOKEN_SECRET_PREVIOUS (optional) still verifies, so tokens minted
before a rotation keep working until they expire.

Key policy (`check_key_policy`, run when an API starts): outside local development
(PLATFORM_ENV=local) a service refuses to start without a TOKEN_SECRET, with the development key,
with a placeholder, or with a key shorter than 32 bytes. Every token must carry `iat` and `exp`, and
live at most TOKEN_MAX_TTL_SECONDS (default 7 days); a revocation list (TOKEN_REVOCATION_FILE, by
token id or by subject) is checked on every request.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterable

import jwt
from flask import g, request

from . import settings
from .errors import Forbidden, Unauthenticated

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # >= 32 bytes for HS256
MIN_SECRET_BYTES = 32
# Words that mark a key someone forgot to replace (the k8s base ships one on purpose).
PLACEHOLDER_MARKERS = ("replace-me", "change-me", "changeme", "placeholder", "example", "secret-here")
DEFAULT_MAX_TTL_SECONDS = 7 * 86400
CLOCK_SKEW_SECONDS = 60
ROLES = ("admin", "officer", "viewer", "service")
WRITE_ROLES = {"admin", "officer", "service"}
# The platform operator's scope: above every root unit (creates the roots, e.g. the confederation).
PLATFORM_SCOPE = "*"


# The refusals are platformkit.errors' (the web layer maps them to 401 and 403).
Unauthorized = Unauthenticated


class KeyPolicyError(RuntimeError):
    """The signing keys this process was given must not be used here; it refuses to start."""


@dataclass(frozen=True)
class Caller:
    subject: str
    roles: tuple[str, ...]
    unit_id: str

    def can_write(self) -> bool:
        return bool(WRITE_ROLES & set(self.roles))

    def covers(self, unit_id: str | None, ancestors: Iterable[str] = ()) -> bool:
        """True when `unit_id` is the caller's unit or below it (`ancestors` lists the target's
        ancestors, root first)."""
        if unit_id is None:
            return False
        if self.unit_id == PLATFORM_SCOPE:
            return True
        return self.unit_id == unit_id or self.unit_id in set(ancestors)


def local_development() -> bool:
    return settings.current().platform_env == "local"


def _secrets() -> list[str]:
    current = settings.current().token_secret or (DEV_SECRET if local_development() else "")
    if not current:
        raise KeyPolicyError("TOKEN_SECRET is not set (PLATFORM_ENV=local allows the development key)")
    previous = settings.current().token_secret_previous
    return [current] + ([previous] if previous else [])


def key_problems(secret: str) -> list[str]:
    """Why `secret` must not sign tokens outside local development (empty when it may)."""
    problems = []
    if secret == DEV_SECRET:
        problems.append("it is the development key published in the source")
    if any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
        problems.append("it is a placeholder")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(f"it is shorter than {MIN_SECRET_BYTES} bytes")
    return problems


def check_key_policy() -> None:
    """Refuse to start (KeyPolicyError) with keys that anyone could know. Local development
    (PLATFORM_ENV=local) may use the development key."""
    max_ttl()  # a malformed TOKEN_MAX_TTL_SECONDS stops the start too
    if local_development():
        return
    s = settings.current()
    secrets = {"TOKEN_SECRET": s.token_secret}
    if s.token_secret_previous:
        secrets["TOKEN_SECRET_PREVIOUS"] = s.token_secret_previous
    if not secrets["TOKEN_SECRET"]:
        raise KeyPolicyError("TOKEN_SECRET is not set; set a random key of at least 32 bytes "
                             "(PLATFORM_ENV=local allows the development key on a developer's machine)")
    for name, value in secrets.items():
        problems = key_problems(value)
        if problems:
            raise KeyPolicyError(f"refusing to start: {name} must not be used outside local development: "
                                 + "; ".join(problems))


def max_ttl() -> int:
    raw = settings.current().token_max_ttl_seconds
    try:
        value = int(raw)
    except ValueError:
        raise KeyPolicyError(f"TOKEN_MAX_TTL_SECONDS must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise KeyPolicyError("TOKEN_MAX_TTL_SECONDS must be positive")
    return value


class RevocationList:
    """Revoked tokens, from the file named by TOKEN_REVOCATION_FILE (one entry a line, `#` comments):
      jti:<token id>                  that one token
      sub:<subject>                   every token of that subject
      sub:<subject> <unix time>       that subject's tokens issued before that time (re-login works)
    The file is re-read when it changes (one stat per request), so a revocation takes effect
    without a restart once the file (e.g. a mounted ConfigMap) is updated everywhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[str, float, int] | None = None
        self._jtis: set[str] = set()
        self._subjects: dict[str, float] = {}

    def _load(self) -> None:
        path = settings.current().token_revocation_file
        if not path:
            self._seen, self._jtis, self._subjects = None, set(), {}
            return
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise KeyPolicyError(f"TOKEN_REVOCATION_FILE {path} does not exist") from None
        stamp = (path, st.st_mtime, st.st_size)
        if stamp == self._seen:
            return
        jtis: set[str] = set()
        subjects: dict[str, float] = {}
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                kind, _, rest = line.partition(":")
                parts = rest.split()
                if kind == "jti" and parts:
                    jtis.add(parts[0])
                elif kind == "sub" and parts:
                    subjects[parts[0]] = float(parts[1]) if len(parts) > 1 else float("inf")
        self._seen, self._jtis, self._subjects = stamp, jtis, subjects

    def revoked(self, claims: dict) -> bool:
        with self._lock:
            self._load()
            if claims.get("jti") in self._jtis:
                return True
            before = self._subjects.get(str(claims.get("sub")))
            return before is not None and float(claims.get("iat", 0)) < before


REVOKED = RevocationList()


def mint(subject: str, unit_id: str, roles: Iterable[str], ttl_seconds: int = 8 * 3600) -> str:
    roles = list(roles)
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown roles {bad}; known: {ROLES}")
    now = int(time.time())
    claims = {"sub": subject, "unit": unit_id, "roles": roles, "iat": now, "exp": now + ttl_seconds,
              "jti": uuid.uuid4().hex}
    return jwt.encode(claims, _secrets()[0], algorithm="HS256")


def verify(token: str) -> Caller:
    last: Exception | None = None
    try:
        secrets = _secrets()
    except KeyPolicyError as exc:
        raise Unauthorized("tokens cannot be verified: no signing key is configured") from exc
    for secret in secrets:
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=CLOCK_SKEW_SECONDS,
                                options={"require": ["exp", "iat", "sub"]})
            break
        except jwt.InvalidSignatureError as exc:
            last = exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
    else:
        raise Unauthorized(f"invalid token: {last}")
    unit = claims.get("unit")
    roles = claims.get("roles")
    if not isinstance(unit, str) or not isinstance(roles, list):
        raise Unauthorized("token lacks 'unit' or 'roles'")
    if not isinstance(claims["iat"], (int, float)) or not isinstance(claims["exp"], (int, float)):
        raise Unauthorized("invalid token: 'iat' and 'exp' must be numbers")
    if claims["exp"] - claims["iat"] > max_ttl():
        raise Unauthorized(f"token lifetime exceeds the maximum of {max_ttl()} seconds")
    if REVOKED.revoked(claims):
        raise Unauthorized("token revoked")
    return Caller(subject=str(claims["sub"]), roles=tuple(str(r) for r in roles), unit_id=unit)


def current_caller() -> Caller:
    caller = getattr(g, "caller", None)
    if caller is not None:
        return caller
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():  # the scheme is case-insensitive (RFC 7235)
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    g.caller = verify(credentials.strip())
    return g.caller


def require_write() -> Caller:
    caller = current_caller()
    if not caller.can_write():
        raise Forbidden(f"roles {list(caller.roles)} may not change data")
    return caller


def check_scope(caller: Caller, unit_id: str | None, ancestors: Iterable[str] = (), write: bool = False) -> Caller:
    """Refuse (Forbidden) unless `unit_id` is inside the caller's subtree, and for a write unless
    the caller has a role that may change data. Free of Flask, for service layers."""
    if write and not caller.can_write():
        raise Forbidden(f"roles {list(caller.roles)} may not change data")
    if not caller.covers(unit_id, ancestors):
        raise Forbidden("the unit is outside the caller's subtree")  # names nothing outside it
    return caller


def require_in_scope(unit_id: str | None, ancestors: Iterable[str] = (), write: bool = False) -> Caller:
    """The same check for the caller of the current HTTP request."""
    return check_scope(current_caller(), unit_id, ancestors, write)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a bearer token for local use.")
    parser.add_argument("--sub", default="local-admin")
    parser.add_argument("--unit", required=True, help="org unit id whose subtree the token may reach")
    parser.add_argument("--roles", default="admin", help="comma-separated: " + ",".join(ROLES))
    parser.add_argument("--ttl", type=int, default=8 * 3600)
    args = parser.parse_args()
    print(mint(args.sub, args.unit, args.roles.split(","), args.ttl))


if __name__ == "__main__":
    main()
