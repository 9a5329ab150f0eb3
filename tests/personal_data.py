"""A customer's data in every table that can hold it, and a scan of the whole database for it.

furnish() gives a customer (registered or guest) addresses, orders, sessions of both faces,
one-time tokens, a refresh token and a pending email, each carrying values made from a tag,
so that two customers' data never look alike. holding() reads every column of every row of
every table the database's own catalogue lists (not the models' metadata: a table no model
maps is scanned too) and says where any of the values appears, whatever the case.
"""

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import inspect, select, text

from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Address,
    Client,
    Customer,
    LoginSession,
    Order,
    Passkey,
    RefreshToken,
    hash_secret,
)
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import one_time_tokens


@dataclass
class Furnished:
    """A customer and what furnish() gave it: the personal values, and the ids of its rows."""

    customer: Customer
    values: list[str]
    ids: dict[str, set[uuid.UUID]] = field(default_factory=dict)


def furnish(customer: Customer, tag: str, network: str) -> Furnished:
    """Give the customer two addresses, two orders, two sessions, emails and a refresh token."""
    name = tag.capitalize()
    user = customer.user
    addresses = [
        _address(customer, f"{name} Home", f"221 {name} Street", f"{name}ville", phone="+44 20 7946 0101"),
        _address(customer, f"{name} Office", f"9 {name} Lane", f"{name}borough", phone="+44 20 7946 0202"),
    ]
    orders = [_order(customer, f"{tag[:3].upper()}-{n}", name) for n in (1, 2)]
    sessions = [
        LoginSession(
            account_id=customer.account_id,
            customer_id=customer.id,
            face="chec",
            user_agent=f"{name}Phone/2.0",
            ip_address=network,
        )
    ]
    if user is not None:
        client = db.session.scalar(
            select(Client).where(Client.account_id == customer.account_id, Client.is_default)
        )
        client_id = client.id if client else None  # factories' accounts have no clients
        sessions.append(
            LoginSession(
                account_id=customer.account_id,
                user_id=user.id,
                client_id=client_id,
                face="oauth",
                user_agent=f"{name}Browser/1.0",
                ip_address=network,
            )
        )
        user.pending_email = f"{tag}.new@example.net"
        db.session.add(
            RefreshToken(
                account_id=customer.account_id,
                user_id=user.id,
                client_id=client_id,
                token_hash=hash_secret(secrets.token_urlsafe(32)),
                family_id=uuid.uuid4(),
                expires_at=utcnow() + timedelta(days=30),
            )
        )
        one_time_tokens.issue("email_verification", user=user, email=user.email, lifetime=3600)
        passkey = Passkey(
            user_id=user.id,
            credential_id=secrets.token_bytes(32),
            public_key=b"cose key",
            name=f"{name} Laptop",
        )
        db.session.add(passkey)
    one_time_tokens.issue("magic_link", customer=customer, email=customer.email, lifetime=900)
    db.session.add_all([*addresses, *orders, *sessions])
    db.session.flush()
    values = [
        *(v for v in (customer.email, customer.name, customer.first_name, customer.last_name) if v),
        *(v for v in (customer.phone_number,) if v),
        *([user.pending_email] if user is not None else []),
        *(value for a in addresses for value in (a.name, a.company, a.line_one, a.line_two, a.city)),
        *(value for a in addresses for value in (a.postal_code, a.phone_number)),
        *(s.user_agent for s in sessions),
        *([f"{name} Laptop"] if user is not None else []),
        network,
    ]
    ids = {
        "addresses": {a.id for a in addresses},
        "orders": {o.id for o in orders},
        "sessions": {s.id for s in sessions},
    }
    return Furnished(customer, values, ids)


def _address(customer: Customer, name: str, line_one: str, city: str, *, phone: str) -> Address:
    return Address(
        account_id=customer.account_id,
        customer_id=customer.id,
        name=name,
        company=f"{name} and Partners",
        line_one=line_one,
        line_two=f"Flat {name}",
        city=city,
        province="Greater London",
        postal_code=f"{name[:2].upper()}1 {len(name)}ZZ",
        country_code="GB",
        phone_number=f"{phone}{len(name)}",
        custom_data={"doorCode": f"Ask for {name}"},
    )


def _order(customer: Customer, code: str, name: str) -> Order:
    """An order whose free-form parts hold the customer's name, as storefronts write them."""
    first, last = customer.first_name or name, customer.last_name or name
    return Order(
        account_id=customer.account_id,
        customer_id=customer.id,
        code=code,
        currency="GBP",
        email=customer.email,
        total_cents=1200,
        custom_data={"giftMessage": f"Happy birthday, {first}!", "deliveryNote": f"221 {name} Street"},
        line_items=[
            {"name": f"Mug engraved {last}", "sku": "MUG-1", "quantity": 1, "unit_price_cents": 1200},
            {"name": "Tea", "sku": "TEA-1", "quantity": 1, "unit_price_cents": 0},
        ],
    )


def tables() -> list[str]:
    """Every table of the database, from its own catalogue."""
    return inspect(db.session.connection()).get_table_names()


def columns_of(table: str) -> set[str]:
    return {column["name"] for column in inspect(db.session.connection()).get_columns(table)}


def holding(values) -> list[tuple[str, str, str]]:
    """(table, column, value) wherever one of values appears in a stored value, whatever the case."""
    wanted = {value.lower() for value in values}
    found = []
    for table in tables():
        for row in db.session.execute(text(f'SELECT * FROM "{table}"')).mappings():
            for column, stored in row.items():
                written = _text(stored).lower()
                found += [(table, column, value) for value in wanted if value in written]
    return found


def _text(stored) -> str:
    if stored is None:
        return ""
    if isinstance(stored, dict | list):  # PostgreSQL's JSONB, read back
        return json.dumps(stored, ensure_ascii=False)
    return str(stored)
