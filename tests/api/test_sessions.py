"""/v1/sessions: the caller's sessions, native and Chec, listed and ended (API.md 10)."""

import pytest

from freshcom_customers.services import access_tokens
from tests.conftest import REGISTRATION, assert_no_content, create_client, error_code
from tests.oauth2.conftest import assert_invalid_grant, refresh

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Storefront/2.1"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


class Device:
    """One login of Roy's, from one client, one user agent and one address."""

    def __init__(self, client, account, client_id: str, user_agent: str, address: str):
        params = {
            "grant_type": "password",
            "username": REGISTRATION["email"],
            "password": REGISTRATION["password"],
            "scope": f"aid:{account.live.id}",
            "client_id": client_id,
        }
        response = client.post(
            "/v1/token",
            data=params,
            headers={"User-Agent": user_agent},
            environ_base={"REMOTE_ADDR": address},
        )
        assert response.status_code == 200, response.get_json()
        tokens = response.get_json()
        self.client_id = client_id
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]
        self.session_id = access_tokens.decode(self.access_token)["fid"]
        self.headers = {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
def devices(client, runner, account, roy):
    """Roy logged in twice: on the phone app (IPv4) and on the web shop (IPv6)."""
    phone = create_client(runner, account, "Phone app")["clientId"]
    web = create_client(runner, account, "Web shop")["clientId"]
    return (
        Device(client, account, phone, PHONE, "203.0.113.77"),
        Device(client, account, web, LAPTOP, "2001:db8:1234:5678::1"),
    )


def listed(client, headers) -> dict:
    response = client.get("/v1/sessions", headers=headers)
    assert response.status_code == 200, response.get_json()
    document = response.get_json()
    assert document["meta"]["totalCount"] == len(document["data"])
    return {resource["id"]: resource["attributes"] for resource in document["data"]}


def test_both_logins_are_listed_with_where_they_started_and_which_is_current(client, devices):
    phone, web = devices
    seen = listed(client, phone.headers)
    assert set(seen) == {phone.session_id, web.session_id}
    assert seen[phone.session_id] | {"createdAt": None, "lastUsedAt": None} == {
        "clientName": "Phone app",
        "userAgent": PHONE,
        "ipAddress": "203.0.113.0/24",
        "current": True,
        "createdAt": None,
        "lastUsedAt": None,
    }
    assert seen[web.session_id]["clientName"] == "Web shop"
    assert seen[web.session_id]["userAgent"] == LAPTOP
    assert seen[web.session_id]["ipAddress"] == "2001:db8:1234::/48"
    assert seen[web.session_id]["current"] is False
    assert seen[web.session_id]["createdAt"].endswith("Z")
    assert listed(client, web.headers)[web.session_id]["current"] is True


def test_ending_one_session_kills_its_tokens_at_once_and_not_the_others(client, devices):
    phone, web = devices
    assert_no_content(client.delete(f"/v1/sessions/{web.session_id}", headers=phone.headers))
    assert client.get("/v1/user", headers=web.headers).status_code == 401
    assert_invalid_grant(refresh(client, web.refresh_token, client_id=web.client_id))
    assert client.get("/v1/user", headers=phone.headers).status_code == 200
    assert refresh(client, phone.refresh_token, client_id=phone.client_id).status_code == 200
    assert set(listed(client, phone.headers)) == {phone.session_id}


def test_ending_the_current_session_logs_the_caller_out(client, devices):
    phone, web = devices
    assert_no_content(client.delete(f"/v1/sessions/{phone.session_id}", headers=phone.headers))
    assert client.get("/v1/sessions", headers=phone.headers).status_code == 401
    assert set(listed(client, web.headers)) == {web.session_id}


def test_ending_all_others_keeps_the_current_one(client, auth, account, devices):
    phone, web = devices
    third = auth.login(account, REGISTRATION["email"], REGISTRATION["password"])
    assert_no_content(client.delete("/v1/sessions", headers=phone.headers))
    assert client.get("/v1/user", headers=web.headers).status_code == 401
    assert client.get("/v1/user", headers=auth.headers(third["access_token"])).status_code == 401
    assert_invalid_grant(refresh(client, third["refresh_token"]))
    assert set(listed(client, phone.headers)) == {phone.session_id}
    assert client.get("/v1/user", headers=phone.headers).status_code == 200


def test_another_users_session_is_not_found(client, owner, devices):
    phone, _ = devices
    owners = listed(client, owner)
    (owners_session,) = owners
    assert error_code(client.delete(f"/v1/sessions/{owners_session}", headers=phone.headers), 404)
    assert error_code(client.delete(f"/v1/sessions/{phone.session_id}", headers=owner), 404)
    assert error_code(client.delete("/v1/sessions/not-a-session", headers=owner), 404)
    assert client.get("/v1/user", headers=phone.headers).status_code == 200
    assert set(listed(client, owner)) == {owners_session}


def test_an_ended_session_is_not_found_again(client, devices):
    phone, web = devices
    assert_no_content(client.delete(f"/v1/sessions/{web.session_id}", headers=phone.headers))
    assert error_code(client.delete(f"/v1/sessions/{web.session_id}", headers=phone.headers), 404)


def test_a_guest_token_has_no_sessions(client, guest):
    assert error_code(client.get("/v1/sessions", headers=guest), 403)
    assert error_code(client.delete("/v1/sessions", headers=guest), 403)


def test_no_token_is_401(client):
    assert client.get("/v1/sessions").status_code == 401


def test_revoking_the_refresh_token_ends_the_session(client, devices):
    phone, web = devices
    response = client.post("/v1/token/revoke", data={"token": web.refresh_token, "client_id": web.client_id})
    assert response.status_code == 200, response.get_json()
    assert set(listed(client, phone.headers)) == {phone.session_id}
    assert client.get("/v1/user", headers=web.headers).status_code == 401


def test_a_password_change_ends_the_other_sessions_in_the_list(client, devices):
    phone, web = devices
    document = {
        "data": {
            "type": "User",
            "attributes": {"password": "roy-new-password-2", "currentPassword": REGISTRATION["password"]},
        }
    }
    assert client.patch("/v1/user", json=document, headers=phone.headers).status_code == 200
    assert set(listed(client, phone.headers)) == {phone.session_id}
    assert client.get("/v1/user", headers=web.headers).status_code == 401


def test_a_refreshed_session_keeps_its_id_and_stays_current(client, devices):
    phone, web = devices
    refreshed = refresh(client, phone.refresh_token, client_id=phone.client_id).get_json()
    seen = listed(client, {"Authorization": f"Bearer {refreshed['access_token']}"})
    assert set(seen) == {phone.session_id, web.session_id}
    assert seen[phone.session_id]["current"] is True


def test_staff_list_their_own_sessions(client, owner, auth, account):
    second = auth.owner(account)
    seen = listed(client, owner)
    assert len(seen) == 2
    assert sum(attributes["current"] for attributes in seen.values()) == 1
    assert {attributes["clientName"] for attributes in seen.values()} == {"Default"}  # the account's own
    assert_no_content(client.delete("/v1/sessions", headers=owner))
    assert client.get("/v1/account", headers=auth.headers(second)).status_code == 401


def test_revoking_an_access_token_ends_its_session(client, devices):
    phone, web = devices
    response = client.post("/v1/token/revoke", data={"token": web.access_token, "client_id": web.client_id})
    assert response.status_code == 200, response.get_json()
    assert set(listed(client, phone.headers)) == {phone.session_id}


def test_the_test_twins_session_is_a_session_of_its_own(client, auth, account):
    live = auth.token(grant_type="password", username=account.owner.username, password=account.owner_password)
    twin = refresh(client, live["refresh_token"], scope=f"aid:{account.test.id}")
    assert twin.status_code == 200, twin.get_json()
    seen = listed(client, auth.headers(twin.get_json()["access_token"]))
    live_session = access_tokens.decode(live["access_token"])["fid"]
    assert len(seen) == 2 and live_session in seen
    (current,) = [session_id for session_id, attributes in seen.items() if attributes["current"]]
    assert current != live_session
    assert seen[current]["clientName"] == "Default"
