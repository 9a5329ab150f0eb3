"""Reading Chec requests and writing Chec lists: bodies, credentials, paging.

Bodies and paging are read as the route's contract declares them (http/contracts.py).
"""

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app, request
from werkzeug.exceptions import BadRequest

from freshcom_customers import schemas
from freshcom_customers.chec import ids
from freshcom_customers.errors import FieldError, InvalidToken, ValidationFailed
from freshcom_customers.extensions import db
from freshcom_customers.http import contracts
from freshcom_customers.http.contracts import OBJECT, Param, Shape, object_schema
from freshcom_customers.models import Account
from freshcom_customers.services import accounts, actors, magic_links

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
MAX_PAGE = 10**9
SORT_FIELDS = ("created_at", "created")  # the SDK sends created_at, Chec's own tests created
SORT_DIRECTIONS = ("asc", "desc")
PAGING = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    Param("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
    Param("sortBy", {"type": "string", "enum": list(SORT_FIELDS)}, values=SORT_FIELDS),
    # Read case-insensitively.
    Param(
        "sortDirection",
        {"type": "string", "pattern": "^([aA][sS][cC]|[dD][eE][sS][cC])$"},
        values=SORT_DIRECTIONS,
    ),
)


def publishable_account() -> Account:
    """The account of the publishable key in X-Authorization (email-token, exchange-token)."""
    return accounts.of_publishable_key(request.headers.get("X-Authorization"))


def session(customer_id: str) -> magic_links.Session:
    """The session of the request's JWT, which must be the path's customer's.

    X-Authorization is not read: browsers send the SDK's undefined as the text "undefined".
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken()
    session = magic_links.session_for(token.strip(), ids.decode(ids.CUSTOMER, customer_id))
    actors.act_as(actors.CUSTOMER)
    if session.touched:  # the session's last use, noted once a minute, outlives a read-only view
        db.session.commit()
    return session


def load() -> dict:
    """Load the body with the view's declared schema (all fields optional when it is partial)."""
    declared = contracts.current().declared_body()
    return schemas.load(declared.schema, read_body(), partial=declared.partial)


def read_body() -> dict:
    """The JSON object of the body; no body, or null (what the SDK sends with a GET), is {}."""
    raw = request.get_data(cache=True)
    try:  # the app's JSON: it refuses a body nested too deep before parsing it (inputs.py)
        body = current_app.json.loads(raw) if raw.strip() else None
    except ValueError:
        raise BadRequest("The body is not valid JSON.") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


@dataclass(frozen=True)
class Paging:
    page: int
    limit: int
    newest_first: bool


def paging() -> Paging:
    """Read limit (1 to 200, default 20), page (from 1), sortBy and sortDirection (default desc)."""
    errors = []
    limit = _whole("limit", DEFAULT_LIMIT, errors)
    page = _whole("page", 1, errors)
    if _arg("sortBy", "created_at") not in contracts.current().param("sortBy").values:
        errors.append(FieldError("sortBy", "inclusion", "sortBy must be created_at or created."))
    direction = _arg("sortDirection", "desc").lower()
    if direction not in contracts.current().param("sortDirection").values:
        errors.append(FieldError("sortDirection", "inclusion", "sortDirection must be asc or desc."))
    if errors:
        raise ValidationFailed(*errors)
    return Paging(page, limit, direction == "desc")


def _arg(name: str, default: str) -> str:
    value = contracts.arg(name)
    return default if value is None else value


def _whole(name: str, default: int, errors: list) -> int:
    most = contracts.current().param(name).schema["maximum"]
    raw = contracts.arg(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        errors.append(FieldError(name, "invalid", f"{name} must be a whole number from 1 to {most}."))
        return default
    return int(raw)


def page_shape(name: str, item: Shape) -> Shape:
    """The shape of a list that page_of writes, of item."""
    pagination = {
        "total": {"type": "integer"},
        "count": {"type": "integer"},
        "per_page": {"type": "integer"},
        "current_page": {"type": "integer"},
        "total_pages": {"type": "integer"},
        "links": OBJECT,
    }
    meta = object_schema({"pagination": object_schema(pagination, tuple(pagination))}, ("pagination",))
    return Shape(
        name, object_schema({"data": {"type": "array", "items": item}, "meta": meta}, ("data", "meta"))
    )


def page_of(data: list, total: int, paging: Paging) -> dict:
    """A list response: the data and its pagination, with links to the pages around it."""
    total_pages = max(1, math.ceil(total / paging.limit))
    links = {}
    if paging.page > 1:
        links["previous"] = _page_url(paging.page - 1)
    if paging.page < total_pages:
        links["next"] = _page_url(paging.page + 1)
    pagination = {
        "total": total,
        "count": len(data),
        "per_page": paging.limit,
        "current_page": paging.page,
        "total_pages": total_pages,
        "links": links,
    }
    return {"data": data, "meta": {"pagination": pagination}}


def _page_url(page: int) -> str:
    return f"{request.base_url}?{urlencode({**contracts.args().to_dict(), 'page': page})}"
