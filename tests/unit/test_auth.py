import time

import jwt
import pytest

from platformkit import auth
from platformkit.auth import Caller, Unauthorized, mint, verify


def test_minted_token_names_subject_roles_and_unit(monkeypatch):
    monkeypatch.setenv("TOKEN_SECRET", "s1")
    caller = verify(mint("officer-7", "unit-hcm", ["officer"]))
    assert caller == Caller("officer-7", ("officer",), "unit-hcm")
    assert caller.can_write()
    assert not Caller("v", ("viewer",), "u").can_write()


def test_wrong_secret_expired_and_garbage_tokens_are_refused(monkeypatch):
    monkeypatch.setenv("TOKEN_SECRET", "s1")
    token = mint("a", "u", ["admin"])
    monkeypatch.setenv("TOKEN_SECRET", "s2")
    with pytest.raises(Unauthorized):
        verify(token)
    expired = jwt.encode({"sub": "a", "unit": "u", "roles": [], "iat": int(time.time()) - 3600,
                          "exp": int(time.time()) - 5 - auth.CLOCK_SKEW_SECONDS}, "s2",
                         algorithm="HS256")
    with pytest.raises(Unauthorized, match="expired"):
        verify(expired)
    with pytest.raises(Unauthorized):
        verify("not-a-token")
    none_alg = jwt.encode({"sub": "a", "unit": "u", "roles": ["admin"], "exp": int(time.time()) + 60},
                          None, algorithm="none")
    with pytest.raises(Unauthorized):
        verify(none_alg)


def test_previous_secret_still_verifies_after_rotation(monkeypatch):
    monkeypatch.setenv("TOKEN_SECRET", "old")
    token = mint("a", "u", ["viewer"])
    monkeypatch.setenv("TOKEN_SECRET", "new")
    monkeypatch.setenv("TOKEN_SECRET_PREVIOUS", "old")
    assert verify(token).subject == "a"


def test_unknown_roles_are_not_minted():
    with pytest.raises(ValueError):
        mint("a", "u", ["superuser"])


def test_subtree_scope():
    commune = Caller("c", ("officer",), "commune-1")
    assert commune.covers("commune-1")
    assert commune.covers("cdcs-9", ["vn", "province-hcm", "commune-1"])
    assert not commune.covers("commune-2", ["vn", "province-hcm"])
    assert not commune.covers("province-hcm", ["vn"])
    assert not commune.covers(None)
    assert auth.WRITE_ROLES >= {"officer"}
