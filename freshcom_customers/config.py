"""Configuration: defaults in code, secrets only from the environment.

Every key can be set as ``FRESHCOM_<KEY>`` (Flask's ``from_prefixed_env``). In development
the secret key and the JWT signing key are generated once into the instance folder; in
production (``FRESHCOM_ENV=production``) the app refuses to start without them.
"""

import os
import secrets
from pathlib import Path

from joserfc.jwk import RSAKey

DEFAULTS = {
    "ENV": "development",
    "SQLALCHEMY_DATABASE_URI": None,
    "SECRET_KEY": None,
    "JWT_PRIVATE_KEY_FILE": None,
    "JWT_ISSUER": "freshcom_customers",
    "ACCESS_TOKEN_LIFETIME": 3600,
    "REFRESH_TOKEN_LIFETIME": 30 * 86400,
    "REFRESH_TOKEN_IDLE_LIFETIME": 14 * 86400,
    # ASVS 5.0 appendix C: argon2id, m >= 46 MiB, t = 1, p = 1.
    "PASSWORD_HASH_PARAMS": "m=47104,t=1,p=1",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_DEFAULT_SENDER": "no-reply@localhost",
    # Send even when TESTING: Flask-Mail would otherwise drop mail silently in tests.
    "MAIL_SUPPRESS_SEND": False,
    # Where the links in emails point: the storefront's /reset-password and /verify-email pages.
    "STOREFRONT_URL": "http://localhost:3000",
    "RATELIMIT_STORAGE_URI": "memory://",
    "CORS_ORIGINS": "*",
}


class ConfigError(RuntimeError):
    """The configuration cannot run the service."""


def load_config(app, overrides=None):
    """Fill app.config from defaults, the environment and overrides, then check it."""
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("FRESHCOM")
    if os.environ.get("DATABASE_URL") and not os.environ.get("FRESHCOM_SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config.update(overrides or {})
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_uri(app)
    if app.config["ENV"] == "production":
        _require_production_secrets(app.config)
    else:
        _generate_development_secrets(app)
    app.config["JWT_PRIVATE_KEY"] = _read_key(app.config["JWT_PRIVATE_KEY_FILE"])


def _database_uri(app):
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if not uri:
        return "sqlite:///" + os.path.join(app.instance_path, "freshcom.sqlite")
    # Heroku-style URLs name no driver; psycopg 3 is the one we ship.
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri.removeprefix(prefix)
    return uri


def _require_production_secrets(config):
    missing = []
    if not config.get("SECRET_KEY"):
        missing.append("FRESHCOM_SECRET_KEY")
    if not config.get("JWT_PRIVATE_KEY_FILE"):
        missing.append("FRESHCOM_JWT_PRIVATE_KEY_FILE")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        missing.append("FRESHCOM_SQLALCHEMY_DATABASE_URI (a PostgreSQL URL, not SQLite)")
    if missing:
        raise ConfigError("FRESHCOM_ENV=production refuses to start without: " + ", ".join(missing))


def _generate_development_secrets(app):
    instance = Path(app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _create_once(
            instance / "secret_key", lambda: secrets.token_urlsafe(48).encode()
        ).decode()
    if not app.config.get("JWT_PRIVATE_KEY_FILE"):
        path = instance / "jwt-private.pem"
        _create_once(path, lambda: RSAKey.generate_key(2048, private=True).as_pem(private=True))
        app.config["JWT_PRIVATE_KEY_FILE"] = str(path)


def _create_once(path, make):
    """Return the file's bytes, writing make() there first if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write aside, then link into place: several gunicorn workers starting at once
        # must all end up with the one key that won, never with a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(make())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def _read_key(path):
    try:
        return RSAKey.import_key(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"FRESHCOM_JWT_PRIVATE_KEY_FILE: cannot read an RSA private key from {path}: {e}"
        ) from e
