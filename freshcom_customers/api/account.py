"""The token's account: /v1/account and its publishable key at /v1/refresh_token."""

from marshmallow import Schema, fields

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, caller
from freshcom_customers.api.jsonapi import TOKEN_ERRORS
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import accounts

# Who may read the account's publishable key (API.md 5).
KEY_READERS = ("developer", "administrator", "owner")


class AccountSchema(Schema):
    name = fields.String()
    handle = fields.String()
    mode = fields.String()
    test_account_id = fields.Method("get_test_account_id")
    default_locale = fields.String()
    inserted_at = jsonapi.Timestamp()

    def get_test_account_id(self, account):
        return str(account.test_account.id) if account.test_account else None


class RefreshTokenSchema(Schema):
    prefixed_id = fields.String()


SCHEMA, REFRESH_TOKEN_SCHEMA = AccountSchema(), RefreshTokenSchema()
ACCOUNT, _ = jsonapi.documents("Account", SCHEMA)
REFRESH_TOKEN, _ = jsonapi.documents("RefreshToken", REFRESH_TOKEN_SCHEMA)


@bp.get("/account")
@jsonapi.contract(
    "The token's account", tag="Account", responses={200: ACCOUNT, **TOKEN_ERRORS}, security=BEARER
)
@require_oauth()
def get_account():
    principal = caller("guest", "customer", *STAFF)
    return jsonapi.document(jsonapi.resource("Account", principal.account, SCHEMA))


@bp.get("/refresh_token")
@jsonapi.contract(
    "The account's publishable key (developer, administrator, owner)",
    tag="Account",
    responses={200: REFRESH_TOKEN, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def get_refresh_token():
    principal = caller(*KEY_READERS)
    token = accounts.publishable_token(principal.account)
    relationships = {"account": jsonapi.relationship("Account", token.account_id)}
    return jsonapi.document(jsonapi.resource("RefreshToken", token, REFRESH_TOKEN_SCHEMA, relationships))
