"""Unit tests of the JWT `TokenVerifier` adapter and the dev token issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapters.auth import JwtTokenVerifier, issue_token
from domain.errors import AuthExpired, AuthInvalid, AuthRefused, AuthRequired
from domain.model import Identity
from domain.ports import TokenVerifier

NOW = datetime(2026, 11, 25, 19, 30, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
SECRET = "test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-that-is-long-enough-too!!"


class FakeClock:
    """A clock that tells whatever time the test sets."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def verifier(
    clock: FakeClock | None = None,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    cache_size: int = 10_000,
    leeway_s: float = 0,
) -> JwtTokenVerifier:
    return JwtTokenVerifier(
        secret=SECRET,
        audience=audience,
        issuer=issuer,
        clock=clock or FakeClock(),
        cache_size=cache_size,
        leeway_s=leeway_s,
    )


def claims(*, drop: tuple[str, ...] = (), **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "alice", "iat": NOW_TS, "exp": NOW_TS + 3600}
    base.update(overrides)
    for name in drop:
        del base[name]
    return base


def hs256(payload: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, object], payload: dict[str, object], key: bytes | None) -> str:
    """A token built by hand: alg `none` (key None) or HS256 over any key bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# --- success ----------------------------------------------------------------------------


async def test_hs256_token_gives_the_identity() -> None:
    token = hs256(claims(sub="alice", name="Alice Liddell"))

    identity = await verifier().verify(token)

    assert identity == Identity(
        user_id="alice",
        name="Alice Liddell",
        expires_at=NOW + timedelta(seconds=3600),
    )
    assert identity.expires_at is not None
    assert identity.expires_at.tzinfo is not None


async def test_name_is_optional_and_ignored_unless_a_string() -> None:
    v = verifier()
    assert (await v.verify(hs256(claims(drop=("iat",))))).name is None
    assert (await v.verify(hs256(claims(name=42)))).name is None
    assert (await v.verify(hs256(claims(name=["x"])))).name is None


async def test_sub_of_128_characters_is_accepted() -> None:
    identity = await verifier().verify(hs256(claims(sub="u" * 128)))
    assert identity.user_id == "u" * 128


async def test_the_verifier_satisfies_the_port() -> None:
    assert isinstance(verifier(), TokenVerifier)


async def test_rs256_token_verifies_with_the_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    v = JwtTokenVerifier(public_key=public_pem(rsa_key), clock=FakeClock())
    token = jwt.encode(claims(sub="bob", name="Bob"), rsa_key, algorithm="RS256")

    identity = await v.verify(token)

    assert (identity.user_id, identity.name) == ("bob", "Bob")
    assert v.algorithms == ("RS256",)


async def test_es256_token_verifies_with_the_public_key(
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    v = JwtTokenVerifier(public_key=public_pem(ec_key), clock=FakeClock())
    token = jwt.encode(claims(sub="carol"), ec_key, algorithm="ES256")

    assert (await v.verify(token)).user_id == "carol"
    assert v.algorithms == ("ES256",)


async def test_aud_and_iss_are_ignored_when_not_configured() -> None:
    token = hs256(claims(aud="someone-else", iss="some-other-issuer"))
    assert (await verifier().verify(token)).user_id == "alice"


async def test_aud_and_iss_are_accepted_when_they_match() -> None:
    v = verifier(audience="switchboard", issuer="https://auth.example")
    token = hs256(claims(aud="switchboard", iss="https://auth.example"))
    assert (await v.verify(token)).user_id == "alice"


async def test_nbf_in_the_past_and_nbf_within_leeway_are_accepted() -> None:
    assert (await verifier().verify(hs256(claims(nbf=NOW_TS)))).user_id == "alice"
    token = hs256(claims(nbf=NOW_TS + 20))
    assert (await verifier(leeway_s=30).verify(token)).user_id == "alice"


async def test_leeway_accepts_a_recently_expired_token() -> None:
    token = hs256(claims(exp=NOW_TS - 10))
    assert (await verifier(leeway_s=30).verify(token)).user_id == "alice"


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "   "])
async def test_missing_token_is_auth_required(token: str) -> None:
    with pytest.raises(AuthRequired) as info:
        await verifier().verify(token)
    assert info.value.code == "auth_required"


async def test_none_token_is_auth_required() -> None:
    not_a_token: object = None
    with pytest.raises(AuthRequired):
        await verifier().verify(not_a_token)  # type: ignore[arg-type]


async def test_non_string_token_is_auth_invalid() -> None:
    not_a_token: object = 12345
    with pytest.raises(AuthInvalid):
        await verifier().verify(not_a_token)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "a.b",
        "eyJhbGciOiJIUzI1NiJ9.e30",
        "ü." * 20,
        "x" * 9000,
        hs256(claims())[:-3],
    ],
    ids=["garbage", "three-parts", "two-parts", "no-signature", "non-ascii", "huge", "cut"],
)
async def test_malformed_token_is_auth_invalid(token: str) -> None:
    with pytest.raises(AuthInvalid) as info:
        await verifier().verify(token)
    assert info.value.code == "auth_invalid"


@pytest.mark.parametrize(
    "payload",
    [
        claims(drop=("sub",)),
        claims(sub=""),
        claims(sub=7),
        claims(sub=None),
        claims(sub="u" * 129),
        claims(drop=("exp",)),
        claims(exp=None),
        claims(exp="tomorrow"),
        claims(exp=True),
        claims(exp=10**30),
        claims(exp=10**400),
        claims(iat="yesterday"),
        claims(nbf="now"),
        claims(nbf=NOW_TS + 1),
    ],
    ids=[
        "no-sub",
        "empty-sub",
        "int-sub",
        "null-sub",
        "long-sub",
        "no-exp",
        "null-exp",
        "string-exp",
        "bool-exp",
        "far-exp",
        "overflowing-exp",
        "string-iat",
        "string-nbf",
        "future-nbf",
    ],
)
async def test_bad_claims_are_auth_invalid(payload: dict[str, object]) -> None:
    token = hs256(payload)
    with pytest.raises(AuthInvalid) as info:
        await verifier().verify(token)
    assert token not in info.value.message


async def test_non_finite_exp_is_auth_invalid() -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(exp=float("inf")), SECRET.encode())
    with pytest.raises(AuthInvalid):
        await verifier().verify(token)


async def test_exp_with_too_many_digits_for_json_is_auth_invalid() -> None:
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64(b'{"sub":"alice","exp":' + b"9" * 5000 + b"}")
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    with pytest.raises(AuthInvalid):
        await verifier().verify(f"{header}.{payload}.{b64(signature.digest())}")


async def test_wrong_signature_is_auth_invalid() -> None:
    token = hs256(claims(), secret=OTHER_SECRET)
    with pytest.raises(AuthInvalid) as info:
        await verifier().verify(token)
    assert "signature" in info.value.message
    assert token not in info.value.message


async def test_alg_none_is_auth_invalid() -> None:
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), None)
    with pytest.raises(AuthInvalid):
        await verifier().verify(token)


async def test_expired_and_forged_token_is_invalid_not_expired() -> None:
    token = hs256(claims(exp=NOW_TS - 10), secret=OTHER_SECRET)
    with pytest.raises(AuthInvalid):
        await verifier().verify(token)


async def test_rs256_verifier_refuses_hs256_signed_with_the_public_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    pem = public_pem(rsa_key)
    v = JwtTokenVerifier(public_key=pem, clock=FakeClock())
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), pem.encode())
    with pytest.raises(AuthInvalid):
        await v.verify(token)


async def test_rs256_verifier_refuses_a_token_of_another_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    v = JwtTokenVerifier(public_key=public_pem(rsa_key), clock=FakeClock())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthInvalid):
        await v.verify(jwt.encode(claims(), other, algorithm="RS256"))


async def test_rs256_verifier_refuses_es256_tokens(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    v = JwtTokenVerifier(public_key=public_pem(rsa_key), clock=FakeClock())
    with pytest.raises(AuthInvalid):
        await v.verify(jwt.encode(claims(), ec_key, algorithm="ES256"))


async def test_es256_verifier_refuses_rs256_and_hs256_tokens(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    v = JwtTokenVerifier(public_key=public_pem(ec_key), clock=FakeClock())
    with pytest.raises(AuthInvalid):
        await v.verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))
    with pytest.raises(AuthInvalid):
        await v.verify(hs256(claims()))


async def test_hs256_verifier_refuses_rs256_tokens(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AuthInvalid):
        await verifier().verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))


@pytest.mark.parametrize(
    "payload",
    [claims(aud="elsewhere"), claims(drop=()), claims(aud=["elsewhere", "other"]), claims(aud=5)],
    ids=["wrong", "missing", "wrong-list", "not-a-string"],
)
async def test_wrong_audience_is_auth_invalid_when_configured(payload: dict[str, object]) -> None:
    with pytest.raises(AuthInvalid):
        await verifier(audience="switchboard").verify(hs256(payload))


async def test_audience_list_containing_ours_is_accepted() -> None:
    token = hs256(claims(aud=["other", "switchboard"]))
    assert (await verifier(audience="switchboard").verify(token)).user_id == "alice"


@pytest.mark.parametrize(
    "payload",
    [claims(iss="https://evil.example"), claims(), claims(iss=5)],
    ids=["wrong", "missing", "not-a-string"],
)
async def test_wrong_issuer_is_auth_invalid_when_configured(payload: dict[str, object]) -> None:
    # Built by hand: PyJWT's encoder refuses a non-string iss.
    token = hand_made({"alg": "HS256", "typ": "JWT"}, payload, SECRET.encode())
    with pytest.raises(AuthInvalid):
        await verifier(issuer="https://auth.example").verify(token)


@pytest.mark.parametrize("exp", [NOW_TS - 1, NOW_TS], ids=["past", "now"])
async def test_expired_token_is_auth_expired(exp: int) -> None:
    token = hs256(claims(exp=exp))
    with pytest.raises(AuthExpired) as info:
        await verifier().verify(token)
    assert info.value.code == "auth_expired"
    assert token not in info.value.message


async def test_leeway_does_not_accept_a_long_expired_token() -> None:
    with pytest.raises(AuthExpired):
        await verifier(leeway_s=30).verify(hs256(claims(exp=NOW_TS - 30)))


async def test_every_refusal_is_an_auth_refused() -> None:
    for token in ["", "garbage", hs256(claims(exp=NOW_TS - 1))]:
        with pytest.raises(AuthRefused):
            await verifier().verify(token)


# --- cache ------------------------------------------------------------------------------


async def test_a_verified_token_is_served_from_the_cache() -> None:
    v = verifier()
    token = hs256(claims(name="Alice"))

    first = await v.verify(token)
    second = await v.verify(token)

    assert first == second
    assert v.decodes == 1
    assert v.cached == 1


async def test_refused_tokens_are_not_cached() -> None:
    v = verifier()
    bad = hs256(claims(), secret=OTHER_SECRET)
    expired = hs256(claims(exp=NOW_TS - 1))
    for token in (bad, bad, expired, expired):
        with pytest.raises(AuthRefused):
            await v.verify(token)
    assert v.decodes == 4
    assert v.cached == 0


async def test_a_cached_token_expires_with_the_clock() -> None:
    clock = FakeClock()
    v = verifier(clock)
    token = hs256(claims(exp=NOW_TS + 60))
    await v.verify(token)

    clock.at = NOW + timedelta(seconds=59)
    assert (await v.verify(token)).user_id == "alice"
    assert v.decodes == 1

    clock.at = NOW + timedelta(seconds=60)
    with pytest.raises(AuthExpired):
        await v.verify(token)
    assert v.decodes == 1
    assert v.cached == 0
    with pytest.raises(AuthExpired):
        await v.verify(token)
    assert v.decodes == 2


async def test_a_cached_token_keeps_the_leeway() -> None:
    clock = FakeClock()
    v = verifier(clock, leeway_s=30)
    token = hs256(claims(exp=NOW_TS + 60))
    await v.verify(token)

    clock.at = NOW + timedelta(seconds=89)
    assert (await v.verify(token)).user_id == "alice"
    clock.at = NOW + timedelta(seconds=90)
    with pytest.raises(AuthExpired):
        await v.verify(token)
    assert v.decodes == 1


async def test_the_cache_is_bounded_and_evicts_the_oldest() -> None:
    v = verifier(cache_size=2)
    first, second, third = (hs256(claims(sub=user)) for user in ("u1", "u2", "u3"))
    for token in (first, second, third):
        await v.verify(token)
    assert (v.decodes, v.cached) == (3, 2)

    await v.verify(second)
    await v.verify(third)
    assert v.decodes == 3

    assert (await v.verify(first)).user_id == "u1"
    assert (v.decodes, v.cached) == (4, 2)


async def test_cache_size_zero_disables_the_cache() -> None:
    v = verifier(cache_size=0)
    token = hs256(claims())
    await v.verify(token)
    await v.verify(token)
    assert (v.decodes, v.cached) == (2, 0)


# --- configuration ----------------------------------------------------------------------


def test_exactly_one_of_secret_and_public_key_is_required(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JwtTokenVerifier(clock=FakeClock())
    with pytest.raises(ValueError, match="exactly one"):
        JwtTokenVerifier(secret=SECRET, public_key=public_pem(rsa_key), clock=FakeClock())


@pytest.mark.parametrize(
    ("secret", "cache_size", "leeway_s"),
    [("", 10, 0.0), (SECRET, -1, 0.0), (SECRET, 10, -1.0), (SECRET, 10, float("nan"))],
    ids=["empty-secret", "negative-cache", "negative-leeway", "nan-leeway"],
)
def test_bad_settings_are_refused(secret: str, cache_size: int, leeway_s: float) -> None:
    with pytest.raises(ValueError):
        JwtTokenVerifier(secret=secret, clock=FakeClock(), cache_size=cache_size, leeway_s=leeway_s)


def test_public_key_must_be_a_pem_rsa_or_p256_key() -> None:
    with pytest.raises(ValueError, match="PEM"):
        JwtTokenVerifier(public_key="not a key", clock=FakeClock())
    p384 = public_pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="P-256"):
        JwtTokenVerifier(public_key=p384, clock=FakeClock())


def test_hs256_verifier_accepts_only_hs256() -> None:
    assert verifier().algorithms == ("HS256",)


# --- issue_token ------------------------------------------------------------------------


async def test_issued_token_round_trips_with_all_claims() -> None:
    token = issue_token(
        SECRET,
        "dave",
        ttl_s=120,
        name="Dave",
        now=NOW,
        audience="switchboard",
        issuer="https://auth.example",
    )
    v = verifier(audience="switchboard", issuer="https://auth.example")

    identity = await v.verify(token)

    assert identity == Identity(
        user_id="dave", name="Dave", expires_at=NOW + timedelta(seconds=120)
    )
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iat"] == NOW_TS
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


async def test_issued_token_expires_after_its_ttl() -> None:
    clock = FakeClock()
    token = issue_token(SECRET, "erin", ttl_s=10, now=NOW)
    clock.at = NOW + timedelta(seconds=10)
    with pytest.raises(AuthExpired):
        await verifier(clock).verify(token)


def test_issued_token_defaults_to_the_current_time_and_an_hour() -> None:
    before = int(datetime.now(UTC).timestamp())
    payload = jwt.decode(issue_token(SECRET, "frank"), SECRET, algorithms=["HS256"])
    assert payload["sub"] == "frank"
    assert payload["exp"] - payload["iat"] == 3600
    assert before <= payload["iat"] <= before + 5
    assert "name" not in payload
    assert "aud" not in payload
    assert "iss" not in payload


@pytest.mark.parametrize(("secret", "user_id"), [("", "x"), (SECRET, ""), (SECRET, "u" * 129)])
def test_issue_token_refuses_what_the_verifier_would(secret: str, user_id: str) -> None:
    with pytest.raises(ValueError):
        issue_token(secret, user_id)
