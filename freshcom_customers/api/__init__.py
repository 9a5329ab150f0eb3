"""The native face: Freshcom's JSON:API dialect under /v1."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")

from freshcom_customers.api import customers  # noqa: E402,F401  (registers the routes)
