"""Configuration: defaults in code, secrets only from the environment.

Every key can be set as ``FRESHCOM_<KEY>`` (Flask's ``from_prefixed_env``). In development
the secret key and the JWT signing key are generated once into the instance folder; in
production (``FRESHCOM_ENV=production``) the app refuses to start without them.
"""

import os
import secrets
from pathlib import Path

from joserfc.jwk import RSAKey

from freshcom_customers import origins

DEFAULTS = {
    "ENV": "development",
    "SQLALCHEMY_DATABASE_URI": None,
    "SECRET_KEY": None,
    "JWT_PRIVATE_KEY_FILE": None,
    # Keys rotated out of signing, comma-separated PEM files: still published in the JWKS and
    # trusted, so the tokens they signed stay valid until they expire (docs/decisions.md).
    "JWT_PREVIOUS_KEY_FILES": "",
    "JWT_ISSUER": "freshcom_customers",
    "ACCESS_TOKEN_LIFETIME": 3600,
    "REFRESH_TOKEN_LIFETIME": 30 * 86400,
    "REFRESH_TOKEN_IDLE_LIFETIME": 14 * 86400,
    # Seconds after a rotation in which the rotated token, presented again, is refused without
    # revoking its family: a client's concurrent refreshes are not a stolen token (RFC 9700 4.14.2).
    "REFRESH_TOKEN_REUSE_GRACE": 5,
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
    # Brute-force protection (throttling.py, services/lockouts.py; docs/decisions.md). Limits are
    # "N per minute; M per hour"; RATELIMIT_* also reaches Flask-Limiter (STRATEGY, KEY_PREFIX).
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": "freshcom",
    "RATELIMIT_STRATEGY": "moving-window",
    "RATELIMIT_LOGIN_PER_IP": "20 per minute; 200 per hour",
    "RATELIMIT_LOGIN_PER_USERNAME": "100 per hour",  # failed passwords only (ASVS 2.2.1)
    "RATELIMIT_PASSWORD_RESET_PER_IP": "5 per minute; 30 per hour",
    "RATELIMIT_REGISTRATION_PER_IP": "10 per minute; 100 per hour",
    "RATELIMIT_MAGIC_LINK_PER_IP": "5 per minute; 30 per hour",
    "LOCKOUT_THRESHOLD": 5,
    "LOCKOUT_BASE_DELAY": 1,
    "LOCKOUT_MAX_DELAY": 900,
    "LOCKOUT_WINDOW": 3600,
    "LOCKOUT_FAMILIAR_IP_LIFETIME": 30 * 86400,
    # Origins browsers may call /v1 and the Chec face from: "*" (no credentials) or a
    # comma-separated list, each echoed back with Vary: Origin (freshcom_customers/cors.py).
    "CORS_ORIGINS": "*",
    "CORS_MAX_AGE": 600,
    # The Chec face: Commerce.js is constructed with url: "<base>/chec" and adds /v1 itself.
    "CHEC_URL_PREFIX": "/chec/v1",
    # How long the JWT a Chec magic link is exchanged for lives (Chec's: 24 hours).
    "CHEC_JWT_LIFETIME": 24 * 3600,
    # Origins a login link's base_url may point at: "*" (any http or https URL, as Chec) or a
    # comma-separated list of the storefronts' origins, which production should set.
    "MAGIC_LINK_ORIGINS": "*",
    # Production posture (docs/decisions.md): the X-Forwarded-* headers to trust, "x_for=1,x_proto=1"
    # behind one TLS proxy (freshcom_customers/proxy.py); HSTS on https answers (http_headers.py);
    # json or text (default: json in production, text elsewhere) and the app's level (logs.py).
    "PROXY_FIX": "",
    "HSTS": "max-age=31536000; includeSubDomains",
    "LOG_FORMAT": None,
    "LOG_LEVEL": "INFO",
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
    # A database error's message must not carry its parameters (hashes, emails) into the log.
    engine_options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"hide_parameters": True, **engine_options}
    if app.config["ENV"] == "production":
        _require_production_secrets(app.config)
    else:
        _generate_development_secrets(app)
    app.config["JWT_PRIVATE_KEY"] = _read_key(app.config["JWT_PRIVATE_KEY_FILE"])
    app.config["JWT_PREVIOUS_KEYS"] = [
        _read_key(path, "FRESHCOM_JWT_PREVIOUS_KEY_FILES")
        for path in _paths(app.config["JWT_PREVIOUS_KEY_FILES"])
    ]
    _check_origins(app.config)


def _check_origins(config):
    for name in ("CORS_ORIGINS", "MAGIC_LINK_ORIGINS"):
        try:
            origins.parse(config[name], f"FRESHCOM_{name}")
        except ValueError as e:
            raise ConfigError(str(e)) from e


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


def _paths(value) -> list[str]:
    """A list of file names, given as a list or as one comma-separated string."""
    names = value.split(",") if isinstance(value, str) else value or []
    return [name.strip() for name in names if name.strip()]


def _read_key(path, setting="FRESHCOM_JWT_PRIVATE_KEY_FILE"):
    try:
        return RSAKey.import_key(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{setting}: cannot read an RSA key from {path}: {e}") from e
