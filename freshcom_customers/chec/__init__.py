"""The Chec face: what @chec/commerce.js 2.8 sends, under CHEC_URL_PREFIX (/chec/v1)."""

from flask import Blueprint, Flask

bp = Blueprint("chec", __name__)


def init_app(app: Flask) -> None:
    """Serve the face under CHEC_URL_PREFIX; in production, warn if login links may point anywhere."""
    app.register_blueprint(bp, url_prefix=url_prefix(app))
    if app.config["ENV"] == "production" and app.config["MAGIC_LINK_ORIGINS"].strip() == "*":
        app.logger.warning(
            "FRESHCOM_MAGIC_LINK_ORIGINS is '*': anyone may have a customer's login link point at "
            "their own site; set it to the storefronts' origins (SECURITY.md)"
        )


def url_prefix(app: Flask) -> str:
    """CHEC_URL_PREFIX as a path: one leading slash, no trailing one."""
    return "/" + app.config["CHEC_URL_PREFIX"].strip("/")


# Importing the route modules registers their routes on bp.
from freshcom_customers.chec import customers, orders  # noqa: E402,F401
