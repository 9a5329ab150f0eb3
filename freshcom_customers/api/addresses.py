"""Addresses: /v1/addresses, a customer's address book (API.md 10)."""

from flask import url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import CUSTOMER_MANAGERS, STAFF, caller, own_customer_id
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.errors import invalid
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import addresses, customers
from freshcom_customers.services.database import as_uuid


def _text(field: str):
    return fields.String(allow_none=True, validate=Length(max=addresses.TEXT_FIELDS[field]))


class AddressSchema(Schema):
    """Types and lengths only: services/addresses checks the country, the defaults and the limit."""

    name = _text("name")
    company = _text("company")
    line_one = _text("line_one")
    line_two = _text("line_two")
    city = _text("city")
    province = _text("province")
    postal_code = _text("postal_code")
    country_code = fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2, any case."})
    phone_number = _text("phone_number")
    is_default_shipping = fields.Boolean()
    is_default_billing = fields.Boolean()
    custom_data = fields.Dict(keys=fields.String())
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)


SCHEMA = AddressSchema()
DOCUMENT, LIST = jsonapi.documents("Address", SCHEMA)
CUSTOMER = (("customer", "Customer"),)  # the relationship a new address may name


def serialize(address) -> dict:
    return jsonapi.resource(
        "Address", address, SCHEMA, {"customer": jsonapi.relationship("Customer", address.customer_id)}
    )


@bp.post("/addresses")
@jsonapi.contract(
    "Add an address to a customer's book (the customer itself; staff name the customer)",
    tag="Addresses",
    responses={201: DOCUMENT, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Address", SCHEMA, relationships=CUSTOMER),
)
@require_oauth()
def create_address():
    principal = caller(*CUSTOMER_MANAGERS, "customer")
    attrs = jsonapi.load()
    address = addresses.create_address(_owner(principal), attrs)
    db.session.commit()
    location = url_for("api.get_address", address_id=address.id)
    return jsonapi.document(serialize(address), status=201, headers={"Location": location})


@bp.get("/addresses")
@jsonapi.contract(
    "List addresses (staff: the account's; customer: its own)",
    tag="Addresses",
    responses={200: LIST, 400: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    filters=addresses.LIST_FILTERS,
    paged=True,
)
@require_oauth()
def list_addresses():
    principal = caller(*STAFF, "customer")
    number, size = jsonapi.page_params()
    rows, total, all_count = addresses.list_addresses(
        principal.account,
        **jsonapi.filter_params(),
        visible_to=own_customer_id(principal),
        page=number,
        size=size,
    )
    return jsonapi.list_document([serialize(a) for a in rows], total, all_count)


@bp.get("/addresses/<address_id>")
@jsonapi.contract(
    "Read an address (staff; its customer)",
    tag="Addresses",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def get_address(address_id):
    return jsonapi.document(serialize(_visible_address(address_id, STAFF)))


@bp.patch("/addresses/<address_id>")
@jsonapi.contract(
    "Update an address (staff who manage customers; its customer)",
    tag="Addresses",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Address", SCHEMA, partial=True),
)
@require_oauth()
def update_address(address_id):
    address = _visible_address(address_id, CUSTOMER_MANAGERS)
    attrs = jsonapi.load(address_id)
    addresses.update_address(address, attrs)
    db.session.commit()
    return jsonapi.document(serialize(address))


@bp.delete("/addresses/<address_id>")
@jsonapi.contract(
    "Delete an address (staff who manage customers; its customer)",
    tag="Addresses",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_address(address_id):
    addresses.delete_address(_visible_address(address_id, CUSTOMER_MANAGERS))
    db.session.commit()
    return jsonapi.no_content()


def _owner(principal):
    """Whose book a new address goes into: the customer's own, or the one staff name."""
    named = jsonapi.read_relationship("customer")
    if principal.role != "customer":
        return addresses.find_customer(principal.account, named.get("customer"))
    if named and as_uuid(named["customer"]) != principal.customer_id:
        raise invalid("customer_id", "invalid", "A customer adds addresses to its own book only.")
    return principal.customer or customers.customer_of_user(principal.account, principal.user)


def _visible_address(address_id, staff_roles):
    """The address, for staff_roles of its account or for its customer; 404 for anyone else."""
    principal = caller(*staff_roles, "customer")
    return addresses.get_address(principal.account, address_id, visible_to=own_customer_id(principal))
