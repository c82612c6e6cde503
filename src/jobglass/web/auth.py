"""Who is calling the admin API: JWT bearer tokens (HS256/RS256) or API keys, and their role.

Roles: ``admin`` may do everything; ``viewer`` may read and watch the stream. A request without
credentials, or with bad ones, is answered 401; a viewer calling a mutating route gets 403.
Tokens are never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

ADMIN = "admin"
VIEWER = "viewer"
SUPPORTED_ALGORITHMS = frozenset({"HS256", "RS256"})
ENV_PREFIX = "JOBGLASS_"


class AuthError(Exception):
    """Authentication (401) or authorization (403) failure; the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    subject: str
    role: str  # ADMIN or VIEWER
    method: str  # "jwt" or "api_key"
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


@dataclass(frozen=True)
class AuthConfig:
    """How callers prove who they are. Nothing configured: every request is refused (401)."""

    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256", "RS256")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    role_claim: str = "role"
    api_keys: Mapping[str, str] = field(default_factory=dict)  # key -> role
    allow_viewer: bool = True
    #: role names (in the token or an API key's role) that mean admin / viewer
    admin_roles: tuple[str, ...] = ("admin", "superadmin")
    viewer_roles: tuple[str, ...] = ("viewer",)
    leeway: float = 0.0

    def __post_init__(self) -> None:
        bad = [a for a in self.jwt_algorithms if a not in SUPPORTED_ALGORITHMS]
        if bad:
            raise ValueError(f"unsupported JWT algorithm(s) {bad}: use HS256 and/or RS256")
        for key, role in self.api_keys.items():
            if not key:
                raise ValueError("an API key must not be empty")
            if role not in (*self.admin_roles, *self.viewer_roles):
                raise ValueError(f"API key role must be admin or viewer, got {role!r}")

    @property
    def enabled(self) -> bool:
        """True when at least one way to authenticate is configured."""
        return bool(self.jwt_secret or self.jwt_public_key or self.api_keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AuthConfig:
        """`JOBGLASS_JWT_SECRET`, `_JWT_PUBLIC_KEY`, `_JWT_ISSUER`, `_JWT_AUDIENCE`, `_API_KEYS`.

        `JOBGLASS_API_KEYS="key1:admin,key2:viewer"`; a key without a role is an admin key.
        `JOBGLASS_JWT_PUBLIC_KEY` may be the PEM text or a path to a PEM file.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value.strip() if value and value.strip() else None

        public_key = get("JWT_PUBLIC_KEY")
        if public_key and not public_key.startswith("-----") and os.path.isfile(public_key):
            with open(public_key, encoding="utf-8") as fh:
                public_key = fh.read()
        values: dict[str, Any] = {
            "jwt_secret": get("JWT_SECRET"),
            "jwt_public_key": public_key,
            "jwt_issuer": get("JWT_ISSUER"),
            "jwt_audience": get("JWT_AUDIENCE"),
            "api_keys": parse_api_keys(get("API_KEYS") or ""),
        }
        role_claim = get("JWT_ROLE_CLAIM")
        if role_claim:
            values["role_claim"] = role_claim
        values.update(overrides)
        return cls(**values)


def parse_api_keys(text: str) -> dict[str, str]:
    """`"key1:admin,key2:viewer"` -> `{"key1": "admin", "key2": "viewer"}`."""
    keys: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, role = item.rpartition(":")
        if not sep:
            key, role = item, ADMIN
        keys[key.strip()] = role.strip().lower() or ADMIN
    return keys


def make_dev_token(
    secret: str, role: str = ADMIN, ttl: float = 12 * 3600, subject: str = "dev"
) -> str:
    """An HS256 token for the local dev flow (`jobglass serve` without configured auth)."""
    now = int(time.time())
    claims = {"sub": subject, "role": role, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


def new_dev_secret() -> str:
    return secrets.token_urlsafe(32)


class Authenticator:
    """Turns presented credentials into an `Identity`, or raises `AuthError`."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        # compare every configured key, each in constant time, so timing says nothing
        self._keys = [(k.encode("utf-8"), role) for k, role in config.api_keys.items()]

    def authenticate(self, token: str | None, api_key: str | None = None) -> Identity:
        cfg = self.config
        if not cfg.enabled:
            raise AuthError(
                401,
                "authentication is not configured on this server: set JOBGLASS_JWT_SECRET,"
                " JOBGLASS_JWT_PUBLIC_KEY or JOBGLASS_API_KEYS",
            )
        if api_key:
            return self._from_api_key(api_key)
        if not token:
            raise AuthError(
                401, "missing credentials: send 'Authorization: Bearer <token>' or 'X-API-Key'"
            )
        role = self._match_key(token)
        if role is not None:
            return Identity("api-key", self._role([role]), "api_key")
        if token.count(".") == 2 and (cfg.jwt_secret or cfg.jwt_public_key):
            return self._from_jwt(token)
        raise AuthError(401, "invalid token")

    def authorize(self, identity: Identity, *, write: bool) -> None:
        if write and not identity.is_admin:
            raise AuthError(403, "this action needs the admin role; you are a viewer")

    # -- API keys -----------------------------------------------------------------------------

    def _match_key(self, presented: str) -> str | None:
        try:
            given = presented.encode("utf-8")
        except UnicodeEncodeError:
            return None
        match: str | None = None
        for key, role in self._keys:
            if hmac.compare_digest(key, given) and match is None:
                match = role
        return match

    def _from_api_key(self, presented: str) -> Identity:
        role = self._match_key(presented)
        if role is None:
            raise AuthError(401, "invalid API key")
        return Identity("api-key", self._role([role]), "api_key")

    # -- JWT -------------------------------------------------------------------------------------

    def _from_jwt(self, token: str) -> Identity:
        cfg = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "invalid token: malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError(401, "invalid token: unsigned tokens (alg none) are refused")
        if alg not in cfg.jwt_algorithms:
            raise AuthError(401, f"invalid token: algorithm {alg} is not accepted")
        key: Any
        if alg == "HS256":
            if not cfg.jwt_secret:
                raise AuthError(401, "invalid token: HS256 tokens are not accepted here")
            key = cfg.jwt_secret
        else:
            if not cfg.jwt_public_key:
                raise AuthError(401, "invalid token: RS256 tokens are not accepted here")
            key = cfg.jwt_public_key
        options: dict[str, Any] = {
            "require": ["exp"],
            "verify_signature": True,
            "verify_exp": True,
            "verify_aud": cfg.jwt_audience is not None,
            "verify_iss": cfg.jwt_issuer is not None,
        }
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                options=options,  # type: ignore[arg-type]
                audience=cfg.jwt_audience,
                issuer=cfg.jwt_issuer,
                leeway=cfg.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "invalid token: expired") from None
        except jwt.MissingRequiredClaimError as err:
            raise AuthError(401, f"invalid token: missing claim {err.claim!r}") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, "invalid token: wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "invalid token: wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthError(401, "invalid token: bad signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError(401, "invalid token") from None
        roles = _claim_values(claims, cfg.role_claim)
        subject = claims.get("sub")
        return Identity(
            str(subject) if subject is not None else "unknown", self._role(roles), "jwt", claims
        )

    def _role(self, roles: list[str]) -> str:
        cfg = self.config
        if any(r in cfg.admin_roles for r in roles):
            return ADMIN
        if any(r in cfg.viewer_roles for r in roles):
            if not cfg.allow_viewer:
                raise AuthError(403, "viewers are not allowed on this server")
            return VIEWER
        raise AuthError(403, "your credentials carry no admin or viewer role")


def _claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The role claim as a list of lower-case names; `path` may be dotted (`realm.roles`)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return []
        value = value.get(part)
    if isinstance(value, str):
        return [r.strip().lower() for r in value.replace(",", " ").split() if r.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip().lower() for v in value if isinstance(v, str)]
    return []


def credentials(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """(bearer token, API key) from the headers; `query` (`?token=`) only for stream routes."""
    token: str | None = None
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    api_key = headers.get("x-api-key") or None
    if token is None and api_key is None and query is not None:
        token = query.get("token") or None
    return token, api_key


# -- never log tokens ------------------------------------------------------------------------

_TOKEN_IN_URL = re.compile(r"((?:^|[?&])(?:token|api_key|apikey|access_token)=)[^&\s\"']+", re.I)
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


class RedactTokens(logging.Filter):
    """Blank `?token=...` in server log records (uvicorn logs request paths with queries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction() -> None:
    """Idempotent: add `RedactTokens` to the server loggers that print request paths."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
