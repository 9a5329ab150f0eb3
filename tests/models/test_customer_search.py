"""Search terms: what a customer is found by, and that the terms follow every write."""

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from freshcom_customers.errors import Taken
from freshcom_customers.models import CustomerSearchTerm
from freshcom_customers.models.customer_search import search_keys, term_rows, terms_of
from freshcom_customers.services import customer_import, customers, user_management
from tests.statements import statements


@pytest.mark.parametrize(
    ("values", "terms"),
    [
        (["Yuki Tanaka"], {"yuki tanaka", "tanaka"}),
        (
            ["yuki.tanaka+shop@Mail.Example.com"],
            {
                "yuki.tanaka+shop@mail.example.com",
                "tanaka+shop@mail.example.com",
                "shop@mail.example.com",
                "mail.example.com",
                "example.com",
                "com",
            },
        ),
        (["+1 (604) 555-0100"], {"16045550100", "6045550100", "5550100", "0100"}),
        (["C-100%"], {"c-100%", "100%"}),
        (["Zoë Ørsted"], {"zoë ørsted", "ørsted"}),
        (["__x__"], {"x__"}),
        ([None, "", "  ", "%"], set()),
    ],
)
def test_terms_are_the_suffixes_that_start_a_word(values, terms):
    assert terms_of(values) == terms


@pytest.mark.parametrize(
    ("search", "keys"),
    [
        ("  Tanaka ", ["tanaka"]),
        ("yuki TANAKA yuki", ["yuki", "tanaka"]),
        ("(604) 555-0100", ["604", "5550100"]),
        ("+1", ["1"]),
        ("tanaka@", ["tanaka@"]),
        ("% _ --", []),
        (None, []),
    ],
)
def test_a_search_needs_each_word_as_a_prefix(search, keys):
    assert search_keys(search) == keys


def stored_terms(session, customer) -> set:
    query = select(CustomerSearchTerm.term).where(CustomerSearchTerm.customer_id == customer.id)
    return set(session.scalars(query))


def test_terms_are_written_with_the_customer_and_follow_its_changes(session, account):
    customer = customers.create_customer(account.live, {"name": "Amy Li", "code": "A1"})
    assert stored_terms(session, customer) == {"amy li", "li", "a1"}
    customers.update_customer(customer, {"name": "Amy Stone", "label": "vip"})
    session.flush()
    assert stored_terms(session, customer) == {"amy stone", "stone", "a1"}
    query = select(CustomerSearchTerm.account_id).where(CustomerSearchTerm.customer_id == customer.id)
    assert set(session.scalars(query)) == {account.live.id}


def test_a_change_that_searches_nothing_leaves_the_terms_alone(session, account):
    customer = customers.create_customer(account.live, {"name": "Amy Li"})
    with statements(Engine) as seen:
        customers.update_customer(customer, {"label": "vip", "caption": "x"})
        session.flush()
    assert seen and not [s for s in seen if "customer_search_terms" in s]


def test_an_email_changed_on_the_user_changes_the_customer_terms(session, account):
    customer = customers.create_customer(
        account.live, {"status": "registered", "email": "amy@old.test", "password": "a-password-1"}
    )
    user_management.update_user(customer.user, {"email": "amy@new.test"}, by_role="owner")
    session.flush()
    assert {"amy@new.test", "new.test", "test"} <= stored_terms(session, customer)
    assert "old.test" not in stored_terms(session, customer)


def test_terms_go_with_a_deleted_customer(session, account):
    customer = customers.create_customer(account.live, {"name": "Amy Li"})
    customers.delete_customer(customer)
    session.flush()
    assert stored_terms(session, customer) == set()


def test_a_refused_write_leaves_no_terms(session, account):
    customers.create_customer(account.live, {"code": "A1"})
    session.flush()
    with pytest.raises(Taken), session.begin_nested():
        customers.create_customer(account.live, {"code": "A1", "name": "Twin"})
    query = select(CustomerSearchTerm.term).where(CustomerSearchTerm.account_id == account.live.id)
    assert set(session.scalars(query)) == {"a1"}


def test_imported_customers_are_searchable(session, account):
    rows = [customer_import.Row(1, {"code": "K1", "name": "Ken Watanabe", "phone_number": "03-1234-5678"})]
    assert [b.created for b in customer_import.import_customers(account.live, rows, workers=1)] == [1]
    page = customers.list_customers(
        account.live, filters={}, search="watanabe 5678", sort=[("inserted_at", True)], page=1, size=20
    )
    assert [c.name for c in page.rows] == ["Ken Watanabe"] and (page.total, page.total_exact) == (1, True)


def test_terms_carry_what_they_share_with_the_one_before():
    assert term_rows(["Tanaka Tanaka", "tanaka@tanaka.jp"]) == [
        ("jp", 0),
        ("tanaka", 0),
        ("tanaka tanaka", 6),
        ("tanaka.jp", 6),
        ("tanaka@tanaka.jp", 6),
    ]


PEOPLE = [
    {"name": "Tanaka Tanaka", "email": "tanaka@tanaka.jp", "code": "T-1"},
    {"name": "Tana Tanabe", "email": "tana.be@tanabe.jp", "phone_number": "090-1111-2222"},
    {"name": "Yuki Tanaka", "email": "yuki@tana.ka", "code": "TANA-9"},
    {"name": "Ana", "email": "ana@example.com", "phone_number": "+81 90 1111 2223"},
    {"name": "Tan", "code": "1111"},
]


@pytest.mark.parametrize(
    "search", ["t", "ta", "tan", "tana", "tanaka", "tanaka@", "tanab", "jp", "1111", "0901", "9", "a"]
)
def test_a_total_counts_each_matching_customer_once(session, account, search):
    for attrs in PEOPLE:
        customers.create_customer(account.live, attrs)
    session.flush()
    pages = [
        customers.list_customers(
            account.live, filters={}, search=search, sort=[("inserted_at", True)], page=n, size=1
        )
        for n in range(1, len(PEOPLE) + 2)
    ]
    found = {c.id for page in pages for c in page.rows}
    assert {(page.total, page.total_exact) for page in pages} == {(len(found), True)}
    assert found  # every search here matches someone
