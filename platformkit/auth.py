"""Signed bearer tokens (HS256 JWT) naming the caller, its roles and the org unit whose subtree it
may see and change. Every business endpoint authenticates through `current_caller()` and checks a
target unit with `require_in_scope(unit_id, ancestors)`.

Key rotation: TOKEN_SECRET signs; TOKEN_SECRET_PREVIOUS (optional) still verifies, so tokens minted
before a rotation keep working until they expire.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Iterable

import jwt
from flask import g, request

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # >= 32 bytes for HS256
ROLES = ("admin", "officer", "viewer", "service")
WRITE_ROLES = {"admin", "officer", "service"}
# The platform operator's scope: above every root unit (creates the roots, e.g. the confederation).
PLATFORM_SCOPE = "*"


class Unauthorized(Exception):
    """No valid token (HTTP 401)."""


class Forbidden(Exception):
    """Valid token, but outside its subtree or role (HTTP 403)."""


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


def _secrets() -> list[str]:
    current = os.environ.get("TOKEN_SECRET", DEV_SECRET)
    previous = os.environ.get("TOKEN_SECRET_PREVIOUS")
    return [current] + ([previous] if previous else [])


def mint(subject: str, unit_id: str, roles: Iterable[str], ttl_seconds: int = 8 * 3600) -> str:
    roles = list(roles)
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown roles {bad}; known: {ROLES}")
    now = int(time.time())
    claims = {"sub": subject, "unit": unit_id, "roles": roles, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, _secrets()[0], algorithm="HS256")


def verify(token: str) -> Caller:
    last: Exception | None = None
    for secret in _secrets():
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
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
    return Caller(subject=str(claims["sub"]), roles=tuple(str(r) for r in roles), unit_id=unit)


def current_caller() -> Caller:
    caller = getattr(g, "caller", None)
    if caller is not None:
        return caller
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    g.caller = verify(header[len("Bearer "):].strip())
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
        raise Forbidden(f"unit {unit_id} is outside the subtree of {caller.unit_id}")
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
