"""Tests for bot.identity: real PyJWT signing/verification, real RSA keys."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.identity import MESSAGES, Identity, IdentityError, issue_token, verify_identity_token

SECRET = "test-secret-" + "x" * 60  # long enough for HS512 too
BSN = "123456782"  # passes the 11-check
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def hs256_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("IDENTITY_JWT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)


@pytest.fixture(scope="module")
def rsa_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem


@pytest.fixture
def rs256_env(monkeypatch, tmp_path, rsa_keys):
    path = tmp_path / "identity_public.pem"
    path.write_bytes(rsa_keys[1])
    monkeypatch.setenv("IDENTITY_JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("IDENTITY_JWT_PUBLIC_KEY_FILE", str(path))
    return rsa_keys


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, key: bytes | None) -> str:
    """A token built without PyJWT, so tests can forge what PyJWT refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def claims(**extra) -> dict:
    iat = int(NOW.timestamp())
    base = {"bsn": BSN, "naam": "Jan de Vries", "iat": iat, "exp": iat + 600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def reason_of(token, **kwargs) -> str:
    with pytest.raises(IdentityError) as info:
        verify_identity_token(token, **kwargs)
    error = info.value
    assert error.message == MESSAGES[error.reason]
    assert "BSN" not in error.message and "token" not in error.message.lower()
    return error.reason


def test_valid_hs256():
    token = issue_token(BSN, "Jan de Vries", now=NOW)
    identity = verify_identity_token(token, now=NOW + timedelta(minutes=5))
    assert identity == Identity(bsn=BSN, naam="Jan de Vries", expires_at=NOW + timedelta(seconds=600))
    assert identity.expires_at.tzinfo is not None
    assert BSN not in repr(identity) and "Jan" not in repr(identity)


def test_valid_with_sub_instead_of_bsn():
    token = jwt.encode(claims(bsn=None, sub=BSN), SECRET, algorithm="HS256")
    assert verify_identity_token(token, now=NOW).bsn == BSN


def test_valid_rs256(rs256_env):
    private_pem, _ = rs256_env
    token = issue_token(BSN, "Anne-Marie van 't Hof", private_key=private_pem, algorithm="RS256", now=NOW)
    identity = verify_identity_token(token, now=NOW)
    assert identity.bsn == BSN and identity.naam == "Anne-Marie van 't Hof"


def test_rs256_token_signed_by_another_key(rs256_env):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = issue_token(BSN, "Jan", private_key=other, algorithm="RS256", now=NOW)
    assert reason_of(token, now=NOW) == "signature"


def test_forged_signature():
    token = issue_token(BSN, "Jan de Vries", now=NOW)
    header, payload, signature = token.split(".")
    forged_payload = b64(json.dumps(claims(bsn="111222333")).encode())
    assert reason_of(f"{header}.{forged_payload}.{signature}", now=NOW) == "signature"
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert reason_of(f"{header}.{payload}.{flipped}", now=NOW) == "signature"


def test_wrong_secret():
    token = issue_token(BSN, "Jan de Vries", secret="another-secret-" + "y" * 40, now=NOW)
    assert reason_of(token, now=NOW) == "signature"


def test_expired():
    token = issue_token(BSN, "Jan de Vries", lifetime=600, now=NOW)
    assert reason_of(token, now=NOW + timedelta(minutes=11)) == "expired"
    # Within the 30 s leeway it is still accepted.
    assert verify_identity_token(token, now=NOW + timedelta(seconds=610)).bsn == BSN


def test_expired_with_real_clock():
    token = issue_token(BSN, "Jan de Vries", now=datetime.now(timezone.utc) - timedelta(minutes=20))
    assert reason_of(token) == "expired"
    assert verify_identity_token(issue_token(BSN, "Jan de Vries")).bsn == BSN


def test_issued_in_the_future_beyond_leeway():
    token = issue_token(BSN, "Jan de Vries", now=NOW + timedelta(minutes=5))
    assert reason_of(token, now=NOW) == "expired"
    slightly = issue_token(BSN, "Jan de Vries", now=NOW + timedelta(seconds=10))
    assert verify_identity_token(slightly, now=NOW).bsn == BSN


def test_not_before_in_the_future():
    token = jwt.encode(claims(nbf=int(NOW.timestamp()) + 300), SECRET, algorithm="HS256")
    assert reason_of(token, now=NOW) == "expired"


def test_lifetime_longer_than_max_age(monkeypatch):
    token = issue_token(BSN, "Jan de Vries", lifetime=3600, now=NOW)
    assert reason_of(token, now=NOW) == "expired"
    monkeypatch.setenv("IDENTITY_JWT_MAX_AGE", "7200")
    assert verify_identity_token(token, now=NOW).bsn == BSN


def test_issued_too_long_ago_even_if_exp_is_far(monkeypatch):
    monkeypatch.setenv("IDENTITY_JWT_MAX_AGE", "60")
    token = issue_token(BSN, "Jan de Vries", lifetime=60, now=NOW)
    assert verify_identity_token(token, now=NOW + timedelta(seconds=59)).bsn == BSN
    assert reason_of(token, now=NOW + timedelta(seconds=200)) == "expired"


def test_alg_none_is_refused():
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), key=None)
    assert reason_of(token, now=NOW) == "signature"
    unsigned = hand_made({"alg": "none", "typ": "JWT"}, claims(), key=None).rstrip(".")
    assert reason_of(unsigned, now=NOW) in {"signature", "malformed"}


def test_alg_confusion_hs256_signed_with_public_key(rs256_env):
    _, public_pem = rs256_env
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), key=public_pem)
    assert reason_of(token, now=NOW) == "signature"


def test_rs256_token_refused_when_hs256_is_configured(rsa_keys):
    token = issue_token(BSN, "Jan", private_key=rsa_keys[0], algorithm="RS256", now=NOW)
    assert reason_of(token, now=NOW) == "signature"


def test_other_hmac_algorithm_refused():
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    assert reason_of(token, now=NOW) == "signature"


@pytest.mark.parametrize("token", ["abc", "a.b.c", "a.b", "....", "eyJ.eyJ.sig", "\x00\xff\x10 random",
                                   os.urandom(48).hex(), "x" * 9000])
def test_malformed_strings(token):
    assert reason_of(token, now=NOW) == "malformed"


def test_random_bytes_object():
    assert reason_of(os.urandom(32), now=NOW) == "malformed"


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing(token):
    assert reason_of(token, now=NOW) == "missing"


@pytest.mark.parametrize("bsn", ["123456789", "12345678", "abcdefghi", "1234567820", "000000000"])
def test_bad_bsn(bsn):
    token = issue_token(bsn, "Jan de Vries", now=NOW)
    assert reason_of(token, now=NOW) == "invalid_bsn"


@pytest.mark.parametrize("missing", ["exp", "iat", "bsn", "naam"])
def test_missing_claims(missing):
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    assert reason_of(token, now=NOW) == "malformed"


@pytest.mark.parametrize("bad", [{"naam": "  "}, {"naam": 12}, {"bsn": 123456782}, {"exp": "later"},
                                 {"iat": True}])
def test_claims_of_the_wrong_type(bad):
    token = jwt.encode(claims(**bad), SECRET, algorithm="HS256")
    assert reason_of(token, now=NOW) == "malformed"


def test_issuer_and_audience(monkeypatch):
    monkeypatch.setenv("IDENTITY_JWT_ISSUER", "https://www.bergenopzoom.nl")
    good = issue_token(BSN, "Jan", issuer="https://www.bergenopzoom.nl", now=NOW)
    assert verify_identity_token(good, now=NOW).bsn == BSN
    assert reason_of(issue_token(BSN, "Jan", issuer="https://evil.example", now=NOW), now=NOW) == "signature"
    assert reason_of(issue_token(BSN, "Jan", now=NOW), now=NOW) == "malformed"  # iss claim missing

    monkeypatch.setenv("IDENTITY_JWT_AUDIENCE", "chat")
    with_aud = issue_token(BSN, "Jan", issuer="https://www.bergenopzoom.nl", audience="chat", now=NOW)
    assert verify_identity_token(with_aud, now=NOW).bsn == BSN
    other_aud = issue_token(BSN, "Jan", issuer="https://www.bergenopzoom.nl", audience="other", now=NOW)
    assert reason_of(other_aud, now=NOW) == "signature"


def test_config_errors(monkeypatch, tmp_path):
    token = issue_token(BSN, "Jan", now=NOW)
    monkeypatch.setenv("IDENTITY_JWT_SECRET", "short")
    assert reason_of(token, now=NOW) == "config"
    monkeypatch.delenv("IDENTITY_JWT_SECRET")
    assert reason_of(token, now=NOW) == "config"
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)
    monkeypatch.setenv("IDENTITY_JWT_ALGORITHM", "none")
    assert reason_of(token, now=NOW) == "config"
    monkeypatch.setenv("IDENTITY_JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("IDENTITY_JWT_PUBLIC_KEY_FILE", str(tmp_path / "absent.pem"))
    assert reason_of(token, now=NOW) == "config"
    monkeypatch.setenv("IDENTITY_JWT_ALGORITHM", "HS256")
    monkeypatch.setenv("IDENTITY_JWT_MAX_AGE", "vijftien minuten")
    assert reason_of(token, now=NOW) == "config"


def test_error_messages_are_dutch_and_short():
    assert MESSAGES["expired"] == "Uw inlog is verlopen. Log opnieuw in met DigiD op de website."
    for message in MESSAGES.values():
        assert "DigiD" in message or "later" in message
        assert all(len(sentence.split()) <= 20 for sentence in message.split(". "))
        for word in ("signature", "JWT", "token", "handtekening"):
            assert word.lower() not in message.lower()


def test_issue_token_needs_a_key(monkeypatch):
    monkeypatch.delenv("IDENTITY_JWT_SECRET")
    with pytest.raises(ValueError):
        issue_token(BSN, "Jan")
    with pytest.raises(ValueError):
        issue_token(BSN, "Jan", algorithm="RS256")
    with pytest.raises(ValueError):
        issue_token(BSN, "Jan", secret=SECRET, algorithm="none")
