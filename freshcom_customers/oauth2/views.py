"""The token endpoint and the public key set."""

from flask import Blueprint, current_app

from freshcom_customers.extensions import db
from freshcom_customers.oauth2 import authorization

bp = Blueprint("oauth2", __name__)


@bp.post("/v1/token")
def issue_token():
    response = authorization.create_token_response()
    # Also on failures: a detected refresh token reuse revokes its family, and that must stick.
    db.session.commit()
    return response


@bp.get("/.well-known/jwks.json")
def jwks():
    return current_app.extensions["freshcom_signer"].jwks()
