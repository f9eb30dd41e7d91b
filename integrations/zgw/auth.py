"""ZGW authentication: a JWT signed with the client secret (HS256), sent as Bearer token.

The claims are those of the "API's voor Zaakgericht werken" (as used by Open
Zaak): ``iss`` and ``client_id`` = the client id, ``iat``, ``user_id`` and
``user_representation``. A fresh token is made for each request, so ``iat``
is always recent (Open Zaak refuses tokens older than its JWT_EXPIRY).
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import jwt

ALGORITHM = "HS256"


def make_token(
    client_id: str,
    secret: str,
    user_id: str = "",
    user_representation: str = "",
    now: Optional[float] = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: Dict[str, Any] = {
        "iss": client_id,
        "iat": issued,
        "client_id": client_id,
        "user_id": user_id,
        "user_representation": user_representation,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def authorization_header(
    client_id: str, secret: str, user_id: str = "", user_representation: str = ""
) -> str:
    return "Bearer " + make_token(client_id, secret, user_id, user_representation)
