"""One customer's whole life, as a storefront and an admin tool see it over HTTP."""

import json

from freshcom_customers.oauth2.scopes import GENERIC_FAILURE

MEDIA_TYPE = "application/vnd.api+json"
INVALID_GRANT = {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
REGISTRATION = {
    "status": "registered",
    "firstName": "Roy",
    "lastName": "Bao",
    "email": "roy@example.com",
    "password": "roy-password-1",
}


def test_register_log_in_suspend_reactivate_delete_and_register_again(client, auth, account):
    def api(method, path, bearer, attributes=None):
        headers = {"Authorization": f"Bearer {bearer}"}
        body = json.dumps({"data": {"type": "Customer", "attributes": attributes}}) if attributes else None
        return client.open(path, method=method, data=body, content_type=MEDIA_TYPE, headers=headers)

    scope = f"aid:{account.live.id}"
    login = {
        "grant_type": "password",
        "username": "roy@example.com",
        "password": "roy-password-1",
        "scope": scope,
    }

    # The storefront exchanges its publishable key for a guest token.
    guest = auth.token(grant_type="refresh_token", refresh_token=account.prt)
    assert guest["refresh_token"] == account.prt
    guest_token = guest["access_token"]

    # It registers a customer.
    response = api("POST", "/v1/customers", guest_token, REGISTRATION)
    assert response.status_code == 201, response.get_json()
    customer = response.get_json()["data"]
    assert customer["attributes"]["status"] == "registered"
    customer_path = f"/v1/customers/{customer['id']}"

    # The customer logs in with the password grant and reads itself.
    first = auth.token(**login)
    assert first["refresh_token"].startswith("urt-live-")
    me = api("GET", "/v1/customer", first["access_token"])
    assert me.status_code == 200
    assert me.get_json()["data"]["id"] == customer["id"]
    assert me.get_json()["data"]["attributes"]["email"] == "roy@example.com"

    # The owner suspends it.
    owner_token = auth.owner(account)
    response = api("PATCH", customer_path, owner_token, {"status": "suspended"})
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["status"] == "suspended"

    # Nothing of the customer's works any more: password, refresh token, access token.
    assert auth.token(expect=400, **login) == INVALID_GRANT
    assert (
        auth.token(expect=400, grant_type="refresh_token", refresh_token=first["refresh_token"])
        == INVALID_GRANT
    )
    locked_out = api("GET", "/v1/customer", first["access_token"])
    assert locked_out.status_code == 401
    assert locked_out.headers["WWW-Authenticate"] == 'Bearer realm="freshcom", error="invalid_token"'

    # Its username (the email) cannot be registered again.
    again = api("POST", "/v1/customers", guest_token, REGISTRATION)
    assert again.status_code == 422
    assert [(e["code"], e["source"]["pointer"]) for e in again.get_json()["errors"]] == [
        ("taken", "/data/attributes/email")
    ]

    # The owner reactivates it: a new password login works, the old tokens stay dead.
    response = api("PATCH", customer_path, owner_token, {"status": "registered"})
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["status"] == "registered"
    second = auth.token(**login)
    assert api("GET", "/v1/customer", second["access_token"]).get_json()["data"]["id"] == customer["id"]
    assert (
        auth.token(expect=400, grant_type="refresh_token", refresh_token=first["refresh_token"])
        == INVALID_GRANT
    )
    assert api("GET", "/v1/customer", first["access_token"]).status_code == 401

    # The owner deletes it.
    response = api("DELETE", customer_path, owner_token)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert api("GET", customer_path, owner_token).status_code == 404
    assert auth.token(expect=400, **login) == INVALID_GRANT

    # The email is free again: a new registration is a new customer.
    response = api("POST", "/v1/customers", guest_token, REGISTRATION)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["id"] != customer["id"]
    third = auth.token(**login)
    assert api("GET", "/v1/customer", third["access_token"]).get_json()["data"] == response.get_json()["data"]
