"""Route contracts: what each route reads and answers, declared on the route itself.

A view's @contract states its summary, credentials, statuses, query parameters and body once,
next to the code. The route's parsing reads its parameters and body from it (api/jsonapi.py,
chec/wire.py: an undeclared parameter is a bug, and a 500), and /openapi.json is built from
the declarations (http/openapi.py), so the document and the parsing cannot differ.

Shapes (the JSON Schemas that responses name) are defined by the face that writes them and
found through the declarations that name them, so the builder imports no face.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app, request
from marshmallow import Schema

# Security schemes (components.securitySchemes), by the names operations use.
BEARER = "bearerAuth"
PUBLISHABLE_KEY = "publishableKey"
CHEC_BEARER = "checBearer"
CLIENT_BASIC = "clientBasic"
METRICS_TOKEN = "metricsToken"
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
    METRICS_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "FRESHCOM_METRICS_TOKEN, which the Prometheus server sends.",
    },
}

JSON = "application/json"
JSONAPI = "application/vnd.api+json"

# JSON Schema pieces the faces' shapes are written with.
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
OBJECT = {"type": "object"}


def object_schema(properties: dict, required=(), **extra) -> dict:
    """A JSON Schema object of properties, of which required must be present."""
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


class Fields(Protocol):
    """What the builder offers shapes and bodies made from marshmallow schemas."""

    def properties(self, schema: Schema, *, side: str, camel_case: bool) -> tuple[dict, list]:
        """The JSON Schemas of schema's fields as read ("load") or written ("dump"), and the required."""


@dataclass(frozen=True, eq=False)
class Shape:
    """A JSON Schema that responses name, and the media type it is answered in.

    A named shape is written once, as a component, and referenced wherever a declaration or
    another shape's schema holds it; a nameless one is written inline. schema may be a function
    of the builder's Fields, for shapes made from a marshmallow schema.
    """

    name: str
    schema: Mapping | Callable[[Fields], Mapping]
    media_type: str = JSON


# The JSON:API error document: the native face's errors, and those of every path under no
# face's prefix (/health, /openapi.json, /.well-known/*), which http/errors.py answers natively.
ERRORS = Shape(
    "Errors",
    object_schema(
        {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": object_schema(
                    {
                        "code": STRING,
                        "title": STRING,
                        "detail": STRING,
                        "source": object_schema({"pointer": STRING, "parameter": STRING}),
                    },
                    ("code", "title"),
                ),
            }
        },
        ("errors",),
    ),
    JSONAPI,
)


@dataclass(frozen=True, eq=False)
class Param:
    """A query parameter a route reads, as documented, and the values the route accepts."""

    name: str
    schema: Mapping = field(default_factory=lambda: STRING)
    description: str = ""
    values: tuple[str, ...] = ()  # what the route accepts, where it checks (include, sort)
    aliases: tuple[str, ...] = ()  # other spellings the route reads, undocumented (reset_token)
    ignored: bool = False  # accepted and never read (locale)

    def document(self) -> dict:
        """The OpenAPI parameter object."""
        parameter = {"name": self.name, "in": "query", "required": False, "schema": dict(self.schema)}
        if self.description:
            parameter["description"] = self.description
        return parameter


@dataclass(frozen=True, eq=False)
class Body:
    """A request body: the marshmallow schema the route loads it with, and its media types."""

    schema: Schema
    media_types: tuple[str, ...] = (JSON,)
    partial: bool = False  # an update: no field is required
    required: bool = True

    def json_schema(self, fields: Fields) -> dict:
        """The body as a JSON object of the schema's fields, by their data_key."""
        properties, required = fields.properties(self.schema, side="load", camel_case=False)
        return object_schema(properties, () if self.partial else required)


class Undeclared(LookupError):
    """A route read a query parameter or body its contract does not declare: a bug."""


@dataclass(frozen=True, eq=False)
class Contract:
    """What one route reads and answers."""

    summary: str
    tag: str
    responses: Mapping[int, Shape | None]  # None: no body
    security: tuple[str, ...] = ()  # one of these schemes
    optional_auth: bool = False  # ...or none
    errors: Shape = ERRORS  # the shape of errors any route may answer (400, 503)
    query: tuple[Param, ...] = ()
    body: Body | None = None
    description: str = ""

    def __post_init__(self):
        # By name, for param(): a read of a query parameter looks its declaration up.
        object.__setattr__(self, "_params", {param.name: param for param in self.query})

    def param(self, name: str) -> Param:
        """The declared query parameter called name."""
        found = self._params.get(name)
        if found is None:
            raise Undeclared(f"{request.endpoint} reads {name}, which its contract does not declare.")
        return found

    def params(self, prefix: str) -> tuple[Param, ...]:
        """The declared query parameters whose names start with prefix (a family, such as filter[)."""
        found = tuple(self.param(param.name) for param in self.query if param.name.startswith(prefix))
        if not found:
            raise Undeclared(f"{request.endpoint} reads {prefix}…, which its contract does not declare.")
        return found

    def declared_body(self) -> Body:
        """The declared request body."""
        if self.body is None:
            raise Undeclared(f"{request.endpoint} reads a body its contract does not declare.")
        return self.body


_ATTRIBUTE = "freshcom_contract"


def contract(summary: str, *, tag: str, responses: Mapping, security: str | tuple = (), **details):
    """Declare the route's contract: the document states it and the route's parsing reads it."""
    declared = Contract(
        summary, tag, responses, (security,) if isinstance(security, str) else tuple(security), **details
    )

    def declare(view):
        setattr(view, _ATTRIBUTE, declared)
        return view

    return declare


def of(view: Callable) -> Contract | None:
    """The contract a view function declares, if any."""
    return getattr(view, _ATTRIBUTE, None)


def current() -> Contract:
    """The contract of the request's view."""
    declared = of(current_app.view_functions[request.endpoint])
    if declared is None:
        raise Undeclared(f"{request.endpoint} declares no contract.")
    return declared


def arg(name: str) -> str | None:
    """The value of the view's declared query parameter name (or of one of its aliases)."""
    param = current().param(name)
    if not request.query_string:
        return None
    for spelling in (name, *param.aliases):
        value = request.args.get(spelling)
        if value:
            return value
    return request.args.get(name)


def args():
    """The whole query string: for a parser that refuses what the view does not declare (an
    unknown filter), or that repeats it (a next page's link)."""
    return request.args
