"""JWT bearer tokens issued by someone else (an identity provider, a CI system).

Flowyard only *verifies* tokens: HS256 with ``auth.jwt_secret`` and/or RS256 with
``auth.jwt_public_key`` (a PEM text, or the path of a PEM file). Only the configured
algorithms are accepted — never ``none``, never an HMAC made with the public key.

Claims: ``sub`` (who; required), ``role`` (a seed role; required), ``exp`` (required,
checked with a small leeway for clock skew), ``nbf``/``iat`` when present, ``aud`` and
``iss`` when configured, and optional ``roles`` (a list of further role or group names
that tasks' ``candidate_roles`` are matched against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from server.config import AuthSettings
from server.errors import ConfigurationError, Unauthorized
from server.identity import NAME, SEED_ROLES, Actor

#: Seconds of clock difference tolerated on ``exp``, ``nbf`` and ``iat``.
LEEWAY_SECONDS = 30
#: A bearer token longer than this is refused without decoding it.
MAX_TOKEN_LENGTH = 8192
#: Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's 256 bits).
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, slots=True)
class JwtVerifier:
    """Verifies tokens with the keys configured in ``[auth]``."""

    secret: str
    public_key: str
    audience: str
    issuer: str

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> JwtVerifier | None:
        """The verifier, or ``None`` when no JWT key is configured (tokens are refused)."""
        secret, public_key = settings.jwt_secret, settings.jwt_public_key
        if not secret and not public_key:
            return None
        if secret and len(secret.encode()) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                "auth.jwt_secret", f"must be at least {MIN_SECRET_LENGTH} bytes long"
            )
        if public_key and not public_key.lstrip().startswith("-----BEGIN"):
            try:
                public_key = Path(public_key).read_text()
            except OSError as error:
                raise ConfigurationError(
                    "auth.jwt_public_key",
                    f"is neither a PEM public key nor a readable file ({error.strerror})",
                ) from None
        if public_key:
            try:
                loaded = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(public_key)
            except (pyjwt.PyJWTError, ValueError, TypeError):
                loaded = None
            if not isinstance(loaded, RSAPublicKey):
                raise ConfigurationError(
                    "auth.jwt_public_key", "is not an RSA public key in PEM format"
                )
        return cls(secret, public_key, settings.jwt_audience, settings.jwt_issuer)

    def actor(self, token: str) -> Actor:
        """The token's actor; :class:`Unauthorized` saying why when it is not valid."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("the bearer token is too long")
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError:
            raise Unauthorized("the bearer token is neither an API key (fy_…) nor a JWT") from None
        algorithm = header.get("alg")
        key = {"HS256": self.secret, "RS256": self.public_key}.get(str(algorithm))
        if not key:
            accepted = [a for a, k in (("HS256", self.secret), ("RS256", self.public_key)) if k]
            raise Unauthorized(
                f"JWT algorithm {str(algorithm)[:20]!r} is not accepted here; use "
                + " or ".join(accepted)
            )
        try:
            claims: dict[str, Any] = pyjwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self.audience or None,
                issuer=self.issuer or None,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": bool(self.audience),
                    "verify_iss": bool(self.issuer),
                },
            )
        except pyjwt.ExpiredSignatureError:
            raise Unauthorized("the JWT has expired") from None
        except pyjwt.InvalidSignatureError:
            raise Unauthorized("the JWT signature is not valid") from None
        except pyjwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"the JWT has no {error.claim!r} claim") from None
        except pyjwt.PyJWTError as error:
            raise Unauthorized(f"the JWT is not valid: {type(error).__name__}") from None
        return _claims_actor(claims)


def _claims_actor(claims: dict[str, Any]) -> Actor:
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not NAME.fullmatch(subject):
        raise Unauthorized("the JWT 'sub' claim must be 1 to 200 letters, digits or _ . @ + : -")
    if role not in SEED_ROLES:
        raise Unauthorized(f"the JWT 'role' claim must be one of {', '.join(SEED_ROLES)}")
    extra = claims.get("roles", [])
    if not isinstance(extra, list) or not all(
        isinstance(r, str) and NAME.fullmatch(r) for r in extra
    ):
        raise Unauthorized("the JWT 'roles' claim must be a list of role names")
    return Actor(subject, str(role), frozenset({*extra, str(role)}), via="jwt")
