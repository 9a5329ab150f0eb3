"""The native face: Freshcom's JSON:API dialect under /v1."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")

# Importing the route modules registers their routes on bp.
from freshcom_customers.api import (  # noqa: E402,F401
    account,
    addresses,
    customer_data,
    customer_events,
    customers,
    email_verifications,
    orders,
    passkeys,
    passwords,
    second_factors,
    sessions,
    users,
    webhooks,
)
