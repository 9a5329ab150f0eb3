"""Returning guests' registrations: the 202 that says a confirmation was sent, and the body that uses it."""

from marshmallow import Schema, fields

from freshcom_customers.api import jsonapi
from freshcom_customers.services import registrations


class PendingSchema(Schema):
    """A confirmation on its way: the address it went to."""

    email = fields.String(dump_only=True)
    status = fields.Constant("sent", dump_only=True)


class ConfirmationSchema(Schema):
    token = fields.String(required=True, load_only=True)


PENDING_SCHEMA = PendingSchema()
PENDING, _ = jsonapi.documents("RegistrationConfirmation", PENDING_SCHEMA)
BODY = jsonapi.body("RegistrationConfirmation", ConfirmationSchema())


def pending_document(pending: registrations.PendingRegistration):
    """202: a resource, not data: null, which the Freshcom SDK's deserializer throws on."""
    data = jsonapi.resource("RegistrationConfirmation", pending, PENDING_SCHEMA)
    return jsonapi.document(data, status=202, meta={"confirmation": "sent"})
