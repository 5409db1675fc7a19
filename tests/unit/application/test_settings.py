"""`Settings.from_env`: defaults, required secrets, --dev, checks with clear messages."""

from __future__ import annotations

import pytest

from application.settings import Settings, SettingsError

SECRET = "s" * 32
BASE = {"SWITCHBOARD_JWT_SECRET": SECRET, "SWITCHBOARD_API_KEY": "api-key"}


def refused(env: dict[str, str], *, dev: bool = False) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env, dev=dev)
    return str(caught.value)


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.dev is False
    assert settings.jwt_secret == SECRET
    assert settings.jwt_public_key is None
    assert settings.jwt_audience is None
    assert settings.jwt_issuer is None
    assert settings.api_key == "api-key"
    assert settings.store == "memory"
    assert settings.redis_url is None
    assert settings.redis_fallback == "fail"
    assert settings.cors_origins == ()
    assert settings.log_level == "info"
    assert settings.log_format == "json"
    assert settings.handler_timeout_s == 5.0
    assert settings.coalesce_window_ms == 500
    assert settings.max_payload_bytes == 65536
    assert settings.presence_heartbeat_s == 4.0
    assert settings.presence_ttl_s == 12.0
    assert settings.generated_secrets is False
    assert len(settings.instance_id) == 12


def test_instance_ids_differ_unless_set() -> None:
    assert Settings.from_env(BASE).instance_id != Settings.from_env(BASE).instance_id
    pinned = Settings.from_env({**BASE, "SWITCHBOARD_INSTANCE_ID": "node-1"})
    assert pinned.instance_id == "node-1"


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "SWITCHBOARD_HOST": "0.0.0.0",
            "SWITCHBOARD_PORT": "9000",
            "SWITCHBOARD_JWT_AUDIENCE": "aud",
            "SWITCHBOARD_JWT_ISSUER": "iss",
            "REDIS_URL": "redis://localhost:6379/0",
            "REDIS_FALLBACK": "memory",
            "SWITCHBOARD_LOG_LEVEL": "DEBUG",
            "SWITCHBOARD_LOG_FORMAT": "console",
            "SWITCHBOARD_HANDLER_TIMEOUT_S": "2.5",
            "SWITCHBOARD_COALESCE_WINDOW_MS": "100",
            "SWITCHBOARD_MAX_PAYLOAD_BYTES": "2048",
            "SWITCHBOARD_PRESENCE_HEARTBEAT_S": "1",
            "SWITCHBOARD_PRESENCE_TTL_S": "3",
        }
    )
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert (settings.jwt_audience, settings.jwt_issuer) == ("aud", "iss")
    assert settings.store == "redis"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.redis_fallback == "memory"
    assert (settings.log_level, settings.log_format) == ("debug", "console")
    assert settings.handler_timeout_s == 2.5
    assert settings.coalesce_window_ms == 100
    assert settings.max_payload_bytes == 2048
    assert (settings.presence_heartbeat_s, settings.presence_ttl_s) == (1.0, 3.0)


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({**BASE, "SWITCHBOARD_PORT": "  ", "SWITCHBOARD_HOST": ""})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


# --- secrets ----------------------------------------------------------------------------------


def test_missing_secret_is_refused_without_dev() -> None:
    message = refused({"SWITCHBOARD_API_KEY": "k"})
    assert "SWITCHBOARD_JWT_SECRET" in message
    assert "--dev" in message


def test_blank_secret_is_missing() -> None:
    assert "SWITCHBOARD_JWT_SECRET" in refused({**BASE, "SWITCHBOARD_JWT_SECRET": "   "})


def test_missing_api_key_is_refused_without_dev() -> None:
    message = refused({"SWITCHBOARD_JWT_SECRET": SECRET})
    assert "SWITCHBOARD_API_KEY" in message
    assert "--dev" in message


def test_nothing_set_is_refused() -> None:
    assert "required" in refused({})


def test_dev_generates_both() -> None:
    settings = Settings.from_env({}, dev=True)
    assert settings.dev is True
    assert settings.generated_secrets is True
    assert settings.jwt_secret is not None
    assert len(settings.jwt_secret.encode()) >= 32
    assert len(settings.api_key) >= 16
    other = Settings.from_env({}, dev=True)
    assert other.jwt_secret != settings.jwt_secret
    assert other.api_key != settings.api_key


def test_dev_keeps_given_secrets() -> None:
    settings = Settings.from_env(BASE, dev=True)
    assert settings.jwt_secret == SECRET
    assert settings.api_key == "api-key"
    assert settings.generated_secrets is False


def test_dev_generates_only_what_is_missing() -> None:
    settings = Settings.from_env({"SWITCHBOARD_JWT_SECRET": SECRET}, dev=True)
    assert settings.jwt_secret == SECRET
    assert settings.api_key
    assert settings.generated_secrets is True


@pytest.mark.parametrize("dev", [False, True])
def test_short_secret_is_refused(dev: bool) -> None:
    message = refused({**BASE, "SWITCHBOARD_JWT_SECRET": "s" * 31}, dev=dev)
    assert "SWITCHBOARD_JWT_SECRET" in message
    assert "32" in message


def test_secret_length_is_counted_in_bytes() -> None:
    assert Settings.from_env({**BASE, "SWITCHBOARD_JWT_SECRET": "é" * 16}).jwt_secret == "é" * 16
    assert "32" in refused({**BASE, "SWITCHBOARD_JWT_SECRET": "é" * 15 + "x"})


def test_public_key_replaces_the_secret() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----"
    settings = Settings.from_env({"SWITCHBOARD_JWT_PUBLIC_KEY": pem, "SWITCHBOARD_API_KEY": "k"})
    assert settings.jwt_public_key == pem
    assert settings.jwt_secret is None
    assert settings.generated_secrets is False


# --- store ------------------------------------------------------------------------------------


def test_redis_url_switches_the_store_default() -> None:
    settings = Settings.from_env({**BASE, "REDIS_URL": "redis://r:6379"})
    assert settings.store == "redis"
    assert settings.redis_url == "redis://r:6379"


def test_store_memory_wins_over_redis_url() -> None:
    settings = Settings.from_env(
        {**BASE, "REDIS_URL": "redis://r:6379", "SWITCHBOARD_STORE": "memory"}
    )
    assert settings.store == "memory"


def test_store_redis_without_url_is_refused() -> None:
    message = refused({**BASE, "SWITCHBOARD_STORE": "redis"})
    assert "SWITCHBOARD_STORE" in message
    assert "REDIS_URL" in message


def test_store_choice_is_case_insensitive() -> None:
    assert Settings.from_env({**BASE, "SWITCHBOARD_STORE": "MEMORY"}).store == "memory"


# --- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SWITCHBOARD_STORE", "postgres"),
        ("REDIS_FALLBACK", "retry"),
        ("SWITCHBOARD_LOG_LEVEL", "verbose"),
        ("SWITCHBOARD_LOG_FORMAT", "xml"),
    ],
)
def test_bad_choices_name_the_variable(name: str, value: str) -> None:
    message = refused({**BASE, name: value})
    assert name in message
    assert value in message


@pytest.mark.parametrize(
    "name",
    [
        "SWITCHBOARD_PORT",
        "SWITCHBOARD_HANDLER_TIMEOUT_S",
        "SWITCHBOARD_COALESCE_WINDOW_MS",
        "SWITCHBOARD_MAX_PAYLOAD_BYTES",
        "SWITCHBOARD_PRESENCE_HEARTBEAT_S",
        "SWITCHBOARD_PRESENCE_TTL_S",
    ],
)
def test_non_numbers_name_the_variable(name: str) -> None:
    message = refused({**BASE, name: "lots"})
    assert name in message
    assert "number" in message
    assert "lots" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SWITCHBOARD_PORT", "-1"),
        ("SWITCHBOARD_HANDLER_TIMEOUT_S", "0"),
        ("SWITCHBOARD_COALESCE_WINDOW_MS", "0"),
        ("SWITCHBOARD_MAX_PAYLOAD_BYTES", "1000"),
        ("SWITCHBOARD_PRESENCE_HEARTBEAT_S", "0.01"),
    ],
)
def test_numbers_below_their_minimum_are_refused(name: str, value: str) -> None:
    message = refused({**BASE, name: value})
    assert name in message
    assert "at least" in message


def test_port_zero_is_allowed() -> None:
    assert Settings.from_env({**BASE, "SWITCHBOARD_PORT": "0"}).port == 0


@pytest.mark.parametrize(("heartbeat", "ttl"), [("4", "4"), ("5", "4"), ("1", "0.5")])
def test_ttl_must_exceed_heartbeat(heartbeat: str, ttl: str) -> None:
    message = refused(
        {
            **BASE,
            "SWITCHBOARD_PRESENCE_HEARTBEAT_S": heartbeat,
            "SWITCHBOARD_PRESENCE_TTL_S": ttl,
        }
    )
    assert "SWITCHBOARD_PRESENCE_TTL_S" in message


def test_ttl_just_above_heartbeat_is_fine() -> None:
    settings = Settings.from_env(
        {**BASE, "SWITCHBOARD_PRESENCE_HEARTBEAT_S": "4", "SWITCHBOARD_PRESENCE_TTL_S": "4.5"}
    )
    assert settings.presence_ttl_s == 4.5


def test_default_ttl_must_still_exceed_a_raised_heartbeat() -> None:
    assert "SWITCHBOARD_PRESENCE_TTL_S" in refused(
        {**BASE, "SWITCHBOARD_PRESENCE_HEARTBEAT_S": "20"}
    )


@pytest.mark.parametrize(
    "name",
    [
        "SWITCHBOARD_PORT",
        "SWITCHBOARD_COALESCE_WINDOW_MS",
        "SWITCHBOARD_HANDLER_TIMEOUT_S",
        "SWITCHBOARD_PRESENCE_TTL_S",
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_numbers_are_refused(name: str, value: str) -> None:
    assert name in refused({**BASE, name: value})


def test_port_above_65535_is_refused() -> None:
    assert "SWITCHBOARD_PORT" in refused({**BASE, "SWITCHBOARD_PORT": "70000"})


def test_fractional_port_is_refused() -> None:
    assert "SWITCHBOARD_PORT" in refused({**BASE, "SWITCHBOARD_PORT": "8080.9"})


# --- CORS and overrides -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example", ("https://a.example",)),
        ("https://a.example,https://b.example", ("https://a.example", "https://b.example")),
        (" https://a.example , ,https://b.example ,", ("https://a.example", "https://b.example")),
        (",,", ()),
        ("", ()),
    ],
)
def test_cors_origins(raw: str, expected: tuple[str, ...]) -> None:
    env = {**BASE, "SWITCHBOARD_CORS_ORIGINS": raw}
    assert Settings.from_env(env).cors_origins == expected


def test_host_and_port_overrides_win_over_env() -> None:
    env = {**BASE, "SWITCHBOARD_HOST": "10.0.0.1", "SWITCHBOARD_PORT": "9000"}
    settings = Settings.from_env(env, host="0.0.0.0", port=7000)
    assert (settings.host, settings.port) == ("0.0.0.0", 7000)


def test_port_override_zero_wins() -> None:
    settings = Settings.from_env({**BASE, "SWITCHBOARD_PORT": "9000"}, port=0)
    assert settings.port == 0


def test_port_override_skips_a_bad_env_port() -> None:
    settings = Settings.from_env({**BASE, "SWITCHBOARD_PORT": "nope"}, port=7000)
    assert settings.port == 7000


def test_no_overrides_use_env() -> None:
    env = {**BASE, "SWITCHBOARD_HOST": "10.0.0.1", "SWITCHBOARD_PORT": "9000"}
    settings = Settings.from_env(env, host=None, port=None)
    assert (settings.host, settings.port) == ("10.0.0.1", 9000)
