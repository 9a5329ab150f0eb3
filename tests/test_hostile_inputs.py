"""Hostile input (issue 11): every string field, query parameter and header of every operation.

The operations, their body fields, query parameters and credentials come from the app's own
/openapi.json, so a new operation is covered without editing this file. Each operation starts
from one valid request, with real credentials (tests/callers.py) and real ids, that must be
accepted (2xx): what the document cannot say (a live one-time token, a unique email, an order
status, a current TOTP code, a passkey's signed credential) is in BASES, so an operation whose
generic request is refused fails the test until it has a base. Then each hostile value of KINDS
goes, alone, into one place of that request: every string value and object key of the body
(each form parameter of the token endpoints, and their JSON form too), every documented query
parameter (percent-encoded, as a client sends it) and every header the operation reads. Bodies
also get JSON nested 1,000 deep, as a value and as the whole body, and invalid UTF-8. The
1,000,000-character value goes once per place of an operation (not again for its second base),
and once per face into the headers every route reads alike (SHARED_HEADERS): that keeps a pass
under a minute.

No answer may be a 5xx, and every 4xx is in the error format its face documents. A value no
database can store (NUL, a lone surrogate, invalid UTF-8, JSON too deep) in a body, a query
parameter or a required credential must be refused with a 4xx, on SQLite as on PostgreSQL.
Headers a service only reads for itself (Accept, User-Agent, ...) may be ignored instead.

Each request runs in a savepoint rolled back after it, so one request's writes (a deleted
customer, a used token, a changed password) never change what the next one reaches. Every
failure is collected and reported at the end, one line each.
"""

import base64
import copy
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import count
from urllib.parse import quote

import pyotp
import pytest
from flask import Response

from freshcom_customers.http.openapi import CLIENT_BASIC
from freshcom_customers.models import Account, User
from freshcom_customers.oauth2.grants import PASSKEY_GRANT
from freshcom_customers.services import (
    customers,
    email_verifications,
    magic_links,
    one_time_tokens,
    passkeys,
    password_resets,
    passwords,
    registrations,
    second_factors,
    totp,
)
from freshcom_customers.services.mail import outbox
from tests import callers
from tests.chec.conftest import BASE_URL
from tests.conftest import OWNER_PASSWORD, REGISTRATION
from tests.mailbox import DELIVERY_TIMEOUT
from tests.webauthn_helpers import Authenticator, b64url, from_b64url

PASSWORD = "a-long-passphrase-1"
PHONE = "+15555550100"
DEPTH = 1000
HUGE = 1_000_000
FORM = "application/x-www-form-urlencoded"
JSON_API = "application/vnd.api+json"


def _inside(normal: str, piece: str) -> str:
    middle = len(normal) // 2
    return normal[:middle] + piece + normal[middle:]


def _invalid_utf8(normal: str) -> bytes:
    data = normal.encode()
    middle = len(data) // 2
    return data[:middle] + b"\xff" + data[middle:]


@dataclass(frozen=True)
class Kind:
    """One hostile value, made from the normal value of the place it goes to."""

    name: str
    make: Callable[[str], str | bytes]
    unreadable: bool = False  # no database can store it: it must be refused
    in_json: bool = True  # invalid UTF-8 cannot be a JSON string: the whole-body cases send it


HUGE_KIND = Kind("1,000,000 characters", lambda normal: "x" * HUGE)
KINDS = (
    Kind("NUL", lambda normal: "\x00", unreadable=True),
    Kind("NUL inside", lambda normal: _inside(normal, "\x00"), unreadable=True),
    Kind("lone surrogate \\udcff", lambda normal: "\udcff", unreadable=True),
    Kind("lone surrogate \\ud800", lambda normal: "\ud800", unreadable=True),
    Kind("invalid UTF-8 (%FF)", _invalid_utf8, unreadable=True, in_json=False),
    Kind("4,097 characters", lambda normal: "x" * 4097),
    HUGE_KIND,
    Kind("RTL override inside", lambda normal: _inside(normal, "\u202e")),
    Kind("zero-width space inside", lambda normal: _inside(normal, "\u200b")),
    Kind("BOM inside", lambda normal: _inside(normal, "\ufeff")),
    Kind("long email", lambda normal: "x" * 4000 + "@example.com"),
)


def _wire(value: str | bytes) -> bytes:
    """The bytes a client sends for value: a lone surrogate as its (invalid) UTF-8 encoding."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _percent(value: str | bytes) -> str:
    return quote(_wire(value), safe="")


def _header(value: str | bytes) -> str:
    """A header value as a WSGI server hands it to the app: the bytes read as Latin-1."""
    return _wire(value).decode("latin-1")


# The headers every operation may read, with a normal value; credentials come from the base.
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "Mozilla/5.0 (hostile-input suite)",
    "X-Request-Id": "0f8fad5bd9cb469fa16570867728950e",
    "Origin": "https://shop.example.test",
}
CREDENTIAL_HEADERS = ("Authorization", "X-Authorization")
# Read by the app for every route alike (logging, CORS, negotiation), not by one view: the
# 1,000,000-character value goes into them once per face, not once per operation.
SHARED_HEADERS = ("Accept", "User-Agent", "X-Request-Id", "Origin")


@dataclass
class Call:
    """One request of an operation: the base, or the base with one place made hostile."""

    method: str
    path: str
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: object = None  # a JSON value, or a dict of form parameters; None: no body
    encoding: str = ""  # "json" or "form"
    raw: bytes | None = None  # a body sent as it is

    def content(self) -> bytes | None:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return None
        if self.encoding == "form":
            return "&".join(f"{quote(k, safe='')}={_percent(v)}" for k, v in self.body.items()).encode()
        # Escapes for anything outside ASCII: a lone surrogate travels as \\udcff, as in any JSON.
        return json.dumps(self.body, ensure_ascii=True).encode()

    def send(self, client):
        query = "&".join(f"{quote(k, safe='[]')}={_percent(v)}" for k, v in self.query.items())
        headers = [(name, _header(value)) for name, value in self.headers.items()]
        return client.open(
            self.path, method=self.method, query_string=query, headers=headers, data=self.content()
        )


@dataclass
class Ceremonies:
    """Second factors made when a base is: a challenge lives 5 minutes, a TOTP code 30 seconds.

    A passkey challenge is issued in the test's transaction, outside any request's savepoint, so
    that every request of the base's operation finds it waiting (each request's use of it is
    rolled back).
    """

    session: object
    account_id: uuid.UUID
    roy_id: uuid.UUID  # the customer's user, whose passkey the authenticator holds
    authenticator: Authenticator
    totp_secret: str  # of the owner's waiting enrolment

    def registration(self) -> dict:
        """A new credential answering a passkey registration of Roy's that waits."""
        account = self.session.get(Account, self.account_id)
        options = passkeys.registration_options(self.session.get(User, self.roy_id), account)
        self.session.commit()
        return Authenticator().create(options)

    def assertion(self) -> str:
        """The JSON text of an assertion of Roy's passkey for a waiting login challenge."""
        options = passkeys.login_options(self.session.get(Account, self.account_id))
        self.session.commit()
        return json.dumps(self.authenticator.get(options))

    def totp_code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()

    def phone_code(self) -> str:
        """A code texted to PHONE for Roy, as POST /v1/phone_verification_codes sends it."""
        roy = self.session.get(User, self.roy_id)
        code = one_time_tokens.issue_code(
            "phone_verification",
            roy,
            email=None,
            lifetime=second_factors.CODE_LIFETIME,
            payload={"phone_number": PHONE},
        )
        self.session.commit()
        return code


@dataclass
class Context:
    """What bases and normal values are made of: credentials, live tokens, unique names."""

    credentials: dict
    tokens: dict
    guest_customer: dict
    scope: str
    ceremonies: Ceremonies
    numbers: count = field(default_factory=lambda: count(1))

    def email(self) -> str:
        return f"hostile-{next(self.numbers)}@example.com"

    def code(self) -> str:
        return f"HOSTILE-{next(self.numbers)}"


def _document(resource_type: str, attributes: dict | None = None, **data) -> dict:
    return {"data": {"type": resource_type, "attributes": attributes or {}, **data}}


def _linkage(resource_type: str, resource_id: str) -> dict:
    return {"data": {"type": resource_type, "id": resource_id}}


@dataclass(frozen=True)
class Base:
    """What an operation's valid request needs beyond the document: its caller, query and body."""

    role: str | None = None  # a bearer operation's caller other than tests/callers.py's ROLES
    query: dict = field(default_factory=dict)
    body: dict = field(default_factory=dict)  # merged over the body built from the schema
    normal: dict = field(default_factory=dict)  # normal values of places the base leaves out
    name: str = ""  # tells two bases of one operation apart
    ids: dict = field(default_factory=dict)  # path parameters naming other rows than Roy's


# Bases of the operations whose generic request (required fields only) is not accepted or
# does not reach the services. Each takes the Context and gives one Base, or several.
BASES: dict[str, Callable[[Context], Base | list[Base]]] = {
    "POST /chec/v1/customers/email-token": lambda c: Base(
        body={"email": REGISTRATION["email"], "base_url": BASE_URL}
    ),
    "POST /chec/v1/customers/exchange-token": lambda c: Base(body={"token": c.tokens["login"]}),
    "PUT /chec/v1/customers/{customer_id}": lambda c: Base(body={"firstname": "Roy"}),
    "GET /chec/v1/customers/{customer_id}/orders": lambda c: Base(
        normal={"limit": "20", "page": "1", "sortBy": "created_at", "sortDirection": "desc"}
    ),
    # A guest finds a guest customer by code and email: the query reaches the lookup.
    "GET /v1/customer": lambda c: Base(
        role="guest", query={"code": c.guest_customer["code"], "email": c.guest_customer["email"]}
    ),
    # Erasure needs the current password: with it, the request reaches the erasure (rolled back).
    "DELETE /v1/customer": lambda c: Base(
        body=_document("Customer", {"currentPassword": REGISTRATION["password"]})
    ),
    "GET /v1/customers": lambda c: Base(
        normal={"filter[status]": "registered", "filter[email]": REGISTRATION["email"], "search": "roy"}
    ),
    "POST /v1/customers": lambda c: Base(
        body=_document(
            "Customer",
            {"status": "registered", "email": c.email(), "password": PASSWORD, "firstName": "Ada"},
        )
    ),
    # Only a registered customer without a password is invited.
    "POST /v1/customers/{customer_id}/invitations": lambda c: Base(
        ids={"customer_id": c.tokens["invited_id"]}
    ),
    "POST /v1/registration_confirmations": lambda c: Base(
        role="guest", body=_document("RegistrationConfirmation", {"token": c.tokens["registration"]})
    ),
    "POST /v1/email_verification_tokens": lambda c: Base(
        body=_document(
            "EmailVerificationToken", relationships={"user": _linkage("User", c.tokens["user_id"])}
        )
    ),
    "POST /v1/email_verifications": lambda c: Base(
        body=_document("EmailVerification", {"token": c.tokens["verification"]})
    ),
    # Staff see every order: filter[customerId] reaches the query.
    "GET /v1/orders": lambda c: Base(
        role="owner",
        normal={"filter[customerId]": c.credentials["native_ids"]["customer_id"], "filter[status]": "opened"},
    ),
    "POST /v1/orders": lambda c: Base(
        body=_document(
            "Order",
            {
                "code": c.code(),
                "currency": "USD",
                "status": "opened",
                "paymentStatus": "pending",
                "fulfillmentStatus": "pending",
                "lineItems": [
                    {"name": "Tea", "sku": "T-1", "quantity": 1, "unitPriceCents": 500, "totalCents": 500}
                ],
            },
            relationships={"customer": _linkage("Customer", c.credentials["native_ids"]["customer_id"])},
        )
    ),
    "PATCH /v1/orders/{order_id}": lambda c: Base(normal={"status": "opened", "currency": "USD"}),
    # Staff name the customer whose book the address goes into.
    "POST /v1/addresses": lambda c: Base(
        body=_document(
            "Address",
            {"name": "Roy Bao", "lineOne": "2 Main St", "city": "Vancouver", "countryCode": "CA"},
            relationships={"customer": _linkage("Customer", c.credentials["native_ids"]["customer_id"])},
        )
    ),
    "PATCH /v1/addresses/{address_id}": lambda c: Base(
        body=_document("Address", {"city": "Victoria", "countryCode": "ca", "isDefaultShipping": True})
    ),
    "PATCH /v1/password": lambda c: Base(
        body=_document("Password", {"value": PASSWORD, "resetToken": c.tokens["reset"]}),
        normal={"resetToken": c.tokens["reset"]},
    ),
    # Removing Roy's passkey needs a step-up: his current password.
    "DELETE /v1/passkeys/{passkey_id}": lambda c: Base(
        body=_document("Passkey", {"currentPassword": REGISTRATION["password"]})
    ),
    # A URL the rules accept outside production: http to a loopback address.
    "POST /v1/webhook_endpoints": lambda c: Base(
        body=_document(
            "WebhookEndpoint",
            {"url": "http://127.0.0.1:9/hooks", "events": ["customer.created"], "description": "CRM"},
        )
    ),
    "PATCH /v1/webhook_endpoints/{endpoint_id}": lambda c: Base(
        body=_document(
            "WebhookEndpoint", {"url": "http://localhost:9/crm", "events": ["*"], "description": "CRM"}
        )
    ),
    "POST /v1/passkey_challenges": lambda c: Base(
        role="guest", body=_document("PasskeyChallenge", {"scope": c.scope})
    ),
    # Adding a second factor takes a login of the last 5 minutes, or the current password: the
    # suite may take longer than that.
    "POST /v1/passkey_registrations": lambda c: Base(
        body=_document("PasskeyRegistration", {"currentPassword": REGISTRATION["password"]})
    ),
    "PATCH /v1/passkey_registrations/current": lambda c: Base(
        body=_document("PasskeyRegistration", {"credential": c.ceremonies.registration(), "name": "Laptop"})
    ),
    "POST /v1/totp_enrollments": lambda c: Base(
        body=_document("TotpEnrollment", {"currentPassword": OWNER_PASSWORD})
    ),
    # Confirming makes the owner tfa_totp, in a savepoint rolled back after each request.
    "PATCH /v1/totp_enrollments/current": lambda c: Base(
        body=_document("TotpEnrollment", {"code": c.ceremonies.totp_code()})
    ),
    "POST /v1/password_reset_tokens": lambda c: Base(
        role="guest", body=_document("PasswordResetToken", {"username": REGISTRATION["email"]})
    ),
    "POST /v1/token": lambda c: [
        Base(
            name="password grant",
            body={
                "grant_type": "password",
                "username": REGISTRATION["email"],
                "password": REGISTRATION["password"],
                "scope": c.scope,
            },
        ),
        Base(
            name="passkey grant",
            body={"grant_type": PASSKEY_GRANT, "assertion": c.ceremonies.assertion(), "scope": c.scope},
        ),
        Base(
            name="refresh_token grant",
            body={
                "grant_type": "refresh_token",
                "refresh_token": c.credentials["customer_refresh"],
                "scope": c.scope,
            },
        ),
    ],
    "POST /v1/token/introspect": lambda c: Base(body={"token": c.credentials["customer"]}),
    "POST /v1/token/revoke": lambda c: Base(body={"token": c.credentials["customer_refresh"]}),
    # A new password and a new email need the current password: with it, both reach the services.
    "PATCH /v1/user": lambda c: [
        Base(body=_document("User", {"currentPassword": REGISTRATION["password"]})),
        # Turning tfa_sms on: the texted code reaches its check (API.md 11).
        Base(
            name="tfa_sms",
            body=_document(
                "User",
                {
                    "currentPassword": REGISTRATION["password"],
                    "authMethod": "tfa_sms",
                    "phoneNumber": PHONE,
                    "phoneVerificationCode": c.ceremonies.phone_code(),
                },
            ),
        ),
    ],
    "POST /v1/users": lambda c: Base(
        body=_document("User", {"username": c.email(), "password": PASSWORD, "role": "support_specialist"})
    ),
}


def normal_value(name: str, schema: dict, context: Context, base: Base) -> str:
    """A sensible value for a field or parameter the base leaves out."""
    if name in base.normal:
        return base.normal[name]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        preferred = [v for v in ("registered", "active", "support_specialist") if v in schema["enum"]]
        return (preferred or schema["enum"])[0]
    if "integer" in _types(schema):
        return str(schema.get("minimum", 1))
    lowered = name.lower()
    known = {
        "email": context.email,
        "username": context.email,
        "code": context.code,
        "external_id": context.code,
        "include": lambda: "user",
        "locale": lambda: "en",
        "sort": lambda: "-insertedAt",
        "scope": lambda: context.scope,
        "currency": lambda: "USD",
        "client_id": lambda: context.credentials["client_id"],
        "client_secret": lambda: context.credentials["client_secret"],
        "refresh_token": lambda: context.credentials["customer_refresh"],
        "base_url": lambda: BASE_URL,
    }
    if lowered in known:
        return known[lowered]()
    if schema.get("format") == "date-time":
        return "2024-05-01T12:00:00Z"
    if "phone" in lowered:
        return PHONE
    if "password" in lowered:
        return PASSWORD
    if lowered.endswith("id"):
        return context.credentials["native_ids"]["customer_id"]
    return "Plain text"


def _types(schema: dict) -> list:
    types = schema.get("type", [])
    return types if isinstance(types, list) else [types]


# Body places: ("value", path) is a string at path; ("key", path) an object key at path.
Place = tuple[str, tuple]


def places(schema: dict, path: tuple = ()) -> list[Place]:
    """Every place of a body schema where a string goes: values, and keys of free-form objects."""
    found: list[Place] = []
    types = _types(schema)
    if "const" in schema or "enum" in schema or "string" in types:
        found.append(("value", path))
    for name, prop in schema.get("properties", {}).items():
        found += places(prop, (*path, name))
    if schema.get("additionalProperties") not in (None, False):
        found += [("key", path), ("value", (*path, "note"))]
    if "array" in types and isinstance(schema.get("items"), dict):
        found += places(schema["items"], (*path, 0))
    for branch in schema.get("anyOf", []):
        found += places(branch, path)
    return found


def leaves(value, path: tuple = ()) -> list[Place]:
    """Every string value of a body."""
    if isinstance(value, str):
        return [("value", path)]
    if isinstance(value, list):
        return [place for index, item in enumerate(value) for place in leaves(item, (*path, index))]
    if isinstance(value, dict):
        return [place for key, item in value.items() for place in leaves(item, (*path, key))]
    return []


def get_in(value, path: tuple):
    """The value at path, or None where there is none."""
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def set_in(value: dict, path: tuple, new) -> None:
    """Set new at path, making the objects and arrays on the way."""
    *parents, last = path
    for key, following in zip(parents, path[1:], strict=True):
        empty = [] if isinstance(following, int) else {}
        if isinstance(value, list):
            while len(value) <= key:
                value.append(copy.copy(empty))
            value = value[key]
        else:
            value = value.setdefault(key, empty)
    if isinstance(value, list):
        while len(value) <= last:
            value.append(None)
    value[last] = new


def minimal(schema: dict, name: str, context: Context, base: Base, ids: dict):
    """The required part of a body schema, with sensible values; constants (data.type) and data.id too."""
    types = _types(schema)
    if "object" in types or "properties" in schema:
        properties = schema.get("properties", {})
        chosen = {
            key for key, prop in properties.items() if key in schema.get("required", ()) or "const" in prop
        }
        result = {key: minimal(properties[key], key, context, base, ids) for key in sorted(chosen)}
        if "id" in properties and len(ids) == 1:  # data.id of a PATCH: the path's id
            result["id"] = next(iter(ids.values()))
        return result
    if "array" in types:
        return []
    if "integer" in types:
        return 1
    if "boolean" in types:
        return False
    return normal_value(name, schema, context, base)


def merge(into: dict, over: dict) -> dict:
    """into with over's values put in, object by object."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


@dataclass
class Operation:
    """One operation of the document, as the suite calls it."""

    method: str
    path: str  # as documented, with {parameters}
    definition: dict

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def error_shape(self) -> str:
        """The component its 4xx answers reference (Errors, OAuthError, ChecError); Errors by default."""
        for status, response in self.definition.get("responses", {}).items():
            for media in response.get("content", {}).values():
                reference = media.get("schema", {}).get("$ref", "")
                if status.startswith("4") and reference:
                    return reference.rsplit("/", 1)[-1]
        return "Errors"

    @property
    def credential_required(self) -> bool:
        security = self.definition.get("security", [])
        return bool(security) and all(security)

    def body_schemas(self) -> list[tuple[str, str, dict]]:
        """(encoding, media type, schema) of each distinct encoding of the body: form first."""
        content = self.definition.get("requestBody", {}).get("content", {})
        found = []
        if FORM in content:
            found.append(("form", FORM, content[FORM]["schema"]))
        json_types = sorted((m for m in content if m != FORM), key=lambda m: m != JSON_API)
        if json_types:
            found.append(("json", json_types[0], content[json_types[0]]["schema"]))
        return found

    def query_parameters(self) -> list[dict]:
        return [p for p in self.definition.get("parameters", []) if p["in"] == "query"]


def operations_of(document: dict) -> list[Operation]:
    return [
        Operation(method.upper(), path, definition)
        for path, methods in sorted(document["paths"].items())
        for method, definition in sorted(methods.items())
    ]


def error_format_problem(shape: str, status: int, response) -> str | None:
    """Why a 4xx answer is not in its face's error format, or None."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return "4xx not JSON"
    if shape == "OAuthError":
        return None if isinstance(body.get("error"), str) else 'no "error"'
    if shape == "ChecError":
        error = body.get("error")
        if body.get("status_code") != status or not isinstance(error, dict):
            return 'no "status_code" and "error"'
        if not (isinstance(error.get("type"), str) and isinstance(error.get("message"), str)):
            return 'no "error.type" and "error.message"'
        if status == 422 and not (isinstance(error.get("errors"), dict) and error["errors"]):
            return 'a 422 without "error.errors"'
        return None
    errors = body.get("errors")
    if not (isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors)):
        return 'no "errors"'
    if not all(isinstance(e.get("code"), str) and isinstance(e.get("title"), str) for e in errors):
        return 'an error without "code" and "title"'
    if status == 422 and not all(
        str((e.get("source") or {}).get("pointer", "")).startswith("/") for e in errors
    ):
        return 'a 422 error without "source.pointer"'
    return None


@dataclass
class Failure:
    operation: str
    location: str
    kind: str
    status: int
    problem: str
    excerpt: str

    def __str__(self) -> str:
        where = f"{self.operation} | {self.location} | {self.kind}"
        return f"{where} | {self.status} {self.problem} | {self.excerpt}"


@dataclass
class Run:
    """Sends calls, each in a savepoint rolled back after it, and keeps what went wrong."""

    client: object
    session: object  # the test's scoped session, which the requests share (one app context)
    failures: list = field(default_factory=list)
    sent: Counter = field(default_factory=Counter)  # by operation
    by_kind: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # by kind
    huge_sent: set = field(default_factory=set)

    def first_huge(self, operation: Operation, location: str) -> bool:
        """Whether the 1,000,000-character value is new to this place (once per face for SHARED_HEADERS)."""
        shared = location.removeprefix("header ") in SHARED_HEADERS
        place = (operation.error_shape if shared else operation.label, location)
        new = place not in self.huge_sent
        self.huge_sent.add(place)
        return new

    @contextmanager
    def rolled_back(self):
        # The request's session must begin inside the savepoint (its rollback on an error then
        # stays inside too), and must not keep what it loaded for the next request.
        self.session.remove()
        savepoint = self.session.session_factory.kw["bind"].begin_nested()
        try:
            yield
        finally:
            self.session.remove()
            savepoint.rollback()
            # Mail goes out on a background thread: let it finish before the next request.
            assert outbox.wait(DELIVERY_TIMEOUT)

    def send(self, operation: Operation, call: Call, kind: str = "base"):
        started = time.monotonic()
        with self.rolled_back():
            response = call.send(self.client)
            response.get_data()
        self.sent[operation.label] += 1
        self.by_kind[kind] += 1
        self.seconds[kind] += time.monotonic() - started
        return response

    def check(self, operation: Operation, call: Call, location: str, kind: str, must_refuse: bool) -> None:
        response = self.send(operation, call, kind)
        status = response.status_code
        if status >= 500:
            problem = "server error"
        elif must_refuse and status < 400:
            problem = "accepted"
        elif status >= 400:
            problem = error_format_problem(operation.error_shape, status, response)
        else:
            problem = None
        if problem:
            excerpt = " ".join(response.get_data()[:160].decode("utf-8", "replace").split())
            self.failures.append(Failure(operation.label, location, kind, status, problem, excerpt))

    def check_base(self, operation: Operation, call: Call, name: str) -> None:
        response = self.send(operation, call)
        if not 200 <= response.status_code < 300:
            excerpt = " ".join(response.get_data()[:300].decode("utf-8", "replace").split())
            problem = "base request refused: give the operation a working entry in BASES"
            self.failures.append(
                Failure(operation.label, f"base {name}".strip(), "-", response.status_code, problem, excerpt)
            )

    def report(self) -> str:
        """Every failure, one a line, grouped by what went wrong."""
        problems = Counter(failure.problem for failure in self.failures)
        lines = sorted(self.failures, key=lambda f: (f.problem != "server error", f.problem, str(f)))
        heading = ", ".join(f"{n} {problem}" for problem, n in problems.most_common())
        return f"{len(self.failures)} failures ({heading}):\n" + "\n".join(map(str, lines))


def bases_of(operation: Operation, context: Context) -> list[Base]:
    made = BASES.get(operation.label, lambda c: Base())(context)
    return made if isinstance(made, list) else [made]


def base_call(operation: Operation, base: Base, encoding: tuple | None, context: Context) -> Call:
    """The operation's valid request, in one encoding of its body (None: no body)."""
    ids = {**callers.real_ids(operation.path, context.credentials), **base.ids}
    path = operation.path
    arguments = {}
    for parameter in operation.definition.get("parameters", []):
        if parameter["in"] == "path":
            arguments[parameter["name"]] = ids[parameter["name"]]
            path = path.replace("{" + parameter["name"] + "}", arguments[parameter["name"]])
    headers = {"Accept": JSON_API if operation.error_shape == "Errors" else "application/json"}
    headers |= callers.auth_headers(
        operation.method, operation.path, operation.definition, context.credentials, base.role
    )
    call = Call(operation.method, path, dict(base.query), headers)
    if encoding is not None:
        kind, media_type, schema = encoding
        body = merge(minimal(schema, "", context, base, arguments), base.body)
        call = replace(call, body=body, encoding=kind, headers={**headers, "Content-Type": media_type})
    return call


def body_cases(base: Call, schema: dict):
    """Every string value and free-form object key of the body (schema's and base's), each kind."""
    found = places(schema) + leaves(base.body)
    seen = set()
    for place in found:
        if place in seen:
            continue
        seen.add(place)
        what, path = place
        pointer = "/" + "/".join(map(str, path))
        for kind in KINDS:
            if base.encoding == "json" and not kind.in_json:
                continue
            body = copy.deepcopy(base.body)
            if what == "key":
                holder = get_in(body, path)
                if not isinstance(holder, dict):
                    set_in(body, path, {})
                    holder = get_in(body, path)
                holder[kind.make("note")] = "Plain text"
                location = f"{base.encoding} key {pointer}"
            else:
                normal = get_in(base.body, path)
                set_in(body, path, kind.make(normal if isinstance(normal, str) else "Plain text"))
                location = f"{base.encoding} {pointer}"
            yield location, kind.name, replace(base, body=body), kind.unreadable


def whole_body_cases(base: Call, schema: dict):
    """JSON 1,000 deep as a value and as the body, and invalid UTF-8 in a string of the body."""
    deep = "[" * DEPTH + "]" * DEPTH
    body = copy.deepcopy(base.body)
    values = [path for what, path in places(schema) + leaves(body) if what == "value"]
    # An attribute where there are attributes (JSON:API), else the first field.
    target = next((path for path in values if "attributes" in path), values[0] if values else ("note",))
    set_in(body, target, "\x01PLACEHOLDER\x01")
    text = json.dumps(body, ensure_ascii=True)
    marker = json.dumps("\x01PLACEHOLDER\x01")
    pointer = "/" + "/".join(map(str, target))
    raws = (
        (f"json {pointer}", f"JSON {DEPTH} deep", text.replace(marker, deep).encode()),
        ("json body", f"JSON {DEPTH} deep", deep.encode()),
        (f"json {pointer}", "invalid UTF-8 bytes", text.encode().replace(marker.encode(), b'"\xff\xfe"')),
    )
    for location, kind, raw in raws:
        yield location, kind, replace(base, raw=raw), True


def header_cases(operation: Operation, base: Call, context: Context):
    """Every header the operation reads, and the token part of its credential.

    A credential that cannot be stored cannot be valid either: where the operation requires
    one, it must be refused. Other headers may be ignored (a 2xx is fine).
    """
    normal = {**HEADERS, **base.headers}
    required = operation.credential_required
    for name in (*HEADERS, *(name for name in CREDENTIAL_HEADERS if name in base.headers)):
        for kind in KINDS:
            if name == "Authorization":
                scheme, _, token = base.headers[name].partition(" ")
                value, location = scheme.encode() + b" " + _wire(kind.make(token)), f"header {name} (token)"
            else:
                value, location = kind.make(normal[name]), f"header {name}"
            refuse = kind.unreadable and required and name in CREDENTIAL_HEADERS
            yield location, kind.name, replace(base, headers={**base.headers, name: value}), refuse
    if CLIENT_BASIC in callers.schemes_of(operation.definition):
        yield from basic_cases(base, context, required)


def basic_cases(base: Call, context: Context, required: bool):
    """HTTP Basic client credentials with a hostile client id, then a hostile secret."""
    client_id, secret = context.credentials["client_id"], context.credentials["client_secret"]
    for kind in KINDS:
        for part, user, password in (
            ("client id", kind.make(client_id), secret),
            ("client secret", client_id, kind.make(secret)),
        ):
            encoded = base64.b64encode(_wire(user) + b":" + _wire(password)).decode()
            headers = {**base.headers, "Authorization": f"Basic {encoded}"}
            location = f"header Authorization (Basic {part})"
            yield location, kind.name, replace(base, headers=headers), kind.unreadable and required


def query_cases(operation: Operation, base: Call, context: Context, spec: Base):
    """Every query parameter the operation documents, percent-encoded as a client sends it."""
    for parameter in operation.query_parameters():
        name = parameter["name"]
        normal = base.query.get(name) or normal_value(name, parameter.get("schema", {}), context, spec)
        for kind in KINDS:
            query = {**base.query, name: kind.make(normal)}
            yield f"query {name}", kind.name, replace(base, query=query), kind.unreadable


@pytest.fixture
def credentials(client, auth, account, runner, register, mailbox, session) -> dict:
    """Real credentials and ids of one account, fetched as clients fetch them (tests/callers.py)."""
    return callers.fetch_credentials(client, auth, account, runner, register, mailbox, session)


@pytest.fixture
def context(credentials, account, session) -> Context:
    """Live one-time tokens for Roy (login link, password reset, email verification) and a guest."""
    roy = customers.get_customer(account.live, credentials["native_ids"]["customer_id"])
    user = roy.user
    guest = {"code": "GIA-1", "email": "gia@example.com"}
    gia = customers.create_customer(account.live, {**guest, "first_name": "Gia", "custom_data": {}})
    invited = customers.create_customer(account.live, {"status": "registered", "email": "ivy@example.com"})
    registration = {"password_hash": passwords.hash_password(PASSWORD), "username": None, "profile": {}}
    tokens = {
        "user_id": str(user.id),
        "invited_id": str(invited.id),
        "registration": one_time_tokens.issue(
            registrations.PURPOSE, customer=gia, email=gia.email, lifetime=3600, payload=registration
        ),
        "login": one_time_tokens.issue(magic_links.PURPOSE, customer=roy, email=roy.email, lifetime=900),
        "reset": one_time_tokens.issue(password_resets.PURPOSE, user=user, email=user.email, lifetime=3600),
        "verification": one_time_tokens.issue(
            email_verifications.PURPOSE, user=user, email=user.email, lifetime=timedelta(hours=1)
        ),
    }
    secret, _ = totp.start_enrolment(account.owner, issuer="Acme")
    session.commit()
    ceremonies = Ceremonies(session, account.live.id, user.id, credentials["authenticator"], secret)
    return Context(credentials, tokens, guest, scope=f"aid:{account.live.id}", ceremonies=ceremonies)


def attack(run: Run, operation: Operation, base: Base, context: Context) -> None:
    """Send the operation's valid request, then every hostile case of it, in each body encoding."""
    encodings = operation.body_schemas() or [None]
    for encoding in encodings:
        call = base_call(operation, base, encoding, context)
        run.check_base(operation, call, " ".join(filter(None, (base.name, encoding and encoding[0]))))
        cases = []
        if encoding is not None:
            cases += body_cases(call, encoding[2])
            if encoding[0] == "json":
                cases += whole_body_cases(call, encoding[2])
        if encoding is encodings[0]:  # query and headers once, in the first encoding
            cases += query_cases(operation, call, context, base)
            cases += header_cases(operation, call, context)
        prefix = f"[{base.name}] " if base.name else ""
        for location, kind, hostile, refuse in cases:
            if kind == HUGE_KIND.name and not run.first_huge(operation, location):
                continue
            run.check(operation, hostile, prefix + location, kind, refuse)


def test_no_hostile_input_gets_a_server_error(client, session, context, caplog):
    # Thousands of requests: keep the access log and login failures out of a failure's report.
    caplog.set_level(logging.ERROR, logger="freshcom_customers.access")
    caplog.set_level(logging.ERROR, logger="freshcom_customers.security")
    operations = operations_of(client.get("/openapi.json").get_json())
    run = Run(client, session)
    started = time.monotonic()
    for operation in operations:
        for base in bases_of(operation, context):
            attack(run, operation, base, context)
    huge = HUGE_KIND.name
    print(
        f"hostile inputs: {run.sent.total()} requests in {time.monotonic() - started:.1f} s "
        f"({run.by_kind[huge]} of them {huge}: {run.seconds[huge]:.1f} s)"
    )
    assert all(run.sent[operation.label] > 1 for operation in operations), run.sent
    if run.failures:
        pytest.fail(run.report(), pytrace=False)


def _json_with(valid: dict, **changes) -> str:
    return json.dumps({**valid, **changes})


def _response_with(valid: dict, **changes) -> str:
    return _json_with(valid, response={**valid["response"], **changes})


def _client_data_with(valid: dict, **changes) -> str:
    client_data = json.loads(from_b64url(valid["response"]["clientDataJSON"]))
    return _response_with(valid, clientDataJSON=b64url(json.dumps({**client_data, **changes}).encode()))


# The passkey grant's assertion (API.md 11): the JSON text of a credential's toJSON(), made from a
# valid one for a live challenge, so that only the hostile part can be what is refused.
HOSTILE_ASSERTIONS: dict[str, Callable[[dict], str]] = {
    "NUL": lambda valid: "\x00",
    "NUL inside": lambda valid: _inside(json.dumps(valid), "\x00"),
    "NUL in a string": lambda valid: _json_with(valid, type="public-key\x00"),
    "lone surrogate": lambda valid: "\udcff",
    "lone surrogate inside": lambda valid: _inside(json.dumps(valid), "\ud800"),
    "lone surrogate in a string": lambda valid: _json_with(valid, id="\udcff"),
    "100 kB": lambda valid: "x" * 100_000,
    "100 kB in a string": lambda valid: _response_with(valid, signature="A" * 100_000),
    "arrays 50,000 deep": lambda valid: "[" * 50_000 + "]" * 50_000,
    "objects 20,000 deep": lambda valid: '{"a":' * 20_000 + "1" + "}" * 20_000,
    "response 20,000 deep": lambda valid: _json_with(valid, response="[" * 20_000 + "]" * 20_000),
    "clientDataJSON 30,000 deep": lambda valid: _response_with(
        valid, clientDataJSON=b64url(b"[" * 30_000 + b"]" * 30_000)
    ),
    "not JSON": lambda valid: "not JSON",
    "JSON cut short": lambda valid: json.dumps(valid)[:-1],
    "NaN": lambda valid: "NaN",
    "a JSON array": lambda valid: json.dumps([valid]),
    "a JSON string": lambda valid: json.dumps(json.dumps(valid)),
    "a JSON number": lambda valid: "1e999",
    "null": lambda valid: "null",
    "id and rawId numbers": lambda valid: _json_with(valid, id=1, rawId=1),
    "rawId not base64url": lambda valid: _json_with(valid, rawId="%%%"),
    "type a list": lambda valid: _json_with(valid, type=["public-key"]),
    "authenticatorAttachment NUL": lambda valid: _json_with(valid, authenticatorAttachment="\x00"),
    "response a list": lambda valid: _json_with(valid, response=[valid["response"]]),
    "clientDataJSON a number": lambda valid: _response_with(valid, clientDataJSON=1),
    "clientDataJSON not base64url": lambda valid: _response_with(valid, clientDataJSON="%%%"),
    "clientDataJSON not JSON": lambda valid: _response_with(valid, clientDataJSON=b64url(b"not JSON")),
    "clientDataJSON invalid UTF-8": lambda valid: _response_with(
        valid, clientDataJSON=b64url(b'{"challenge":"\xff"}')
    ),
    "clientDataJSON a JSON array": lambda valid: _response_with(valid, clientDataJSON=b64url(b"[]")),
    "challenge a number": lambda valid: _client_data_with(valid, challenge=1),
    "challenge an object": lambda valid: _client_data_with(valid, challenge={"a": 1}),
    "challenge 10,000 characters": lambda valid: _client_data_with(valid, challenge="A" * 10_000),
    "origin a list": lambda valid: _client_data_with(valid, origin=["http://localhost:3000"]),
    "authenticatorData an object": lambda valid: _response_with(valid, authenticatorData={}),
    "authenticatorData 1 byte": lambda valid: _response_with(valid, authenticatorData=b64url(b"x")),
    "signature a list": lambda valid: _response_with(valid, signature=[]),
    "signature not DER": lambda valid: _response_with(valid, signature=b64url(b"x" * 72)),
    "rawId 60,000 bytes": lambda valid: _json_with(valid, rawId=b64url(os.urandom(60_000))),
    "userHandle a number": lambda valid: _response_with(valid, userHandle=1),
    "userHandle another user's": lambda valid: _response_with(valid, userHandle=b64url(uuid.uuid4().bytes)),
}


@pytest.fixture
def fresh_assertion(client, auth, account, roy) -> Callable[[], dict]:
    """A new assertion of Roy's passkey (registered through the API) for a new login challenge."""
    login = auth.login(account, REGISTRATION["email"], REGISTRATION["password"])
    authenticator = Authenticator()
    callers.register_passkey(client, auth.headers(login["access_token"]), authenticator)
    assert outbox.wait(DELIVERY_TIMEOUT)  # the "passkey added" email, logged inside this test
    challenge = _document("PasskeyChallenge", {"scope": f"aid:{account.live.id}"})

    def fresh_assertion() -> dict:
        response = client.post("/v1/passkey_challenges", data=json.dumps(challenge), content_type=JSON_API)
        assert response.status_code == 201, response.get_json()
        return authenticator.get(response.get_json()["data"]["attributes"]["publicKey"])

    return fresh_assertion


def _passkey_grant(account, assertion: str, encoding: str) -> Call:
    body = {"grant_type": PASSKEY_GRANT, "assertion": assertion, "scope": f"aid:{account.live.id}"}
    content_type = FORM if encoding == "form" else "application/json"
    return Call("POST", "/v1/token", headers={"Content-Type": content_type}, body=body, encoding=encoding)


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_a_fresh_passkey_assertion_logs_in(client, account, fresh_assertion, encoding):
    response = _passkey_grant(account, json.dumps(fresh_assertion()), encoding).send(client)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("encoding", ["form", "json"])
@pytest.mark.parametrize("kind", list(HOSTILE_ASSERTIONS))
def test_a_hostile_passkey_assertion_is_a_grant_error(client, account, fresh_assertion, kind, encoding):
    assertion = HOSTILE_ASSERTIONS[kind](fresh_assertion())
    response = _passkey_grant(account, assertion, encoding).send(client)
    assert response.status_code == 400, response.get_data()[:300]
    assert response.get_json()["error"] in ("invalid_grant", "invalid_request")


@pytest.mark.parametrize("size", [1024, 3000, 60_000])
def test_a_credential_id_over_1023_bytes_is_refused(client, auth, account, roy, size):
    """WebAuthn L3 7.1: an RP SHOULD fail a registration whose credentialId is over 1,023 bytes."""
    login = auth.login(account, REGISTRATION["email"], REGISTRATION["password"])
    authenticator = Authenticator(credential_id=os.urandom(size))  # random: no compression helps
    response = callers.passkey_registration(client, auth.headers(login["access_token"]), authenticator)
    assert response.status_code == 422, response.get_data()[:300]


ERROR = {"code": "format", "title": "Email is invalid."}
CHEC_ERROR = {"type": "validation", "message": "The given data was invalid."}


@pytest.mark.parametrize(
    ("shape", "status", "body", "problem"),
    [
        ("Errors", 422, {"errors": [{**ERROR, "source": {"pointer": "/data/attributes/email"}}]}, None),
        ("Errors", 422, {"errors": [ERROR]}, 'a 422 error without "source.pointer"'),
        ("Errors", 400, {"errors": [{"code": "invalid_request"}]}, 'an error without "code" and "title"'),
        ("Errors", 400, {"error": "invalid_request"}, 'no "errors"'),
        ("Errors", 400, "<h1>Bad Request</h1>", "4xx not JSON"),
        ("OAuthError", 400, {"error": "invalid_grant"}, None),
        ("OAuthError", 400, {"errors": [ERROR]}, 'no "error"'),
        ("ChecError", 422, {"status_code": 422, "error": {**CHEC_ERROR, "errors": {"email": ["x"]}}}, None),
        ("ChecError", 422, {"status_code": 422, "error": CHEC_ERROR}, 'a 422 without "error.errors"'),
        ("ChecError", 404, {"status_code": 400, "error": CHEC_ERROR}, 'no "status_code" and "error"'),
        (
            "ChecError",
            400,
            {"status_code": 400, "error": {"type": "bad_request"}},
            'no "error.type" and "error.message"',
        ),
    ],
)
def test_each_face_error_format_is_checked(shape, status, body, problem):
    if isinstance(body, str):
        response = Response(body, status=status, mimetype="text/html")
    else:
        response = Response(json.dumps(body), status=status, mimetype="application/json")
    assert error_format_problem(shape, status, response) == problem


def test_every_string_and_free_form_key_of_a_body_is_a_place():
    linkage = {"type": "object", "properties": {"id": {"type": "string"}, "type": {"const": "User"}}}
    attributes = {
        "name": {"type": ["string", "null"]},
        "count": {"type": "integer"},
        "customData": {"type": "object", "additionalProperties": {}},
        "lineItems": {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
    }
    data = {
        "type": {"const": "Customer"},
        "attributes": {"type": ["object", "null"], "properties": attributes},
        "relationships": {
            "type": "object",
            "properties": {"user": {"properties": {"data": {"anyOf": [{"type": "null"}, linkage]}}}},
        },
    }
    schema = {"type": "object", "properties": {"data": {"type": "object", "properties": data}}}
    assert places(schema) == [
        ("value", ("data", "type")),
        ("value", ("data", "attributes", "name")),
        ("key", ("data", "attributes", "customData")),
        ("value", ("data", "attributes", "customData", "note")),
        ("key", ("data", "attributes", "lineItems", 0)),
        ("value", ("data", "attributes", "lineItems", 0, "note")),
        ("value", ("data", "relationships", "user", "data", "id")),
        ("value", ("data", "relationships", "user", "data", "type")),
    ]
