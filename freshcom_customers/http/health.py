"""GET /health: 200 when the service, its database and its schema are ready; 503 naming what is not.

One query: the schema's revision, which also shows that the database answers. Both answers
carry the version being served, so a rolling deploy shows which hosts run which release.
"""

from flask import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from freshcom_customers import __version__
from freshcom_customers.http import schema
from freshcom_customers.http.contracts import STRING, Shape, contract, object_schema

bp = Blueprint("health", __name__)
HEALTH = Shape(
    "Health",
    object_schema(
        {"status": STRING, "database": STRING, "version": STRING}, ("status", "database", "version")
    ),
)


@bp.get("/health")
@contract("The service and its database answer", tag="Discovery", responses={200: HEALTH, 503: HEALTH})
def health():
    try:
        current = schema.check()
    except SQLAlchemyError:
        return _unavailable(database="unavailable")
    if not current:
        return _unavailable(database="ok", schema="behind")
    return {"status": "ok", "database": "ok", "schema": "ok", "version": __version__}


def _unavailable(**parts: str):
    return (
        {"status": "unavailable", **parts, "version": __version__},
        503,
        {"Retry-After": str(schema.RETRY_AFTER)},
    )
