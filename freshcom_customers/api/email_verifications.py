"""email_verifications routes."""

from freshcom_customers.api import bp  # noqa: F401
