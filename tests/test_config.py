"""Configuration: the FRESHCOM_ environment, development secrets, production refusals."""

import pytest

from freshcom_customers.app import create_app
from freshcom_customers.config import ConfigError
from freshcom_customers.services.passwords import parse_hash_params


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("FRESHCOM_SQLALCHEMY_DATABASE_URI", "DATABASE_URL", "FRESHCOM_ENV", "FRESHCOM_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


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
        ({}, ["FRESHCOM_SECRET_KEY", "FRESHCOM_JWT_PRIVATE_KEY_FILE", "FRESHCOM_SQLALCHEMY_DATABASE_URI"]),
        (
            {"SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/db"},
            ["FRESHCOM_JWT_PRIVATE_KEY_FILE"],
        ),
        (
            {"JWT_PRIVATE_KEY_FILE": "{key}", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/db"},
            ["FRESHCOM_SECRET_KEY"],
        ),
        ({"SECRET_KEY": "s", "JWT_PRIVATE_KEY_FILE": "{key}"}, ["FRESHCOM_SQLALCHEMY_DATABASE_URI"]),
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


def test_production_starts_with_its_secrets(clean_env, tmp_path, jwt_key_file):
    app = make_app(
        tmp_path,
        ENV="production",
        SECRET_KEY="s" * 48,
        JWT_PRIVATE_KEY_FILE=str(jwt_key_file),
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://u@127.0.0.1/db",
    )
    assert app.config["SECRET_KEY"] == "s" * 48


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
