"""Webhook endpoints (API.md 12): where an account's events go, which ones, and the secret
that signs them; their deliveries, and a manual retry.

The secret is Standard Webhooks' whsec_ followed by 32 random bytes in base64. The worker must
sign with it, so it cannot be hashed: it is kept encrypted with the data keys
(services/data_keys.py) and shown once, in the answer that creates the endpoint.

A URL is https, or http to a loopback address outside production (API.md 12). Production
also refuses a URL whose host is an IP address that is not public; a name is checked where it
matters, when the worker resolves it for each delivery (services/webhook_delivery.py).
"""

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select

from freshcom_customers.errors import FieldError, NotFound, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    WEBHOOK_EVENTS,
    Account,
    Order,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import data_keys, database
from freshcom_customers.services.database import as_uuid, flush

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
URL_LENGTH = 2048
DESCRIPTION_LENGTH = 255
ALL_EVENTS = "*"
MAX_ENDPOINTS = 16  # per account (or test twin): each change is written once per endpoint


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def create_endpoint(account: Account, attrs: dict) -> Created:
    """A new endpoint of the account, with a new secret."""
    _check(attrs, creating=True)
    if (
        database.count(select(WebhookEndpoint.id).where(WebhookEndpoint.account_id == account.id))
        >= MAX_ENDPOINTS
    ):
        raise invalid("url", "limit", f"An account has at most {MAX_ENDPOINTS} webhook endpoints.")
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    endpoint = WebhookEndpoint(
        account_id=account.id,
        url=attrs["url"],
        description=attrs.get("description"),
        events=_events(attrs["events"]),
        enabled=attrs.get("enabled", True),
        secret_ciphertext=data_keys.encrypt(secret),
    )
    db.session.add(endpoint)
    flush()
    return Created(endpoint, secret)


def update_endpoint(endpoint: WebhookEndpoint, attrs: dict) -> None:
    _check(attrs)
    for key in ("url", "description", "enabled"):
        if key in attrs:
            setattr(endpoint, key, attrs[key])
    if "events" in attrs:
        endpoint.events = _events(attrs["events"])
    flush()


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries, sent or not."""
    db.session.delete(endpoint)
    flush()


def get_endpoint(account: Account, endpoint_id) -> WebhookEndpoint:
    return database.get_in_account(WebhookEndpoint, account, endpoint_id, "webhook_endpoint")


def list_endpoints(account: Account, *, page: int, size: int) -> tuple[list[WebhookEndpoint], int]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.account_id == account.id)
    rows = database.one_page(query, WebhookEndpoint.inserted_at, WebhookEndpoint.id, page=page, size=size)
    return rows, database.count(query)


def secret_of(endpoint: WebhookEndpoint) -> str:
    return data_keys.decrypt(endpoint.secret_ciphertext)


def deliveries_of(endpoint: WebhookEndpoint, *, page: int, size: int) -> tuple[list[WebhookDelivery], int]:
    """The endpoint's deliveries, newest event first."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    return database.one_page(query, WebhookDelivery.event_id.desc(), page=page, size=size), database.count(
        query
    )


def get_delivery(account: Account, delivery_id) -> WebhookDelivery:
    """The delivery, if one of the account's endpoints has it; NotFound otherwise."""
    key = as_uuid(delivery_id)
    if key is None:
        raise NotFound("webhook_delivery")
    delivery = db.session.scalar(
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == key, WebhookEndpoint.account_id == account.id)
    )
    if delivery is None:
        raise NotFound("webhook_delivery")
    return delivery


def retry(delivery: WebhookDelivery) -> None:
    """Send the delivery again as soon as a worker is free (and its lease, if one is sending it
    now, has ended), and keep retrying it for another retry period. It goes before its
    customer's later events that are not sent yet."""
    now = utcnow()
    in_flight = (
        delivery.status == "pending" and delivery.lease_until is not None and delivery.lease_until > now
    )
    if not in_flight:  # one in a worker's hands keeps its lease: no second worker sends it meanwhile
        delivery.lease_token = delivery.lease_until = None
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.give_up_at = now + retry_period()
    flush()


def forget(customer) -> None:
    """Delete the events about the customer, sent or not, with their deliveries (an erasure):
    their data is personal. Those of its orders too, told under the order's own key while
    they had no customer (a guest's order later attached). Call it before the orders are
    detached; the erasure's own events come after."""
    orders = db.session.scalars(select(Order.id).where(Order.customer_id == customer.id))
    keys = [str(customer.id), *(str(order_id) for order_id in orders)]  # as the keys were written
    db.session.execute(
        delete(WebhookEvent)
        .where(WebhookEvent.account_id == customer.account_id, WebhookEvent.ordering_key.in_(keys))
        .execution_options(synchronize_session=False)
    )


def retry_period() -> timedelta:
    return timedelta(seconds=current_app.config["WEBHOOK_RETRY_PERIOD"])


def private_addresses_allowed() -> bool:
    """Whether deliveries may go to loopback, private and link-local addresses: outside
    production by default (development, tests), never in production unless configured."""
    allowed = current_app.config["WEBHOOK_PRIVATE_ADDRESSES"]
    return current_app.config["ENV"] != "production" if allowed is None else allowed


def is_public(address: str) -> bool:
    """Whether an IP address is a public one (an IPv4-mapped IPv6 address is its IPv4 one)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check(attrs: dict, *, creating: bool = False) -> None:
    problems = []
    if creating:
        problems += [
            FieldError(key, "required", f"{key.capitalize()} is required.")
            for key in ("url", "events")
            if key not in attrs
        ]
    if "url" in attrs:
        problems += _url_problems(attrs["url"])
    if "events" in attrs:
        problems += _event_problems(attrs["events"])
    if len(attrs.get("description") or "") > DESCRIPTION_LENGTH:
        problems.append(FieldError("description", "length", f"At most {DESCRIPTION_LENGTH} characters."))
    if problems:
        raise ValidationFailed(*problems)


def _url_problems(url) -> list[FieldError]:
    def problem(title: str) -> list[FieldError]:
        return [FieldError("url", "invalid", title)]

    if not isinstance(url, str) or not url or len(url) > URL_LENGTH:
        return problem(f"The URL must be an absolute https URL of at most {URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return problem("The URL is not a valid URL.")
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.username
        or parts.password
        or parts.fragment
    ):
        return problem("The URL must be an absolute https URL, without credentials or fragment.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or not url.isascii():
        return problem("The URL must be ASCII without spaces; encode international names and paths.")
    literal = _ip_literal(host)
    production = not private_addresses_allowed()
    if parts.scheme == "http" and (
        production or not (host == "localhost" or (literal and literal.is_loopback))
    ):
        return problem("The URL must be https (http only to a loopback address, outside production).")
    if production and literal is not None and not is_public(str(literal)):
        return problem("The URL's address is not a public one.")
    return []


def _ip_literal(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _event_problems(events) -> list[FieldError]:
    if not isinstance(events, list) or not events or len(events) > len(WEBHOOK_EVENTS):
        return [FieldError("events", "invalid", 'Events is a list of event types, or ["*"] for all of them.')]
    unknown = [e for e in events if e != ALL_EVENTS and e not in WEBHOOK_EVENTS]
    if unknown:
        known = ", ".join(WEBHOOK_EVENTS)
        return [FieldError("events", "invalid", f"Unknown event types: {len(unknown)}. Known: *, {known}.")]
    return []


def _events(events: list[str]) -> list[str]:
    return [ALL_EVENTS] if ALL_EVENTS in events else sorted(set(events))
