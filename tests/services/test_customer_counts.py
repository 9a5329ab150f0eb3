"""The per-status, per-label customer counters kept by database triggers stay exact."""

import pytest
from sqlalchemy import delete, func, insert, select, update

from freshcom_customers.extensions import db
from freshcom_customers.models import Customer, CustomerCount
from tests.statements import statements


def counters(session, account) -> dict:
    rows = session.execute(
        select(CustomerCount.status, CustomerCount.label, CustomerCount.count).where(
            CustomerCount.account_id == account.id, CustomerCount.count != 0
        )
    )
    return {(status, label): count for status, label, count in rows}


def real(session, account) -> dict:
    label = func.coalesce(Customer.label, "")
    rows = session.execute(
        select(Customer.status, label, func.count())
        .where(Customer.account_id == account.id)
        .group_by(Customer.status, label)
    )
    return {(status, label): count for status, label, count in rows}


def test_counters_follow_inserts_updates_and_deletes(session, account):
    live = account.live
    rows = [{"account_id": live.id, "status": "guest", "label": label} for label in ("vip", None, None, "x")]
    session.execute(insert(Customer), rows)  # one statement, several rows
    assert counters(session, live) == {("guest", "vip"): 1, ("guest", ""): 2, ("guest", "x"): 1}

    session.execute(
        update(Customer).where(Customer.account_id == live.id, Customer.label.is_(None)).values(label="vip")
    )
    session.execute(update(Customer).where(Customer.account_id == live.id).values(description="no move"))
    session.execute(update(Customer).where(Customer.label == "x").values(status="suspended"))
    assert counters(session, live) == {("guest", "vip"): 3, ("suspended", "x"): 1}

    session.execute(delete(Customer).where(Customer.account_id == live.id, Customer.status == "guest"))
    assert counters(session, live) == {("suspended", "x"): 1} == real(session, live)


def test_counters_through_the_api_match_the_rows(client, auth, account, register, session):
    owner = auth.headers(auth.owner(account))
    roy, _ = register(label="vip")
    guest = auth.headers(auth.guest(account))
    for i in range(3):
        client.post("/v1/customers", json={"data": {"attributes": {"email": f"g{i}@x.test"}}}, headers=guest)
    body = {"data": {"type": "Customer", "attributes": {"status": "suspended", "label": ""}}}
    assert client.patch(f"/v1/customers/{roy['id']}", json=body, headers=owner).status_code == 200
    assert (
        counters(session, account.live)
        == real(session, account.live)
        == {
            ("guest", ""): 3,
            ("suspended", ""): 1,
        }
    )
    assert client.delete(f"/v1/customers/{roy['id']}", headers=owner).status_code == 204
    assert counters(session, account.live) == real(session, account.live) == {("guest", ""): 3}


@pytest.mark.parametrize(
    "query", [{}, {"filter[status]": "guest"}, {"filter[label]": "vip"}, {"filter[label]": ""}]
)
def test_list_totals_read_the_counters(client, auth, account, register, query, session):
    register(label="vip")
    guest = auth.headers(auth.guest(account))
    client.post("/v1/customers", json={"data": {"attributes": {"email": "g@x.test"}}}, headers=guest)
    owner = auth.headers(auth.owner(account))
    body = client.get("/v1/customers", query_string=query, headers=owner).get_json()
    assert body["meta"]["totalCount"] == len(body["data"])
    assert body["meta"]["allCount"] == 2


@pytest.mark.parametrize(
    ("query", "readings"), [({}, 1), ({"filter[status]": "registered"}, 1), ({"filter[status]": "guest"}, 2)]
)
def test_a_list_reads_the_counters_once(client, auth, account, register, query, readings):
    # The account's count and the filtered total in one reading, filtered or not (issue 18),
    # beside the page's rows; a page without rows reads them on their own, after it.
    register()
    owner = auth.headers(auth.owner(account))
    with statements(db.engine) as seen:
        body = client.get("/v1/customers", query_string=query, headers=owner).get_json()
    assert sum("FROM customer_counts" in statement for statement in seen) == readings
    assert body["meta"]["allCount"] == 1
    assert body["meta"]["totalCount"] == (0 if query.get("filter[status]") == "guest" else 1)
