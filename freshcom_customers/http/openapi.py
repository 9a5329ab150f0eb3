"""GET /openapi.json: the OpenAPI 3.1 document of every route (http/docs.py renders it at /docs).

Each route declares its contract next to it (http/contracts.py); this module reads the
declarations of the app's URL map and writes them as one document, importing no face.
Request bodies and resource attributes come from the marshmallow schemas the routes load and
dump with (apispec's MarshmallowPlugin converts each field); what no schema describes (the
JSON:API envelope, error objects, the Chec objects, RFC 6749's answers) is written by the face
that answers it, as the shapes its declarations name. A route without a declaration fails the
build, so a new route cannot go undocumented. Tests check the document against real answers
(tests/http/test_openapi.py) and against what each route reads (tests/http/test_contracts.py),
and fuzz every operation against it (tests/http/test_openapi_fuzz.py).
"""

import re
from collections.abc import Mapping

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, json
from marshmallow import Schema
from werkzeug.routing import Rule

from freshcom_customers import __version__, schemas
from freshcom_customers.http import contracts
from freshcom_customers.http.contracts import BEARER as BEARER  # the schemes' names, for tests and callers
from freshcom_customers.http.contracts import CHEC_BEARER as CHEC_BEARER
from freshcom_customers.http.contracts import CLIENT_BASIC as CLIENT_BASIC
from freshcom_customers.http.contracts import OBJECT, SECURITY_SCHEMES, STRING, Contract, Shape, contract
from freshcom_customers.http.contracts import PUBLISHABLE_KEY as PUBLISHABLE_KEY

bp = Blueprint("openapi", __name__)

OPENAPI = Shape(
    "OpenApi", contracts.object_schema({"openapi": STRING, "paths": OBJECT}, ("openapi", "paths"))
)


class Fields:
    """marshmallow fields to JSON Schema properties, by apispec's MarshmallowPlugin (contracts.Fields)."""

    def __init__(self, plugin: MarshmallowPlugin):
        self.converter = plugin.converter

    def properties(self, schema: Schema, *, side: str, camel_case: bool) -> tuple[dict, list]:
        """The properties of schema's fields as read ("load") or written ("dump"), and the required ones.

        Keys are the fields' data_keys, else their names (lowerCamelCase where camel_case).
        Written values may be null wherever the model allows it, so dump types add null.
        """
        properties, required = {}, []
        for name, schema_field in schema.fields.items():
            if (side == "load" and schema_field.dump_only) or (side == "dump" and schema_field.load_only):
                continue
            key = schema_field.data_key or (schemas.camelize(name) if camel_case else name)
            prop = self.converter.field2property(schema_field)
            prop.pop("readOnly", None)
            prop.pop("writeOnly", None)
            if side == "dump":
                prop = _written(prop)
            properties[key] = prop
            if side == "load" and schema_field.required:
                required.append(key)
        return properties, required


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


class Components:
    """The shapes the declarations reach, each written once (components.schemas) and referenced."""

    def __init__(self, fields: Fields):
        self.fields = fields
        self.schemas: dict[str, dict] = {}
        self.shapes: dict[str, Shape] = {}

    def resolve(self, value):
        """value with each named shape in it replaced by a reference, and each other one by its schema."""
        if isinstance(value, Shape):
            return self._reference(value) if value.name else self.resolve(self._schema(value))
        if isinstance(value, Mapping):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(item) for item in value]
        return value

    def _reference(self, shape: Shape) -> dict:
        known = self.shapes.setdefault(shape.name, shape)
        if shape.name not in self.schemas:
            self.schemas[shape.name] = self.resolve(self._schema(shape))
        elif known is not shape and self.resolve(self._schema(shape)) != self.schemas[shape.name]:
            raise ValueError(f"Two different shapes are called {shape.name}.")
        return {"$ref": f"#/components/schemas/{shape.name}"}

    def _schema(self, shape: Shape):
        return shape.schema(self.fields) if callable(shape.schema) else shape.schema


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


def declarations(app: Flask) -> dict[str, Contract]:
    """The contract of each of the app's endpoints that declares one."""
    return {endpoint: found for endpoint, view in app.view_functions.items() if (found := contracts.of(view))}


def _declaration(app: Flask, rule: Rule) -> Contract:
    found = contracts.of(app.view_functions[rule.endpoint])
    if found is None:
        raise LookupError(f"{rule.endpoint} ({rule.rule}) declares no contract: give it an @contract.")
    return found


def build(app: Flask) -> dict:
    """The OpenAPI 3.1 document of app's routes."""
    plugin = MarshmallowPlugin()
    # The Chec face's prefix, as chec.url_prefix reads it (this module imports no face).
    chec_prefix = "/" + app.config["CHEC_URL_PREFIX"].strip("/")
    spec = APISpec(
        title="freshcom_customers",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Customer identity for online stores: an OAuth2 token endpoint, "
            "Freshcom's JSON:API dialect under /v1 and Commerce.js's Chec dialect under "
            f"{chec_prefix}."
        },
    )
    components = Components(Fields(plugin))  # after APISpec: it binds the plugin
    paths: dict[str, dict] = {}
    for rule, method in documented_rules(app):
        operation = _operation(components, rule, _declaration(app, rule))
        paths.setdefault(openapi_path(rule), {})[method.lower()] = operation
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in sorted(components.schemas.items()):
        spec.components.schema(name, schema)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(components: Components, rule: Rule, declared: Contract) -> dict:
    document = {
        "operationId": rule.endpoint.replace(".", "_"),
        "summary": declared.summary,
        "tags": [declared.tag],
        "responses": _responses(components, declared),
    }
    if declared.description:
        document["description"] = declared.description
    parameters = [
        {"name": argument, "in": "path", "required": True, "schema": STRING}
        for argument in sorted(rule.arguments)
    ]
    parameters += [param.document() for param in declared.query]
    if parameters:
        document["parameters"] = parameters
    if declared.body is not None:
        media = {"schema": components.resolve(declared.body.json_schema(components.fields))}
        content = dict.fromkeys(declared.body.media_types, media)
        document["requestBody"] = {"required": declared.body.required, "content": content}
    security = [{scheme: []} for scheme in declared.security]
    document["security"] = ([{}] if declared.optional_auth else []) + security
    return document


def _responses(components: Components, declared: Contract) -> dict:
    # What any route may answer, in its face's error shape: 400 for text no database can store
    # (inputs.py), and 503 while the database is down or behind its migrations.
    responses = {400: declared.errors, 503: declared.errors, **declared.responses}
    documented = {}
    for status, shape in sorted(responses.items()):
        response = {"description": _STATUS_TEXT.get(status, "Error")}
        if shape is not None:
            response["content"] = {shape.media_type: {"schema": components.resolve(shape)}}
        documented[str(status)] = response
    return documented


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


def document_of(app: Flask) -> dict:
    """The app's document, built once: routes do not change after the app is created."""
    if "freshcom_openapi" not in app.extensions:
        app.extensions["freshcom_openapi"] = build(app)
    return app.extensions["freshcom_openapi"]


@bp.get("/openapi.json")
@contract("This document", tag="Discovery", responses={200: OPENAPI})
def document():
    body = json.dumps(document_of(current_app._get_current_object()))
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-cache"})
