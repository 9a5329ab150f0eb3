"""A customer's history (API.md 12): GET /v1/customers/:id/events, newest first."""

from marshmallow import Schema, fields

from freshcom_customers import schemas
from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, caller
from freshcom_customers.api.jsonapi import ERRORS, TOKEN_ERRORS
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.models import ACTORS, HISTORY_EVENTS
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import history


class CustomerEventSchema(Schema):
    event = fields.String(metadata={"description": f"One of: {', '.join(HISTORY_EVENTS)}."})
    actor = fields.String(
        metadata={"description": f"Who: {', '.join(ACTORS)} (a failed login's is anonymous)."}
    )
    actor_id = fields.UUID(allow_none=True, metadata={"description": "The staff user's or the client's id."})
    ip_address = fields.String(allow_none=True, metadata={"description": "A login's network (/24 or /48)."})
    details = fields.Function(
        lambda row: _camelized(row.details),
        metadata={"description": "What changed (fields), how a login came (face, method), which sessions."},
    )
    occurred_at = jsonapi.Timestamp()


SCHEMA = CustomerEventSchema()
_, LIST = jsonapi.documents("CustomerEvent", SCHEMA)


def serialize(row) -> dict:
    return jsonapi.resource(
        "CustomerEvent", row, SCHEMA, {"customer": jsonapi.relationship("Customer", row.customer_id)}
    )


@bp.get("/customers/<customer_id>/events")
@jsonapi.contract(
    "What happened to a customer, newest first, and who did it; an erased customer's stays (staff)",
    tag="Customers",
    responses={200: LIST, 400: ERRORS, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    paged=True,
)
@require_oauth()
def list_customer_events(customer_id):
    principal = caller(*STAFF)
    number, size = jsonapi.page_params()
    rows, total = history.of_customer(principal.account, customer_id, page=number, size=size)
    return jsonapi.list_document([serialize(row) for row in rows], total)


def _camelized(details: dict | None) -> dict:
    """The details as the API names things: keys, and the changed fields' names."""
    shown = {}
    for key, value in (details or {}).items():
        shown[schemas.camelize(key)] = [schemas.camelize(v) for v in value] if key == "fields" else value
    return shown
