"""Passkeys (API.md 11): registration, the list and removal, and the challenges of a passkey login.

Options and credentials are WebAuthn's JSON forms, as a browser's
PublicKeyCredential.parseCreationOptionsFromJSON() reads them and credential.toJSON() writes them.
"""

from types import SimpleNamespace

from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2.rfc6749 import InvalidGrantError
from flask import request, url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, require_step_up, user_caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.errors import invalid
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.oauth2.scopes import requested_account
from freshcom_customers.services import accounts, passkeys

USERS = ("customer", *STAFF)
OPTIONS = {"description": "WebAuthn's options JSON, for PublicKeyCredential.parse*OptionsFromJSON()."}


class PasskeySchema(Schema):
    name = fields.String(allow_none=True, validate=Length(max=passkeys.MAX_NAME))
    sign_count = fields.Integer(dump_only=True)
    backup_eligible = fields.Boolean(dump_only=True)
    backed_up = fields.Boolean(dump_only=True)
    transports = fields.Function(lambda p: (p.transports or {}).get("transports", []), dump_only=True)
    aaguid = fields.String(dump_only=True)
    last_used_at = jsonapi.Timestamp(dump_only=True)
    inserted_at = jsonapi.Timestamp(dump_only=True)
    current_password = fields.String(load_only=True, allow_none=True)


class PasskeyRegistrationSchema(Schema):
    public_key = fields.Dict(dump_only=True, metadata=OPTIONS)
    credential = fields.Dict(load_only=True, metadata={"description": "The new credential's toJSON()."})
    name = fields.String(load_only=True, allow_none=True, validate=Length(max=passkeys.MAX_NAME))
    current_password = fields.String(load_only=True, allow_none=True)


class PasskeyChallengeSchema(Schema):
    scope = fields.String(validate=Length(max=128), metadata={"description": "aid:<account id>"})
    username = fields.String(
        load_only=True,
        validate=Length(max=254),
        metadata={"description": "For a login with a username: allowCredentials lists that user's passkeys."},
    )
    public_key = fields.Dict(dump_only=True, metadata=OPTIONS)


SCHEMA = PasskeySchema()
PASSKEY, PASSKEYS = jsonapi.documents("Passkey", SCHEMA)
REGISTRATION_SCHEMA, CHALLENGE_SCHEMA = PasskeyRegistrationSchema(), PasskeyChallengeSchema()
REGISTRATION, _ = jsonapi.documents("PasskeyRegistration", REGISTRATION_SCHEMA)
CHALLENGE, _ = jsonapi.documents("PasskeyChallenge", CHALLENGE_SCHEMA)


def serialize(passkey) -> dict:
    return jsonapi.resource("Passkey", passkey, SCHEMA)


@bp.post("/passkey_registrations")
@jsonapi.contract(
    "Start registering a passkey: WebAuthn creation options (a login in the last 5 minutes, "
    "or currentPassword)",
    tag="Passkeys",
    responses={201: REGISTRATION, 429: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("PasskeyRegistration", PasskeyRegistrationSchema(), required=False),
)
@require_oauth()
def create_passkey_registration():
    principal = user_caller(*USERS)
    attrs = jsonapi.load_if_sent()
    require_step_up(principal, attrs, fresh_login=True)
    options = passkeys.registration_options(principal.user, principal.account)
    db.session.commit()
    registration = SimpleNamespace(id="current", public_key=options)
    return jsonapi.document(
        jsonapi.resource("PasskeyRegistration", registration, REGISTRATION_SCHEMA),
        status=201,
        headers={"Location": url_for("api.complete_passkey_registration")},
    )


@bp.patch("/passkey_registrations/current")
@jsonapi.contract(
    "Register the new credential (its toJSON()) as a passkey of the caller",
    tag="Passkeys",
    responses={200: PASSKEY, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("PasskeyRegistration", PasskeyRegistrationSchema(), partial=True),
)
@require_oauth()
def complete_passkey_registration():
    principal = user_caller(*USERS)
    attrs = jsonapi.load("current")
    if not attrs.get("credential"):
        raise invalid("credential", "required", "credential is the new credential's toJSON().")
    passkey = passkeys.register(principal.user, attrs["credential"], attrs.get("name"))
    db.session.commit()
    return jsonapi.document(serialize(passkey))


@bp.get("/passkeys")
@jsonapi.contract(
    "The caller's passkeys", tag="Passkeys", responses={200: PASSKEYS, **TOKEN_ERRORS}, security=BEARER
)
@require_oauth()
def list_passkeys():
    principal = user_caller(*USERS)
    rows = passkeys.list_for(principal.user)
    return jsonapi.list_document([serialize(row) for row in rows], len(rows))


@bp.delete("/passkeys/<passkey_id>")
@jsonapi.contract(
    "Remove one of the caller's passkeys (currentPassword, or a second factor in the last 5 minutes)",
    tag="Passkeys",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Passkey", PasskeySchema(), partial=True, required=False),
)
@require_oauth()
def delete_passkey(passkey_id):
    principal = user_caller(*USERS)
    passkey = passkeys.get_own(principal.user, passkey_id)
    attrs = jsonapi.load_if_sent(passkey_id)
    require_step_up(principal, attrs)
    passkeys.remove(passkey)
    db.session.commit()
    return jsonapi.no_content()


@bp.post("/passkey_challenges")
@jsonapi.contract(
    "A challenge for a passkey login to the account the scope names (a guest token, or none), "
    "discoverable or for a username",
    tag="Passkeys",
    responses={201: CHALLENGE, 429: ERRORS, **BODY_ERRORS},
    body=jsonapi.body("PasskeyChallenge", PasskeyChallengeSchema(), required=False),
)
@require_oauth(optional=True)
@throttling.limit_per_ip("passkey_challenge")
def create_passkey_challenge():
    attrs = jsonapi.load_if_sent()
    account = _challenged_account(attrs.get("scope"))
    options = passkeys.login_options(account, attrs.get("username"))
    db.session.commit()
    challenge = SimpleNamespace(id=options["challenge"], public_key=options)
    return jsonapi.document(jsonapi.resource("PasskeyChallenge", challenge, CHALLENGE_SCHEMA), status=201)


def _challenged_account(scope: str | None):
    """The account the scope names, or the guest token's; the two must agree when both are given."""
    # Authlib leaves an earlier request's token in g when this one sends none: ask the header.
    token_account = current_token.account if "Authorization" in request.headers else None
    account = None
    if scope:
        try:
            reference = requested_account(scope)
        except InvalidGrantError:
            reference = None
        account = accounts.find_by_reference(reference) if reference else None
        if account is None:
            raise invalid("scope", "invalid", "scope is aid:<account id> of an account.")
    account = account or token_account
    if account is None:
        raise invalid("scope", "required", "Name the account: scope aid:<account id>, or send a guest token.")
    if token_account is not None and account.id != token_account.id:
        raise invalid("scope", "invalid", "scope names another account than the token's.")
    return account
