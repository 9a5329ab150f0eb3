"""Configuration: typed settings with defaults in code, secrets only from the environment.

Every setting of SETTINGS can be set as ``FRESHCOM_<NAME>`` (``DATABASE_URL`` is an alias of
the database URI). The variable's text is parsed to the setting's type at start-up: whole
numbers, booleans (true/false, 1/0, yes/no, on/off), durations in seconds (``900``, ``15m``,
``1h``, ``30d``), URLs, choices; the strings other modules parse (origins, limits, argon2
parameters, proxy hops) are checked with their parsers. A value that does not parse, or a
``FRESHCOM_`` variable that names no setting, stops the start with one line in production and
is logged as a warning elsewhere (a bad value then leaves the default in place). Overrides
given to ``create_app`` are Python values and are taken as they are.

In development the secret key and the JWT signing key are generated once into the instance
folder; in production (``FRESHCOM_ENV=production``) the app refuses to start without them.
"""

import difflib
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gunicorn.errors import AppImportError
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey, RSAKey
from limits import parse_many
from limits.storage import SCHEMES as STORAGE_SCHEMES
from limits.strategies import STRATEGIES
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from freshcom_customers import origins
from freshcom_customers.services import data_keys
from freshcom_customers.services.passwords import parse_hash_params

PREFIX = "FRESHCOM_"
# Variables of the test suite and the benchmarks that share the prefix but are not settings.
TOOL_PREFIXES = ("FRESHCOM_TEST_", "FRESHCOM_BENCH_", "FRESHCOM_FUZZ_")
ENVIRONMENTS = ("development", "production", "testing")
MIN_SECRET_KEY_BYTES = 32
# Seconds a PostgreSQL connection attempt may take: an unreachable database fails fast (503)
# instead of holding a worker for the operating system's TCP timeout.
CONNECT_TIMEOUT = 5


class ConfigError(AppImportError):
    """The configuration cannot run the service.

    An AppImportError, so that gunicorn prints its one line and stops, without a traceback.
    """


@dataclass(frozen=True)
class Kind:
    """How a variable's text becomes a setting's value (ValueError if it cannot), and what it accepts."""

    parse: Callable[[str], object]
    accepts: str
    # Parsed again by the module that reads it, which also takes Python values: overrides are checked.
    elsewhere: bool = False


@dataclass(frozen=True)
class Setting:
    kind: Kind
    default: object = None
    secret: bool = False  # a message about it never shows its value


def whole_number(minimum: int, maximum: int | None = None) -> Kind:
    """A whole number from minimum (to maximum)."""

    def parse(value: str) -> int:
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError(value)
        return number

    return Kind(parse, f"a whole number from {minimum}" + (f" to {maximum}" if maximum else ""))


def duration(minimum: int) -> Kind:
    """Seconds, given as a number of seconds or with a unit: 900, 900s, 15m, 1h, 30d."""

    def parse(value: str) -> int:
        match = _DURATION.fullmatch(value.strip())
        seconds = int(match[1]) * _UNIT_SECONDS[match[2].lower()] if match else -1
        if seconds < minimum:
            raise ValueError(value)
        return seconds

    return Kind(
        parse, f"a duration of at least {minimum} s: seconds, or a number with s, m, h or d (15m, 1h)"
    )


def choice(*values: str, optional: bool = False) -> Kind:
    """One of values, in any case; with optional, also empty (None: the code's default)."""

    def parse(value: str) -> str | None:
        word = value.strip().lower()
        if optional and not word:
            return None
        if word not in values:
            raise ValueError(value)
        return word

    return Kind(parse, "one of " + ", ".join(values) + (" (or empty)" if optional else ""))


def text_of_at_least(minimum: int) -> Kind:
    """Text of at least minimum characters, spaces around it dropped: a token nobody can guess."""

    def parse(value: str) -> str:
        if len(value.strip()) < minimum:
            raise ValueError(value)
        return value.strip()

    return Kind(parse, f"text of at least {minimum} characters (openssl rand -hex 32 makes one)")


def read_elsewhere(check: Callable[[object], object], accepts: str) -> Kind:
    """A string the module that reads it parses: checked with that parser now, kept as it is."""

    def parse(value):
        check(value)
        return value

    return Kind(parse, accepts, elsewhere=True)


_BOOLEANS = dict.fromkeys(("true", "yes", "on", "1"), True) | dict.fromkeys(
    ("false", "no", "off", "0"), False
)
_DURATION = re.compile(r"(\d+)\s*([smhd]?)", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _boolean(value: str) -> bool:
    word = value.strip().lower()
    if word not in _BOOLEANS:
        raise ValueError(value)
    return _BOOLEANS[word]


def _log_level(value: str) -> str:
    name = value.strip().upper()
    if name not in logging.getLevelNamesMapping():
        raise ValueError(value)
    return name


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(value)
    return value.strip()


def _sms_backend(value: str) -> str | None:
    word = value.strip()
    if not word:
        return None  # the default: log outside production, SMS off in production (services/sms.py)
    return "log" if word.lower() == "log" else _http_url(word)


def _folder(value: str) -> str | None:
    return value.strip() or None  # whether it exists is checked once every source is read


def _database_url(value: str) -> str | None:
    if not value.strip():
        return None  # the default: SQLite in the instance folder
    try:
        make_url(value.strip())
    except ArgumentError as e:
        raise ValueError(value) from e
    return value.strip()


def _storage_uri(value: str) -> str:
    scheme, separator, _ = value.strip().partition("://")
    if not separator or scheme not in STORAGE_SCHEMES:
        raise ValueError(value)
    return value.strip()


def _proxy_hops(value) -> None:
    from freshcom_customers.http import proxy  # not at the top: proxy imports ConfigError from here

    proxy.parse(value)


TEXT = Kind(str, "text")
BOOLEAN = Kind(_boolean, "true or false (or 1/0, yes/no, on/off)")
COUNT = whole_number(1)
PORT = whole_number(1, 65535)
SECONDS = duration(1)
SECONDS_OR_ZERO = duration(0)
FOLDER = Kind(_folder, "a folder's path (or empty)")
HTTP_URL = Kind(_http_url, "an absolute http(s) URL like https://shop.example.com")
SMS_GATEWAY = Kind(_sms_backend, "log or an absolute http(s) URL of an SMS gateway (or empty)")
DATABASE = Kind(_database_url, "a database URL like postgresql+psycopg://user@host/name")
STORAGE = Kind(_storage_uri, "a storage URI like memory:// or redis://host:6379/0")
LOG_LEVEL = Kind(_log_level, "a logging level name: DEBUG, INFO, WARNING, ERROR or CRITICAL")
LIMITS = read_elsewhere(parse_many, 'rate limits like "20 per minute; 200 per hour"')
ORIGINS = read_elsewhere(
    lambda value: origins.parse(value, "origins"),
    '"*" or comma-separated origins like https://shop.example.com',
)
DATA_KEY_LIST = read_elsewhere(
    lambda value: data_keys.parse(value) if value.strip() else None,
    "comma-separated Fernet keys (flask data-keys new makes one)",
)
HASH_PARAMS = read_elsewhere(parse_hash_params, "argon2 parameters like m=47104,t=1,p=1")
PROXY_HOPS = read_elsewhere(_proxy_hops, "proxy hops like x_for=1,x_proto=1 (or empty)")

SETTINGS = {
    "ENV": Setting(choice(*ENVIRONMENTS), "development"),
    # Default: a SQLite file in the instance folder.
    "SQLALCHEMY_DATABASE_URI": Setting(DATABASE, secret=True),
    "SECRET_KEY": Setting(TEXT, secret=True),
    "JWT_PRIVATE_KEY_FILE": Setting(TEXT),
    # Keys rotated out of signing, comma-separated PEM files: still published in the JWKS and
    # trusted, so the tokens they signed stay valid until they expire (docs/decisions.md).
    "JWT_PREVIOUS_KEY_FILES": Setting(TEXT, ""),
    "JWT_ISSUER": Setting(TEXT, "freshcom_customers"),
    "ACCESS_TOKEN_LIFETIME": Setting(SECONDS, 3600),
    "REFRESH_TOKEN_LIFETIME": Setting(SECONDS, 30 * 86400),
    "REFRESH_TOKEN_IDLE_LIFETIME": Setting(SECONDS, 14 * 86400),
    # Seconds after a rotation in which the rotated token, presented again, is refused without
    # revoking its family: a client's concurrent refreshes are not a stolen token (RFC 9700 4.14.2).
    "REFRESH_TOKEN_REUSE_GRACE": Setting(SECONDS_OR_ZERO, 5),
    # Reads (GET, HEAD) may check a token's caller in the process's memory, which PostgreSQL's
    # notifications keep true within 0.5 s (services/callers.py); off, or on SQLite, every
    # request reads the database.
    "CALLER_CACHE": Setting(BOOLEAN, True),
    # ASVS 5.0 appendix C: argon2id, m >= 46 MiB, t = 1, p = 1.
    "PASSWORD_HASH_PARAMS": Setting(HASH_PARAMS, "m=47104,t=1,p=1"),
    "MAX_CONTENT_LENGTH": Setting(COUNT, 1024 * 1024),
    "MAIL_SERVER": Setting(TEXT),
    "MAIL_PORT": Setting(PORT, 25),
    "MAIL_DEFAULT_SENDER": Setting(TEXT, "no-reply@localhost"),
    "MAIL_USERNAME": Setting(TEXT),
    "MAIL_PASSWORD": Setting(TEXT, secret=True),
    "MAIL_USE_TLS": Setting(BOOLEAN, False),
    "MAIL_USE_SSL": Setting(BOOLEAN, False),
    # Send even when TESTING: Flask-Mail would otherwise drop mail silently in tests.
    "MAIL_SUPPRESS_SEND": Setting(BOOLEAN, False),
    # Where the links in emails point: the storefront's /reset-password and /verify-email pages.
    "STOREFRONT_URL": Setting(HTTP_URL, "http://localhost:3000"),
    # A folder whose email/<kind>.* templates and translations/<locale>/LC_MESSAGES/messages.po
    # catalogues come before the package's (services/mail.py; docs/deploy.md, "Emails").
    "EMAIL_TEMPLATE_FOLDER": Setting(FOLDER),
    "RATELIMIT_STORAGE_URI": Setting(STORAGE, "memory://", secret=True),
    # SMS (services/sms.py; docs/deploy.md, "SMS"): "log" writes each message, its code
    # included, to the log (development's default; production refuses it), or the URL of a
    # gateway taking Twilio's Messages API form, with basic auth. Empty in production: SMS is off.
    "SMS_BACKEND": Setting(SMS_GATEWAY),
    "SMS_USERNAME": Setting(TEXT, secret=True),
    "SMS_PASSWORD": Setting(TEXT, secret=True),
    "SMS_FROM": Setting(TEXT),
    "SMS_TIMEOUT": Setting(SECONDS, 5),
    # Brute-force protection (http/throttling.py, services/logins.py and lockouts.py;
    # docs/decisions.md). Limits are "N per minute; M per hour"; RATELIMIT_* also reaches
    # Flask-Limiter (STRATEGY, KEY_PREFIX).
    "RATELIMIT_ENABLED": Setting(BOOLEAN, True),
    "RATELIMIT_KEY_PREFIX": Setting(TEXT, "freshcom"),
    "RATELIMIT_STRATEGY": Setting(choice(*STRATEGIES), "moving-window"),
    "RATELIMIT_LOGIN_PER_IP": Setting(LIMITS, "20 per minute; 200 per hour"),
    "RATELIMIT_LOGIN_PER_USERNAME": Setting(LIMITS, "100 per hour"),  # failed passwords only (ASVS 2.2.1)
    "RATELIMIT_PASSWORD_RESET_PER_IP": Setting(LIMITS, "5 per minute; 30 per hour"),
    "RATELIMIT_REGISTRATION_PER_IP": Setting(LIMITS, "10 per minute; 100 per hour"),
    "RATELIMIT_MAGIC_LINK_PER_IP": Setting(LIMITS, "5 per minute; 30 per hour"),
    # Each SMS costs the merchant money; challenges are rows until housekeeping (API.md 11).
    "RATELIMIT_PHONE_VERIFICATION_PER_IP": Setting(LIMITS, "5 per minute; 20 per hour"),
    "RATELIMIT_PASSKEY_CHALLENGE_PER_IP": Setting(LIMITS, "30 per minute; 300 per hour"),
    "LOCKOUT_THRESHOLD": Setting(COUNT, 5),
    "LOCKOUT_BASE_DELAY": Setting(SECONDS, 1),
    "LOCKOUT_MAX_DELAY": Setting(SECONDS, 900),
    "LOCKOUT_WINDOW": Setting(SECONDS, 3600),
    "LOCKOUT_FAMILIAR_IP_LIFETIME": Setting(SECONDS, 30 * 86400),
    # Origins browsers may call /v1 and the Chec face from: "*" (no credentials) or a
    # comma-separated list, each echoed back with Vary: Origin (freshcom_customers/cors.py).
    "CORS_ORIGINS": Setting(ORIGINS, "*"),
    "CORS_MAX_AGE": Setting(SECONDS_OR_ZERO, 600),
    # The Chec face: Commerce.js is constructed with url: "<base>/chec" and adds /v1 itself.
    "CHEC_URL_PREFIX": Setting(TEXT, "/chec/v1"),
    # How long the JWT a Chec magic link is exchanged for lives (Chec's: 24 hours).
    "CHEC_JWT_LIFETIME": Setting(SECONDS, 24 * 3600),
    # Origins a login link's base_url may point at: "*" (any http or https URL, as Chec) or a
    # comma-separated list of the storefronts' origins, which production should set.
    "MAGIC_LINK_ORIGINS": Setting(ORIGINS, "*"),
    # Production posture (docs/decisions.md): the X-Forwarded-* headers to trust, "x_for=1,x_proto=1"
    # behind one TLS proxy (freshcom_customers/proxy.py); HSTS on https answers (headers.py);
    # json or text (default: json in production, text elsewhere) and the app's level (logs.py).
    "PROXY_FIX": Setting(PROXY_HOPS, ""),
    "HSTS": Setting(TEXT, "max-age=31536000; includeSubDomains"),
    "LOG_FORMAT": Setting(choice("json", "text", optional=True)),
    "LOG_LEVEL": Setting(LOG_LEVEL, "INFO"),
    # Seconds a process may hold its JSON access lines to write them together (logs.py); 0
    # writes each at once. Default: 1 in production, 0 elsewhere.
    "LOG_ACCESS_DELAY": Setting(SECONDS_OR_ZERO),
    # The bearer token Prometheus sends to GET /metrics. Without one, /metrics is 404 in
    # production and open elsewhere (observability/metrics.py, docs/decisions.md).
    "METRICS_TOKEN": Setting(text_of_at_least(32), secret=True),
    # Fernet keys for secrets kept encrypted at rest (TOTP secrets), comma-separated: the first
    # encrypts, all decrypt (services/data_keys.py; docs/deploy.md, "Data keys").
    "DATA_KEYS": Setting(DATA_KEY_LIST, secret=True),
    # Passkeys (API.md 11): the relying party's id (the storefront's registrable domain) and
    # the origins whose pages may use them; by default the STOREFRONT_URL's host and origin.
    "WEBAUTHN_RP_ID": Setting(TEXT),
    "WEBAUTHN_RP_NAME": Setting(TEXT),
    "WEBAUTHN_ORIGINS": Setting(ORIGINS),
    # Webhooks (API.md 12; docs/deploy.md, "Webhooks"): whether deliveries may go to loopback,
    # private and link-local addresses (default: not in production, yes elsewhere); an
    # attempt's timeout; the first retry's delay, doubled each time up to 6 hours; how long
    # retries go on; how long a worker's claim on a delivery lasts before another may take it.
    "WEBHOOK_PRIVATE_ADDRESSES": Setting(BOOLEAN),
    "WEBHOOK_TIMEOUT": Setting(SECONDS, 10),
    "WEBHOOK_FIRST_RETRY": Setting(SECONDS, 30),
    "WEBHOOK_RETRY_PERIOD": Setting(SECONDS, 3 * 86400),
    "WEBHOOK_LEASE": Setting(SECONDS, 60),
}
DEFAULTS = {name: setting.default for name, setting in SETTINGS.items()}


def load_config(app, overrides=None):
    """Fill app.config from defaults, the environment and overrides, then check it."""
    overrides = overrides or {}
    environment, problems = read_environment(os.environ)
    app.config.update(DEFAULTS)
    app.config.update(environment)
    app.config.update(overrides)
    _report(app, problems)
    _check_overrides(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_uri(app)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app.config)
    if app.config["ENV"] == "production":
        _refuse_logged_sms(app.config)
        _require_production_secrets(app.config)
    else:
        _generate_development_secrets(app)
    _require_folder(app.config["EMAIL_TEMPLATE_FOLDER"], "FRESHCOM_EMAIL_TEMPLATE_FOLDER")
    app.config["JWT_PRIVATE_KEY"] = _read_key(app.config["JWT_PRIVATE_KEY_FILE"])
    app.config["JWT_PREVIOUS_KEYS"] = [
        _read_key(path, "FRESHCOM_JWT_PREVIOUS_KEY_FILES")
        for path in _paths(app.config["JWT_PREVIOUS_KEY_FILES"])
    ]


def read_environment(environ) -> tuple[dict, list[str]]:
    """The settings the environment gives, parsed, and one line for each variable that is wrong."""
    values, problems = {}, []
    for variable, name, value in _variables(environ):
        setting = SETTINGS.get(name)
        if setting is None:
            problems.append(f"{variable} is not a setting{_suggestion(name)}")
            continue
        try:
            values[name] = setting.kind.parse(value)
        except (ValueError, TypeError, ConfigError):
            if name == "ENV":  # which posture to take is unknown, so none is taken
                raise ConfigError(_bad_value(variable, value, setting)) from None
            problems.append(_bad_value(variable, value, setting))
    return values, problems


def _variables(environ) -> list[tuple[str, str, str]]:
    """(variable, setting, value) of every FRESHCOM_ variable, and of DATABASE_URL as the alias."""
    found = [
        (variable, variable.removeprefix(PREFIX), value)
        for variable, value in sorted(environ.items())
        if variable.startswith(PREFIX) and not variable.startswith(TOOL_PREFIXES)
    ]
    if environ.get("DATABASE_URL") and not environ.get(PREFIX + "SQLALCHEMY_DATABASE_URI"):
        found.append(("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", environ["DATABASE_URL"]))
    return found


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, SETTINGS, n=1)
    return f" (did you mean {PREFIX}{close[0]}?)" if close else ""


def _bad_value(variable: str, value: str, setting: Setting) -> str:
    shown = "" if setting.secret else f"={value!r}"
    return f"{variable}{shown} is not {setting.kind.accepts}"


def _report(app, problems: list[str]) -> None:
    """Stop a production start on any wrong variable, naming each; elsewhere, warn and go on without them."""
    if problems and app.config["ENV"] == "production":
        raise ConfigError("; ".join(problems))
    for problem in problems:
        app.logger.warning("%s; ignored", problem)


def _check_overrides(overrides: dict) -> None:
    """Check the overrides that another module parses, so that a bad one fails now."""
    for name in overrides.keys() & SETTINGS.keys():
        setting = SETTINGS[name]
        if setting.kind.elsewhere:
            try:
                setting.kind.parse(overrides[name])
            except (ValueError, TypeError, ConfigError) as e:
                raise ConfigError(_bad_value(PREFIX + name, overrides[name], setting)) from e


def _engine_options(config) -> dict:
    """SQLAlchemy's engine options: ours, then the overrides' on top."""
    # A database error's message must not carry its parameters (hashes, emails) into the log.
    # A connection the database dropped (a restart) is replaced before use, not failed on, by
    # app._check_alive, which reads its socket instead of pool_pre_ping's round trip.
    options = {"hide_parameters": True}
    if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return {**options, **(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})}


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
    elif len(str(config["SECRET_KEY"]).encode()) < MIN_SECRET_KEY_BYTES:
        missing.append(f"FRESHCOM_SECRET_KEY of at least {MIN_SECRET_KEY_BYTES} bytes (a shorter one is set)")
    if not config.get("JWT_PRIVATE_KEY_FILE"):
        missing.append("FRESHCOM_JWT_PRIVATE_KEY_FILE")
    if not config.get("DATA_KEYS"):
        missing.append("FRESHCOM_DATA_KEYS")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        missing.append("FRESHCOM_SQLALCHEMY_DATABASE_URI (a PostgreSQL URL, not SQLite)")
    if missing:
        raise ConfigError("FRESHCOM_ENV=production refuses to start without: " + ", ".join(missing))


def _refuse_logged_sms(config):
    if config["SMS_BACKEND"] == "log":
        raise ConfigError(
            "FRESHCOM_ENV=production refuses FRESHCOM_SMS_BACKEND=log, which writes one-time codes "
            "to the log: set a gateway's URL, or leave it empty (SMS off)"
        )


def _generate_development_secrets(app):
    instance = Path(app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _create_once(
            instance / "secret_key", lambda: secrets.token_urlsafe(48).encode()
        ).decode()
    if not app.config.get("JWT_PRIVATE_KEY_FILE"):
        # Ed25519 since issue 18; an RSA key an earlier version wrote here still signs (RS256).
        path = instance / "jwt-private.pem"
        _create_once(path, lambda: OKPKey.generate_key("Ed25519", private=True).as_pem(private=True))
        app.config["JWT_PRIVATE_KEY_FILE"] = str(path)
    if not app.config.get("DATA_KEYS"):
        key = _create_once(instance / "data_key", lambda: data_keys.new_key().encode())
        app.config["DATA_KEYS"] = key.decode()


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


def _require_folder(path, setting):
    if path and not Path(path).is_dir():
        raise ConfigError(f"{setting}: {path} is not a folder")


def _read_key(path, setting="FRESHCOM_JWT_PRIVATE_KEY_FILE"):
    """The Ed25519 (EdDSA) or RSA (RS256) key of a PEM file, private or public."""
    try:
        pem = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e}") from e
    for kind in (OKPKey, RSAKey):
        try:
            key = kind.import_key(pem)
        except (JoseError, ValueError):
            continue
        if key.key_type == "RSA" or key.curve_name == "Ed25519":
            return key
    raise ConfigError(f"{setting}: {path} holds no Ed25519 or RSA key in PEM")
