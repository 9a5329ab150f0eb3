"""Webhooks (API.md 12): /v1/webhook_endpoints, their deliveries, and a delivery's retry."""

from flask import url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import caller
from freshcom_customers.api.jsonapi import BODY_ERRORS, ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.models import WEBHOOK_EVENTS
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import webhooks

MANAGERS = ("owner", "administrator", "developer")
EVENTS = {"description": f'Event types, or ["*"] for all: {", ".join(WEBHOOK_EVENTS)}.'}


class WebhookEndpointSchema(Schema):
    url = fields.String(
        validate=Length(max=webhooks.URL_LENGTH),
        metadata={"description": "https (http to a loopback address outside production)."},
    )
    description = fields.String(allow_none=True, validate=Length(max=webhooks.DESCRIPTION_LENGTH))
    events = fields.List(fields.String(validate=Length(max=40)), metadata=EVENTS)
    enabled = fields.Boolean()
    # Not an attribute of the row: only the answer that creates the endpoint sets it.
    secret = fields.String(
        dump_only=True,
        metadata={"description": "The signing secret (whsec_...), in the answer to POST only."},
    )
    inserted_at = jsonapi.Timestamp(dump_only=True)
    updated_at = jsonapi.Timestamp(dump_only=True)


class WebhookDeliverySchema(Schema):
    event_id = fields.Function(lambda d: d.event.message_id, metadata={"description": "The webhook-id sent."})
    event_type = fields.Function(lambda d: d.event.type)
    status = fields.String(metadata={"description": "pending, succeeded or failed"})
    attempts = fields.Integer()
    response_code = fields.Integer(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    response_body = fields.String(allow_none=True, metadata={"description": "Its first 1,024 bytes."})
    error = fields.String(allow_none=True)
    last_attempt_at = jsonapi.Timestamp(allow_none=True)
    next_attempt_at = jsonapi.Timestamp(allow_none=True, metadata={"description": "The next retry, if any."})
    give_up_at = jsonapi.Timestamp()
    inserted_at = jsonapi.Timestamp()


SCHEMA = WebhookEndpointSchema()
DOCUMENT, LIST = jsonapi.documents("WebhookEndpoint", SCHEMA)
DELIVERY_SCHEMA = WebhookDeliverySchema()
DELIVERY, DELIVERIES = jsonapi.documents("WebhookDelivery", DELIVERY_SCHEMA)


def serialize(endpoint) -> dict:
    return jsonapi.resource("WebhookEndpoint", endpoint, SCHEMA)


def serialize_delivery(delivery) -> dict:
    return jsonapi.resource(
        "WebhookDelivery",
        delivery,
        DELIVERY_SCHEMA,
        {"endpoint": jsonapi.relationship("WebhookEndpoint", delivery.endpoint_id)},
    )


@bp.post("/webhook_endpoints")
@jsonapi.contract(
    "Add a webhook endpoint; its signing secret is in this answer only (owner, administrator, developer)",
    tag="Webhooks",
    responses={201: DOCUMENT, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("WebhookEndpoint", SCHEMA),
)
@require_oauth()
def create_webhook_endpoint():
    principal = caller(*MANAGERS)
    created = webhooks.create_endpoint(principal.account, jsonapi.load())
    db.session.commit()
    data = serialize(created.endpoint)
    data["attributes"]["secret"] = created.secret
    location = url_for("api.get_webhook_endpoint", endpoint_id=created.endpoint.id)
    return jsonapi.document(data, status=201, headers={"Location": location})


@bp.get("/webhook_endpoints")
@jsonapi.contract(
    "List the account's webhook endpoints (owner, administrator, developer)",
    tag="Webhooks",
    responses={200: LIST, 400: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    paged=True,
)
@require_oauth()
def list_webhook_endpoints():
    principal = caller(*MANAGERS)
    number, size = jsonapi.page_params()
    rows, total = webhooks.list_endpoints(principal.account, page=number, size=size)
    return jsonapi.list_document([serialize(e) for e in rows], total)


@bp.get("/webhook_endpoints/<endpoint_id>")
@jsonapi.contract(
    "Read a webhook endpoint (owner, administrator, developer)",
    tag="Webhooks",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def get_webhook_endpoint(endpoint_id):
    return jsonapi.document(serialize(_endpoint(endpoint_id)))


@bp.patch("/webhook_endpoints/<endpoint_id>")
@jsonapi.contract(
    "Change a webhook endpoint's URL, events, description or enabled (owner, administrator, developer)",
    tag="Webhooks",
    responses={200: DOCUMENT, 404: ERRORS, **TOKEN_ERRORS, **BODY_ERRORS},
    security=BEARER,
    body=jsonapi.body("WebhookEndpoint", SCHEMA, partial=True),
)
@require_oauth()
def update_webhook_endpoint(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    webhooks.update_endpoint(endpoint, jsonapi.load(endpoint_id))
    db.session.commit()
    return jsonapi.document(serialize(endpoint))


@bp.delete("/webhook_endpoints/<endpoint_id>")
@jsonapi.contract(
    "Delete a webhook endpoint and its deliveries (owner, administrator, developer)",
    tag="Webhooks",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_webhook_endpoint(endpoint_id):
    webhooks.delete_endpoint(_endpoint(endpoint_id))
    db.session.commit()
    return jsonapi.no_content()


@bp.get("/webhook_endpoints/<endpoint_id>/deliveries")
@jsonapi.contract(
    "The endpoint's deliveries, newest event first: status, answer, duration, next retry "
    "(owner, administrator, developer)",
    tag="Webhooks",
    responses={200: DELIVERIES, 400: ERRORS, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
    paged=True,
)
@require_oauth()
def list_webhook_deliveries(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    number, size = jsonapi.page_params()
    rows, total = webhooks.deliveries_of(endpoint, page=number, size=size)
    return jsonapi.list_document([serialize_delivery(d) for d in rows], total)


@bp.post("/webhook_deliveries/<delivery_id>/retry")
@jsonapi.contract(
    "Send a delivery again, before its customer's later events (owner, administrator, developer)",
    tag="Webhooks",
    responses={202: DELIVERY, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def retry_webhook_delivery(delivery_id):
    principal = caller(*MANAGERS)
    delivery = webhooks.get_delivery(principal.account, delivery_id)
    webhooks.retry(delivery)
    db.session.commit()
    return jsonapi.document(serialize_delivery(delivery), status=202)


def _endpoint(endpoint_id):
    return webhooks.get_endpoint(caller(*MANAGERS).account, endpoint_id)
