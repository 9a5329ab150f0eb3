"""The caller's login sessions (API.md 10): /v1/sessions and /v1/sessions/:id."""

from marshmallow import Schema, fields

from freshcom_customers.api import bp, jsonapi
from freshcom_customers.api.access import STAFF, user_caller
from freshcom_customers.api.jsonapi import ERRORS, TOKEN_ERRORS
from freshcom_customers.extensions import db
from freshcom_customers.http.contracts import BEARER
from freshcom_customers.oauth2 import require_oauth
from freshcom_customers.services import sessions

# Any user token: a customer's or a staff member's (a guest token has no user).
USERS = ("customer", *STAFF)


class SessionSchema(Schema):
    client_name = fields.Function(sessions.client_name)
    created_at = jsonapi.Timestamp()
    last_used_at = jsonapi.Timestamp()
    user_agent = fields.String()
    ip_address = fields.String(metadata={"description": "The network it started from: a /24 or a /48."})
    current = fields.Boolean(metadata={"description": "Whether the token of this request is of it."})


SCHEMA = SessionSchema()
DOCUMENT, LIST = jsonapi.documents("Session", SCHEMA)


def serialize(session, principal) -> dict:
    data = jsonapi.resource("Session", session, SCHEMA)
    data["attributes"]["current"] = session.id == principal.family_id
    return data


@bp.get("/sessions")
@jsonapi.contract(
    "The caller's live sessions, native and Chec",
    tag="Sessions",
    responses={200: LIST, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def list_sessions():
    principal = user_caller(*USERS)
    rows = sessions.live_sessions(principal.user)
    return jsonapi.list_document([serialize(row, principal) for row in rows], len(rows))


@bp.delete("/sessions/<session_id>")
@jsonapi.contract(
    "End one of the caller's sessions (the current one logs the caller out)",
    tag="Sessions",
    responses={204: None, 404: ERRORS, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_session(session_id):
    principal = user_caller(*USERS)
    sessions.end(sessions.get_own(principal.user, session_id))
    db.session.commit()
    return jsonapi.no_content()


@bp.delete("/sessions")
@jsonapi.contract(
    "End every session of the caller but the current one",
    tag="Sessions",
    responses={204: None, **TOKEN_ERRORS},
    security=BEARER,
)
@require_oauth()
def delete_other_sessions():
    principal = user_caller(*USERS)
    sessions.end_all(principal.user, except_session=principal.family_id)
    db.session.commit()
    return jsonapi.no_content()
