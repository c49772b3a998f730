"""Access tokens: JWTs as RFC 8725 asks for them.

One pinned algorithm (HS256), and every token carries `iss`, `aud`, `exp`,
`iat`, `sub` and a `kid` naming the key, so the key can be rotated: tokens
signed with a previous key keep working until they expire when that key is
listed among the previous ones.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
import msgspec

from iotledger.domain.errors import Unauthorized

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "iotledger"
AUDIENCE = "iotledger"


class Claims(msgspec.Struct, frozen=True):
    sub: str
    user_id: UUID
    exp: int
    iat: int


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class TokenIssuer:
    def __init__(self, secret: str, previous: tuple[str, ...] = ()) -> None:
        self._kid = key_id(secret)
        self._secret = secret
        self._keys = {key_id(s): s for s in (secret, *previous)}

    def issue(self, user_id: UUID, username: str, now: datetime, ttl: timedelta) -> str:
        iat = int(now.timestamp())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": username,
            "user_id": str(user_id),
            "iat": iat,
            "exp": iat + int(ttl.total_seconds()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM, headers={"kid": self._kid})

    def verify(self, token: str) -> Claims:
        """The token's claims; Unauthorized for anything forged, expired or incomplete."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys[str(header.get("kid"))]
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            return msgspec.convert(payload, Claims, strict=False)
        except (jwt.PyJWTError, KeyError, msgspec.ValidationError):
            raise Unauthorized("invalid credentials") from None


def jwt_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret, or one generated once and kept under the data directory."""
    if configured:
        return configured
    path = data_dir / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret + "\n")
        path.chmod(0o600)
    log.warning(
        "IOTLEDGER_JWT_SECRET is not set: using the generated key in %s "
        "(set it when several processes sign tokens)",
        path,
    )
    return secret
