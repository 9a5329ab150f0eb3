"""GET /openapi.json (OpenAPI 3.1 of every route) and GET /docs (the same, rendered for people).

The routes come from the app's URL map and the request bodies from the marshmallow schemas
the views load them with (apispec's MarshmallowPlugin converts each field), so neither can
drift from the code. What no schema of the views describes (the JSON:API envelope, error
objects, the Chec shapes, the token endpoint's RFC 6749 parameters) is written here once,
and tests check it against real responses (tests/http/test_openapi.py) and fuzz every operation
against it (tests/http/test_openapi_fuzz.py). A route the table below does not describe fails
those tests, so a new route cannot go undocumented.
"""

import re
from dataclasses import dataclass
from importlib import metadata

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, json
from marshmallow import Schema, fields
from marshmallow.validate import OneOf
from werkzeug.routing import Rule

from freshcom_customers import chec, schemas
from freshcom_customers.api import (
    account,
    customers,
    email_verifications,
    jsonapi,
    orders,
    passwords,
    users,
)
from freshcom_customers.chec import customers as chec_customers
from freshcom_customers.chec import wire
from freshcom_customers.http import headers

bp = Blueprint("openapi", __name__)

# Redoc from a CDN, pinned to one version and checked with Subresource Integrity
# (docs/decisions.md): the hash is of bundles/redoc.standalone.js in the npm package.
REDOC_URL = "https://cdn.jsdelivr.net/npm/redoc@2.5.0/bundles/redoc.standalone.js"
REDOC_INTEGRITY = "sha384-4vOjrBu7SuDWXcAw1qFznVLA/sKL+0l4nn+J1HY8w7cpa6twQEYuh4b0Cwuo7CyX"
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net; style-src 'unsafe-inline'; "
    "img-src 'self' data: https://cdn.redoc.ly; font-src data:; connect-src 'self'; "
    "worker-src blob:; frame-ancestors 'none'"
)
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>freshcom_customers API</title>
</head>
<body>
<redoc spec-url="openapi.json"></redoc>
<script src="{REDOC_URL}" integrity="{REDOC_INTEGRITY}" crossorigin="anonymous"></script>
</body>
</html>
"""

# Security schemes (components.securitySchemes), by the names operations use.
BEARER = "bearerAuth"
PUBLISHABLE_KEY = "publishableKey"
CHEC_BEARER = "checBearer"
CLIENT_BASIC = "clientBasic"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /v1/token (guest, customer or staff).",
    },
    PUBLISHABLE_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Authorization",
        "description": "The account's publishable key (prt-live-… or prt-test-…).",
    },
    CHEC_BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The customer JWT from POST customers/exchange-token (24 h).",
    },
    CLIENT_BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "A confidential client's id and secret (client_secret_basic; "
        "client_secret_post sends them as client_id and client_secret in the body instead).",
    },
}


class TokenRequestSchema(Schema):
    """RFC 6749's token request parameters as /v1/token reads them (form or JSON; Authlib parses)."""

    grant_type = fields.String(
        required=True,
        validate=OneOf(("password", "refresh_token", "fresh_token")),
        metadata={"description": "fresh_token is an alias of refresh_token (Freshcom's guide)."},
    )
    username = fields.String()
    password = fields.String()
    scope = fields.String(metadata={"description": "aid:<account id or handle>"})
    refresh_token = fields.String(metadata={"description": "prt-… or urt-…"})
    client_id = fields.String()
    client_secret = fields.String()


class IntrospectionRequestSchema(Schema):
    """RFC 7662's request: the token (the client authenticates with HTTP Basic, or client_secret_post)."""

    token = fields.String(required=True)
    token_type_hint = fields.String(metadata={"description": "Read, and ignored: the token's shape tells."})


class RevocationRequestSchema(IntrospectionRequestSchema):
    """RFC 7009's request; a public client names itself by client_id, or not at all (the default one)."""

    client_id = fields.String()
    client_secret = fields.String()


@dataclass(frozen=True)
class Body:
    """A request body: a JSON:API document of resource_type, a Chec JSON object, or token parameters."""

    schema: Schema
    kind: str  # "jsonapi", "chec" or "oauth"
    resource_type: str = ""
    partial: bool = False
    relationships: tuple[tuple[str, str], ...] = ()  # (name, type) of to-one relationships read
    required: bool = True


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: dict[int, str]  # status -> component schema name ("" for no body)
    security: tuple[str, ...] = ()  # one of these schemes, or none if empty
    optional_auth: bool = False
    body: Body | None = None
    query: tuple[dict, ...] = ()
    with_id: bool = False  # a PATCH whose data.id must be the path's
    description: str = ""


def _q(name: str, schema: dict | None = None, description: str = "") -> dict:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"}}
    if description:
        parameter["description"] = description
    return parameter


LOCALE = _q("locale", description="Accepted and ignored: nothing is translated.")
PAGE = (
    _q("page[number]", {"type": "integer", "minimum": 1, "maximum": jsonapi.MAX_PAGE_NUMBER}),
    _q("page[size]", {"type": "integer", "minimum": 1, "maximum": jsonapi.MAX_PAGE_SIZE}),
)


def _include(*names: str) -> dict:
    return _q("include", description="Comma-separated: " + ", ".join(names) + ".")


def _filters(keys: tuple[str, ...]) -> tuple[dict, ...]:
    return tuple(_q(f"filter[{schemas.camelize(key)}]") for key in keys)


# Error statuses of the native face: every route with a token, every route with a body.
TOKEN_ERRORS = {401: "Errors", 403: "Errors"}
BODY_ERRORS = {400: "Errors", 409: "Errors", 415: "Errors", 422: "Errors"}
CHEC_ERRORS = {401: "ChecError", 403: "ChecError", 404: "ChecError"}
OAUTH_ERRORS = {400: "OAuthError", 401: "OAuthError", 429: "OAuthError"}


def _jsonapi(type_: str, schema: Schema, **kwargs) -> Body:
    return Body(schema, "jsonapi", type_, **kwargs)


# Every route, by its Flask endpoint.
OPERATIONS: dict[str, Operation] = {
    "health.health": Operation(
        "The service and its database answer", "Discovery", {200: "Health", 503: "Health"}
    ),
    "openapi.document": Operation("This document", "Discovery", {200: "OpenApi"}),
    "openapi.docs": Operation("This document, rendered for people", "Discovery", {200: "html"}),
    "oauth2.jwks": Operation("The public keys that sign access tokens", "Discovery", {200: "Jwks"}),
    "oauth2.metadata": Operation(
        "RFC 8414 authorization server metadata", "Discovery", {200: "AuthorizationServerMetadata"}
    ),
    "oauth2.issue_token": Operation(
        "Issue an access token (password or refresh_token grant)",
        "Token endpoint",
        {200: "Token", **OAUTH_ERRORS},
        security=(CLIENT_BASIC,),
        optional_auth=True,
        body=Body(TokenRequestSchema(), "oauth"),
        description="fresh_token is accepted as an alias of refresh_token (grant type and parameter).",
    ),
    "oauth2.revoke_token": Operation(
        "Revoke a refresh token or a user access token (RFC 7009)",
        "Token endpoint",
        {200: "Empty", **OAUTH_ERRORS},
        security=(CLIENT_BASIC,),
        optional_auth=True,
        body=Body(RevocationRequestSchema(), "oauth"),
    ),
    "oauth2.introspect_token": Operation(
        "Introspect a token (RFC 7662; confidential clients)",
        "Token endpoint",
        {200: "Introspection", **OAUTH_ERRORS},
        security=(CLIENT_BASIC,),
        body=Body(IntrospectionRequestSchema(), "oauth"),
        description="client_secret_post (client_id and client_secret in the body) works as well as "
        "HTTP Basic; a failed client authentication is 401 after Basic, 400 after client_secret_post.",
    ),
    "api.create_customer": Operation(
        "Create a customer (guest: guest or registered only)",
        "Customers",
        {201: "CustomerDocument", 429: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("Customer", customers.SCHEMA),
        query=(LOCALE,),
    ),
    "api.get_current_customer": Operation(
        "The caller's customer; a guest finds a guest customer by code and an identifier",
        "Customers",
        {200: "CustomerDocument", 400: "Errors", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(
            LOCALE,
            _include("user", "orders"),
            _q("code"),
            *(_q(schemas.camelize(key)) for key in customers.GUEST_IDENTIFIERS),
        ),
    ),
    "api.list_customers": Operation(
        "List the account's customers (staff)",
        "Customers",
        {200: "CustomerList", 400: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(
            LOCALE,
            *PAGE,
            *_filters(customers.customers.LIST_FILTERS),
            _q("search"),
            _q("sort", description="-insertedAt (default), insertedAt, updatedAt, name; comma-separated."),
            _include("user"),
        ),
    ),
    "api.get_customer": Operation(
        "Read a customer (staff; the customer itself)",
        "Customers",
        {200: "CustomerDocument", 400: "Errors", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE, _include("user", "orders")),
    ),
    "api.update_customer": Operation(
        "Update a customer (staff; the customer itself, not its status)",
        "Customers",
        {200: "CustomerDocument", 404: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("Customer", customers.SCHEMA, partial=True),
        with_id=True,
        query=(LOCALE,),
    ),
    "api.delete_customer": Operation(
        "Delete a customer and its user; its orders are kept",
        "Customers",
        {204: "", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.create_user": Operation(
        "Create a managed user (staff) or a customer user (guest)",
        "Users",
        {201: "UserDocument", 429: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("User", users.UserSchema()),
        query=(LOCALE,),
    ),
    "api.get_current_user": Operation(
        "The caller's user",
        "Users",
        {200: "UserDocument", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.update_current_user": Operation(
        "Update the caller's user; a new password needs currentPassword",
        "Users",
        {200: "UserDocument", 429: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("User", users.UserSchema(), partial=True),
        with_id=True,
        query=(LOCALE,),
    ),
    "api.get_user": Operation(
        "Read a managed user of the account",
        "Users",
        {200: "UserDocument", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.update_user": Operation(
        "Update a managed user of the account",
        "Users",
        {200: "UserDocument", 404: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("User", users.UserSchema(), partial=True),
        with_id=True,
        query=(LOCALE,),
    ),
    "api.delete_user": Operation(
        "Delete a managed user of the account",
        "Users",
        {204: "", 404: "Errors", 422: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.get_account": Operation(
        "The token's account",
        "Account",
        {200: "AccountDocument", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.get_refresh_token": Operation(
        "The account's publishable key (developer, administrator, owner)",
        "Account",
        {200: "RefreshTokenDocument", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.create_password_reset_token": Operation(
        "Email a password reset token; 204 whether or not the user exists",
        "Passwords",
        {204: "", 401: "Errors", 429: "Errors", **BODY_ERRORS},
        security=(BEARER,),
        optional_auth=True,
        body=_jsonapi("PasswordResetToken", passwords.PasswordResetTokenSchema()),
        query=(LOCALE,),
        description="A guest token selects its account's managed users; no token, standard users.",
    ),
    "api.reset_password": Operation(
        "Set a new password with a reset token",
        "Passwords",
        {204: "", **BODY_ERRORS},
        body=_jsonapi("Password", passwords.PasswordSchema()),
        query=(LOCALE, _q("resetToken")),
    ),
    "api.create_email_verification_token": Operation(
        "Email a verification token to the caller, or (staff) to the user named",
        "Email verification",
        {204: "", 404: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi(
            "EmailVerificationToken",
            Schema.from_dict({})(),
            relationships=(("user", "User"),),
            required=False,
        ),
        query=(LOCALE,),
    ),
    "api.create_email_verification": Operation(
        "Verify an email with the token it was sent",
        "Email verification",
        {204: "", **BODY_ERRORS},
        body=_jsonapi("EmailVerification", email_verifications.EmailVerificationSchema()),
        query=(LOCALE,),
    ),
    "api.create_order": Operation(
        "Create an order (staff)",
        "Orders",
        {201: "OrderDocument", 404: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("Order", orders.OrderSchema(), relationships=(("customer", "Customer"),)),
        query=(LOCALE,),
    ),
    "api.list_orders": Operation(
        "List orders (staff: all; customer: its own)",
        "Orders",
        {200: "OrderList", 400: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE, *PAGE, *_filters(orders.orders.LIST_FILTERS)),
    ),
    "api.get_order": Operation(
        "Read an order (staff; the owning customer)",
        "Orders",
        {200: "OrderDocument", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "api.update_order": Operation(
        "Update an order (staff)",
        "Orders",
        {200: "OrderDocument", 404: "Errors", **TOKEN_ERRORS, **BODY_ERRORS},
        security=(BEARER,),
        body=_jsonapi("Order", orders.OrderSchema(), partial=True, relationships=(("customer", "Customer"),)),
        with_id=True,
        query=(LOCALE,),
    ),
    "api.delete_order": Operation(
        "Delete an order (staff)",
        "Orders",
        {204: "", 404: "Errors", **TOKEN_ERRORS},
        security=(BEARER,),
        query=(LOCALE,),
    ),
    "chec.issue_email_token": Operation(
        "customer.login: email a login link; also 200 for an unknown email",
        "Chec",
        {200: "ChecSuccess", 400: "ChecError", 401: "ChecError", 422: "ChecError", 429: "ChecError"},
        security=(PUBLISHABLE_KEY,),
        body=Body(chec_customers.EmailTokenSchema(), "chec"),
    ),
    "chec.exchange_token": Operation(
        "customer.getToken: exchange the link's token for a customer JWT",
        "Chec",
        {200: "ChecSession", 400: "ChecError", 401: "ChecError", 404: "ChecError", 422: "ChecError"},
        security=(PUBLISHABLE_KEY,),
        body=Body(chec_customers.ExchangeTokenSchema(), "chec"),
    ),
    "chec.get_customer": Operation(
        "customer.about", "Chec", {200: "ChecCustomer", **CHEC_ERRORS}, security=(CHEC_BEARER,)
    ),
    "chec.update_customer": Operation(
        "customer.update",
        "Chec",
        {200: "ChecCustomer", 400: "ChecError", 422: "ChecError", **CHEC_ERRORS},
        security=(CHEC_BEARER,),
        body=Body(chec_customers.CustomerSchema(), "chec", partial=True),
    ),
    "chec.list_orders": Operation(
        "customer.getOrders",
        "Chec",
        {200: "ChecOrderList", 422: "ChecError", **CHEC_ERRORS},
        security=(CHEC_BEARER,),
        query=(
            _q("limit", {"type": "integer", "minimum": 1, "maximum": wire.MAX_LIMIT}),
            _q("page", {"type": "integer", "minimum": 1, "maximum": wire.MAX_PAGE}),
            _q("sortBy", {"type": "string", "enum": list(wire.SORT_FIELDS)}),
            # Read case-insensitively.
            _q("sortDirection", {"type": "string", "pattern": "^([aA][sS][cC]|[dD][eE][sS][cC])$"}),
        ),
    ),
    "chec.get_order": Operation(
        "customer.getOrder", "Chec", {200: "ChecOrder", **CHEC_ERRORS}, security=(CHEC_BEARER,)
    ),
}


# JSON Schemas of what the views answer: the envelope, errors, and the shapes no marshmallow
# schema describes. Attributes come from the views' schemas (resource_schema).

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
OBJECT = {"type": "object"}


def _object(properties: dict, required=(), **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


PRICE = _object(
    {
        "raw": {"type": "number"},
        "formatted": STRING,
        "formatted_with_symbol": STRING,
        "formatted_with_code": STRING,
    },
    ("raw", "formatted", "formatted_with_symbol", "formatted_with_code"),
)
SHAPES = {
    "Errors": _object(
        {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    {
                        "code": STRING,
                        "title": STRING,
                        "detail": STRING,
                        "source": _object({"pointer": STRING, "parameter": STRING}),
                    },
                    ("code", "title"),
                ),
            }
        },
        ("errors",),
    ),
    "OAuthError": _object({"error": STRING, "error_description": STRING}, ("error",)),
    "Token": _object(
        {
            "access_token": STRING,
            "token_type": {"type": "string", "enum": ["bearer", "Bearer"]},
            "expires_in": {"type": "integer"},
            "refresh_token": STRING,
            "scope": STRING,
        },
        ("access_token", "token_type", "expires_in"),
    ),
    "Empty": OBJECT,
    "Introspection": _object(
        {
            "active": {"type": "boolean"},
            "token_type": STRING,
            "scope": STRING,
            "client_id": STRING,
            "username": STRING,
            "sub": STRING,
            "aid": STRING,
            "iat": {"type": "integer"},
            "exp": {"type": "integer"},
        },
        ("active",),
    ),
    "Health": _object({"status": STRING, "database": STRING}, ("status", "database")),
    "Jwks": _object({"keys": {"type": "array", "items": OBJECT}}, ("keys",)),
    "AuthorizationServerMetadata": _object(
        {"issuer": STRING, "token_endpoint": STRING, "jwks_uri": STRING},
        ("issuer", "token_endpoint", "jwks_uri"),
    ),
    "OpenApi": _object({"openapi": STRING, "paths": OBJECT}, ("openapi", "paths")),
    "ChecError": _object(
        {
            "status_code": {"type": "integer"},
            "error": _object(
                {
                    "type": STRING,
                    "message": STRING,
                    "errors": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
                },
                ("type", "message"),
            ),
        },
        ("status_code", "error"),
    ),
    "ChecSuccess": _object({"success": {"const": True}}, ("success",)),
    "ChecSession": _object(
        {"customer_id": STRING, "jwt": STRING, "expires": {"type": "integer"}},
        ("customer_id", "jwt", "expires"),
    ),
    "ChecCustomer": _object(
        {
            "id": {"type": "string", "pattern": "^cstmr_"},
            "external_id": NULLABLE_STRING,
            "firstname": NULLABLE_STRING,
            "lastname": NULLABLE_STRING,
            "email": NULLABLE_STRING,
            "phone": NULLABLE_STRING,
            "meta": OBJECT,
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
        },
        ("id", "external_id", "firstname", "lastname", "email", "phone", "meta", "created", "updated"),
    ),
    "ChecPrice": PRICE,
    "ChecOrder": _object(
        {
            "id": {"type": "string", "pattern": "^ord_"},
            "customer_reference": NULLABLE_STRING,
            "created": {"type": "integer"},
            "status": STRING,
            "status_payment": STRING,
            "status_fulfillment": STRING,
            "currency": _object({"code": STRING, "symbol": STRING}, ("code", "symbol")),
            "order_value": _ref("ChecPrice"),
            "order": _object(
                {
                    "subtotal": _ref("ChecPrice"),
                    "total": _ref("ChecPrice"),
                    "shipping": _object({"price": _ref("ChecPrice")}),
                    "line_items": {"type": "array", "items": OBJECT},
                },
                ("subtotal", "total", "line_items"),
            ),
            "tax": _object({"amount": _ref("ChecPrice")}),
            "customer": {"anyOf": [_ref("ChecCustomer"), {"type": "null"}]},
        },
        ("id", "created", "status", "currency", "order_value", "order", "customer"),
    ),
    "ChecOrderList": _object(
        {
            "data": {"type": "array", "items": _ref("ChecOrder")},
            "meta": _object(
                {
                    "pagination": _object(
                        {
                            "total": {"type": "integer"},
                            "count": {"type": "integer"},
                            "per_page": {"type": "integer"},
                            "current_page": {"type": "integer"},
                            "total_pages": {"type": "integer"},
                            "links": OBJECT,
                        },
                        ("total", "count", "per_page", "current_page", "total_pages", "links"),
                    )
                },
                ("pagination",),
            ),
        },
        ("data", "meta"),
    ),
}

# Resources of the native face: (type, the view's schema).
RESOURCES = {
    "Customer": customers.SCHEMA,
    "User": users.UserSchema(),
    "Order": orders.OrderSchema(),
    "Account": account.AccountSchema(),
    "RefreshToken": account.RefreshTokenSchema(),
}
LISTED = ("Customer", "Order")


class Converter:
    """marshmallow fields to JSON Schema properties, by apispec's MarshmallowPlugin."""

    def __init__(self, plugin: MarshmallowPlugin):
        self.converter = plugin.converter
        self.converter.add_attribute_function(_camel_case_roles)

    def properties(self, schema: Schema, *, side: str, wire_names: bool) -> tuple[dict, list]:
        """The properties of schema's fields as read ("load") or written ("dump"), and the required ones.

        Native keys are lowerCamelCase (wire_names False); Chec keys are the fields' data_keys.
        Written values may be null wherever the model allows it, so dump types add null.
        """
        properties, required = {}, []
        for name, schema_field in schema.fields.items():
            if (side == "load" and schema_field.dump_only) or (side == "dump" and schema_field.load_only):
                continue
            key = schema_field.data_key or (name if wire_names else schemas.camelize(name))
            prop = self.converter.field2property(schema_field)
            prop.pop("readOnly", None)
            prop.pop("writeOnly", None)
            if side == "dump":
                prop = _written(prop)
            properties[key] = prop
            if side == "load" and schema_field.required:
                required.append(key)
        return properties, required


def _camel_case_roles(self, schema_field, ret, **kwargs) -> dict:
    """users.Role reads supportSpecialist as support_specialist: both spellings are valid."""
    if isinstance(schema_field, users.Role) and "enum" in ret:
        return {"enum": list(dict.fromkeys([*ret["enum"], *map(schemas.camelize, ret["enum"])]))}
    return {}


def _written(prop: dict) -> dict:
    """A property as answered: any type may be null, and input-only constraints are dropped."""
    kept = {key: value for key, value in prop.items() if key not in ("minLength", "maxLength", "format")}
    if prop.get("format") == "date-time":
        kept["format"] = "date-time"
    types = kept.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        kept["type"] = list(dict.fromkeys([*types, "null"]))
    if "enum" in kept and None not in kept["enum"]:
        kept["enum"] = [*kept["enum"], None]
    return kept


def resource_schema(converter: Converter, resource_type: str, schema: Schema) -> dict:
    attributes, _ = converter.properties(schema, side="dump", wire_names=False)
    return _object(
        {
            "id": STRING,
            "type": {"const": resource_type},
            "attributes": _object(attributes),
            "relationships": OBJECT,
        },
        ("id", "type", "attributes"),
    )


GENERIC_RESOURCE = _object({"id": STRING, "type": STRING, "attributes": OBJECT}, ("id", "type"))


def _document_schemas(converter: Converter) -> dict:
    schemas = {"Resource": GENERIC_RESOURCE}
    for resource_type, schema in RESOURCES.items():
        schemas[resource_type] = resource_schema(converter, resource_type, schema)
        schemas[f"{resource_type}Document"] = _object(
            {
                "data": _ref(resource_type),
                "included": {"type": "array", "items": _ref("Resource")},
                "meta": OBJECT,
            },
            ("data",),
        )
    for resource_type in LISTED:
        schemas[f"{resource_type}List"] = _object(
            {
                "data": {"type": "array", "items": _ref(resource_type)},
                "included": {"type": "array", "items": _ref("Resource")},
                "meta": _object(
                    {"totalCount": {"type": "integer"}, "allCount": {"type": "integer"}},
                    ("totalCount", "allCount"),
                ),
            },
            ("data", "meta"),
        )
    return schemas


def _request_body(converter: Converter, body: Body, with_id: bool) -> dict:
    if body.kind == "jsonapi":
        return _jsonapi_request(converter, body, with_id)
    properties, required = converter.properties(body.schema, side="load", wire_names=True)
    schema = _object(properties, () if body.partial else required)
    if body.kind == "oauth":
        # Every parameter is a string, in a form or in a JSON object.
        content = {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        }
    else:
        content = {"application/json": {"schema": schema}}
    return {"required": body.required, "content": content}


def _jsonapi_request(converter: Converter, body: Body, with_id: bool) -> dict:
    attributes, required = converter.properties(body.schema, side="load", wire_names=False)
    required = [] if body.partial else required
    data_properties = {
        "type": {"const": body.resource_type, "description": "Defaults to the route's type."},
        # null reads as no attributes.
        "attributes": _object(attributes, required)
        | {"type": ["object", "null"] if not required else "object"},
    }
    if with_id:
        data_properties["id"] = {"type": "string", "description": "The id in the URL, if sent."}
    if body.relationships:
        linkage = {
            name: _object(
                {
                    "data": {
                        "anyOf": [
                            {"type": "null"},
                            _object({"type": {"const": type_}, "id": STRING}, ("id",)),
                        ]
                    }
                }
            )
            for name, type_ in body.relationships
        }
        data_properties["relationships"] = _object(linkage)
    data = _object(data_properties, ("attributes",) if required else ())
    schema = _object({"data": data}, ("data",))
    media = {"schema": schema}
    return {"required": body.required, "content": {jsonapi.MEDIA_TYPE: media, "application/json": media}}


def _responses(operation: Operation) -> dict:
    responses = {}
    for status, name in sorted(_with_edge_errors(operation.responses).items()):
        description = _STATUS_TEXT.get(status, "Error")
        if not name:
            responses[str(status)] = {"description": description}
        elif name == "html":
            responses[str(status)] = {
                "description": description,
                "content": {"text/html": {"schema": STRING}},
            }
        else:
            media = jsonapi.MEDIA_TYPE if name in _NATIVE_SHAPES or name == "Errors" else "application/json"
            responses[str(status)] = {"description": description, "content": {media: {"schema": _ref(name)}}}
    return responses


def _with_edge_errors(responses: dict) -> dict:
    """Add what any route may answer: 400 for text no database can store (inputs.py) and 503
    while the database is down or behind its migrations, in the face's error shape."""
    names = set(responses.values())
    shape = next((n for n in ("ChecError", "OAuthError") if n in names), "Errors")
    return {400: shape, 503: shape, **responses}


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Not allowed to this caller",
    404: "Not found",
    409: "Conflicting type or id",
    415: "Unsupported media type",
    422: "Invalid fields",
    429: "Too many requests",
    503: "A dependency is down",
}
_NATIVE_SHAPES = {*(f"{t}Document" for t in RESOURCES), *(f"{t}List" for t in LISTED)}


def openapi_path(rule: Rule) -> str:
    """A Flask rule as an OpenAPI path: <name> and <converter:name> become {name}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def documented_rules(app: Flask) -> list[tuple[Rule, str]]:
    """The app's routes and their methods (HEAD and OPTIONS aside); the static route is not an API."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def build(app: Flask) -> dict:
    """The OpenAPI 3.1 document of app's routes."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="freshcom_customers",
        version=_version(),
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Customer identity for online stores: an OAuth2 token endpoint, "
            "Freshcom's JSON:API dialect under /v1 and Commerce.js's Chec dialect under "
            f"{chec.url_prefix(app)}."
        },
    )
    converter = Converter(plugin)  # after APISpec: it binds the plugin
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in {**SHAPES, **_document_schemas(converter)}.items():
        spec.components.schema(name, schema)
    paths: dict[str, dict] = {}
    for rule, method in documented_rules(app):
        operation = OPERATIONS[rule.endpoint]
        paths.setdefault(openapi_path(rule), {})[method.lower()] = _operation(converter, rule, operation)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(converter: Converter, rule: Rule, operation: Operation) -> dict:
    document = {
        "operationId": rule.endpoint.replace(".", "_"),
        "summary": operation.summary,
        "tags": [operation.tag],
        "responses": _responses(operation),
    }
    if operation.description:
        document["description"] = operation.description
    parameters = [
        {"name": argument, "in": "path", "required": True, "schema": STRING}
        for argument in sorted(rule.arguments)
    ]
    parameters += list(operation.query)
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        document["requestBody"] = _request_body(converter, operation.body, operation.with_id)
    security = [{scheme: []} for scheme in operation.security]
    document["security"] = ([{}] if operation.optional_auth else []) + security
    return document


def _version() -> str:
    try:
        return metadata.version("freshcom_customers")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0.0.0"


def document_of(app: Flask) -> dict:
    """The app's document, built once: routes do not change after the app is created."""
    if "freshcom_openapi" not in app.extensions:
        app.extensions["freshcom_openapi"] = build(app)
    return app.extensions["freshcom_openapi"]


@bp.get("/openapi.json")
def document():
    body = json.dumps(document_of(current_app._get_current_object()))
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-cache"})


@bp.get("/docs")
@headers.override({"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})
def docs():
    return Response(DOCS_PAGE, mimetype="text/html")
