"""A Chec JWT is a login session: listed for its customer's user on /v1/sessions, ended there at once."""

import uuid

from freshcom_customers.models import LoginSession
from freshcom_customers.services import access_tokens, magic_links
from tests.chec.conftest import chec_id
from tests.conftest import REGISTRATION


def native_headers(auth, account) -> dict:
    return auth.headers(auth.login(account, REGISTRATION["email"], REGISTRATION["password"])["access_token"])


def sessions_of(client, headers) -> dict:
    response = client.get("/v1/sessions", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {resource["id"]: resource["attributes"] for resource in response.get_json()["data"]}


def test_a_chec_login_is_listed_and_ending_it_refuses_its_jwt_at_once(
    client, chec, auth, account, roy_customer, login
):
    logged_in = login(REGISTRATION["email"])
    sid = access_tokens.decode(logged_in["jwt"])["sid"]
    path = f"customers/{logged_in['customer_id']}"
    assert chec.get(path, logged_in["jwt"]).status_code == 200
    headers = native_headers(auth, account)
    listed = sessions_of(client, headers)
    assert listed[sid]["clientName"] == "Storefront (Chec)"
    assert listed[sid]["current"] is False
    assert listed[sid]["ipAddress"] == "127.0.0.0/24"  # the test client's address
    assert client.delete(f"/v1/sessions/{sid}", headers=headers).status_code == 204
    response = chec.get(path, logged_in["jwt"])
    assert response.status_code == 401
    assert response.get_json()["error"]["type"] == "unauthorized"
    assert sid not in sessions_of(client, headers)


def test_ending_all_other_sessions_ends_the_chec_ones(client, chec, auth, account, roy_customer, jwt_for):
    jwt = jwt_for(roy_customer)
    headers = native_headers(auth, account)
    assert client.delete("/v1/sessions", headers=headers).status_code == 204
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).status_code == 401
    assert client.get("/v1/user", headers=headers).status_code == 200


def test_a_guests_chec_session_is_recorded_for_the_customer(session, chec, gia, jwt_for):
    jwt = jwt_for(gia)
    row = session.get(LoginSession, uuid.UUID(access_tokens.decode(jwt)["sid"]))
    assert (row.face, row.customer_id, row.user_id, row.client_id) == ("chec", gia.id, None, None)
    assert chec.get(f"customers/{chec_id(gia)}", jwt).status_code == 200


def test_a_jwt_signed_before_sessions_lives_on_unlisted(session, client, chec, auth, account, roy_customer):
    """Decision (docs/decisions.md, "Sessions"): no sid, and it works until its 24 hours end."""
    claims = {
        "role": "customer",
        "typ": magic_links.TOKEN_TYPE,
        "sub": str(roy_customer.id),
        "cid": chec_id(roy_customer),
        "gen": roy_customer.user.token_generation,
    }
    old, _ = access_tokens.sign(roy_customer.account_id, claims, 24 * 3600)
    assert chec.get(f"customers/{chec_id(roy_customer)}", old).status_code == 200
    headers = native_headers(auth, account)
    assert all(
        attributes["clientName"] != "Storefront (Chec)"
        for attributes in sessions_of(client, headers).values()
    )


def test_a_jwt_naming_another_customers_session_is_refused(session, chec, gia, roy_customer, jwt_for):
    gias_sid = access_tokens.decode(jwt_for(gia))["sid"]
    claims = {
        "role": "customer",
        "typ": magic_links.TOKEN_TYPE,
        "sub": str(roy_customer.id),
        "cid": chec_id(roy_customer),
        "gen": roy_customer.user.token_generation,
        "sid": gias_sid,
    }
    forged, _ = access_tokens.sign(roy_customer.account_id, claims, 3600)
    assert chec.get(f"customers/{chec_id(roy_customer)}", forged).status_code == 401
