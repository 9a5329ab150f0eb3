"""The OAuth2 face: token endpoint (Authlib authorization server) and bearer protection."""

import uuid

from freshcom_customers.extensions import db
from freshcom_customers.models import Client
from freshcom_customers.oauth2.grants import PasswordGrant, RefreshGrant
from freshcom_customers.oauth2.resource import JWTBearerValidator, ResourceProtector
from freshcom_customers.oauth2.server import AuthorizationServer
from freshcom_customers.services.access_tokens import Signer

authorization = AuthorizationServer()
require_oauth = ResourceProtector()


def query_client(client_id):
    try:
        return db.session.get(Client, uuid.UUID(str(client_id)))
    except ValueError:
        return None


def init_app(app):
    """Bind the authorization server and the resource protector to the app."""
    app.extensions["freshcom_signer"] = Signer(app.config["JWT_PRIVATE_KEY"], app.config["JWT_ISSUER"])
    authorization.init_app(app, query_client=query_client, save_token=None)
    authorization.register_grant(PasswordGrant)
    authorization.register_grant(RefreshGrant)
    if not require_oauth._token_validators:
        require_oauth.register_token_validator(JWTBearerValidator(realm="freshcom"))
