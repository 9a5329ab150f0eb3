"""Security events: one logger, one call, so operators can alert on them by name.

Every event is logged on the ``freshcom_customers.security`` logger at WARNING with the event
name as the message and in ``record.security_event``; the fields go into ``record.fields``.
Each is counted too, by name (``freshcom_security_events_total``, observability/metrics.py).
Never pass a secret, token, password or one-time link as a field.
"""

import logging

from freshcom_customers.observability import metrics

logger = logging.getLogger("freshcom_customers.security")


def record(event: str, **fields) -> None:
    """Log a security event (login_failed, lockout, refresh_token_reuse, user_suspended, ...)."""
    logger.warning(event, extra={"security_event": event, "fields": fields})
    metrics.security_event(event)


def user_fields(user) -> dict:
    """A user's fields in an event: its id and its account's (None for a standard user)."""
    return {"user_id": str(user.id), "account_id": str(user.account_id) if user.account_id else None}
