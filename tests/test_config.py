"""Configuration: the FRESHCOM_ environment, typed and checked; development secrets, production refusals."""

import logging
import os
import subprocess
import sys

import pytest
from joserfc.jwk import RSAKey

from freshcom_customers.app import MIGRATIONS, create_app
from freshcom_customers.config import DEFAULTS, ConfigError, read_environment
from freshcom_customers.services.passwords import parse_hash_params

PG_URI = "postgresql+psycopg://u@127.0.0.1/db"
DATA_KEY = "uIK6a0ml0oZ0Umk-9AHUXWwDQV0wUVO6R1AMS-aTBdI="  # a Fernet key, for production settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in [name for name in os.environ if name.startswith("FRESHCOM_")] + ["DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def secrets_given(jwt_key_file) -> dict:
    """What development would otherwise generate (an RSA key a test): the tests' own."""
    return {"SECRET_KEY": "s" * 48, "JWT_PRIVATE_KEY_FILE": str(jwt_key_file), "DATA_KEYS": DATA_KEY}


@pytest.fixture
def production(secrets_given) -> dict:
    return {"ENV": "production", "SQLALCHEMY_DATABASE_URI": PG_URI, **secrets_given}


def make_app(tmp_path, **config):
    from flask import Flask

    # Point the instance folder at tmp_path, as a fresh checkout would have it.
    original = Flask.auto_find_instance_path
    Flask.auto_find_instance_path = lambda self: str(tmp_path / "instance")
    try:
        return create_app(config)
    finally:
        Flask.auto_find_instance_path = original


def test_development_defaults_to_sqlite_in_the_instance_folder(clean_env, tmp_path):
    app = make_app(tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'freshcom.sqlite'}"


def test_development_generates_secrets_once_and_keeps_them(clean_env, tmp_path):
    first = make_app(tmp_path)
    second = make_app(tmp_path)
    key_file = tmp_path / "instance" / "jwt-private.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 48
    assert first.extensions["freshcom_signer"].kid == second.extensions["freshcom_signer"].kid


def test_development_generates_an_ed25519_key_and_keeps_an_rsa_one_it_finds(clean_env, tmp_path):
    assert make_app(tmp_path / "new").extensions["freshcom_signer"].header["alg"] == "EdDSA"
    # An instance folder from before issue 18 holds an RSA key: it goes on signing, RS256.
    older = tmp_path / "older" / "instance" / "jwt-private.pem"
    older.parent.mkdir(parents=True)
    older.write_bytes(RSAKey.generate_key(2048, private=True).as_pem(private=True))
    signer = make_app(tmp_path / "older").extensions["freshcom_signer"]
    assert signer.header["alg"] == "RS256"
    assert signer.kid == RSAKey.import_key(older.read_bytes()).thumbprint()


def test_environment_is_read_with_the_freshcom_prefix(clean_env, tmp_path):
    clean_env.setenv("FRESHCOM_ACCESS_TOKEN_LIFETIME", "900")
    clean_env.setenv("FRESHCOM_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path}/x.sqlite")
    app = make_app(tmp_path)
    assert app.config["ACCESS_TOKEN_LIFETIME"] == 900
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/x.sqlite"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_url_is_an_alias_and_gets_the_psycopg_driver(clean_env, tmp_path, url, expected):
    clean_env.setenv("DATABASE_URL", url)
    assert make_app(tmp_path).config["SQLALCHEMY_DATABASE_URI"] == expected


def test_freshcom_database_uri_wins_over_database_url(clean_env, tmp_path):
    clean_env.setenv("DATABASE_URL", "postgres://u@h/other")
    clean_env.setenv("FRESHCOM_SQLALCHEMY_DATABASE_URI", "postgresql+psycopg://u@h/mine")
    assert make_app(tmp_path).config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/mine"


@pytest.mark.parametrize(
    ("config", "missing"),
    [
        (
            {},
            [
                "FRESHCOM_SECRET_KEY",
                "FRESHCOM_JWT_PRIVATE_KEY_FILE",
                "FRESHCOM_DATA_KEYS",
                "FRESHCOM_SQLALCHEMY_DATABASE_URI",
            ],
        ),
        (
            {
                "SECRET_KEY": "s" * 32,
                "JWT_PRIVATE_KEY_FILE": "{key}",
                "SQLALCHEMY_DATABASE_URI": "postgresql://u@h/db",
            },
            ["FRESHCOM_DATA_KEYS"],
        ),
        (
            {"SECRET_KEY": "s" * 32, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/db"},
            ["FRESHCOM_JWT_PRIVATE_KEY_FILE"],
        ),
        (
            {"JWT_PRIVATE_KEY_FILE": "{key}", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/db"},
            ["FRESHCOM_SECRET_KEY"],
        ),
        ({"SECRET_KEY": "s" * 32, "JWT_PRIVATE_KEY_FILE": "{key}"}, ["FRESHCOM_SQLALCHEMY_DATABASE_URI"]),
        (
            {
                "SECRET_KEY": "s" * 31,
                "JWT_PRIVATE_KEY_FILE": "{key}",
                "SQLALCHEMY_DATABASE_URI": "postgresql://u@h/db",
            },
            ["FRESHCOM_SECRET_KEY of at least 32 bytes"],
        ),
    ],
)
def test_production_refuses_to_start_and_names_what_is_missing(
    clean_env, tmp_path, jwt_key_file, config, missing
):
    config = {k: v.format(key=jwt_key_file) for k, v in config.items()}
    with pytest.raises(ConfigError) as error:
        make_app(tmp_path, ENV="production", **config)
    for name in missing:
        assert name in str(error.value)
    assert not (tmp_path / "instance" / "jwt-private.pem").exists()
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "data_key").exists()


def test_production_starts_with_its_secrets(clean_env, tmp_path, jwt_key_file):
    app = make_app(
        tmp_path,
        ENV="production",
        SECRET_KEY="s" * 48,
        JWT_PRIVATE_KEY_FILE=str(jwt_key_file),
        DATA_KEYS=DATA_KEY,
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://u@127.0.0.1/db",
    )
    assert app.config["SECRET_KEY"] == "s" * 48
    assert app.config["DATA_KEYS"] == DATA_KEY


def test_unreadable_jwt_key_is_a_clear_error(clean_env, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="FRESHCOM_JWT_PRIVATE_KEY_FILE"):
        make_app(tmp_path, JWT_PRIVATE_KEY_FILE=str(bad))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("m=47104,t=1,p=1", {"memory_cost": 47104, "rounds": 1, "parallelism": 1}),
        ("m=1024, t=2, p=1", {"memory_cost": 1024, "rounds": 2, "parallelism": 1}),
        ({"m": 2048, "t": 3, "p": 2}, {"memory_cost": 2048, "rounds": 3, "parallelism": 2}),
    ],
)
def test_password_hash_params(value, expected):
    assert parse_hash_params(value) == expected


@pytest.mark.parametrize("value", ["m=lots", "x=1", "47104", {"memory": 1}])
def test_bad_password_hash_params_are_refused(value):
    with pytest.raises(ValueError, match="PASSWORD_HASH_PARAMS"):
        parse_hash_params(value)


@pytest.mark.parametrize("secret_key", ["s" * 32, "é" * 16], ids=["32 ASCII", "16 two-byte characters"])
def test_production_takes_a_secret_key_of_32_bytes(clean_env, tmp_path, production, secret_key):
    assert make_app(tmp_path, **{**production, "SECRET_KEY": secret_key}).config["SECRET_KEY"] == secret_key


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ACCESS_TOKEN_LIFETIME", "900", 900),
        ("ACCESS_TOKEN_LIFETIME", "900s", 900),
        ("ACCESS_TOKEN_LIFETIME", "15m", 900),
        ("ACCESS_TOKEN_LIFETIME", "1h", 3600),
        ("REFRESH_TOKEN_LIFETIME", "30d", 30 * 86400),
        ("REFRESH_TOKEN_IDLE_LIFETIME", " 14D ", 14 * 86400),
        ("REFRESH_TOKEN_REUSE_GRACE", "0", 0),
        ("CHEC_JWT_LIFETIME", "24h", 86400),
        ("LOCKOUT_MAX_DELAY", "15m", 900),
        ("CORS_MAX_AGE", "10m", 600),
        ("RATELIMIT_ENABLED", "false", False),
        ("RATELIMIT_ENABLED", "False", False),
        ("RATELIMIT_ENABLED", "0", False),
        ("RATELIMIT_ENABLED", "off", False),
        ("RATELIMIT_ENABLED", "NO", False),
        ("RATELIMIT_ENABLED", "true", True),
        ("RATELIMIT_ENABLED", "True", True),
        ("RATELIMIT_ENABLED", "1", True),
        ("RATELIMIT_ENABLED", "on", True),
        ("RATELIMIT_ENABLED", "yes", True),
        ("MAIL_USE_TLS", "true", True),
        ("MAIL_PORT", "587", 587),
        ("MAX_CONTENT_LENGTH", "2097152", 2097152),
        ("LOCKOUT_THRESHOLD", "10", 10),
        ("ENV", "testing", "testing"),
        ("ENV", "Production", "production"),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("LOG_FORMAT", "JSON", "json"),
        ("LOG_FORMAT", "", None),
        ("RATELIMIT_STRATEGY", "fixed-window", "fixed-window"),
        ("RATELIMIT_STRATEGY", "sliding-window-counter", "sliding-window-counter"),
        ("RATELIMIT_STORAGE_URI", "redis://cache.internal:6379/0", "redis://cache.internal:6379/0"),
        ("STOREFRONT_URL", "https://shop.example.com", "https://shop.example.com"),
        ("SQLALCHEMY_DATABASE_URI", "postgres://u@h/db", "postgres://u@h/db"),
        ("SQLALCHEMY_DATABASE_URI", "", None),
        ("MAIL_SERVER", "smtp.example.com", "smtp.example.com"),
        ("PASSWORD_HASH_PARAMS", "m=1024,t=1,p=1", "m=1024,t=1,p=1"),
        ("CORS_ORIGINS", "https://a.example, https://b.example", "https://a.example, https://b.example"),
        ("RATELIMIT_LOGIN_PER_IP", "5 per minute; 50 per hour", "5 per minute; 50 per hour"),
        ("PROXY_FIX", "x_for=1,x_proto=1", "x_for=1,x_proto=1"),
    ],
)
def test_each_variable_is_parsed_to_its_type(name, value, expected):
    assert read_environment({f"FRESHCOM_{name}": value}) == ({name: expected}, [])


def test_the_environment_reaches_the_app_parsed(clean_env, tmp_path, secrets_given):
    clean_env.setenv("FRESHCOM_ACCESS_TOKEN_LIFETIME", "1h")
    clean_env.setenv("FRESHCOM_RATELIMIT_ENABLED", "False")
    app = make_app(tmp_path, **secrets_given)
    assert app.config["ACCESS_TOKEN_LIFETIME"] == 3600
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.extensions["freshcom_throttle"].enabled is False


BAD_VALUES = [
    ("ACCESS_TOKEN_LIFETIME", "1x", "a duration of at least 1 s"),
    ("ACCESS_TOKEN_LIFETIME", "0", "a duration of at least 1 s"),
    ("REFRESH_TOKEN_REUSE_GRACE", "-1", "a duration of at least 0 s"),
    ("LOCKOUT_WINDOW", "1 hour", "a duration"),
    ("RATELIMIT_ENABLED", "maybe", "true or false"),
    ("MAIL_USE_SSL", "", "true or false"),
    ("MAIL_PORT", "smtp", "a whole number from 1 to 65535"),
    ("MAIL_PORT", "70000", "a whole number from 1 to 65535"),
    ("MAX_CONTENT_LENGTH", "1MB", "a whole number from 1"),
    ("LOCKOUT_THRESHOLD", "0", "a whole number from 1"),
    ("STOREFRONT_URL", "shop.example.com", "an absolute http(s) URL"),
    ("STOREFRONT_URL", "ftp://shop.example.com", "an absolute http(s) URL"),
    ("RATELIMIT_STRATEGY", "leaky-bucket", "one of sliding-window-counter, fixed-window, moving-window"),
    ("LOG_LEVEL", "LOUD", "a logging level name"),
    ("LOG_FORMAT", "xml", "one of json, text (or empty)"),
    ("SQLALCHEMY_DATABASE_URI", "db.example/customers", "a database URL"),
    ("RATELIMIT_STORAGE_URI", "cache.internal:6379", "a storage URI"),
    ("PASSWORD_HASH_PARAMS", "m=lots", "argon2 parameters"),
    ("CORS_ORIGINS", "shop.example.com", '"*" or comma-separated origins'),
    ("MAGIC_LINK_ORIGINS", "https://shop.example.com/login", '"*" or comma-separated origins'),
    ("RATELIMIT_LOGIN_PER_IP", "lots per minute", "rate limits"),
    ("PROXY_FIX", "x_for", "proxy hops"),
]


@pytest.mark.parametrize(("name", "value", "accepts"), BAD_VALUES)
def test_production_stops_at_a_bad_value_with_one_line_naming_it(
    clean_env, tmp_path, production, name, value, accepts
):
    clean_env.setenv(f"FRESHCOM_{name}", value)
    with pytest.raises(ConfigError) as error:
        make_app(tmp_path, **production)
    message = str(error.value)
    assert message.startswith(f"FRESHCOM_{name}")
    assert f"is not {accepts}" in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "value", "accepts"), BAD_VALUES)
def test_development_warns_of_a_bad_value_and_keeps_the_default(
    clean_env, tmp_path, secrets_given, caplog, name, value, accepts
):
    clean_env.setenv(f"FRESHCOM_{name}", value)
    with caplog.at_level(logging.WARNING):
        app = make_app(tmp_path, **secrets_given)
    (warning,) = [r.getMessage() for r in caplog.records if f"FRESHCOM_{name}" in r.getMessage()]
    assert f"is not {accepts}" in warning and warning.endswith("; ignored")
    if name == "SQLALCHEMY_DATABASE_URI":
        assert app.config[name].startswith("sqlite:///")
    else:
        assert app.config[name] == DEFAULTS[name]


def test_a_secret_is_never_shown_in_the_message(clean_env, tmp_path, production):
    clean_env.setenv("FRESHCOM_SQLALCHEMY_DATABASE_URI", "customers:hunter2@db.example/customers")
    clean_env.setenv("FRESHCOM_RATELIMIT_STORAGE_URI", "redis:hunter2@cache.example:6379")
    with pytest.raises(ConfigError) as error:
        make_app(tmp_path, **production)
    assert "FRESHCOM_SQLALCHEMY_DATABASE_URI is not" in str(error.value)
    assert "FRESHCOM_RATELIMIT_STORAGE_URI is not" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_production_names_every_bad_variable_in_its_one_line(clean_env, tmp_path, production):
    clean_env.setenv("FRESHCOM_MAIL_PORT", "smtp")
    clean_env.setenv("FRESHCOM_ACESS_TOKEN_LIFETIME", "1h")
    with pytest.raises(ConfigError) as error:
        make_app(tmp_path, **production)
    assert str(error.value) == (
        "FRESHCOM_ACESS_TOKEN_LIFETIME is not a setting (did you mean FRESHCOM_ACCESS_TOKEN_LIFETIME?); "
        "FRESHCOM_MAIL_PORT='smtp' is not a whole number from 1 to 65535"
    )


def test_development_warns_of_an_unknown_variable_and_starts(clean_env, tmp_path, secrets_given, caplog):
    clean_env.setenv("FRESHCOM_ACESS_TOKEN_LIFETIME", "1h")
    with caplog.at_level(logging.WARNING):
        app = make_app(tmp_path, **secrets_given)
    assert app.config["ACCESS_TOKEN_LIFETIME"] == 3600
    assert "ACESS_TOKEN_LIFETIME" not in app.config
    suggestion = "did you mean FRESHCOM_ACCESS_TOKEN_LIFETIME?"
    assert f"FRESHCOM_ACESS_TOKEN_LIFETIME is not a setting ({suggestion}); ignored" in caplog.messages


def test_the_tools_variables_are_not_settings(clean_env, tmp_path, production):
    for name in ("FRESHCOM_TEST_DATABASE_URI", "FRESHCOM_BENCH_DATABASE_URI", "FRESHCOM_FUZZ_EXAMPLES"):
        clean_env.setenv(name, "anything")
    assert make_app(tmp_path, **production).config["ENV"] == "production"


@pytest.mark.parametrize("value", ["prod", "staging", ""])
def test_an_unknown_environment_stops_the_start_whatever_it_meant(clean_env, tmp_path, value):
    clean_env.setenv("FRESHCOM_ENV", value)
    with pytest.raises(
        ConfigError, match=r"^FRESHCOM_ENV='.*' is not one of development, production, testing$"
    ):
        make_app(tmp_path)


def test_testing_is_an_environment_with_development_secrets(clean_env, tmp_path):
    clean_env.setenv("FRESHCOM_ENV", "testing")
    app = make_app(tmp_path)
    assert app.config["ENV"] == "testing"
    assert (tmp_path / "instance" / "jwt-private.pem").exists()


def test_overrides_are_python_values_taken_as_they_are(clean_env, tmp_path, secrets_given):
    clean_env.setenv("FRESHCOM_ACCESS_TOKEN_LIFETIME", "1h")
    app = make_app(
        tmp_path,
        ACCESS_TOKEN_LIFETIME=60,
        RATELIMIT_ENABLED=False,
        AUTHLIB_INSECURE_TRANSPORT=True,
        **secrets_given,
    )
    assert app.config["ACCESS_TOKEN_LIFETIME"] == 60
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["AUTHLIB_INSECURE_TRANSPORT"] is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("PASSWORD_HASH_PARAMS", "m=lots"), ("RATELIMIT_LOGIN_PER_IP", "lots"), ("MAGIC_LINK_ORIGINS", "shop")],
)
def test_an_override_another_module_parses_is_checked_at_start(
    clean_env, tmp_path, secrets_given, name, value
):
    with pytest.raises(ConfigError, match=f"^FRESHCOM_{name}='{value}' is not "):
        make_app(tmp_path, **{name: value}, **secrets_given)


@pytest.mark.parametrize(
    ("uri", "connect_args"),
    [("sqlite:///x.sqlite", None), (PG_URI, {"connect_timeout": 5})],
)
def test_the_engine_hides_parameters_and_postgresql_connects_with_a_timeout(
    clean_env, tmp_path, secrets_given, uri, connect_args
):
    options = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=uri, **secrets_given).config[
        "SQLALCHEMY_ENGINE_OPTIONS"
    ]
    assert "pool_pre_ping" not in options  # app._check_alive does it without a round trip
    assert options["hide_parameters"] is True
    assert options.get("connect_args") == connect_args


def test_engine_options_given_as_overrides_go_on_top(clean_env, tmp_path, secrets_given):
    given = {"pool_pre_ping": False, "echo": True}
    app = make_app(tmp_path, SQLALCHEMY_ENGINE_OPTIONS=given, SQLALCHEMY_DATABASE_URI=PG_URI, **secrets_given)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "hide_parameters": True,
        "pool_pre_ping": False,
        "echo": True,
        "connect_args": {"connect_timeout": 5},
    }


def _start(command: list[str], tmp_path, jwt_key_file, **variables) -> subprocess.CompletedProcess:
    """Run command in the project as an operator would, with only these FRESHCOM_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCOM_") and k != "DATABASE_URL"}
    env.update(
        FRESHCOM_ENV="production",
        FRESHCOM_SECRET_KEY="s" * 48,
        FRESHCOM_JWT_PRIVATE_KEY_FILE=str(jwt_key_file),
        FRESHCOM_SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/unused",
        **variables,
    )
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=MIGRATIONS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.e2e
def test_gunicorn_stops_at_a_bad_value_with_its_one_line_and_no_traceback(tmp_path, jwt_key_file):
    command = ["gunicorn", "wsgi:app", "--bind", "127.0.0.1:0", "--workers", "1", "--no-control-socket"]
    result = _start(command, tmp_path, jwt_key_file, FRESHCOM_ACCESS_TOKEN_LIFETIME="1x")
    assert result.returncode != 0
    message = "FRESHCOM_ACCESS_TOKEN_LIFETIME='1x' is not a duration"
    assert [line for line in result.stderr.splitlines() if message in line] == [
        message + " of at least 1 s: seconds, or a number with s, m, h or d (15m, 1h)"
    ]
    assert "Traceback" not in result.stderr


def test_the_flask_command_ends_with_the_one_line(tmp_path, jwt_key_file):
    result = _start(
        ["flask", "--app", "wsgi", "db", "current"], tmp_path, jwt_key_file, FRESHCOM_MAIL_PORT="smtp"
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1].endswith(
        "FRESHCOM_MAIL_PORT='smtp' is not a whole number from 1 to 65535"
    )
