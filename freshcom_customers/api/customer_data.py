"""The caller's own data (API.md 10): GET /v1/customer/export and DELETE /v1/customer.

The export is a file to download, not a resource: plain JSON (application/json), one key
per part, keys lowerCamelCase as the face writes them (customData as stored). Each part is
written through an allowlist of fields (the schemas below, and the resources' own), so no
hash can reach it. docs/decisions.md, "Export and erasure", says what is in it and why.
"""

from flask import Response, json
from marshmallow import Schema, fields

from freshcom_customers.api import addresses as addresses_api
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api import customer_events as customer_events_api
from freshcom_customers.api import customers as customers_api
from freshcom_customers.api import orders as orders_api
from freshcom_customers.api import passkeys as passkeys_api
from freshcom_customers.api import sessions as sessions_api
from freshcom_customers.api import users as users_api
from freshcom_customers.api.access import caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.http.contracts import BEARER, JSON, STRING, Shape, object_schema
from freshcom_customers.models.base import utcnow
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.schemas import camelize
from freshcom_customers.services import customer_data, customers, erasure, logins


class SessionSchema(sessions_api.SessionSchema):
    """A session as GET /v1/sessions shows it, ended ones too, and through which face it began."""

    face = fields.String(metadata={"enum": ["oauth", "chec"]})
    ended_at = jsonapi.Timestamp()


class EmailSchema(Schema):
    """A one-time token's record: what was sent, where and when; never the token."""

    purpose = fields.String()
    sent_to = fields.String(attribute="email")
    sent_at = jsonapi.Timestamp(attribute="inserted_at")
    expires_at = jsonapi.Timestamp()
    used_at = jsonapi.Timestamp()


class ErasureSchema(Schema):
    current_password = fields.String(required=True)


PARTS = {
    "customer": customers_api.SCHEMA,
    "user": users_api.UserSchema(),
    "addresses": addresses_api.SCHEMA,
    "orders": orders_api.OrderSchema(),
    "sessions": SessionSchema(exclude=("current",)),  # the file has no request to be current in
    "passkeys": passkeys_api.PasskeySchema(exclude=("current_password",)),
    "email_history": EmailSchema(),
    "history": customer_events_api.SCHEMA,
}
WITHOUT_ID = {"email_history"}


def _export_schema(fields_) -> dict:
    """The file's JSON Schema, from the parts' own schemas."""

    def record(part: str) -> dict:
        properties, _ = fields_.properties(PARTS[part], side="dump", camel_case=True)
        if part in WITHOUT_ID:
            return object_schema(properties)
        return object_schema({"id": STRING, **properties}, ("id",))

    parts = {
        "exportedAt": {"type": "string", "format": "date-time"},
        "customer": record("customer"),
        "user": {"anyOf": [{"type": "null"}, record("user")]},
        **{
            camelize(part): {"type": "array", "items": record(part)}
            for part in ("addresses", "orders", "sessions", "passkeys", "email_history", "history")
        },
    }
    return object_schema(parts, tuple(parts))


EXPORT = Shape("CustomerExport", _export_schema, JSON)


@bp.get("/customer/export")
@jsonapi.contract(
    "Download everything held about the caller (customer) as one JSON file",
    tag="Customers",
    responses={200: EXPORT, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    description="Plain JSON, not a JSON:API document: the customer, its user (no hashes), addresses, "
    "every order, sessions, passkeys (no keys) and the email history (one-time links and codes "
    "mailed: purpose, address, when, used) and the customer's history (logins, changes).",
)
@require_oauth()
def export_customer_data():
    principal = caller("customer")
    data = customer_data.export_customer_data(_own_customer(principal))
    disposition = f'attachment; filename="customer-{data.customer.id}.json"'
    headers = {"Content-Disposition": disposition, "Cache-Control": "no-store", "Pragma": "no-cache"}
    return Response(json.dumps(_written(data)), mimetype=JSON, headers=headers)


@bp.delete("/customer")
@jsonapi.contract(
    "Erase the caller's customer, its user, addresses and sessions; orders are kept, anonymised",
    tag="Customers",
    responses={204: None, 429: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Customer", ErasureSchema()),
)
@require_oauth()
def erase_current_customer():
    principal = caller("customer")
    attrs = jsonapi.load()
    customer = _own_customer(principal)
    # A wrong password counts like a failed login: a stolen access token gains no guesses.
    with logins.Login(throttling.current(), throttling.client_ip()).current_password(principal.user):
        erasure.erase_own_customer(customer, attrs["current_password"])
    db.session.commit()
    return jsonapi.no_content()


def _own_customer(principal):
    return principal.customer or customers.customer_of_user(principal.account, principal.user)


def _written(data: customer_data.CustomerData) -> dict:
    rows = {
        "customer": data.customer,
        "user": data.user,
        "addresses": data.addresses,
        "orders": data.orders,
        "sessions": data.sessions,
        "passkeys": data.passkeys,
        "email_history": data.emails,
        "history": data.history,
    }
    written = {"exportedAt": jsonapi.Timestamp().serialize("now", {"now": utcnow()})}
    for part, value in rows.items():
        if isinstance(value, list):
            written[camelize(part)] = [_record(part, row) for row in value]
        else:
            written[camelize(part)] = None if value is None else _record(part, value)
    return written


def _record(part: str, row) -> dict:
    identified = {} if part in WITHOUT_ID else {"id": str(row.id)}
    return {**identified, **{camelize(key): value for key, value in PARTS[part].dump(row).items()}}
