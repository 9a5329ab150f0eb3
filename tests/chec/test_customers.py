"""The customer's own profile on the Chec face: GET and PUT customers/{id}, and who may call them."""

import time

import pytest

from freshcom_customers.chec import ids
from freshcom_customers.services import access_tokens, customers, magic_links
from tests.chec.conftest import SDK_HEADERS, chec_id

UNAUTHORIZED = {
    "status_code": 401,
    "error": {
        "type": "unauthorized",
        "message": "The customer token is missing, expired or no longer valid; log in again.",
    },
}
FORBIDDEN = {
    "status_code": 403,
    "error": {"type": "forbidden", "message": "This customer's token is good for that customer only."},
}
CUSTOMER_NOT_FOUND = {"status_code": 404, "error": {"type": "not_found", "message": "Customer not found."}}


def test_about_is_the_customer_object(chec, session, roy_customer, jwt_for):
    roy_customer.code = "CRM-7"
    session.commit()

    response = chec.get(f"customers/{chec_id(roy_customer)}", jwt_for(roy_customer))

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "id": chec_id(roy_customer),
        "external_id": "CRM-7",
        "firstname": "Roy",
        "lastname": "Bao",
        "email": "roy@example.com",
        "phone": None,
        "meta": {},
        "created": int(roy_customer.inserted_at.timestamp()),
        "updated": int(roy_customer.updated_at.timestamp()),
    }


def test_get_tolerates_what_the_sdk_sends(client, roy_customer, jwt_for):
    """From Node: Content-Type JSON and a body of null; from a browser: X-Authorization undefined."""
    path = f"/chec/v1/customers/{chec_id(roy_customer)}"
    jwt = jwt_for(roy_customer)

    for headers, body in [
        ({**SDK_HEADERS, "X-Authorization": "undefined"}, None),
        (SDK_HEADERS, "null"),
        ({"X-Authorization": "pk_wrong"}, ""),
    ]:
        response = client.get(path, data=body, headers={**headers, "Authorization": f"Bearer {jwt}"})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["email"] == "roy@example.com"
        assert "_event" not in response.get_json()


def test_put_changes_the_customer_through_the_same_rules_as_v1(chec, client, roy_customer, jwt_for, owner):
    jwt = jwt_for(roy_customer)
    changes = {
        "firstname": "Leslie",
        "lastname": "Knope",
        "phone": "+1 555 0100",
        "external_id": "CRM-123",
        "meta": {"tier": "gold"},
        "id": "cstmr_ignored",
        "created": 1,
    }

    response = chec.put(f"customers/{chec_id(roy_customer)}", jwt, changes)

    assert response.status_code == 200, response.get_json()
    updated = response.get_json()
    assert {
        k: updated[k] for k in ("id", "firstname", "lastname", "email", "phone", "external_id", "meta")
    } == {
        "id": chec_id(roy_customer),
        "firstname": "Leslie",
        "lastname": "Knope",
        "email": "roy@example.com",
        "phone": "+1 555 0100",
        "external_id": "CRM-123",
        "meta": {"tier": "gold"},
    }
    native = client.get(f"/v1/customers/{roy_customer.id}?include=user", headers=owner).get_json()
    attributes = native["data"]["attributes"]
    assert (attributes["name"], attributes["code"]) == ("Leslie Knope", "CRM-123")
    (user,) = native["included"]
    assert (user["attributes"]["name"], user["attributes"]["phoneNumber"]) == ("Leslie Knope", "+1 555 0100")
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).get_json()["firstname"] == "Leslie"


def test_a_partial_put_changes_only_what_it_sends(chec, roy_customer, jwt_for):
    response = chec.put(f"customers/{chec_id(roy_customer)}", jwt_for(roy_customer), {"phone": "+1 555 0199"})

    assert response.get_json()["phone"] == "+1 555 0199"
    assert response.get_json()["firstname"] == "Roy"


def test_a_taken_email_is_a_validation_error(chec, roy_customer, gia, jwt_for):
    response = chec.put(f"customers/{chec_id(gia)}", jwt_for(gia), {"email": "roy@example.com"})

    assert response.status_code == 422
    assert response.get_json() == {
        "status_code": 422,
        "error": {
            "type": "validation",
            "message": "The given data was invalid.",
            "errors": {"email": ["Email has already been taken."]},
        },
    }


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"email": "nope"}, {"email": ["Not a valid email address."]}),
        ({"firstname": "x" * 256}, {"firstname": ["Longer than maximum length 255."]}),
        ({"external_id": 7}, {"external_id": ["Not a valid string."]}),
        ({"meta": "gold"}, {"meta": ["Not a valid mapping type."]}),
        ({"meta": None}, {"meta": ["Field may not be null."]}),
        ({"phone": "1" * 33}, {"phone": ["Longer than maximum length 32."]}),
    ],
)
def test_bad_fields_are_validation_errors_named_as_chec_names_them(chec, gia, jwt_for, changes, errors):
    response = chec.put(f"customers/{chec_id(gia)}", jwt_for(gia), changes)

    assert response.status_code == 422
    assert response.get_json()["error"]["errors"] == errors


def test_a_registered_customer_cannot_drop_its_email(chec, roy_customer, jwt_for):
    response = chec.put(f"customers/{chec_id(roy_customer)}", jwt_for(roy_customer), {"email": None})

    assert response.status_code == 422
    assert response.get_json()["error"]["errors"] == {"email": ["A registered customer needs an email."]}


def test_a_put_body_must_be_a_json_object(chec, gia, jwt_for):
    path = f"customers/{chec_id(gia)}"
    jwt = jwt_for(gia)

    assert chec.put(path, jwt, None).status_code == 200  # null: nothing to change
    for body in ([], "text", 3):
        response = chec.put(path, jwt, body)
        assert response.status_code == 400
        assert response.get_json()["error"] == {
            "type": "bad_request",
            "message": "The body must be a JSON object.",
        }
    raw = chec.client.put(f"/chec/v1/{path}", data="{not json", headers=chec.bearer(jwt))
    assert raw.status_code == 400
    assert raw.get_json()["error"]["message"] == "The body is not valid JSON."


# Who may call: the JWT's own customer, and no one else.


def test_another_customers_id_is_forbidden(chec, roy_customer, gia, jwt_for):
    jwt = jwt_for(gia)

    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).get_json() == FORBIDDEN
    assert (
        chec.put(f"customers/{chec_id(roy_customer)}", jwt, {"firstname": "Mallory"}).get_json() == FORBIDDEN
    )
    assert chec.get(f"customers/{chec_id(roy_customer)}/orders", jwt).status_code == 403
    assert chec.get(f"customers/{chec_id(roy_customer)}/orders/ord_x", jwt).status_code == 403
    assert roy_customer.first_name == "Roy"


def test_another_accounts_customer_is_not_found(chec, gia, make_customer, other_account, jwt_for):
    stranger = make_customer(other_account, email="gia@example.com")
    jwt = jwt_for(gia)

    assert chec.get(f"customers/{chec_id(stranger)}", jwt).get_json() == CUSTOMER_NOT_FOUND
    assert (
        chec.put(f"customers/{chec_id(stranger)}", jwt, {"firstname": "X"}).get_json() == CUSTOMER_NOT_FOUND
    )
    assert chec.get(f"customers/{chec_id(stranger)}/orders", jwt).status_code == 404


@pytest.mark.parametrize(
    "customer_id",
    [
        "null",
        "undefined",
        "cstmr_",
        "cstmr_!!!!!!!!!!!!!!!!!!!!!!",
        "ord_0000000000000000000000",
        "cstmr_zzzzzzzzzzzzzzzzzzzzzz",
    ],
)
def test_a_malformed_or_unknown_id_is_not_found(chec, gia, jwt_for, customer_id):
    response = chec.get(f"customers/{customer_id}", jwt_for(gia))

    assert response.get_json() == CUSTOMER_NOT_FOUND


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer null", "Bearer undefined", "Basic cm95OnB3", "Bearer not.a.jwt"],
)
def test_a_missing_or_malformed_token_is_unauthorized(client, gia, authorization):
    headers = {**SDK_HEADERS, "X-Authorization": "undefined"}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = client.get(f"/chec/v1/customers/{chec_id(gia)}", headers=headers)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="freshcom"')


def test_about_after_logout_is_unauthorized_not_a_server_error(chec):
    """about() after logout() sends GET customers/null with Bearer null (commercejs-wire.md §2)."""
    assert chec.get("customers/null", "null").get_json() == UNAUTHORIZED


def test_an_expired_token_is_unauthorized(app, chec, gia, jwt_for, monkeypatch):
    jwt = jwt_for(gia)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 24 * 3600 + 1)

    response = chec.get(f"customers/{chec_id(gia)}", jwt)

    assert response.get_json() == UNAUTHORIZED
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_suspended_customers_token_dies_at_once_and_stays_dead(chec, session, roy_customer, jwt_for):
    jwt = jwt_for(roy_customer)
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).status_code == 200

    customers.update_customer(roy_customer, {"status": "suspended"})
    session.commit()
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).get_json() == UNAUTHORIZED

    customers.update_customer(roy_customer, {"status": "registered"})
    session.commit()
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt).get_json() == UNAUTHORIZED
    assert chec.get(f"customers/{chec_id(roy_customer)}", jwt_for(roy_customer)).status_code == 200


def test_a_suspended_guests_token_dies_too(chec, session, gia, jwt_for):
    jwt = jwt_for(gia)
    customers.update_customer(gia, {"status": "suspended", "password": "a long passphrase"})
    session.commit()

    assert chec.get(f"customers/{chec_id(gia)}", jwt).get_json() == UNAUTHORIZED


def test_a_deleted_customers_token_is_unauthorized(chec, session, gia, jwt_for):
    jwt = jwt_for(gia)
    path = f"customers/{chec_id(gia)}"
    customers.delete_customer(gia)
    session.commit()

    assert chec.get(path, jwt).get_json() == UNAUTHORIZED
    assert chec.put(path, jwt, {"firstname": "Ghost"}).get_json() == UNAUTHORIZED


def test_a_guests_token_ends_when_the_guest_registers(chec, session, gia, jwt_for):
    jwt = jwt_for(gia)
    customers.update_customer(gia, {"status": "registered", "password": "a long passphrase"})
    session.commit()

    assert chec.get(f"customers/{chec_id(gia)}", jwt).get_json() == UNAUTHORIZED


def test_the_faces_do_not_take_each_others_tokens(chec, client, auth, account, roy, roy_customer, jwt_for):
    native = auth.login(account, "roy@example.com", "roy-password-1")["access_token"]
    assert chec.get(f"customers/{chec_id(roy_customer)}", native).get_json() == UNAUTHORIZED

    chec_jwt = jwt_for(roy_customer)
    assert client.get("/v1/customer", headers=auth.headers(chec_jwt)).status_code == 401


def test_a_token_of_another_account_is_unauthorized(chec, session, gia, other_account):
    """A JWT whose account is not its customer's (it was never issued, but is signed) is refused."""
    claims = {"role": "customer", "typ": magic_links.TOKEN_TYPE, "sub": str(gia.id), "cid": chec_id(gia)}
    jwt, _ = access_tokens.sign(other_account.live.id, claims, 60)

    assert chec.get(f"customers/{chec_id(gia)}", jwt).get_json() == UNAUTHORIZED


def test_the_jwt_names_its_customer_by_the_chec_id(gia, jwt_for):
    """Storefronts read the customer id from the token's cid claim (vercel/commerce does)."""
    claims = access_tokens.decode(jwt_for(gia))

    assert claims["cid"] == chec_id(gia)
    assert ids.decode(ids.CUSTOMER, claims["cid"]) == gia.id


def test_names_too_long_together_are_a_validation_error_not_a_crash(chec, gia, jwt_for):
    """Each name fits its column, but the name composed of both must fit too (on PostgreSQL)."""
    response = chec.put(
        f"customers/{chec_id(gia)}", jwt_for(gia), {"firstname": "a" * 200, "lastname": "b" * 60}
    )

    assert response.status_code == 422
    assert response.get_json()["error"]["errors"] == {
        "lastname": ["First and last name together must be at most 254 characters."]
    }
    assert chec.put(f"customers/{chec_id(gia)}", jwt_for(gia), {"lastname": "b" * 54}).status_code == 200


# A new email (API.md 9): this face has no password, so a login link used minutes ago is the
# proof, and the new address proves itself with its own link.


def _verify(client, message, mailbox):
    body = {"data": {"type": "EmailVerification", "attributes": {"token": mailbox.token(message)}}}
    return client.post("/v1/email_verifications", json=body)


@pytest.mark.parametrize("who", ["registered", "guest"])
def test_a_new_email_waits_for_the_link_sent_to_it(
    chec, client, session, roy_customer, gia, jwt_for, mailbox, who
):
    customer = roy_customer if who == "registered" else gia
    old_email = customer.email
    response = chec.put(f"customers/{chec_id(customer)}", jwt_for(customer), {"email": "New@Example.net"})

    assert response.status_code == 200
    assert response.get_json()["email"] == old_email  # nothing moved yet
    (confirmation,) = mailbox.wait_for(1)
    assert confirmation["To"] == "new@example.net"

    assert _verify(client, confirmation, mailbox).status_code == 204

    session.refresh(customer)
    assert (customer.email, customer.email_verified) == ("new@example.net", True)
    assert mailbox.wait_for(2)[1]["To"] == old_email  # told, with no link


def test_a_new_email_needs_a_login_link_used_minutes_ago(chec, roy_customer, jwt_for, mailbox, monkeypatch):
    jwt = jwt_for(roy_customer)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 16 * 60)

    response = chec.put(f"customers/{chec_id(roy_customer)}", jwt, {"email": "new@example.net"})

    assert response.status_code == 422
    (message,) = response.get_json()["error"]["errors"]["email"]
    assert "login link" in message
    assert chec.put(f"customers/{chec_id(roy_customer)}", jwt, {"phone": "+1 555 0101"}).status_code == 200
    assert mailbox.settled() == []


def test_a_login_link_session_sets_no_password(chec, auth, account, session, gia, roy_customer, jwt_for):
    """The session proves the address, but a stolen 24 h token must not become a lasting login:
    a guest registers through /v1, whose confirmation link proves the address again."""
    for customer in (gia, roy_customer):
        changes = {"password": "chosen-by-token-1", "firstname": "Mallory"}
        assert chec.put(f"customers/{chec_id(customer)}", jwt_for(customer), changes).status_code == 200

    session.refresh(gia)
    assert (gia.status, gia.user_id, gia.first_name) == ("guest", None, "Mallory")
    for username in (gia.email, roy_customer.email):
        login = {"grant_type": "password", "username": username, "password": "chosen-by-token-1"}
        auth.token(expect=400, scope=f"aid:{account.live.id}", **login)
