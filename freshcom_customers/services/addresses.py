"""A customer's address book (API.md 10): at most 50 addresses, one default shipping and one billing.

Every write locks the customer's row first (SELECT ... FOR UPDATE; SQLite serialises writers
anyway), so two requests changing one customer's defaults, or adding its 50th address, take
turns: the second sees what the first committed. The partial unique indexes of the model
stay the last word, whoever writes.
"""

import uuid
from collections.abc import Iterable

from babel import Locale
from sqlalchemy import select, update

from freshcom_customers.errors import FieldError, NotFound, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import MAX_ADDRESSES, Account, Address, Customer
from freshcom_customers.services import customers
from freshcom_customers.services.database import count, flush, get_in_account, page_of_customer_rows

# CLDR's regions that ISO 3166-1 has not assigned to a country: exceptional reservations
# (AC, CP, CQ, DG, EA, IC, TA, EU, EZ, UN) and user-assigned codes (QO, ZZ, and X*: XK too).
_NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "IC", "TA", "EU", "EZ", "UN", "QO", "ZZ"}
COUNTRY_CODES = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES and not code.startswith("X")
)
# As API.md 10 lists them.
ADDRESS_LINES = ("name", "company", "line_one", "line_two", "city", "province", "postal_code", "country_code")
DEFAULTS = ("is_default_shipping", "is_default_billing")
FIELDS = (*ADDRESS_LINES, "phone_number", *DEFAULTS, "custom_data")
TEXT_FIELDS = {
    name: Address.__table__.c[name].type.length
    for name in FIELDS
    if name not in ("country_code", *DEFAULTS, "custom_data")
}
LIST_FILTERS = ("customer_id",)


def create_address(customer: Customer, attrs: dict) -> Address:
    """Add an address to the customer's book; the 51st is refused, a new default replaces the old."""
    check(attrs, creating=True)
    _lock(customer)
    if count(select(Address).where(Address.customer_id == customer.id)) >= MAX_ADDRESSES:
        raise too_many()
    _clear_other_defaults(customer.id, attrs)
    address = Address(account_id=customer.account_id, customer_id=customer.id, custom_data={})
    _apply_fields(address, attrs)
    db.session.add(address)
    flush()
    return address


def update_address(address: Address, attrs: dict) -> Address:
    """Apply a partial update; an address made a default takes it from the customer's other one."""
    check(attrs)
    _lock(address.customer_id)
    # Read again after the lock: another request may have just taken a default from it.
    db.session.refresh(address)
    _clear_other_defaults(address.customer_id, attrs, keep=address.id)
    _apply_fields(address, attrs)
    flush()
    return address


def delete_address(address: Address) -> None:
    """Delete the address; a default goes with it (the customer then has none of that kind)."""
    db.session.delete(address)
    flush()


def add_addresses(customer: Customer, addresses: list[dict]) -> None:
    """Stage a new customer's checked addresses (an import), unflushed: the customer's flush writes them."""
    if addresses and customer.id is None:
        customer.id = uuid.uuid4()  # the addresses name it before it is flushed
    for attrs in addresses:
        address = Address(account_id=customer.account_id, customer_id=customer.id, custom_data={})
        _apply_fields(address, attrs)
        db.session.add(address)


def get_address(account: Account, address_id, *, visible_to: uuid.UUID | None = None) -> Address:
    """The account's address; with visible_to (a customer id), only if it is that customer's."""
    address = get_in_account(Address, account, address_id, "address")
    if visible_to is not None and address.customer_id != visible_to:
        raise NotFound("address")
    return address


def find_customer(account: Account, customer_id) -> Customer:
    """The customer an address names; 422 on the relationship if there is none of the account."""
    if customer_id is None:
        raise invalid("customer_id", "required", "An address needs its customer.")
    return customers.customer_named(account, customer_id)


def list_addresses(
    account: Account, *, customer_id=None, visible_to: uuid.UUID | None = None, page: int, size: int
):
    """Return (addresses on the page, count after filters, count before), newest first.

    visible_to (a customer id) limits everything, allCount included, to that customer's
    addresses. A malformed customer id finds none.
    """
    return page_of_customer_rows(
        Address, account, customer_id=customer_id, visible_to=visible_to, page=page, size=size
    )


def addresses_of(customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Address]]:
    """The addresses of these customers, newest first, by customer: one query for a whole page."""
    found = {customer_id: [] for customer_id in customer_ids}
    if not found:
        return found
    query = select(Address).where(Address.customer_id.in_(found))
    for address in db.session.scalars(query.order_by(Address.inserted_at.desc(), Address.id.desc())):
        found[address.customer_id].append(address)
    return found


def too_many() -> ValidationFailed:
    return invalid("customer_id", "invalid", f"A customer has at most {MAX_ADDRESSES} addresses.")


# Validation: the face's schema has checked types; these are the rules, for imports too.


def check(attrs: dict, *, creating: bool = False) -> None:
    """Refuse values an address cannot have: ValidationFailed with one error per field."""
    errors = [*_check_text(attrs), *_check_country(attrs, creating)]
    for field in DEFAULTS:
        if field in attrs and not isinstance(attrs[field], bool):
            errors.append(FieldError(field, "invalid", f"{_label(field)} must be true or false."))
    if "custom_data" in attrs and not isinstance(attrs["custom_data"], dict):
        errors.append(FieldError("custom_data", "invalid", "Custom data must be an object."))
    if errors:
        raise ValidationFailed(*errors)


def _check_text(attrs: dict):
    for field, max_length in TEXT_FIELDS.items():
        value = attrs.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            yield FieldError(field, "invalid", f"{_label(field)} must be text.")
        elif len(value) > max_length:
            yield FieldError(field, "length", f"{_label(field)} must be at most {max_length} characters.")


def _check_country(attrs: dict, creating: bool):
    if "country_code" not in attrs and not creating:
        return
    code = attrs.get("country_code")
    if code is None or code == "":
        yield FieldError("country_code", "required", "Country code is required.")
    elif not isinstance(code, str) or code.strip().upper() not in COUNTRY_CODES:
        yield FieldError("country_code", "inclusion", "Country code must be an ISO 3166-1 alpha-2 code.")


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


# Writing


def _lock(customer: Customer | uuid.UUID) -> None:
    """Take the customer's row lock until the transaction ends: its address book's writers queue."""
    customer_id = customer.id if isinstance(customer, Customer) else customer
    db.session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


def _clear_other_defaults(customer_id: uuid.UUID, attrs: dict, keep: uuid.UUID | None = None) -> None:
    """Take each default attrs sets from the customer's other addresses, before it is set here.

    The unique index checks each statement: the old default must go first.
    """
    for field in DEFAULTS:
        if attrs.get(field) is True:
            query = update(Address).where(Address.customer_id == customer_id, getattr(Address, field))
            if keep is not None:
                query = query.where(Address.id != keep)
            db.session.execute(query.values({field: False}).execution_options(synchronize_session="fetch"))


def _apply_fields(address: Address, attrs: dict) -> None:
    for field in FIELDS:
        if field in attrs:
            setattr(address, field, attrs[field])
    if "country_code" in attrs:
        address.country_code = attrs["country_code"].strip().upper()
    for field in TEXT_FIELDS:  # blank is none, as a form sends an empty field
        if field in attrs and not (attrs[field] or "").strip():
            setattr(address, field, None)
