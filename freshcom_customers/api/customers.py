"""Customers: /v1/customers and /v1/customer."""

from flask import current_app, request, url_for
from marshmallow import fields

from freshcom_customers import schemas
from freshcom_customers.api import addresses as addresses_api
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api import orders as orders_api
from freshcom_customers.api import registration_confirmations as confirmations_api
from freshcom_customers.api import users as users_api
from freshcom_customers.api.access import CUSTOMER_MANAGERS, STAFF, caller, current_password_guard, is_guest
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.errors import AccessDenied, NotFound
from freshcom_customers.extensions import db
from freshcom_customers.http import contracts, throttling
from freshcom_customers.http.contracts import BEARER, Param
from freshcom_customers.models import Customer
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import (
    addresses,
    changes,
    customers,
    erasure,
    invitations,
    orders,
    registrations,
    user_management,
)


class CustomerSchema(schemas.CustomerInputSchema):
    """The writable attributes, shared with the import's files, and what the API adds when it answers."""

    email_verified = fields.Boolean(dump_only=True)
    # A new email waiting for the link sent to it (API.md 9); the proof a customer gives for it.
    pending_email = fields.Function(lambda c: c.user.pending_email if c.user else None, dump_only=True)
    current_password = fields.String(load_only=True, allow_none=True)
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)


SCHEMA = CustomerSchema()
DOCUMENT, LIST = jsonapi.documents("Customer", SCHEMA)


INCLUDED_ORDERS = 100  # the most recent; the related link pages through them all
# The largest document _kept_document keeps (a customer's is about 1 kB): a caller's cache
# entry holds its rows already, so it holds at most this more; a large description or
# custom data is rendered each time.
MOST_KEPT_BYTES = 4096


# To-many relationships: a link to their list, and their linkage when they are included.
LISTED = (("orders", "Order", "api.list_orders"), ("addresses", "Address", "api.list_addresses"))


def serialize(customer, orders=None, addresses=None) -> dict:
    relationships = {"user": jsonapi.relationship("User", customer.user_id)}
    for (name, resource_type, route), included in zip(LISTED, (orders, addresses), strict=True):
        relationships[name] = {"links": {"related": _related(route, customer.id)}}
        if included is not None:
            relationships[name]["data"] = [{"type": resource_type, "id": str(row.id)} for row in included]
    return jsonapi.resource("Customer", customer, SCHEMA, relationships)


MOST_LIST_PATHS = 64  # the routes' paths _related keeps, by script root


def _related(route: str, customer_id) -> str:
    """A link to the customer's rows of a list: what url_for(route, **{"filter[customerId]": id})
    gives, with the route's path worked out once for the app and the request's script root.
    url_for costs about 6 µs a call, and a customer has two such links, each customer of a
    page too (issue 18)."""
    paths = current_app.extensions.setdefault("freshcom.list_paths", {})
    key = (route, request.script_root)
    path = paths.get(key)
    if path is None:
        path = url_for(route)
        if len(paths) < MOST_LIST_PATHS:  # bounded: a proxy may pass a client's prefix
            paths[key] = path
    return f"{path}?filter%5BcustomerId%5D={customer_id}"  # a uuid needs no escaping


# A webhook event's data (API.md 12): the customer as GET shows it, its lists' links aside.
changes.show_as(
    Customer,
    lambda customer: jsonapi.resource(
        "Customer", customer, SCHEMA, {"user": jsonapi.relationship("User", customer.user_id)}
    ),
)


def _document(customer, include: set[str]):
    """The customer, with its user, recent orders and addresses when include names them."""
    included, recent, book = [], None, None
    if "user" in include and customer.user is not None:
        included.append(users_api.serialize(customer.user))
    if "orders" in include:
        recent = orders.recent_orders(customer, INCLUDED_ORDERS)
        included += [orders_api.serialize(order) for order in recent]
    if "addresses" in include:
        book = addresses.addresses_of([customer.id])[customer.id]
        included += [addresses_api.serialize(address) for address in book]
    return jsonapi.document(serialize(customer, recent, book), included=included if include else None)


@bp.post("/customers")
@jsonapi.contract(
    "Create a customer (guest: guest or registered only; a guest's email: 202, a confirmation is emailed)",
    tag="Customers",
    responses={
        201: DOCUMENT,
        202: confirmations_api.PENDING,
        429: ERRORS,
        **TOKEN_ERRORS,
        **BODY_ERRORS,
    },
    security=BEARER,
    body=jsonapi.body("Customer", SCHEMA),
)
@require_oauth()
@throttling.limit_per_ip("registration", only_if=is_guest)
def create_customer():
    principal = caller("guest", *CUSTOMER_MANAGERS)
    attrs = jsonapi.load()
    if principal.role == "guest":
        customer = registrations.register(principal.account, attrs)
    else:
        customer = customers.create_customer(principal.account, attrs)
    db.session.commit()
    if isinstance(customer, registrations.PendingRegistration):
        return confirmations_api.pending_document(customer)
    location = url_for("api.get_customer", customer_id=customer.id)
    return jsonapi.document(serialize(customer), status=201, headers={"Location": location})


@bp.post("/registration_confirmations")
@jsonapi.contract(
    "Register a returning guest with the token its confirmation email carried",
    tag="Customers",
    responses={201: DOCUMENT, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=confirmations_api.BODY,
)
@require_oauth()
def create_registration_confirmation():
    principal = caller("guest")
    customer = registrations.confirm(principal.account, jsonapi.load()["token"])
    db.session.commit()
    location = url_for("api.get_customer", customer_id=customer.id)
    return jsonapi.document(serialize(customer), status=201, headers={"Location": location})


GUEST_IDENTIFIERS = ("email", "first_name", "last_name", "phone_number")


@bp.get("/customer")
@jsonapi.contract(
    "The caller's customer; a guest finds a guest customer by code and an identifier",
    tag="Customers",
    responses={200: DOCUMENT, 400: ERRORS, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    include=("user", "orders", "addresses"),
    query=(Param("code"), *(Param(schemas.camelize(key)) for key in GUEST_IDENTIFIERS)),
)
@require_oauth()
def get_current_customer():
    principal = caller("customer", "guest")
    if principal.role == "guest":
        identifiers = {f: contracts.arg(schemas.camelize(f)) for f in GUEST_IDENTIFIERS}
        customer = customers.find_guest(principal.account, contracts.arg("code"), identifiers)
    else:
        # Authentication read the customer with the user; the service's query says NotFound.
        kept = _kept_document(principal)
        if kept is not None:
            return kept
        customer = principal.customer or customers.customer_of_user(principal.account, principal.user)
    return _document(customer, jsonapi.include_params())


def _kept_document(principal):
    """The caller's customer's document, as _document writes it without include, rendered
    once for the caller (issue 18), or None where it is not kept (a query string, a caller
    with no memo or without its customer). The memo is the caller's
    (access_tokens.Principal.memo), dropped with it when the customer, its user or its
    account changes. Keyed by the script root, which its links start with."""
    memo = principal.memo
    if memo is None or request.query_string:
        return None
    key = ("customer", request.script_root)
    body = memo.get(key)
    if body is None:
        if principal.customer is None:
            return None
        body = _document(principal.customer, set()).get_data()
        if len(body) <= MOST_KEPT_BYTES:
            memo[key] = body
    return jsonapi.body_document(body)


@bp.get("/customers")
@jsonapi.contract(
    "List the account's customers (staff; past 10,000 a search's total is estimated: meta.totalCountExact)",
    tag="Customers",
    responses={200: LIST, 400: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    include=("user", "addresses"),
    sort=customers.LIST_SORTS,
    filters=customers.LIST_FILTERS,
    search=True,
    paged=True,
)
@require_oauth()
def list_customers():
    principal = caller(*STAFF)
    number, size = jsonapi.page_params()
    include = jsonapi.include_params()
    page = customers.list_customers(
        principal.account,
        filters=jsonapi.filter_params(),
        search=jsonapi.search_param(),
        sort=jsonapi.sort_params(),
        page=number,
        size=size,
    )
    rows = page.rows
    included = [users_api.serialize(c.user) for c in rows if c.user] if "user" in include else []
    books = addresses.addresses_of(c.id for c in rows) if "addresses" in include else {}
    included += [addresses_api.serialize(a) for book in books.values() for a in book]
    data = [serialize(c, addresses=books.get(c.id)) for c in rows]
    return jsonapi.list_document(
        data, page.total, page.all_count, included=included if include else None, exact=page.total_exact
    )


@bp.get("/customers/<customer_id>")
@jsonapi.contract(
    "Read a customer (staff; the customer itself)",
    tag="Customers",
    responses={200: DOCUMENT, 400: ERRORS, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    include=("user", "orders", "addresses"),
)
@require_oauth()
def get_customer(customer_id):
    include = jsonapi.include_params()
    return _document(_visible_customer(customer_id), include)


@bp.patch("/customers/<customer_id>")
@jsonapi.contract(
    "Update a customer (staff; the customer itself, not its status; a guest token registers a guest: 202)",
    tag="Customers",
    responses={
        200: DOCUMENT,
        202: confirmations_api.PENDING,
        404: ERRORS,
        429: ERRORS,
        **TOKEN_ERRORS,
        **BODY_ERRORS,
    },
    security=BEARER,
    body=jsonapi.body("Customer", SCHEMA, partial=True),
)
@require_oauth()
@throttling.limit_per_ip("registration", only_if=is_guest)
def update_customer(customer_id):
    if is_guest():
        return _register_guest(customer_id)
    customer = _visible_customer(customer_id, staff_roles=CUSTOMER_MANAGERS)
    attrs = jsonapi.load(customer_id)
    principal = caller(*STAFF, "customer")
    if principal.role == "customer":
        with current_password_guard(principal.user, attrs):
            user_management.update_own_customer(customer, attrs)
    else:
        customers.update_customer(customer, attrs)
    db.session.commit()
    return jsonapi.document(serialize(customer))


ERASE = Param(
    "erase",
    {"type": "string", "enum": ["true", "false"]},
    description="true: erase (API.md 10): addresses and sessions go too, and the orders kept lose "
    "the email (a placeholder) and every personal value. Default false: the email is copied onto them.",
    values=("true", "false"),
)


@bp.delete("/customers/<customer_id>")
@jsonapi.contract(
    "Delete a customer and its user; its orders are kept (erase=true: anonymised)",
    tag="Customers",
    responses={204: None, 400: ERRORS, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    query=(ERASE,),
)
@require_oauth()
def delete_customer(customer_id):
    # Another customer's id is 404, as on PATCH: a customer learns nothing of other customers.
    customer = _visible_customer(customer_id, staff_roles=CUSTOMER_MANAGERS)
    principal = caller(*CUSTOMER_MANAGERS)
    erase = contracts.arg("erase") or "false"
    if erase not in ERASE.values:
        raise jsonapi.ApiError(400, "invalid_request", "erase must be true or false.", {"parameter": "erase"})
    if erase == "true":
        erasure.erase_customer(
            customer, erased_by=principal.user, erased_by_client=principal.machine_client_id
        )
    else:
        customers.delete_customer(customer)
    db.session.commit()
    return jsonapi.no_content()


@bp.post("/customers/<customer_id>/invitations")
@jsonapi.contract(
    "Email a registered customer without a password a new invitation to choose one (staff)",
    tag="Customers",
    responses={204: None, 404: ERRORS, 422: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def create_invitation(customer_id):
    principal = caller(*CUSTOMER_MANAGERS)
    invitations.invite(customers.get_customer(principal.account, customer_id))
    db.session.commit()
    return jsonapi.no_content()


def _register_guest(customer_id):
    """Freshcom's registration of the guest the storefront kept: a confirmation goes to its email."""
    principal = caller("guest")
    customer = customers.get_customer(principal.account, customer_id)
    attrs = jsonapi.load(customer_id)
    if customer.status != "guest" or attrs.get("status") != "registered":
        raise AccessDenied("A guest may only register a guest customer: status must be registered.")
    pending = registrations.request_confirmation(customer, attrs)
    db.session.commit()
    return confirmations_api.pending_document(pending)


def _visible_customer(customer_id, *, staff_roles=STAFF):
    """The customer, for staff of its account or for the customer itself; 404 for anyone else."""
    principal = caller(*staff_roles, "customer")
    customer = customers.get_customer(principal.account, customer_id)
    if principal.role == "customer" and customer.id != principal.customer_id:
        raise NotFound("customer")
    return customer
