"""Verify the signed identity token the municipal website gives the chat after DigiD login.

The website signs a JWT with the citizen's BSN and name. The assistant only
files a case with a BSN after :func:`verify_identity_token` accepted it.

Configuration comes from the environment (no secrets in the repository):

* ``IDENTITY_JWT_ALGORITHM``: ``HS256`` (default) or ``RS256``. Only this one
  algorithm is accepted, so ``alg: none`` and algorithm confusion fail.
* ``IDENTITY_JWT_SECRET``: the shared secret for HS256, at least 32 bytes.
* ``IDENTITY_JWT_PUBLIC_KEY_FILE``: PEM file with the public key for RS256.
* ``IDENTITY_JWT_ISSUER`` / ``IDENTITY_JWT_AUDIENCE``: checked when set.
* ``IDENTITY_JWT_MAX_AGE``: seconds, default 900. A token that lives longer
  (``exp - iat``) or was issued longer ago is refused.

Time checks are done here (not by PyJWT) so that ``now`` can be given; they
allow a clock skew of :data:`LEEWAY_SECONDS`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Union

import jwt
from stdnum.nl import bsn as stdnum_bsn

SUPPORTED_ALGORITHMS = ("HS256", "RS256")
DEFAULT_MAX_AGE = 900
LEEWAY_SECONDS = 30
MIN_SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 8192

MESSAGES = {
    "missing": "U bent nog niet ingelogd. Log eerst in met DigiD op de website.",
    "malformed": "Wij konden uw inlog niet controleren. Log opnieuw in met DigiD op de website.",
    "signature": "Wij konden uw inlog niet controleren. Log opnieuw in met DigiD op de website.",
    "expired": "Uw inlog is verlopen. Log opnieuw in met DigiD op de website.",
    "invalid_bsn": ("Wij konden uw gegevens niet controleren. "
                    "Log opnieuw in met DigiD, of neem contact op met de gemeente."),
    "config": "Inloggen met DigiD werkt nu even niet. Probeer het later opnieuw.",
}


@dataclass(frozen=True)
class Identity:
    """A verified citizen. BSN and name are kept out of repr() so they do not end up in logs."""

    bsn: str = field(repr=False)
    naam: str = field(repr=False)
    expires_at: datetime


class IdentityError(Exception):
    """The token cannot be used. ``reason`` is for logs, ``message`` for the citizen (Dutch, B1)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.message = MESSAGES[reason]


def _timestamp(now: Union[datetime, float, int, None]) -> float:
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return now.timestamp()
    return float(now)


def _settings() -> Dict[str, Any]:
    """The verification settings from the environment; IdentityError("config") when unusable."""
    algorithm = os.environ.get("IDENTITY_JWT_ALGORITHM", "HS256").strip().upper()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise IdentityError("config", f"unsupported algorithm {algorithm!r}")
    if algorithm == "HS256":
        key: Any = os.environ.get("IDENTITY_JWT_SECRET", "")
        if len(key.encode("utf-8")) < MIN_SECRET_BYTES:
            raise IdentityError("config", f"IDENTITY_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    else:
        path = os.environ.get("IDENTITY_JWT_PUBLIC_KEY_FILE", "")
        try:
            with open(path, "rb") as handle:
                key = handle.read()
        except OSError as exc:
            raise IdentityError("config", f"cannot read IDENTITY_JWT_PUBLIC_KEY_FILE: {exc}") from None
    try:
        max_age = int(os.environ.get("IDENTITY_JWT_MAX_AGE", DEFAULT_MAX_AGE))
    except ValueError:
        raise IdentityError("config", "IDENTITY_JWT_MAX_AGE must be a number of seconds") from None
    return {
        "algorithm": algorithm,
        "key": key,
        "issuer": os.environ.get("IDENTITY_JWT_ISSUER") or None,
        "audience": os.environ.get("IDENTITY_JWT_AUDIENCE") or None,
        "max_age": max_age,
    }


def _decode(token: str, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Check the signature (and iss/aud when configured) with PyJWT; map its errors to reasons."""
    try:
        return jwt.decode(
            token,
            settings["key"],
            algorithms=[settings["algorithm"]],
            issuer=settings["issuer"],
            audience=settings["audience"],
            options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "verify_iss": settings["issuer"] is not None,
                     "verify_aud": True, "enforce_minimum_key_length": True},
        )
    except jwt.InvalidKeyError as exc:  # the configured key itself is unusable
        raise IdentityError("config", str(exc)) from None
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError,
            jwt.InvalidIssuerError, jwt.InvalidAudienceError) as exc:
        raise IdentityError("signature", str(exc)) from None
    except jwt.InvalidTokenError as exc:  # DecodeError, MissingRequiredClaimError, …
        raise IdentityError("malformed", str(exc)) from None


def _number(payload: Dict[str, Any], claim: str) -> float:
    value = payload.get(claim)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IdentityError("malformed", f"claim {claim} must be a number")
    return float(value)


def verify_identity_token(token: Optional[str], *, now: Union[datetime, float, None] = None) -> Identity:
    """Verify signature, time window, claims and BSN 11-check; return the Identity.

    Raises IdentityError with reason missing, malformed, signature, expired,
    invalid_bsn or config.
    """
    if token is None or not str(token).strip():
        raise IdentityError("missing")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise IdentityError("malformed", "token is not a string of acceptable length")
    settings = _settings()
    payload = _decode(token.strip(), settings)

    current = _timestamp(now)
    exp, iat = _number(payload, "exp"), _number(payload, "iat")
    if exp <= current - LEEWAY_SECONDS:
        raise IdentityError("expired", "exp is in the past")
    if iat > current + LEEWAY_SECONDS:
        raise IdentityError("expired", "iat is in the future")
    if "nbf" in payload and _number(payload, "nbf") > current + LEEWAY_SECONDS:
        raise IdentityError("expired", "nbf is in the future")
    if exp - iat > settings["max_age"]:
        raise IdentityError("expired", "token lifetime exceeds IDENTITY_JWT_MAX_AGE")
    if current - iat > settings["max_age"] + LEEWAY_SECONDS:
        raise IdentityError("expired", "token was issued too long ago")

    bsn = payload.get("bsn", payload.get("sub"))
    naam = payload.get("naam")
    if not isinstance(bsn, str) or not bsn.strip():
        raise IdentityError("malformed", "claim bsn (or sub) missing or not a string")
    if not isinstance(naam, str) or not naam.strip():
        raise IdentityError("malformed", "claim naam missing or not a string")
    bsn = bsn.strip()
    if not (bsn.isdigit() and len(bsn) == 9 and stdnum_bsn.is_valid(bsn)):
        raise IdentityError("invalid_bsn", "BSN fails the 11-check")
    return Identity(bsn=bsn, naam=" ".join(naam.split()),
                    expires_at=datetime.fromtimestamp(exp, tz=timezone.utc))


def issue_token(bsn: str, naam: str, *, secret: Optional[str] = None, private_key: Any = None,
                algorithm: str = "HS256", lifetime: int = 600, issuer: Optional[str] = None,
                audience: Optional[str] = None,
                now: Union[datetime, float, None] = None) -> str:
    """Sign an identity token (for the demo page and tests; production tokens come from the website).

    HS256 uses ``secret`` (default: ``IDENTITY_JWT_SECRET``); RS256 uses
    ``private_key`` (PEM text/bytes or a cryptography key object).
    """
    iat = int(_timestamp(now))
    payload: Dict[str, Any] = {"bsn": bsn, "naam": naam, "iat": iat, "exp": iat + int(lifetime)}
    if issuer:
        payload["iss"] = issuer
    if audience:
        payload["aud"] = audience
    if algorithm == "HS256":
        key = secret if secret is not None else os.environ.get("IDENTITY_JWT_SECRET", "")
        if not key:
            raise ValueError("issue_token needs a secret for HS256")
    elif algorithm == "RS256":
        if private_key is None:
            raise ValueError("issue_token needs a private_key for RS256")
        key = private_key
    else:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    return jwt.encode(payload, key, algorithm=algorithm)
