"""Access tokens as RFC 8725 asks for them, and the opaque refresh tokens of RFC 9700.

Access tokens: one pinned algorithm (HS256), an explicit type (`typ: at+jwt`,
RFC 9068) so no other JWT passes for one, and every token carries `iss`, `aud`,
`exp`, `iat`, `sub` and a `kid` naming the key, so the key can be rotated:
tokens signed with a previous key keep working until they expire when that key
is listed among the previous ones.

Refresh tokens: `<session id>.<random secret>`; the session id finds the family
without a lookup table, and only the SHA-256 of the whole token is ever stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
import msgspec

from iotledger.domain.errors import Unauthorized

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
ISSUER = "iotledger"
AUDIENCE = "iotledger"


class Claims(msgspec.Struct, frozen=True):
    sub: str
    user_id: UUID
    exp: int
    iat: int


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


VERIFIED_TOKENS_KEPT = 10_000


class TokenIssuer:
    """Signs access tokens and checks them; a token checked once is known until it expires.

    A client sends the same token with every request until it expires, and checking
    its signature and claims again each time cost more than some whole requests.
    So the claims of tokens that passed are kept (the newest `VERIFIED_TOKENS_KEPT`,
    keyed by the token itself: only a token that passed every check gets in), and a
    kept token is still refused from the second its `exp` names.
    """

    def __init__(self, secret: str, previous: tuple[str, ...] = ()) -> None:
        self._kid = key_id(secret)
        self._secret = secret
        self._keys = {key_id(s): s for s in (secret, *previous)}
        self._verified: dict[str, Claims] = {}

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
        return jwt.encode(
            payload,
            self._secret,
            algorithm=ALGORITHM,
            headers={"kid": self._kid, "typ": TOKEN_TYPE},
        )

    def verify(self, token: str) -> Claims:
        """The token's claims; Unauthorized for anything forged, expired or incomplete."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check(token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = claims
        elif claims.exp <= time.time():
            self._verified.pop(token, None)
            raise Unauthorized("invalid credentials")
        return claims

    def _check(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != TOKEN_TYPE:
                raise Unauthorized("invalid credentials")
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


class RefreshToken(msgspec.Struct, frozen=True):
    """A refresh token as the cookie carries it, with what the server keeps of it."""

    session_id: UUID
    value: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.value.encode()).hexdigest()


def new_refresh_token(session_id: UUID) -> RefreshToken:
    return RefreshToken(session_id, f"{session_id}.{secrets.token_urlsafe(32)}")


def read_refresh_token(value: str | None) -> RefreshToken | None:
    """The token a cookie carries, or None when it is absent or not of our shape."""
    session_id, _, secret = (value or "").partition(".")
    if value is None or not secret or len(secret) > 100:
        return None
    try:
        return RefreshToken(UUID(session_id), value)
    except ValueError:
        return None


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
