"""Customer identity and account service for online stores."""

from importlib import metadata


def _installed_version() -> str:
    """The installed distribution's version (pyproject.toml's), so it is written in one place."""
    try:
        return metadata.version("freshcom_customers")
    except metadata.PackageNotFoundError:  # pragma: no cover - imported from a tree never installed
        return "0.0.0"


__version__ = _installed_version()
