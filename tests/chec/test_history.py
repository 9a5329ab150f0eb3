"""The Chec face in a customer's history (API.md 12): its logins and changes are the customer's own."""

import pytest

from tests.chec.conftest import chec_id


@pytest.fixture
def reader(staff) -> dict:
    return staff("read_only")


def told(client, headers, customer) -> list[dict]:
    """The attributes of the customer's lines, newest first."""
    response = client.get(f"/v1/customers/{customer.id}/events", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [line["attributes"] for line in response.get_json()["data"]]


def test_a_magic_link_login_is_logged_in_on_the_chec_face(client, login, gia, reader):
    login("gia@example.com")

    logged_in, created = told(client, reader, gia)
    assert (logged_in["event"], logged_in["actor"], logged_in["actorId"]) == ("logged_in", "customer", None)
    assert (logged_in["details"], logged_in["ipAddress"]) == ({"face": "chec"}, "127.0.0.0/24")
    assert (created["event"], created["actor"]) == ("created", "system")  # made by the service, no face


def test_a_chec_update_is_updated_by_the_customer(client, chec, gia, jwt_for, reader):
    response = chec.put(f"customers/{chec_id(gia)}", jwt_for(gia), {"firstname": "Gianna"})

    assert response.status_code == 200, response.get_json()
    updated = told(client, reader, gia)[0]
    assert (updated["event"], updated["actor"]) == ("updated", "customer")
    assert updated["details"] == {"fields": ["firstName", "name"]}
