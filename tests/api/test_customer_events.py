"""A customer's history (API.md 12): GET /v1/customers/:id/events, newest first, with who did each thing.

Each change is told once, by the staff user, the client, the customer itself or the system that
made it. Within a test, requests share the test's app context and so its database session,
where the face keeps the request's actor: a request that must act without one (a link used, the
CLI) runs in an app context of its own, as each request does in production.
"""

import json
import uuid

import pytest
from sqlalchemy import select

from freshcom_customers.models import STAFF_ROLES, CustomerEvent, User
from freshcom_customers.services import access_tokens
from tests.conftest import (
    REGISTRATION,
    Auth,
    assert_no_content,
    create_client,
    customer_document,
    errors_of,
)
from tests.oauth2.conftest import basic

PASSWORD = REGISTRATION["password"]
NEW_PASSWORD = "a brand new passphrase"
# What an erased history must not hold of Roy: its email, its names, the network it logged in from.
PERSONAL = ("roy@example.com", "example.com", "roy", "bao", "203.0.113")


def history(client, headers, customer_id, **params) -> dict:
    response = client.get(f"/v1/customers/{customer_id}/events", headers=headers, query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def told(client, headers, customer_id) -> list[tuple]:
    """(event, actor, actorId) of each line of the customer's history, newest first."""
    lines = history(client, headers, customer_id)["data"]
    return [
        (line["attributes"]["event"], line["attributes"]["actor"], line["attributes"]["actorId"])
        for line in lines
    ]


def attributes_of(client, headers, customer_id, event: str) -> dict:
    """The attributes of the customer's one line of this event."""
    (line,) = [
        line["attributes"]
        for line in history(client, headers, customer_id)["data"]
        if line["attributes"]["event"] == event
    ]
    return line


def patch_customer(client, headers, customer_id, **attributes):
    document = customer_document(**attributes)
    document["data"]["id"] = customer_id
    return client.patch(f"/v1/customers/{customer_id}", json=document, headers=headers)


def log_in(client, account, username=REGISTRATION["email"], password=PASSWORD, address="203.0.113.77"):
    data = {
        "grant_type": "password",
        "username": username,
        "password": password,
        "scope": f"aid:{account.live.id}",
    }
    return client.post("/v1/token", data=data, environ_base={"REMOTE_ADDR": address})


def roy_headers(client, account, password=PASSWORD) -> dict:
    response = log_in(client, account, password=password)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def staff_id(session, account, username: str) -> str:
    return str(
        session.scalar(select(User.id).where(User.account_id == account.live.id, User.username == username))
    )


def rows_of(session, customer_id) -> list[CustomerEvent]:
    query = select(CustomerEvent).where(CustomerEvent.customer_id == uuid.UUID(customer_id))
    return session.scalars(query.order_by(CustomerEvent.id).execution_options(populate_existing=True)).all()


@pytest.fixture
def manager(staff) -> dict:
    """Headers of a manager: staff who create, change and delete customers."""
    return staff("manager")


@pytest.fixture
def reader(staff) -> dict:
    """Headers of read_only staff: the least role that reads a history."""
    return staff("read_only")


@pytest.fixture
def alone(app):
    """An app context of its own for the requests in it: its own session, and no earlier actor."""
    return app.app_context


# Created: by each kind of actor.


def test_staff_creating_a_customer_is_its_actor(client, session, account, manager):
    response = client.post("/v1/customers", json=customer_document(email="ann@x.test"), headers=manager)
    assert response.status_code == 201, response.get_json()

    customer_id = response.get_json()["data"]["id"]
    assert told(client, manager, customer_id) == [("created", "staff", staff_id(session, account, "manager"))]


def test_a_guest_registering_is_the_customer_itself(client, roy, reader):
    assert told(client, reader, roy["id"]) == [("created", "customer", None)]


def test_a_machine_client_creating_a_customer_is_its_actor(client, runner, account, reader):
    machine = create_client(runner, account, "Back office", "--confidential", "--role", "manager")
    grant = {"grant_type": "client_credentials", "scope": f"aid:{account.live.id}"}
    token = client.post("/v1/token", data=grant, headers=basic(machine["clientId"], machine["clientSecret"]))
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}

    response = client.post("/v1/customers", json=customer_document(email="ann@x.test"), headers=headers)

    assert response.status_code == 201, response.get_json()
    assert told(client, reader, response.get_json()["data"]["id"]) == [
        ("created", "client", machine["clientId"])
    ]


def test_the_import_creates_customers_as_the_system(
    client, runner, session, account, manager, alone, tmp_path
):
    client.get("/v1/customers", headers=manager)  # staff acted in this test's context before
    path = tmp_path / "customers.csv"
    path.write_text("email,first_name,status,password\nann@x.test,Ann,registered,ann-password-1\n")

    with alone():
        result = runner.invoke(args=["customers", "import", str(path), "--account", str(account.live.id)])

    assert result.exit_code == 0, result.output
    (customer_id,) = session.scalars(
        select(CustomerEvent.customer_id).where(CustomerEvent.event == "created")
    )
    assert told(client, manager, str(customer_id)) == [("created", "system", None)]


# Changes: each told once, as its own event.


def test_an_update_names_the_fields_it_changed_in_camel_case(client, session, account, roy, manager):
    manager_id = staff_id(session, account, "manager")
    changed = patch_customer(client, manager, roy["id"], firstName="Royce", phoneNumber="+1 555 0100")
    assert changed.status_code == 200, changed.get_json()
    same = patch_customer(client, manager, roy["id"], firstName="Royce", lastName="Bao")
    assert same.status_code == 200, same.get_json()

    assert told(client, manager, roy["id"]) == [
        ("updated", "staff", manager_id),
        ("created", "customer", None),
    ]
    updated = attributes_of(client, manager, roy["id"], "updated")
    assert updated["details"] == {"fields": ["firstName", "name", "phoneNumber"]}


def test_suspension_and_reactivation_are_their_own_events(client, session, account, roy, manager):
    manager_id = staff_id(session, account, "manager")
    for status in ("suspended", "registered"):
        response = patch_customer(client, manager, roy["id"], status=status)
        assert response.status_code == 200, response.get_json()

    assert told(client, manager, roy["id"]) == [
        ("reactivated", "staff", manager_id),
        ("suspended", "staff", manager_id),
        ("created", "customer", None),
    ]


def test_staff_registering_a_guest_is_one_registered(client, session, account, guest, manager):
    created = client.post("/v1/customers", json=customer_document(email="gia@x.test"), headers=guest)
    customer_id = created.get_json()["data"]["id"]

    response = patch_customer(client, manager, customer_id, status="registered", password="gia-password-1")

    assert response.status_code == 200, response.get_json()
    manager_id = staff_id(session, account, "manager")
    assert told(client, manager, customer_id) == [
        ("registered", "staff", manager_id),
        ("created", "customer", None),
    ]


@pytest.fixture
def returning(client, guest, mailbox):
    """A guest who registers with its email and uses the confirmation link; return its id."""
    created = client.post("/v1/customers", json=customer_document(email="roy@example.com"), headers=guest)
    registration = customer_document(
        status="registered", email="roy@example.com", password=PASSWORD, firstName="Roy"
    )
    assert client.post("/v1/customers", json=registration, headers=guest).status_code == 202
    body = {
        "data": {
            "type": "RegistrationConfirmation",
            "attributes": {"token": mailbox.token(mailbox.wait_for(1)[0])},
        }
    }
    confirmed = client.post("/v1/registration_confirmations", json=body, headers=guest)
    assert confirmed.status_code == 201, confirmed.get_json()
    return created.get_json()["data"]["id"]


def test_a_returning_guests_confirmation_is_one_registered_by_the_customer(client, returning, reader):
    lines = told(client, reader, returning)

    assert [line for line in lines if line[0] in ("registered", "created")] == [
        ("registered", "customer", None),
        ("created", "customer", None),
    ]


def test_a_returning_guests_confirmation_tells_its_profile_in_one_update(client, returning, reader):
    assert [line[0] for line in told(client, reader, returning)].count("updated") == 1


def test_staff_changing_a_registered_customers_email_is_one_email_changed(
    client, session, account, roy, manager
):
    response = patch_customer(client, manager, roy["id"], email="roy.bao@example.net")

    assert response.status_code == 200, response.get_json()
    manager_id = staff_id(session, account, "manager")
    assert told(client, manager, roy["id"]) == [
        ("email_changed", "staff", manager_id),
        ("created", "customer", None),
    ]


def test_a_guests_new_email_is_one_email_changed(client, session, account, guest, manager):
    created = client.post("/v1/customers", json=customer_document(email="gia@x.test"), headers=guest)
    customer_id = created.get_json()["data"]["id"]

    assert patch_customer(client, manager, customer_id, email="gia@y.test").status_code == 200

    manager_id = staff_id(session, account, "manager")
    assert told(client, manager, customer_id) == [
        ("email_changed", "staff", manager_id),
        ("created", "customer", None),
    ]


def verify_new_email(client, account, roy, mailbox, alone):
    """Roy asks for a new email with its password, then uses the mailed link in a request of its own."""
    headers, mailed = roy_headers(client, account), len(mailbox.settled())
    asked = patch_customer(client, headers, roy["id"], email="roy.bao@example.net", currentPassword=PASSWORD)
    assert asked.status_code == 200, asked.get_json()
    token = mailbox.token(mailbox.wait_for(mailed + 1)[-1])
    with alone():
        used = client.post("/v1/email_verifications", json=verification(token))
    assert_no_content(used)


def verification(token: str) -> dict:
    return {"data": {"type": "EmailVerification", "attributes": {"token": token}}}


def reset_password(client, account, roy, mailbox, alone):
    """Roy asks for a reset link from the storefront, then uses it, in a request of its own."""
    auth = Auth(client)
    asked = {"data": {"type": "PasswordResetToken", "attributes": {"username": roy["attributes"]["email"]}}}
    guest = auth.headers(auth.guest(account))
    assert_no_content(client.post("/v1/password_reset_tokens", json=asked, headers=guest))
    token = mailbox.token(mailbox.wait_for(1)[0])
    document = {"data": {"type": "Password", "attributes": {"value": NEW_PASSWORD}}}
    with alone():
        used = client.patch(f"/v1/password?resetToken={token}", json=document)
    assert_no_content(used)


def test_a_customers_own_new_email_is_one_email_changed_when_its_link_is_used(
    client, account, roy, reader, mailbox, alone
):
    verify_new_email(client, account, roy, mailbox, alone)

    events = [line[0] for line in told(client, reader, roy["id"])]
    assert events.count("email_changed") == 1
    assert events[-2:] == ["logged_in", "created"]  # asking for it changed nothing yet


def test_a_verified_customers_new_email_is_only_email_changed(client, account, roy, reader, mailbox, alone):
    assert_no_content(client.post("/v1/email_verification_tokens", headers=roy_headers(client, account)))
    assert_no_content(
        client.post("/v1/email_verifications", json=verification(mailbox.token(mailbox.wait_for(1)[0])))
    )
    assert attributes_of(client, reader, roy["id"], "updated")["details"] == {"fields": ["emailVerified"]}

    verify_new_email(client, account, roy, mailbox, alone)

    assert [line[0] for line in told(client, reader, roy["id"])][:2] == ["email_changed", "logged_in"]


def test_a_password_reset_is_one_password_reset(client, account, roy, reader, mailbox, alone):
    reset_password(client, account, roy, mailbox, alone)

    assert [line[0] for line in told(client, reader, roy["id"])] == ["password_reset", "created"]


@pytest.mark.parametrize(
    "use", [reset_password, verify_new_email], ids=["password reset", "email verification"]
)
def test_a_link_used_is_the_customers_own_doing(client, account, roy, reader, mailbox, alone, use):
    use(client, account, roy, mailbox, alone)

    lines = told(client, reader, roy["id"])
    assert {actor for event, actor, _ in lines if event in ("password_reset", "email_changed")} == {
        "customer"
    }


def test_a_password_change_is_one_password_changed_by_the_customer(client, account, roy, reader):
    attributes = {"password": NEW_PASSWORD, "currentPassword": PASSWORD}
    document = {"data": {"type": "User", "attributes": attributes}}
    response = client.patch("/v1/user", json=document, headers=roy_headers(client, account))

    assert response.status_code == 200, response.get_json()
    assert told(client, reader, roy["id"]) == [
        ("password_changed", "customer", None),
        ("logged_in", "customer", None),
        ("created", "customer", None),
    ]


# Logins and sessions.


@pytest.mark.parametrize(
    ("address", "network"),
    [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:1234:5678::1", "2001:db8:1234::/48")],
    ids=["IPv4", "IPv6"],
)
def test_a_password_login_is_logged_in_from_its_network(client, account, roy, reader, address, network):
    assert log_in(client, account, address=address).status_code == 200

    line = attributes_of(client, reader, roy["id"], "logged_in")
    assert (line["actor"], line["actorId"], line["ipAddress"]) == ("customer", None, network)
    assert line["details"] == {"face": "oauth"}


def test_a_wrong_password_is_a_failed_login_of_the_customer(client, account, roy, reader):
    assert log_in(client, account, password="not-roys-password").status_code == 400

    assert told(client, reader, roy["id"]) == [
        ("login_failed", "anonymous", None),
        ("created", "customer", None),
    ]
    line = attributes_of(client, reader, roy["id"], "login_failed")
    assert (line["ipAddress"], line["details"]) == ("203.0.113.0/24", {"method": "password"})


def test_a_failed_login_of_an_unknown_username_is_written_without_a_customer(client, session, account, roy):
    failed = select(CustomerEvent).where(
        CustomerEvent.account_id == account.live.id, CustomerEvent.event == "login_failed"
    )

    assert (
        log_in(client, account, username="nobody@example.com", password="any-password-1").status_code == 400
    )

    (row,) = session.scalars(failed).all()
    assert (row.customer_id, row.actor, row.ip_address, row.details) == (
        None,
        "anonymous",
        "203.0.113.0/24",
        {"method": "password"},
    )


def test_ending_sessions_is_sessions_ended_by_the_customer(client, account, roy, reader):
    headers = roy_headers(client, account)
    other = log_in(client, account).get_json()["access_token"]
    other_id = access_tokens.decode(other)["fid"]

    assert_no_content(client.delete(f"/v1/sessions/{other_id}", headers=headers))
    assert_no_content(client.delete("/v1/sessions", headers=headers))

    lines = history(client, reader, roy["id"])["data"]
    ended = [(line["attributes"]["actor"], line["attributes"]["details"]) for line in lines[:2]]
    assert ended == [("customer", {"allButCurrent": True}), ("customer", {"sessionId": other_id})]
    assert [line["attributes"]["event"] for line in lines] == [
        "sessions_ended",
        "sessions_ended",
        "logged_in",
        "logged_in",
        "created",
    ]


# Erasure and deletion: the history outlives the customer.


def erase_by_customer(client, headers, roy, manager):
    document = {"data": {"type": "Customer", "attributes": {"currentPassword": PASSWORD}}}
    assert_no_content(client.delete("/v1/customer", json=document, headers=headers))


def erase_by_staff(client, headers, roy, manager):
    assert_no_content(client.delete(f"/v1/customers/{roy['id']}?erase=true", headers=manager))


@pytest.mark.parametrize(
    ("erase", "actor"),
    [(erase_by_customer, "customer"), (erase_by_staff, "staff")],
    ids=["by itself", "by staff"],
)
def test_an_erasure_keeps_the_history_without_personal_data(
    client, session, account, roy, manager, erase, actor
):
    headers = roy_headers(client, account)
    assert log_in(client, account, password="not-roys-password").status_code == 400
    assert {row.ip_address for row in rows_of(session, roy["id"])} == {None, "203.0.113.0/24"}

    erase(client, headers, roy, manager)

    document = history(client, manager, roy["id"])
    events = [(line["attributes"]["event"], line["attributes"]["actor"]) for line in document["data"]]
    assert events == [
        ("erased", actor),
        ("login_failed", "anonymous"),
        ("logged_in", "customer"),
        ("created", "customer"),
    ]
    assert document["meta"]["totalCount"] == len(rows_of(session, roy["id"])) == 4
    assert {row.ip_address for row in rows_of(session, roy["id"])} == {None}
    text = json.dumps(document).lower()
    assert [value for value in PERSONAL if value in text] == []


def test_a_deletion_is_deleted_and_the_history_stays(client, session, account, roy, manager):
    assert_no_content(client.delete(f"/v1/customers/{roy['id']}", headers=manager))

    manager_id = staff_id(session, account, "manager")
    assert told(client, manager, roy["id"]) == [
        ("deleted", "staff", manager_id),
        ("created", "customer", None),
    ]


# What is not told, and who may read.


def test_a_refused_change_adds_nothing(client, session, roy, manager):
    other = client.post(
        "/v1/customers", json=customer_document(email="gia@x.test", code="C1"), headers=manager
    )
    assert other.status_code == 201, other.get_json()

    invalid = patch_customer(client, manager, roy["id"], email="not an email")
    taken = patch_customer(client, manager, roy["id"], code="C1", firstName="Royce")  # refused by the flush

    assert errors_of(invalid) == {("format", "/data/attributes/email")}
    assert errors_of(taken) == {("taken", "/data/attributes/code")}
    assert [row.event for row in rows_of(session, roy["id"])] == ["created"]


def test_the_history_is_newest_first_and_paged(client, roy, manager):
    for name in ("A", "B", "C", "D"):
        assert patch_customer(client, manager, roy["id"], firstName=name).status_code == 200

    pages = [history(client, manager, roy["id"], **{"page[number]": n, "page[size]": 2}) for n in (1, 2, 3)]

    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert {page["meta"]["totalCount"] for page in pages} == {5}
    ids = [int(line["id"]) for page in pages for line in page["data"]]
    assert ids == sorted(ids, reverse=True)
    assert pages[2]["data"][0]["attributes"]["event"] == "created"
    assert pages[0]["data"][0]["relationships"]["customer"]["data"] == {"id": roy["id"], "type": "Customer"}


@pytest.mark.parametrize("customer_id", [str(uuid.uuid4()), "not-an-id"], ids=["unknown", "malformed"])
def test_an_unknown_customer_is_not_found(client, reader, customer_id):
    assert client.get(f"/v1/customers/{customer_id}/events", headers=reader).status_code == 404


def test_another_accounts_customer_is_not_found(client, auth, other_account, roy):
    headers = auth.headers(auth.owner(other_account))

    assert client.get(f"/v1/customers/{roy['id']}/events", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [*((role, 200) for role in STAFF_ROLES), ("customer", 403), ("guest", 403), ("anonymous", 401)],
)
def test_staff_read_a_history_and_no_one_else(client, headers_as, roy, role, status):
    response = client.get(f"/v1/customers/{roy['id']}/events", headers=headers_as(role))

    assert response.status_code == status, response.get_json()
