"""Web origins (scheme://host[:port]) as the settings list them and as browsers send them."""

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def of(url: str) -> str | None:
    """The origin of an absolute http(s) URL, in lower case and without a default port; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, a malformed IPv6 address
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, DEFAULT_PORTS[scheme]) else "")


def parse(value: str | list, setting: str) -> frozenset[str] | None:
    """A setting that lists origins: None for "*" (any origin), else the set of them.

    The value is a comma-separated string or a list (FRESHCOM_ settings may be JSON). An entry
    that is not an http(s) origin is a ValueError naming the setting.
    """
    entries = value.split(",") if isinstance(value, str) else list(value or ())
    entries = [entry.strip() for entry in entries if entry.strip()]
    if "*" in entries:
        return None
    parsed = {entry: of(entry) if _bare(entry) else None for entry in entries}
    bad = [entry for entry, origin in parsed.items() if origin is None]
    if bad:
        raise ValueError(f"{setting}: {bad[0]!r} is not an origin like https://shop.example.com")
    return frozenset(parsed.values())


def _bare(entry: str) -> bool:
    """Whether the entry is scheme, host and port only (a trailing slash is forgiven)."""
    parts = urlsplit(entry)
    return parts.path in ("", "/") and not (parts.query or parts.fragment or "@" in parts.netloc)
