"""The OAuth2 face: token endpoint (Authlib authorization server) and bearer protection."""

import uuid
from urllib.parse import urlsplit

from freshcom_customers.extensions import db
from freshcom_customers.models import Client
from freshcom_customers.oauth2.endpoints import Introspection, Revocation
from freshcom_customers.oauth2.grants import MachineGrant, PasskeyGrant, PasswordGrant, RefreshGrant
from freshcom_customers.oauth2.resource import JWTBearerValidator, ResourceProtector
from freshcom_customers.oauth2.server import AuthorizationServer
from freshcom_customers.services.access_tokens import Signer

# One server and one protector for the process, bound to each app by init_app; what they serve
# is registered here, once (registering per app would add the grants again for every app).
authorization = AuthorizationServer()
authorization.register_grant(PasswordGrant)
authorization.register_grant(RefreshGrant)
authorization.register_grant(PasskeyGrant)
authorization.register_grant(MachineGrant)
authorization.register_endpoint(Revocation)
authorization.register_endpoint(Introspection)
require_oauth = ResourceProtector()
require_oauth.register_token_validator(JWTBearerValidator(realm="freshcom"))


def query_client(client_id):
    try:
        return db.session.get(Client, uuid.UUID(str(client_id)))
    except ValueError:
        return None


def init_app(app):
    """Bind the authorization server and the resource protector to the app."""
    app.extensions["freshcom_signer"] = Signer(
        app.config["JWT_PRIVATE_KEY"], app.config["JWT_ISSUER"], app.config["JWT_PREVIOUS_KEYS"]
    )
    _check_issuer(app)
    authorization.init_app(app, query_client=query_client, save_token=None)


def _check_issuer(app):
    """In production, warn unless the issuer is an https URL (RFC 8414 2; SECURITY.md).

    Not a refusal: API.md 8 names what production refuses to start without, and tools rely on it.
    """
    issuer = urlsplit(app.config["JWT_ISSUER"])
    if app.config["ENV"] == "production" and not (
        issuer.scheme == "https" and issuer.netloc and not issuer.query and not issuer.fragment
    ):
        app.logger.warning(
            "FRESHCOM_JWT_ISSUER is %r; set it to the service's public https base URL "
            "(RFC 8414: the issuer is an https URL, the tokens' iss and the metadata's issuer)",
            app.config["JWT_ISSUER"],
        )
