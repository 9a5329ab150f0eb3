"""Every error under the Chec prefix is a Chec error body, routing errors and crashes included."""

import pytest

from freshcom_customers.app import create_app
from freshcom_customers.chec import bp
from tests.chec.conftest import BASE_URL, SDK_HEADERS


def test_an_unknown_route_is_a_chec_not_found(client):
    response = client.get("/chec/v1/products", headers=SDK_HEADERS)

    assert response.status_code == 404
    body = response.get_json()
    assert set(body) == {"status_code", "error"}
    assert (body["status_code"], body["error"]["type"]) == (404, "not_found")
    assert isinstance(body["error"]["message"], str)


def test_a_wrong_method_is_a_chec_method_not_allowed(client):
    response = client.delete("/chec/v1/customers/cstmr_x", headers=SDK_HEADERS)

    assert response.status_code == 405
    assert response.get_json()["error"]["type"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PUT", "HEAD", "OPTIONS"}


def test_bad_json_is_a_chec_bad_request(client, account):
    headers = {**SDK_HEADERS, "X-Authorization": account.prt}

    response = client.post("/chec/v1/customers/email-token", data='{"email": ', headers=headers)

    assert response.status_code == 400
    assert response.get_json() == {
        "status_code": 400,
        "error": {"type": "bad_request", "message": "The body is not valid JSON."},
    }


def test_a_body_too_large_is_a_chec_error(client, account):
    headers = {**SDK_HEADERS, "X-Authorization": account.prt}
    body = '{"email": "' + "a" * (1024 * 1024) + '"}'

    response = client.post("/chec/v1/customers/email-token", data=body, headers=headers)

    assert response.status_code == 413
    assert response.get_json()["error"]["type"] == "payload_too_large"


def test_a_crash_is_a_chec_error_without_details(app, chec, account, monkeypatch, caplog):
    def crash(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("freshcom_customers.services.magic_links.send_login_link", crash)

    response = chec.email_token("roy@example.com")

    assert response.status_code == 500
    assert response.get_json() == {
        "status_code": 500,
        "error": {"type": "internal_error", "message": "Something went wrong on our side; try again later."},
    }
    assert b"secret detail" not in response.data
    assert "secret detail" in caplog.text


def test_the_native_face_keeps_its_own_errors(client):
    assert client.get("/v1/nothing").get_json()["errors"][0]["code"] == "not_found"
    assert client.get("/chec/nothing").get_json()["errors"][0]["code"] == "not_found"


@pytest.mark.parametrize("prefix", ["/commerce/v1", "commerce/v1/"])
def test_the_prefix_is_configurable(app_config, prefix):
    app = create_app({**app_config, "CHEC_URL_PREFIX": prefix})
    client = app.test_client()
    body = {"email": "roy@example.com", "base_url": BASE_URL}

    moved = client.post("/commerce/v1/customers/email-token", json=body, headers=SDK_HEADERS)
    assert (moved.status_code, moved.get_json()["error"]["type"]) == (401, "unauthorized")
    assert client.get("/commerce/v1/nothing").get_json()["error"]["type"] == "not_found"
    assert "errors" in client.get("/chec/v1/customers/cstmr_x").get_json()  # the native 404 now


def test_every_route_is_a_plain_flask_view(app):
    """Throttling decorates views: every Chec route is one function of the blueprint."""
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("chec.")]

    assert {(rule.rule, *sorted(rule.methods - {"HEAD", "OPTIONS"})) for rule in rules} == {
        ("/chec/v1/customers/email-token", "POST"),
        ("/chec/v1/customers/exchange-token", "POST"),
        ("/chec/v1/customers/<customer_id>", "GET"),
        ("/chec/v1/customers/<customer_id>", "PUT"),
        ("/chec/v1/customers/<customer_id>/orders", "GET"),
        ("/chec/v1/customers/<customer_id>/orders/<order_id>", "GET"),
    }
    assert all(callable(app.view_functions[rule.endpoint]) for rule in rules)
    assert bp.name == "chec"
