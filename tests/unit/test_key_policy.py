"""Signing-key policy, token lifetime and revocation (platformkit.auth), without a network."""
import time

import jwt
import pytest

from platformkit import auth
from platformkit.auth import KeyPolicyError, Unauthorized, check_key_policy, mint, verify

STRONG = "k3Q9v0Zr7xN2bL5pW8cT1yH4mJ6sD0fG"  # 32 bytes, no placeholder word


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("PLATFORM_ENV", "production")
    monkeypatch.delenv("TOKEN_SECRET_PREVIOUS", raising=False)
    monkeypatch.delenv("TOKEN_REVOCATION_FILE", raising=False)
    return monkeypatch


@pytest.mark.parametrize("secret, reason", [
    (None, "not set"),
    (auth.DEV_SECRET, "development key"),
    ("REPLACE-ME-with-a-random-secret-of-at-least-32-bytes", "placeholder"),
    ("short-but-random-Zk81", "shorter than 32 bytes"),
])
def test_outside_local_development_a_known_or_weak_key_refuses_to_start(production, secret, reason):
    if secret is None:
        production.delenv("TOKEN_SECRET", raising=False)
    else:
        production.setenv("TOKEN_SECRET", secret)
    with pytest.raises(KeyPolicyError, match=reason):
        check_key_policy()


def test_a_weak_previous_key_refuses_to_start_too(production):
    production.setenv("TOKEN_SECRET", STRONG)
    production.setenv("TOKEN_SECRET_PREVIOUS", auth.DEV_SECRET)
    with pytest.raises(KeyPolicyError, match="TOKEN_SECRET_PREVIOUS"):
        check_key_policy()


def test_a_strong_key_starts_and_local_development_may_use_the_development_key(production):
    production.setenv("TOKEN_SECRET", STRONG)
    check_key_policy()
    production.setenv("PLATFORM_ENV", "local")
    production.delenv("TOKEN_SECRET")
    check_key_policy()
    assert verify(mint("dev", "u", ["viewer"])).subject == "dev"


def test_the_api_factory_refuses_to_start_with_the_development_key(production):
    from flask_smorest import Blueprint

    from platformkit.web import create_app
    production.setenv("TOKEN_SECRET", auth.DEV_SECRET)
    with pytest.raises(KeyPolicyError):
        create_app("things", [Blueprint("none", __name__)], ready=lambda: {})


def _token(claims, secret=STRONG):
    return jwt.encode(claims, secret, algorithm="HS256")


def test_token_lifetime_is_capped_and_iat_required(production):
    production.setenv("TOKEN_SECRET", STRONG)
    now = int(time.time())
    century = _token({"sub": "a", "unit": "u", "roles": ["admin"], "iat": now, "exp": now + 100 * 365 * 86400})
    with pytest.raises(Unauthorized, match="lifetime exceeds"):
        verify(century)
    no_iat = _token({"sub": "a", "unit": "u", "roles": ["admin"], "exp": now + 60})
    with pytest.raises(Unauthorized, match="iat"):
        verify(no_iat)
    week = _token({"sub": "a", "unit": "u", "roles": ["admin"], "iat": now, "exp": now + 7 * 86400})
    assert verify(week).subject == "a"
    production.setenv("TOKEN_MAX_TTL_SECONDS", "3600")
    with pytest.raises(Unauthorized, match="3600"):
        verify(week)


def test_revoked_tokens_by_id_and_by_subject_are_refused(production, tmp_path):
    production.setenv("TOKEN_SECRET", STRONG)
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# revoked tokens\n")
    production.setenv("TOKEN_REVOCATION_FILE", str(revoked))
    stolen, other = mint("officer-1", "u", ["officer"]), mint("officer-2", "u", ["officer"])
    jti = jwt.decode(stolen, STRONG, algorithms=["HS256"])["jti"]
    assert verify(stolen) and verify(other)
    revoked.write_text(f"jti:{jti}  # laptop stolen\n")
    with pytest.raises(Unauthorized, match="revoked"):
        verify(stolen)
    assert verify(other).subject == "officer-2"
    cutoff = int(time.time()) + 1
    revoked.write_text(f"sub:officer-2 {cutoff}\n")
    with pytest.raises(Unauthorized, match="revoked"):
        verify(other)  # issued before the cut-off
    later = _token({"sub": "officer-2", "unit": "u", "roles": ["officer"], "iat": cutoff + 5, "exp": cutoff + 600})
    assert verify(later).subject == "officer-2"  # a fresh login after the cut-off works
    revoked.write_text("sub:officer-2\n")
    with pytest.raises(Unauthorized, match="revoked"):
        verify(later)
