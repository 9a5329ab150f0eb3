"""Orders: /v1/orders."""

from datetime import UTC

from flask import url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers import schemas
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import CUSTOMER_MANAGERS, STAFF, caller, own_customer_id
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.models import Order
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import changes, orders


class LineItems(fields.List):
    """An array of line items: item keys read in either case, stored snake_case, shown camelCase."""

    def __init__(self, **kwargs):
        super().__init__(fields.Dict(keys=fields.String()), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        items = super()._deserialize(value, attr, data, **kwargs)
        return [{schemas.underscore(k): v for k, v in item.items()} for item in items]

    def _serialize(self, value, attr, obj, **kwargs):
        return [{schemas.camelize(k): v for k, v in item.items()} for item in value or []]


class PlacedAt(jsonapi.Timestamp):
    """ISO 8601; a time without an offset is read as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def _cents():
    return fields.Integer(strict=True)


class OrderSchema(Schema):
    """Types and lengths only: services/orders checks statuses, currency, amounts and items."""

    code = fields.String(allow_none=True, validate=Length(max=64))
    status = fields.String()
    payment_status = fields.String()
    fulfillment_status = fields.String()
    currency = fields.String()
    sub_total_cents = _cents()
    tax_cents = _cents()
    shipping_cents = _cents()
    total_cents = _cents()
    line_items = LineItems()
    email = fields.Email(allow_none=True, validate=Length(max=254))
    custom_data = fields.Dict(keys=fields.String())
    placed_at = PlacedAt(allow_none=True)
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)


SCHEMA = OrderSchema()


def serialize(order) -> dict:
    return jsonapi.resource(
        "Order", order, SCHEMA, {"customer": jsonapi.relationship("Customer", order.customer_id)}
    )


changes.show_as(Order, serialize)  # a webhook event's data (API.md 12)
DOCUMENT, LIST = jsonapi.documents("Order", SCHEMA)
CUSTOMER = (("customer", "Customer"),)  # the relationship a written order may name


@bp.post("/orders")
@jsonapi.contract(
    "Create an order (staff)",
    tag="Orders",
    responses={201: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Order", OrderSchema(), relationships=CUSTOMER),
)
@require_oauth()
def create_order():
    principal = caller(*CUSTOMER_MANAGERS)
    attrs = jsonapi.load()
    order = orders.create_order(principal.account, attrs, **_customer(principal.account))
    db.session.commit()
    location = url_for("api.get_order", order_id=order.id)
    return jsonapi.document(serialize(order), status=201, headers={"Location": location})


@bp.get("/orders")
@jsonapi.contract(
    "List orders (staff: all; customer: its own)",
    tag="Orders",
    responses={200: LIST, 400: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    filters=orders.LIST_FILTERS,
    paged=True,
)
@require_oauth()
def list_orders():
    principal = caller(*STAFF, "customer")
    number, size = jsonapi.page_params()
    filters = jsonapi.filter_params()
    rows, total, all_count = orders.list_orders(
        principal.account, **filters, visible_to=own_customer_id(principal), page=number, size=size
    )
    return jsonapi.list_document([serialize(o) for o in rows], total, all_count)


@bp.get("/orders/<order_id>")
@jsonapi.contract(
    "Read an order (staff; the owning customer)",
    tag="Orders",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def get_order(order_id):
    principal = caller(*STAFF, "customer")
    order = orders.get_order(principal.account, order_id, visible_to=own_customer_id(principal))
    return jsonapi.document(serialize(order))


@bp.patch("/orders/<order_id>")
@jsonapi.contract(
    "Update an order (staff)",
    tag="Orders",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("Order", OrderSchema(), partial=True, relationships=CUSTOMER),
)
@require_oauth()
def update_order(order_id):
    principal = caller(*CUSTOMER_MANAGERS)
    order = orders.get_order(principal.account, order_id)
    attrs = jsonapi.load(order_id)
    orders.update_order(order, attrs, **_customer(principal.account))
    db.session.commit()
    return jsonapi.document(serialize(order))


@bp.delete("/orders/<order_id>")
@jsonapi.contract(
    "Delete an order (staff)",
    tag="Orders",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_order(order_id):
    principal = caller(*CUSTOMER_MANAGERS)
    orders.delete_order(orders.get_order(principal.account, order_id))
    db.session.commit()
    return jsonapi.no_content()


def _customer(account) -> dict:
    """The request's customer relationship as the service's keyword: {} when it is not sent."""
    linkage = jsonapi.read_relationship("customer")
    return {"customer": orders.find_customer(account, linkage["customer"])} if linkage else {}
