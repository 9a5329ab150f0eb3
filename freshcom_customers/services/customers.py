"""Customers: registration, profile, status and deletion, with the user kept in step.

This module is in charge of the customer+user pair: a registered or suspended customer has
one managed user, and every change to either row goes through here, whether it comes as a
customer (/v1/customers) or as its user (/v1/users, /v1/user). The status sync is
_change_status, the profile copy update_customer, and a user's statuses map onto the
customer's through _CUSTOMER_STATUS.
"""

from typing import NamedTuple

from sqlalchemy import BigInteger, and_, func, select, true
from sqlalchemy.orm import joinedload

from freshcom_customers import identifiers
from freshcom_customers.errors import AccessDenied, FieldError, NotFound, ValidationFailed, invalid
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    Customer,
    CustomerCount,
    CustomerSearchTerm,
    Order,
    User,
    customer_search,
)
from freshcom_customers.services import database, invitations, second_factors, users
from freshcom_customers.services.database import count, flush, get_in_account

# Kept equal on a customer and its user, in both directions.
PROFILE_FIELDS = ("email", "phone_number", "name", "first_name", "last_name")
EDITABLE_FIELDS = (*PROFILE_FIELDS, "code", "label", "caption", "description", "custom_data")
NAME_LENGTH = Customer.__table__.c.name.type.length
# A customer's user status, as /v1/users names it, and the customer status that goes with it.
_CUSTOMER_STATUS = {"active": "registered", "suspended": "suspended"}


def create_customer(
    account: Account, attrs: dict, *, by_guest: bool = False, invite: bool = True
) -> Customer:
    """Create a guest customer, or a registered one together with its user.

    Staff may register a customer without a password: it is invited to choose one, unless
    invite is False (an import, whose customers staff invite when they choose).
    """
    customer = add_customer(account, attrs, by_guest=by_guest)
    with users.username_clash_on_email(attrs):
        flush()
    if invite:
        _invite_if_passwordless(customer)
    return customer


def add_customer(account: Account, attrs: dict, *, by_guest: bool = False) -> Customer:
    """Stage a new customer (and its user) in the session, unflushed: bulk writers flush once.

    A guest registering needs a password; staff and imports may give one, the password_hash of
    one (imports), or none, and the user then has no password until it is invited to set one.
    """
    status = attrs.get("status", "guest")
    if by_guest and status not in ("guest", "registered"):
        raise AccessDenied("A guest may only create guest or registered customers.")
    customer = Customer(account_id=account.id, status="guest", custom_data={})
    _apply_fields(customer, attrs)
    db.session.add(customer)
    _change_status(customer, status, attrs, password_required=by_guest)
    return customer


def update_customer(
    customer: Customer, attrs: dict, *, by_customer: bool = False, sms_phone_proven: bool = False
) -> Customer:
    """Apply a partial update; a status change moves the user's status with it.

    The phone of a tfa_sms user is where its codes go: it changes only with a code texted to the
    new number (sms_phone_proven, services/second_factors), never by staff or a plain update.
    """
    status = attrs.get("status", customer.status)
    if by_customer and status != customer.status:
        raise AccessDenied("A customer cannot change its own status.")
    # Load the user before any field changes: a lazy load autoflushes, and a unique
    # violation raised there would escape flush() and its Taken.
    user = customer.user
    new_phone = attrs.get("phone_number", customer.phone_number) != customer.phone_number
    if new_phone and user is not None and user.auth_method == "tfa_sms" and not sms_phone_proven:
        raise invalid("phone_number", "second_factor", second_factors.SMS_PHONE_TITLE)
    if "password" in attrs and user is not None:
        raise invalid("password", "invalid", "Change a password with PATCH /v1/user or a password reset.")
    old_email = customer.email
    _apply_fields(customer, attrs)
    if user is not None:
        _update_login(customer, user, attrs, old_email)
    _change_status(customer, status, attrs, password_required=by_customer)
    if customer.user is not None:
        for field in PROFILE_FIELDS:
            setattr(customer.user, field, getattr(customer, field))
    if customer.email != old_email:
        customer.email_verified = False
        if customer.user is not None:
            users.mark_email_unverified(customer.user)
            customer.user.pending_email = None  # a change that waited for its link is overtaken
    with users.username_clash_on_email(attrs):
        flush()
    if user is None:
        _invite_if_passwordless(customer)  # staff registered a guest by phone, say
    return customer


def _invite_if_passwordless(customer: Customer) -> None:
    if customer.status == "registered" and customer.user.password_hash is None:
        invitations.invite(customer)


def _update_login(customer: Customer, user, attrs: dict, old_email: str | None) -> None:
    """Keep a registered customer's login usable: an email, and a username that follows it."""
    if not customer.email:
        raise invalid("email", "required", "A registered customer needs an email.")
    if attrs.get("username"):
        user.username = users.canonical_username(attrs["username"])
    elif users.username_was_email(user, old_email):
        # The username was the email (the default): it moves with the email.
        user.username = users.canonical_username(customer.email)


def mark_email_verified(user: User) -> None:
    """The user proved it receives mail at its address, which is its customer's (if any) too."""
    users.mark_email_verified(user)
    customer = of_user(user)
    if customer is not None:
        customer.email_verified = True


def register_customer_user(account: Account, attrs: dict) -> User:
    """Register a customer through its user (a guest's POST /v1/users); return the user."""
    if attrs.get("role", "customer") != "customer":
        raise AccessDenied("A guest may only create customer users.")
    fields = {k: v for k, v in attrs.items() if k in (*PROFILE_FIELDS, "username", "password")}
    status = _CUSTOMER_STATUS[attrs.get("status", "active")]
    return create_customer(account, {**fields, "status": status}, by_guest=True).user


def update_customer_user(
    customer: Customer, attrs: dict, *, by_customer: bool = False, sms_phone_proven: bool = False
) -> None:
    """Change a customer's user through its customer, which copies the profile back to the user."""
    if attrs.get("role", "customer") != "customer":
        raise invalid("role", "invalid", "A customer's user keeps the customer role.")
    changes = {k: v for k, v in attrs.items() if k in (*PROFILE_FIELDS, "username")}
    if "status" in attrs:
        changes["status"] = _CUSTOMER_STATUS[attrs["status"]]
    # Around the whole update: a suspension flushes before update_customer's own flush does.
    with users.username_clash_on_email(attrs):
        update_customer(customer, changes, by_customer=by_customer, sms_phone_proven=sms_phone_proven)


def delete_customer(customer: Customer) -> None:
    """Delete the customer and its user, which frees the username; its orders stay, detached,
    each with the customer's email if it had none (each one an order.updated, API.md 12)."""
    for order in db.session.scalars(select(Order).where(Order.customer_id == customer.id)):
        order.customer = None
        order.email = order.email or customer.email
    user = customer.user
    db.session.delete(customer)
    if user is not None:
        db.session.delete(user)
    flush()


def get_customer(account: Account, customer_id) -> Customer:
    return get_in_account(Customer, account, customer_id, "customer")


def customer_named(account: Account, customer_id) -> Customer:
    """The customer a request's relationship names; 422 on it if the account has no such customer."""
    try:
        return get_customer(account, customer_id)
    except NotFound:
        raise invalid("customer_id", "invalid", "Customer must be a customer of this account.") from None


def of_user(user: User) -> Customer | None:
    """The customer whose user this is; None for a staff or standard user."""
    return db.session.scalar(select(Customer).where(Customer.user_id == user.id))


def customer_of_user(account: Account, user) -> Customer:
    customer = db.session.scalar(
        select(Customer).where(Customer.account_id == account.id, Customer.user_id == user.id)
    )
    if customer is None:
        raise NotFound("customer")
    return customer


LIST_FILTERS = ("status", "label", "email")
COUNTED = ("status", "label")  # the filters customer_counts keeps a count by
LIST_SORTS = ("inserted_at", "updated_at", "name")


class CustomerPage(NamedTuple):
    rows: list
    total: int  # how many match the filters and search: exact, or an estimate (total_exact)
    all_count: int  # how many the account has, exact
    total_exact: bool


# A search matching more customers than this has its total estimated, not counted
# (docs/customer-lists.md): counting is work in proportion to the matches.
EXACT_TOTAL_UP_TO = 10_000
# How many of the newest customers an estimate checks: about 10% off where a word is on a tenth
# of the customers, less for broader words.
ESTIMATE_SAMPLE = 1_000


def list_customers(
    account: Account, *, filters: dict, search: str | None, sort: list, page: int, size: int
) -> CustomerPage:
    """A page of the account's customers, its total after filters and search, and the account's count.

    Each filter and sort has an index led by account_id; search= matches the beginnings of
    words through the customer_search_terms index (models/customer_search.py). An email
    matches as people read it: by its canonical form, the unique email_key. How a search's
    page and total are found, and when a total is an estimate: docs/customer-lists.md.
    """
    keys = customer_search.search_keys(search)
    if not keys and not (search and search.strip()):
        return _page_with_counts(account, filters, sort, page, size)
    # A search: the counts first, setting every query after them to read its bounded number
    # of index entries in one process.
    all_count, passing = db.session.execute(database.in_one_process(_counts(account, filters))).one()
    if not keys:
        return CustomerPage([], 0, all_count, True)  # nothing but punctuation: no word can match
    keys, driver_matches = _narrowest_first(account, keys)
    query = _filtered(select(Customer.id).where(Customer.account_id == account.id), filters, keys[1:])
    query = query.where(Customer.id.in_(_matching(account, keys[0])))
    offset = (page - 1) * size
    rows = db.session.scalars(_rows(query, sort, offset, size)).all()
    if _ends_here(rows, page, size):
        return CustomerPage(rows, offset + len(rows), all_count, True)  # exact for free
    if "email" in filters:
        return CustomerPage(rows, count(query), all_count, True)  # one customer at most
    total, exact = _search_total(account, keys, filters, driver_matches, passing)
    if not exact and rows:
        total = max(total, offset + len(rows))  # never fewer than the pages shown so far
    return CustomerPage(rows, total, all_count, exact)


def _page_with_counts(account: Account, filters: dict, sort: list, page: int, size: int) -> CustomerPage:
    """A page without a search, its rows and the counts in one statement: each customer comes
    with the account's count and the filtered total beside it (an empty page reads them on
    their own). Nothing follows it, and it reads at most an offset and a page of index entries."""
    query = _filtered(select(Customer.id).where(Customer.account_id == account.id), filters, [])
    offset = (page - 1) * size
    counting = _counts(account, filters)
    counts = counting.subquery()
    page_and_counts = _rows(query, sort, offset, size).add_columns(*counts.c).join(counts, true())
    found = db.session.execute(page_and_counts).all()
    rows = [row[0] for row in found]
    all_count, passing = found[0][1:] if found else db.session.execute(counting).one()
    if "email" not in filters:
        return CustomerPage(rows, passing, all_count, True)
    if _ends_here(rows, page, size):
        return CustomerPage(rows, offset + len(rows), all_count, True)  # exact for free
    return CustomerPage(rows, count(query), all_count, True)  # past the one customer it can match


def _ends_here(rows: list, page: int, size: int) -> bool:
    """Whether the list ends on this page: a short page, or an empty first one. Its total is
    then the rows before it and on it."""
    return 0 < len(rows) < size or (page == 1 and not rows)


def _rows(query, sort: list, offset: int, size: int):
    """The page of customers whose ids query finds, in the order sort asks, each with its user.

    The page's ids first, from the list's index and the terms' alone (a deep page of a search
    walks many entries and checks each one's words; it reads no table row for those it
    skips), then those rows, each with its user joined: a customer shows its user's pending
    email. id breaks ties in the direction of the last key, as the indexes end in id.
    """
    order = [getattr(Customer, f).desc() if desc else getattr(Customer, f).asc() for f, desc in sort]
    order.append(Customer.id.desc() if sort[-1][1] else Customer.id.asc())
    ids = query.order_by(*order).offset(offset).limit(size)
    return select(Customer).where(Customer.id.in_(ids)).order_by(*order).options(joinedload(Customer.user))


def _filtered(query, filters: dict, words: list[str]):
    """query with the filters, and a check of each of the words."""
    for field, value in filters.items():
        column = getattr(Customer, field)
        if field == "email":
            query = query.where(Customer.email_key == identifiers.canonical(value))
        else:
            query = query.where(column == value if value else column.is_(None))
    for word in words:
        query = query.where(_has_term(word))
    return query


def _narrowest_first(account: Account, keys: list[str]) -> tuple[list[str], int | None]:
    """The words, the one that matches fewest customers first, and how many the first matches
    up to EXACT_TOTAL_UP_TO + 1 (None for a single word: nothing was counted). Each is counted
    up to that limit from the terms index alone; those past it, by PostgreSQL's estimate."""
    if len(keys) < 2:
        return keys, None
    counted = {key: _matches_up_to_limit(account, key) for key in keys}
    order = dict(counted)
    broad = [key for key in keys if counted[key] > EXACT_TOTAL_UP_TO]
    if len(broad) > 1 and database.on_postgresql():
        order.update(
            {key: EXACT_TOTAL_UP_TO + database.estimate(_first_terms(account, key)) for key in broad}
        )
    keys = sorted(keys, key=lambda key: order[key])
    return keys, counted[keys[0]]


def _matches_up_to_limit(account: Account, key: str) -> int:
    return count(_first_terms(account, key).limit(EXACT_TOTAL_UP_TO + 1))


def _search_total(
    account: Account, keys: list[str], filters: dict, driver_matches: int | None, passing: int
) -> tuple[int, bool]:
    """How many customers match every word and filter, and whether that is exact.

    When the first (narrowest) word has at most EXACT_TOTAL_UP_TO customers, each is checked
    against the filters and the other words: exact. Otherwise the total is estimated from a
    sample: of the newest ESTIMATE_SAMPLE customers that pass the filters, the share that
    matches every word, times how many pass the filters (the counters' exact count). SQLite,
    a development database, counts them all. driver_matches: the first word's, if counted;
    passing: how many customers pass the filters, from the counters already read.
    """
    if not database.on_postgresql():
        return _matches_among(_first_terms(account, keys[0]), keys[1:], filters), True
    if driver_matches is None:
        driver_matches = _matches_up_to_limit(account, keys[0])
    if driver_matches <= EXACT_TOTAL_UP_TO:
        return _matches_among(_first_terms(account, keys[0]), keys[1:], filters), True
    newest = _filtered(select(Customer.id).where(Customer.account_id == account.id), filters, [])
    sample = newest.order_by(Customer.inserted_at.desc(), Customer.id.desc()).limit(ESTIMATE_SAMPLE)
    sampled = sample.subquery()
    # The sample's size and how many of it match every word, in one reading of it.
    every_word = and_(*(_has_term(key) for key in keys))
    sampled_count, matched = db.session.execute(
        select(func.count(), func.count().filter(every_word))
        .select_from(Customer)
        .join(sampled, Customer.id == sampled.c.id)
    ).one()
    if sampled_count < ESTIMATE_SAMPLE:
        return matched, True  # the sample was every customer that passes the filters
    return round(matched / sampled_count * passing), False


def _matches_among(customer_ids, words: list[str], filters: dict) -> int:
    """How many of the customers customer_ids selects match the filters and the words."""
    candidates = customer_ids.subquery()
    query = select(Customer.id).join(candidates, Customer.id == candidates.c.customer_id)
    return count(_filtered(query, filters, words))


def _first_terms(account: Account, key: str):
    """One row per customer with a term that starts with key, from the terms index alone.

    A customer's terms in the range after its first share at least the key with the one
    before them (models/customer_search.py), so leaving them out leaves each customer once.
    """
    return _matching(account, key).where(CustomerSearchTerm.shared_prefix < len(key))


def _matching(account: Account, key: str):
    """The ids of the account's customers with a search term that starts with key."""
    term = CustomerSearchTerm.term
    return select(CustomerSearchTerm.customer_id).where(
        CustomerSearchTerm.account_id == account.id, customer_search.prefix_range(term, key)
    )


def _has_term(key: str):
    """Whether the customer has a term that starts with key: one probe of the terms' primary
    key, which carries the account (migration 0017), so the probe reads the index alone.

    OFFSET 0 keeps it a check of each row, in the order the words come, narrowest first,
    rather than a join the planner might start from a broad word.
    """
    term = CustomerSearchTerm.term
    probe = (
        select(CustomerSearchTerm.customer_id)
        .where(CustomerSearchTerm.customer_id == Customer.id, customer_search.prefix_range(term, key))
        .offset(0)
    )
    return probe.exists()


def find_guest(account: Account, code: str | None, identifiers: dict) -> Customer:
    """Find a guest customer by its code and at least one more identifier, all matching.

    Names match ignoring case and spaces, phone numbers by their digits; anything less
    than a full match is NotFound.
    """
    given = {field: value for field, value in identifiers.items() if value}
    if not code or not given:
        raise NotFound("customer")
    query = select(Customer).where(Customer.account_id == account.id, Customer.code == code)
    customer = db.session.scalar(query.where(Customer.status == "guest"))
    if customer is None or not all(_same(f, getattr(customer, f), v) for f, v in given.items()):
        raise NotFound("customer")
    return customer


def _same(field: str, stored: str | None, given: str) -> bool:
    if stored is None:
        return False
    if field == "phone_number":
        return _digits(stored) == _digits(given) != ""
    if field == "email":
        return identifiers.canonical(stored) == identifiers.canonical(given)
    return _squash(stored) == _squash(given)


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _squash(value: str) -> str:
    return "".join(value.split()).casefold()


def _counts(account: Account, filters: dict):
    """A query of how many customers the account has, and how many of them pass the filters
    the counters keep (status and label; any other is the caller's to apply): exact, from the
    counters the database keeps, in one reading of them.
    """
    everyone = func.sum(CustomerCount.count)
    kept = [getattr(CustomerCount, field) == value for field, value in filters.items() if field in COUNTED]
    passing = everyone.filter(and_(*kept)) if kept else everyone
    counts = (func.coalesce(total, 0).cast(BigInteger) for total in (everyone, passing))  # not numeric
    return select(*counts).where(CustomerCount.account_id == account.id)


def _apply_fields(customer: Customer, attrs: dict) -> None:
    # A name that was just first and last name follows them, also when a client posts the
    # whole object back with the old name in it (the Freshcom SDK does).
    composed = customer.name == _full_name(customer) and attrs.get("name", customer.name) == customer.name
    for field in EDITABLE_FIELDS:
        if field in attrs:
            setattr(customer, field, attrs[field])
    for field in ("code", "label"):  # blank is none: unique codes, counted labels
        if field in attrs:
            setattr(customer, field, attrs[field] or None)
    if "email" in attrs:
        customer.email = users.email_address(attrs["email"])
    if composed and ({"first_name", "last_name"} & attrs.keys()):
        customer.name = _full_name(customer)
        if len(customer.name or "") > NAME_LENGTH:  # each fits its column; the two may not
            field = "last_name" if "last_name" in attrs else "first_name"
            title = f"First and last name together must be at most {NAME_LENGTH - 1} characters."
            raise invalid(field, "length", title)


def _full_name(customer: Customer) -> str | None:
    return " ".join(p for p in (customer.first_name, customer.last_name) if p) or None


def _change_status(customer: Customer, status: str, attrs: dict, *, password_required: bool) -> None:
    """Move to status: registered needs an active user, suspended a suspended one (if any)."""
    user = customer.user
    if status == customer.status:
        return
    if status == "guest" and user is not None:
        raise invalid("status", "invalid", "A customer with a user cannot become a guest again.")
    if user is None and status != "guest":
        # A suspended customer has a user too, created suspended (it has no tokens to revoke).
        user_status = "active" if status == "registered" else "suspended"
        _register(customer, attrs, user_status=user_status, password_required=password_required)
    elif status == "registered":
        users.reactivate(user)
    elif status == "suspended":
        users.suspend(user)
    customer.status = status


def _register(customer: Customer, attrs: dict, *, user_status: str, password_required: bool) -> None:
    """Create the customer's managed user from its profile, username defaulting to email."""
    needed = ("email", "password") if password_required and not attrs.get("password_hash") else ("email",)
    missing = [f for f in needed if not (attrs.get(f) or getattr(customer, f, None))]
    if missing:
        raise ValidationFailed(
            *(FieldError(f, "required", f"{f.capitalize()} is required to register.") for f in missing)
        )
    customer.user = users.create_managed_user(
        db.session.get(Account, customer.account_id),
        username=attrs.get("username") or customer.email,
        password=attrs.get("password"),
        password_hash=attrs.get("password_hash"),
        role="customer",
        status=user_status,
        **{field: getattr(customer, field) for field in PROFILE_FIELDS},
    )
