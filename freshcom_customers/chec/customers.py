"""Customers: login by magic link (email-token, exchange-token) and the customer's own profile."""

from flask import request
from marshmallow import Schema, fields
from marshmallow.validate import Length
from werkzeug.exceptions import HTTPException

from freshcom_customers.chec import bp, ids, shapes, wire
from freshcom_customers.chec.errors import ERROR, SESSION_ERRORS
from freshcom_customers.errors import ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.http.contracts import (
    CHEC_BEARER,
    PUBLISHABLE_KEY,
    STRING,
    Body,
    Shape,
    contract,
    object_schema,
)
from freshcom_customers.services import actors, magic_links, sessions, user_management


class EmailTokenSchema(Schema):
    email = fields.Email(required=True, validate=Length(max=254))
    base_url = fields.String(required=True)


class ExchangeTokenSchema(Schema):
    token = fields.String(required=True, validate=Length(min=1, max=256))


def _text(name: str, max_length: int):
    return fields.String(data_key=name, allow_none=True, validate=Length(max=max_length))


class CustomerSchema(Schema):
    """What a customer may change of itself: Chec's names for the native fields."""

    email = fields.Email(allow_none=True, validate=Length(max=254))
    phone_number = _text("phone", 32)
    first_name = _text("firstname", 255)
    last_name = _text("lastname", 255)
    code = _text("external_id", 64)
    custom_data = fields.Dict(data_key="meta", keys=fields.String())


SUCCESS = Shape("ChecSuccess", object_schema({"success": {"const": True}}, ("success",)))
SESSION = Shape(
    "ChecSession",
    object_schema(
        {"customer_id": STRING, "jwt": STRING, "expires": {"type": "integer"}},
        ("customer_id", "jwt", "expires"),
    ),
)


@bp.post("/customers/email-token")
@contract(
    "customer.login: email a login link; also 200 for an unknown email",
    tag="Chec",
    responses={200: SUCCESS, 400: ERROR, 401: ERROR, 422: ERROR, 429: ERROR},
    security=PUBLISHABLE_KEY,
    errors=ERROR,
    body=Body(EmailTokenSchema()),
)
@throttling.limit_per_ip("magic_link")
def issue_email_token():
    """{"success": true} whether or not a customer has the email: an email goes only to one that does."""
    account = wire.publishable_account()
    body = wire.load()
    magic_links.send_login_link(account, body["email"], body["base_url"])
    db.session.commit()
    return {"success": True}


@bp.post("/customers/exchange-token")
@contract(
    "customer.getToken: exchange the link's token for a customer JWT",
    tag="Chec",
    responses={200: SESSION, 400: ERROR, 401: ERROR, 404: ERROR, 422: ERROR},
    security=PUBLISHABLE_KEY,
    errors=ERROR,
    body=Body(ExchangeTokenSchema()),
)
def exchange_token():
    where = sessions.device(request.headers.get("User-Agent"), throttling.client_ip())
    exchanged = _exchanged_at_once(where)
    if exchanged is not None:
        customer_id = ids.customer_id(exchanged.customer_id)
        jwt, expires = magic_links.session_jwt(
            exchanged.account_id,
            exchanged.customer_id,
            customer_id,
            exchanged.session_id,
            exchanged.generation,
        )
    else:
        account = wire.publishable_account()
        body = wire.load()
        actors.act_as(actors.CUSTOMER)  # the link's token proves the address: the customer itself
        customer = magic_links.exchange(account, body["token"])
        customer_id = ids.customer_id(customer.id)
        jwt, expires = magic_links.start_session(customer, customer_id, where)
    # The statement run alone joined a transaction where one had begun, and commits with it.
    db.session.commit()
    return {"customer_id": customer_id, "jwt": jwt, "expires": expires}, {"Cache-Control": "no-store"}


def _exchanged_at_once(where: sessions.Device) -> magic_links.Exchanged | None:
    """The exchange in one statement (magic_links.exchange_at_once), where it applies; None for
    the general way, which also answers a body it cannot load, after the key (its 401 first)."""
    try:
        token = wire.load()["token"]
    except (HTTPException, ValidationFailed):
        return None
    return magic_links.exchange_at_once(request.headers.get("X-Authorization"), token, where)


@bp.get("/customers/<customer_id>")
@contract(
    "customer.about",
    tag="Chec",
    responses={200: shapes.CUSTOMER, **SESSION_ERRORS},
    security=CHEC_BEARER,
    errors=ERROR,
)
def get_customer(customer_id):
    return shapes.customer(wire.session(customer_id).customer)


@bp.put("/customers/<customer_id>")
@contract(
    "customer.update",
    tag="Chec",
    responses={200: shapes.CUSTOMER, 400: ERROR, 422: ERROR, **SESSION_ERRORS},
    security=CHEC_BEARER,
    errors=ERROR,
    body=Body(CustomerSchema(), partial=True),
)
def update_customer(customer_id):
    session = wire.session(customer_id)
    # No password on this face: a new email needs a login link used minutes ago, then its own link.
    user_management.update_own_customer(session.customer, wire.load(), login_link_recent=session.recent)
    db.session.commit()
    return shapes.customer(session.customer)
