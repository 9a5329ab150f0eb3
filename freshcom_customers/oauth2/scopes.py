"""Freshcom's account scopes: aid:<uuid>, account_id:<uuid>, aid:<handle>, aid:aid-test-<uuid>."""

from authlib.oauth2.rfc6749 import InvalidGrantError

ACCOUNT_KEYS = ("aid", "account_id")
GENERIC_FAILURE = "The credentials or the refresh token are invalid, expired or revoked."


def requested_account(scope: str | None) -> str | None:
    """Return the account reference in scope, None when there is no scope.

    The scope is a list of key:value pairs separated by commas or spaces; a scope that names
    no account, or names it twice, is invalid_grant like any other bad credential.
    """
    if not scope or not scope.strip():
        return None
    pairs = [part.partition(":") for part in scope.replace(",", " ").split()]
    references = [value for key, sep, value in pairs if sep and key in ACCOUNT_KEYS and value]
    if len(references) != 1:
        raise InvalidGrantError(GENERIC_FAILURE)
    return references[0]


def account_scope(account_id) -> str:
    return f"aid:{account_id}"
