"""Customers: /v1/customers and /v1/customer."""

from flask import request, url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from freshcom_customers import schemas
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api import orders as orders_api
from freshcom_customers.api import users as users_api
from freshcom_customers.api.access import CUSTOMER_MANAGERS, STAFF, caller, is_guest
from freshcom_customers.errors import NotFound
from freshcom_customers.extensions import db
from freshcom_customers.http import throttling
from freshcom_customers.models import CUSTOMER_STATUSES
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import customers, orders


def _text(max_length: int):
    return fields.String(allow_none=True, validate=Length(max=max_length))


class CustomerSchema(Schema):
    status = fields.String(validate=OneOf(CUSTOMER_STATUSES))
    code = _text(64)
    name = _text(255)
    first_name = _text(255)
    last_name = _text(255)
    email = fields.Email(allow_none=True, validate=Length(max=254))
    phone_number = _text(32)
    label = _text(64)
    caption = _text(255)
    description = _text(10_000)
    custom_data = fields.Dict(keys=fields.String())
    email_verified = fields.Boolean(dump_only=True)
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)
    username = fields.String(load_only=True, validate=Length(min=3, max=254))
    password = fields.String(load_only=True)


# Schemas keep no per-call state; building one costs more than dumping a customer.
SCHEMA = CustomerSchema()


INCLUDED_ORDERS = 100  # the most recent; the related link pages through them all


def serialize(customer, orders=None) -> dict:
    related = url_for("api.list_orders", **{"filter[customerId]": str(customer.id)})
    relationships = {
        "user": jsonapi.relationship("User", customer.user_id),
        "orders": {"links": {"related": related}},
    }
    if orders is not None:
        relationships["orders"]["data"] = [{"type": "Order", "id": str(order.id)} for order in orders]
    return jsonapi.resource("Customer", customer, SCHEMA, relationships)


def _document(customer, include: set[str]):
    """The customer, with its user and recent orders when include names them."""
    included, recent = [], None
    if "user" in include and customer.user is not None:
        included.append(users_api.serialize(customer.user))
    if "orders" in include:
        recent = orders.recent_orders(customer, INCLUDED_ORDERS)
        included += [orders_api.serialize(order) for order in recent]
    return jsonapi.document(serialize(customer, recent), included=included if include else None)


@bp.post("/customers")
@require_oauth()
@throttling.limit_per_ip("registration", only_if=is_guest)
def create_customer():
    principal = caller("guest", *CUSTOMER_MANAGERS)
    attrs = schemas.load(SCHEMA, jsonapi.read_attributes("Customer"))
    customer = customers.create_customer(principal.account, attrs, by_guest=principal.role == "guest")
    db.session.commit()
    location = url_for("api.get_customer", customer_id=customer.id)
    return jsonapi.document(serialize(customer), status=201, headers={"Location": location})


GUEST_IDENTIFIERS = ("email", "first_name", "last_name", "phone_number")


@bp.get("/customer")
@require_oauth()
def get_current_customer():
    principal = caller("customer", "guest")
    if principal.role == "guest":
        identifiers = {f: request.args.get(schemas.camelize(f)) for f in GUEST_IDENTIFIERS}
        customer = customers.find_guest(principal.account, request.args.get("code"), identifiers)
    else:
        # Authentication read the customer with the user; the service's query says NotFound.
        customer = principal.customer or customers.customer_of_user(principal.account, principal.user)
    return _document(customer, jsonapi.include_params(("user", "orders")))


@bp.get("/customers")
@require_oauth()
def list_customers():
    principal = caller(*STAFF)
    number, size = jsonapi.page_params()
    include = jsonapi.include_params(("user",))
    rows, total, all_count = customers.list_customers(
        principal.account,
        filters=jsonapi.filter_params(customers.LIST_FILTERS),
        search=jsonapi.search_param(),
        sort=jsonapi.sort_params(customers.LIST_SORTS),
        page=number,
        size=size,
        with_users="user" in include,
    )
    meta = {"total_count": total, "all_count": all_count}
    included = [users_api.serialize(c.user) for c in rows if c.user] if include else None
    return jsonapi.document([serialize(c) for c in rows], meta=meta, included=included)


@bp.get("/customers/<customer_id>")
@require_oauth()
def get_customer(customer_id):
    include = jsonapi.include_params(("user", "orders"))
    return _document(_visible_customer(customer_id), include)


@bp.patch("/customers/<customer_id>")
@require_oauth()
def update_customer(customer_id):
    customer = _visible_customer(customer_id, staff_roles=CUSTOMER_MANAGERS)
    attrs = schemas.load(SCHEMA, jsonapi.read_attributes("Customer", customer_id), partial=True)
    by_customer = caller(*STAFF, "customer").role == "customer"
    customers.update_customer(customer, attrs, by_customer=by_customer)
    db.session.commit()
    return jsonapi.document(serialize(customer))


@bp.delete("/customers/<customer_id>")
@require_oauth()
def delete_customer(customer_id):
    principal = caller(*CUSTOMER_MANAGERS)
    customers.delete_customer(customers.get_customer(principal.account, customer_id))
    db.session.commit()
    return jsonapi.no_content()


def _visible_customer(customer_id, *, staff_roles=STAFF):
    """The customer, for staff of its account or for the customer itself; 404 for anyone else."""
    principal = caller(*staff_roles, "customer")
    customer = customers.get_customer(principal.account, customer_id)
    if principal.role == "customer" and customer.id != principal.customer_id:
        raise NotFound("customer")
    return customer
