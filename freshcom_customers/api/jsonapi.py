"""The JSON:API envelope of the native face: documents, key casing, paging and errors."""

import re
from dataclasses import dataclass
from datetime import UTC

from flask import Response, json, request
from marshmallow import Schema, fields

from freshcom_customers import schemas
from freshcom_customers.errors import FieldError, ValidationFailed
from freshcom_customers.http import contracts
from freshcom_customers.http.contracts import OBJECT, STRING, Param, Shape, object_schema
from freshcom_customers.schemas import camelize, underscore

MEDIA_TYPE = contracts.JSONAPI
BODY_TYPES = (MEDIA_TYPE, "application/json")
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# Past any real list, and small enough that (number - 1) * size fits a database's BIGINT offset.
MAX_PAGE_NUMBER = 10**9


class ApiError(Exception):
    """An error answered in JSON:API form, raised where the request is read."""

    def __init__(self, status: int, code: str, title: str, source: dict | None = None):
        super().__init__(title)
        self.status, self.code, self.title, self.source = status, code, title, source


# Declaring routes (http/contracts.py): the query parameters, bodies and documents of the face

ERRORS = contracts.ERRORS
# Error statuses of the native face: every route with a token, every route with a body.
TOKEN_ERRORS = {401: ERRORS, 403: ERRORS}
BODY_ERRORS = {400: ERRORS, 409: ERRORS, 415: ERRORS, 422: ERRORS}
DEFAULT_SORT = "-insertedAt"
LOCALE = Param("locale", description="Accepted and ignored: nothing is translated.", ignored=True)
PAGE = (
    Param("page[number]", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_NUMBER}),
    Param("page[size]", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
)
SEARCH = Param("search")


def contract(
    summary: str, *, include=(), sort=(), filters=(), search=False, paged=False, query=(), **details
):
    """Declare a native route's contract with the list parameters it reads; locale goes with every route."""
    parameters = (
        LOCALE,
        *(PAGE if paged else ()),
        *(Param(f"filter[{camelize(key)}]") for key in filters),
        *((SEARCH,) if search else ()),
        *((_sort_param(sort),) if sort else ()),
        *((_include_param(include),) if include else ()),
        *query,
    )
    return contracts.contract(summary, query=parameters, **details)


def _sort_param(allowed: tuple[str, ...]) -> Param:
    names = ", ".join(camelize(f) for f in allowed)
    description = f"{DEFAULT_SORT} (default), {names}; comma-separated."
    return Param("sort", description=description, values=allowed)


def _include_param(allowed: tuple[str, ...]) -> Param:
    description = "Comma-separated: " + ", ".join(camelize(name) for name in allowed) + "."
    return Param("include", description=description, values=allowed)


@dataclass(frozen=True, eq=False)
class DocumentBody(contracts.Body):
    """A JSON:API request document of one resource type, its attributes read with schema."""

    resource_type: str = ""
    relationships: tuple[tuple[str, str], ...] = ()  # (name, type) of the to-one relationships read

    def json_schema(self, fields: contracts.Fields) -> dict:
        attributes, required = fields.properties(self.schema, side="load", camel_case=True)
        required = [] if self.partial else required
        data = {
            "type": {"const": self.resource_type, "description": "Defaults to the route's type."},
            # null reads as no attributes.
            "attributes": object_schema(attributes, required)
            | {"type": ["object", "null"] if not required else "object"},
        }
        if self.partial:  # an update may name the resource it updates
            data["id"] = {"type": "string", "description": "The id in the URL, if sent."}
        if self.relationships:
            data["relationships"] = object_schema(
                {name: object_schema({"data": _linkage(type_)}) for name, type_ in self.relationships}
            )
        return object_schema({"data": object_schema(data, ("attributes",) if required else ())}, ("data",))


def _linkage(resource_type: str) -> dict:
    identifier = object_schema({"type": {"const": resource_type}, "id": STRING}, ("id",))
    return {"anyOf": [{"type": "null"}, identifier]}


def body(
    resource_type: str, schema: Schema, *, partial=False, relationships=(), required=True
) -> DocumentBody:
    """Declare a request document of resource_type; partial for an update (PATCH)."""
    return DocumentBody(schema, BODY_TYPES, partial, required, resource_type, tuple(relationships))


RESOURCE = Shape(
    "Resource", object_schema({"id": STRING, "type": STRING, "attributes": OBJECT}, ("id", "type"))
)


def documents(resource_type: str, schema: Schema) -> tuple[Shape, Shape]:
    """The shapes of a document of one resource_type and of a list of them, attributes as schema writes."""
    resource = Shape(resource_type, lambda fields: _resource_schema(fields, resource_type, schema))
    included = {"type": "array", "items": RESOURCE}
    one = object_schema({"data": resource, "included": included, "meta": OBJECT}, ("data",))
    counts = {"totalCount": {"type": "integer"}, "allCount": {"type": "integer"}}
    # Only where a total may be estimated (customers' searches): false when it is.
    estimated = {"totalCountExact": {"type": "boolean"}}
    many = object_schema(
        {
            "data": {"type": "array", "items": resource},
            "included": included,
            "meta": object_schema({**counts, **estimated}, tuple(counts)),
        },
        ("data", "meta"),
    )
    return Shape(f"{resource_type}Document", one, MEDIA_TYPE), Shape(f"{resource_type}List", many, MEDIA_TYPE)


def _resource_schema(fields: contracts.Fields, resource_type: str, schema: Schema) -> dict:
    attributes, _ = fields.properties(schema, side="dump", camel_case=True)
    return object_schema(
        {
            "id": STRING,
            "type": {"const": resource_type},
            "attributes": object_schema(attributes),
            "relationships": OBJECT,
        },
        ("id", "type", "attributes"),
    )


# Reading requests


def load(resource_id=None) -> dict:
    """Load data.attributes with the view's declared body: its schema, resource type and partial."""
    declared = contracts.current().declared_body()
    attributes = read_attributes(declared.resource_type, resource_id)
    return schemas.load(declared.schema, attributes, partial=declared.partial)


def load_if_sent(resource_id=None) -> dict:
    """load(), or nothing when the request has no body (a body declared with required=False)."""
    return load(resource_id) if request.content_length else {}


def read_attributes(resource_type: str, resource_id=None) -> dict:
    """Read data.attributes of the request document, keys snake_case.

    A missing data.type defaults to resource_type; a different one is 409, and so is a
    data.id other than the one in the URL.
    """
    if request.mimetype not in BODY_TYPES:
        raise ApiError(415, "unsupported_media_type", f"Send the body as {MEDIA_TYPE}.")
    body = request.get_json(silent=True)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON:API document with a data object.")
    if data.get("type", resource_type) != resource_type:
        raise ApiError(409, "type_mismatch", f"data.type must be {resource_type}.", {"pointer": "/data/type"})
    if resource_id is not None and "id" in data and str(data["id"]) != str(resource_id):
        raise ApiError(409, "id_mismatch", "data.id must be the id in the URL.", {"pointer": "/data/id"})
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):  # null too, as data.relationships (read_relationship)
        raise ApiError(
            400, "invalid_request", "data.attributes must be an object.", {"pointer": "/data/attributes"}
        )
    return {underscore(k): v for k, v in attributes.items()}


def read_relationship(name: str) -> dict:
    """Read the declared to-one data.relationships.<name> of the request document as {name: id or None}.

    Empty when the document does not send it (or sends only links or meta), so a partial
    update can tell "unchanged" from "none". data.relationships that is not an object (null
    among them: JSON:API has no null relationships object) and a linkage that is not a
    resource identifier are 400; a linkage of another type is 422 on the relationship.
    """
    resource_type = dict(contracts.current().declared_body().relationships)[name]
    body = request.get_json(silent=True)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or "relationships" not in data:
        return {}
    relationships = data["relationships"]
    if not isinstance(relationships, dict):
        raise ApiError(
            400,
            "invalid_request",
            "data.relationships must be an object.",
            {"pointer": "/data/relationships"},
        )
    if name not in relationships:
        return {}
    pointer = f"/data/relationships/{name}"
    related = relationships[name]
    if not isinstance(related, dict):
        raise ApiError(400, "invalid_request", f"{pointer} must be an object.", {"pointer": pointer})
    if "data" not in related:
        return {}
    linkage = related["data"]
    if linkage is None:
        return {name: None}
    if not isinstance(linkage, dict) or not isinstance(linkage.get("id"), str):
        title = f"{pointer}/data must be null or a resource identifier with a string id."
        raise ApiError(400, "invalid_request", title, {"pointer": f"{pointer}/data"})
    if linkage.get("type", resource_type) != resource_type:
        raise ValidationFailed(
            FieldError(f"{underscore(name)}_id", "invalid", f"{name} must name a {resource_type}.")
        )
    return {name: linkage["id"]}


def page_params() -> tuple[int, int]:
    """Read page[number] (from 1) and page[size] (1 to 100)."""
    return _positive_int("page[number]", 1), _positive_int("page[size]", PAGE_SIZE)


_FILTER = re.compile(r"^filter\[(?P<key>[^\]]+)\]$")


def filter_params() -> dict:
    """Read the declared filter[<key>] parameters, keys snake_case; an unknown key is 400, not ignored."""
    allowed = [
        underscore(_FILTER.match(param.name)["key"]) for param in contracts.current().params("filter[")
    ]
    filters = {}
    for name, value in contracts.args().items():
        match = _FILTER.match(name)
        if match is None:
            continue
        key = underscore(match["key"])
        if key not in allowed:
            known = ", ".join(f"filter[{camelize(k)}]" for k in allowed)
            raise ApiError(
                400, "invalid_request", f"Unknown filter {name}; use {known}.", {"parameter": name}
            )
        filters[key] = value
    return filters


def sort_params() -> list[tuple[str, bool]]:
    """Read sort= (JSON:API syntax: comma-separated, - for descending) as [(field, descending)]."""
    allowed = contracts.current().param("sort").values
    order = []
    sort = contracts.arg("sort")
    for term in (DEFAULT_SORT if sort is None else sort).split(","):
        descending = term.startswith("-")
        field = underscore(term.removeprefix("-").strip())
        if field not in allowed:
            known = ", ".join(camelize(f) for f in allowed)
            raise ApiError(
                400, "invalid_request", f"Cannot sort by {term!r}; use {known}.", {"parameter": "sort"}
            )
        order.append((field, descending))
    return order


def include_params() -> set[str]:
    """Read include= (comma-separated relationship names); one the view does not declare is 400."""
    allowed = contracts.current().param("include").values
    names = {underscore(name.strip()) for name in (contracts.arg("include") or "").split(",") if name.strip()}
    if names - set(allowed):
        known = ", ".join(camelize(name) for name in allowed) or "nothing"
        raise ApiError(400, "invalid_request", f"include may name {known}.", {"parameter": "include"})
    return names


def search_param(max_length: int = 256, max_words: int = 8) -> str | None:
    """Read search=: a few words, as an admin types them, so a query never grows with the input."""
    search = contracts.arg("search")
    if search is not None and (len(search) > max_length or len(search.split()) > max_words):
        title = f"search may have at most {max_words} words and {max_length} characters."
        raise ApiError(400, "invalid_request", title, {"parameter": "search"})
    return search


def _positive_int(name: str, default: int) -> int:
    """A whole number from 1 to the declared maximum."""
    most = contracts.current().param(name).schema["maximum"]
    raw = contracts.arg(name)
    if raw is None:
        return default
    # ASCII digits only: int() refuses some digits isdigit() takes.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise ApiError(
            400, "invalid_request", f"{name} must be a whole number from 1 to {most}.", {"parameter": name}
        )
    return int(raw)


# Writing responses


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with a Z."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def resource(resource_type: str, obj, schema: Schema, relationships: dict | None = None) -> dict:
    """The resource object of obj, its attributes dumped by schema.

    Pass a schema made once, at import: schemas keep no per-call state, and building one
    (marshmallow copies every field) costs more than a dump. A user's cost 74 µs of 96.
    """
    return {
        "id": str(obj.id),
        "type": resource_type,
        "attributes": {camelize(k): v for k, v in schema.dump(obj).items()},
        "relationships": {camelize(k): v for k, v in (relationships or {}).items()},
    }


def relationship(resource_type: str, related_id) -> dict:
    return {"data": {"type": resource_type, "id": str(related_id)} if related_id else None}


def document(data, *, status: int = 200, meta: dict | None = None, included=None, headers=None) -> Response:
    body = {"data": data}
    if included is not None:
        unique = {(resource["type"], resource["id"]): resource for resource in included}
        body["included"] = list(unique.values())
    if meta is not None:
        body["meta"] = {camelize(k): v for k, v in meta.items()}
    return Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE, headers=headers)


def body_document(body: bytes) -> Response:
    """A document written before (a 200), as document() answers it."""
    return Response(body, mimetype=MEDIA_TYPE)


def list_document(
    data: list, total: int, all_count: int | None = None, *, included=None, exact: bool | None = None
) -> Response:
    """A list's document: its page of resources, meta.totalCount (how many match) and
    meta.allCount (how many there are, filters aside; the same when the list has none).

    exact: for a list whose total may be an estimate (customers), meta.totalCountExact says
    which it is."""
    meta = {"total_count": total, "all_count": total if all_count is None else all_count}
    if exact is not None:
        meta["total_count_exact"] = exact
    return document(data, meta=meta, included=included)


def no_content() -> Response:
    return Response(status=204)


def errors_document(status: int, errors: list[dict], headers=None) -> Response:
    return Response(json.dumps({"errors": errors}), status=status, mimetype=MEDIA_TYPE, headers=headers)


def validation_errors(error: ValidationFailed) -> Response:
    """422 with a source.pointer on every error: the Freshcom SDK reads it on each one."""
    return errors_document(
        422,
        [{"code": e.code, "title": e.title, "source": {"pointer": _pointer(e.field)}} for e in error.errors],
    )


def body_pointer(path: tuple) -> str:
    """The source.pointer of a place in the request document: an attribute or relationship
    is named as the client's SDK names it (camelCase), a place inside it by the field itself."""
    path = list(path)
    if path[:2] in (["data", "attributes"], ["data", "relationships"]) and len(path) > 2:
        path = [*path[:2], camelize(underscore(str(path[2])))]
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _pointer(field: str) -> str:
    if field.endswith("_id"):
        return f"/data/relationships/{camelize(field.removesuffix('_id'))}"
    return f"/data/attributes/{camelize(field)}"
