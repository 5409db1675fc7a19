"""JWT verification (HS256, or RS256/ES256 with a public key) with a cache of verified tokens.

Every time check (exp, nbf) uses the injected `Clock`, never the wall clock, so that the
cache and a fresh verification always agree and tests are deterministic. PyJWT checks the
signature, the algorithm and, when configured, the audience and issuer.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from datetime import UTC, datetime

import attrs
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from domain.errors import AuthExpired, AuthInvalid, AuthRequired
from domain.model import Identity
from domain.ports import Clock

MAX_SUBJECT_CHARS = 128
"""The longest accepted `sub` claim (the user id)."""

MAX_TOKEN_CHARS = 8192
"""Longer tokens are refused before any parsing or hashing."""

_HS_ALGORITHMS = ("HS256",)


@attrs.frozen
class _CachedIdentity:
    """A verified token's identity and the clock timestamp from which it counts as expired."""

    identity: Identity
    expires_after: float


class JwtTokenVerifier:
    """Verifies JWTs into identities; the `TokenVerifier` port over PyJWT."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        clock: Clock,
        cache_size: int = 10_000,
        leeway_s: float = 0,
    ) -> None:
        if (secret is None) == (public_key is None):
            raise ValueError("give exactly one of secret (HS256) and public_key (RS256/ES256)")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        if not math.isfinite(leeway_s) or leeway_s < 0:
            raise ValueError("leeway_s must be a finite number >= 0")
        self._key: str | rsa.RSAPublicKey | ec.EllipticCurvePublicKey
        self._algorithms: tuple[str, ...]
        if secret is not None:
            if not secret:
                raise ValueError("secret must not be empty")
            self._key, self._algorithms = secret, _HS_ALGORITHMS
        elif public_key is not None:
            self._key, self._algorithms = _load_public_key(public_key)
        self._audience = audience
        self._issuer = issuer
        self._clock = clock
        self._cache_size = cache_size
        self._leeway_s = float(leeway_s)
        self._cache: OrderedDict[bytes, _CachedIdentity] = OrderedDict()
        self._decodes = 0

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The signature algorithms accepted (fixed by the configured key)."""
        return self._algorithms

    @property
    def decodes(self) -> int:
        """How many tokens were decoded and checked by PyJWT (cache hits do not count)."""
        return self._decodes

    @property
    def cached(self) -> int:
        """How many verified tokens the cache holds."""
        return len(self._cache)

    async def verify(self, token: str) -> Identity:
        """The identity a token proves; raises `AuthRequired`, `AuthInvalid` or `AuthExpired`."""
        raw = _token_bytes(token)
        cache_key = hashlib.sha256(raw).digest()
        now = self._clock.now().timestamp()
        cached = self._cache.get(cache_key)
        if cached is not None:
            if now >= cached.expires_after:
                del self._cache[cache_key]
                raise AuthExpired()
            return cached.identity
        entry = self._decode(raw, now)
        if self._cache_size > 0:
            self._cache[cache_key] = entry
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry.identity

    def _decode(self, raw: bytes, now: float) -> _CachedIdentity:
        self._decodes += 1
        try:
            claims: dict[str, object] = jwt.decode(
                raw,
                self._key,
                algorithms=list(self._algorithms),
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "verify_signature": True,
                    # Time claims are checked below against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    # PyJWT refuses a token carrying `aud` when none is configured.
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthInvalid(_describe(exc)) from None
        except (ValueError, TypeError, OverflowError, RecursionError):
            # Defensive: odd headers must never escape as anything but a refusal.
            raise AuthInvalid("the token is malformed") from None
        return self._identity(claims, now)

    def _identity(self, claims: dict[str, object], now: float) -> _CachedIdentity:
        sub = claims.get("sub")
        if sub is None:
            raise AuthInvalid("the token lacks the sub claim")
        if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT_CHARS:
            raise AuthInvalid(
                f"the token's sub claim must be a string of 1 to {MAX_SUBJECT_CHARS} characters"
            )
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise AuthInvalid("the token lacks the exp claim")
        nbf = _numeric_date(claims, "nbf")
        _numeric_date(claims, "iat")
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            raise AuthInvalid("the token's exp claim is out of range") from None
        if nbf is not None and nbf > now + self._leeway_s:
            raise AuthInvalid("the token is not valid yet")
        expires_after = exp + self._leeway_s
        if now >= expires_after:
            raise AuthExpired()
        name = claims.get("name")
        identity = Identity(
            user_id=sub,
            name=name if isinstance(name, str) else None,
            expires_at=expires_at,
        )
        return _CachedIdentity(identity=identity, expires_after=expires_after)


def issue_token(
    secret: str,
    user_id: str,
    *,
    ttl_s: int = 3600,
    name: str | None = None,
    now: datetime | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 token for `user_id`, valid for `ttl_s` seconds from `now` (for dev and tests)."""
    if not secret:
        raise ValueError("secret must not be empty")
    if not 0 < len(user_id) <= MAX_SUBJECT_CHARS:
        raise ValueError(f"user_id must have 1 to {MAX_SUBJECT_CHARS} characters")
    issued_at = int((now if now is not None else datetime.now(UTC)).timestamp())
    claims: dict[str, str | int] = {"sub": user_id, "iat": issued_at, "exp": issued_at + ttl_s}
    if name is not None:
        claims["name"] = name
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def _load_public_key(
    pem: str,
) -> tuple[rsa.RSAPublicKey | ec.EllipticCurvePublicKey, tuple[str, ...]]:
    """The key object and the one algorithm it verifies (RS256 for RSA, ES256 for P-256)."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("public_key is not a PEM public key") from exc
    if isinstance(key, rsa.RSAPublicKey):
        return key, ("RS256",)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, ("ES256",)
    raise ValueError("public_key must be an RSA key (RS256) or an EC P-256 key (ES256)")


def _token_bytes(token: object) -> bytes:
    """The token as ASCII bytes, or the refusal a missing or impossible token earns."""
    if token is None or (isinstance(token, str) and not token.strip()):
        raise AuthRequired()
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise AuthInvalid("the token is malformed")
    return token.encode("ascii")


def _numeric_date(claims: dict[str, object], claim: str) -> float | None:
    """The claim as finite seconds since the epoch, None if absent; refuses other values."""
    value = claims.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthInvalid(f"the token's {claim} claim must be a number")
    try:
        seconds = float(value)
    except OverflowError:
        raise AuthInvalid(f"the token's {claim} claim is out of range") from None
    if not math.isfinite(seconds):
        raise AuthInvalid(f"the token's {claim} claim must be a finite number")
    return seconds


def _describe(exc: jwt.PyJWTError) -> str:
    """Short human text for a PyJWT refusal; never the token itself."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature is invalid"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the token's algorithm is not accepted"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token is from another issuer"
    if isinstance(exc, jwt.DecodeError):
        return "the token is malformed"
    return "the token is invalid"
