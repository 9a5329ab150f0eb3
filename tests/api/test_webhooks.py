"""Webhook endpoints on /v1 (API.md 12): the secret shown once, CRUD, tenancy, roles, URL rules,
the deliveries log and a manual retry."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import WebhookVerificationError

from freshcom_customers.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import data_keys, webhooks
from tests import webhook_receiver
from tests.conftest import assert_no_content, create_client, customer_document, error_code, errors_of
from tests.oauth2.conftest import basic
from tests.webhook_receiver import Reply, deliver_due

receiver = webhook_receiver.receiver

ENDPOINTS = "/v1/webhook_endpoints"
MEDIA_TYPE = "application/vnd.api+json"
URL = "https://hooks.example.com/freshcom"
ATTRIBUTES = {"url", "description", "events", "enabled", "insertedAt", "updatedAt"}


def endpoint_document(endpoint_id=None, **attributes) -> dict:
    data = {"type": "WebhookEndpoint", "attributes": attributes}
    if endpoint_id is not None:
        data["id"] = endpoint_id
    return {"data": data}


def create(client, headers, **attributes):
    attributes = {"url": URL, "events": ["*"], **attributes}
    return client.post(ENDPOINTS, json=endpoint_document(**attributes), headers=headers)


def created(client, headers, **attributes) -> dict:
    response = create(client, headers, **attributes)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def patch(client, headers, endpoint_id, **attributes):
    document = endpoint_document(endpoint_id, **attributes)
    return client.patch(f"{ENDPOINTS}/{endpoint_id}", json=document, headers=headers)


def read(client, headers, endpoint_id):
    return client.get(f"{ENDPOINTS}/{endpoint_id}", headers=headers)


def deliveries(client, headers, endpoint_id, **query) -> dict:
    response = client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def retry(client, headers, delivery_id):
    return client.post(f"/v1/webhook_deliveries/{delivery_id}/retry", headers=headers)


def stored(session, endpoint_id) -> WebhookEndpoint:
    return session.get(WebhookEndpoint, uuid.UUID(endpoint_id), populate_existing=True)


@pytest.fixture
def make_customer(client, owner):
    """Create a guest customer as staff; return its id (each one is a customer.created event)."""

    def make_customer(**attributes):
        response = client.post("/v1/customers", json=customer_document(**attributes), headers=owner)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]["id"]

    return make_customer


# Create, read, list, update, delete


def test_create_answers_201_with_the_endpoint_and_its_secret_once(client, session, owner):
    response = create(client, owner, description="CRM sync", events=["order.created", "customer.created"])

    assert response.status_code == 201, response.get_json()
    assert response.mimetype == MEDIA_TYPE
    data = response.get_json()["data"]
    assert data["type"] == "WebhookEndpoint"
    assert response.headers["Location"].endswith(f"{ENDPOINTS}/{data['id']}")
    attributes = data["attributes"]
    assert set(attributes) == ATTRIBUTES | {"secret"}
    assert (attributes["url"], attributes["description"], attributes["enabled"]) == (URL, "CRM sync", True)
    assert attributes["events"] == ["customer.created", "order.created"]
    secret = attributes["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    shown = read(client, owner, data["id"]).get_json()["data"]
    assert set(shown["attributes"]) == ATTRIBUTES
    assert shown["attributes"] == {k: v for k, v in attributes.items() if k != "secret"}
    listed = client.get(ENDPOINTS, headers=owner).get_json()["data"]
    assert "secret" not in listed[0]["attributes"]
    assert secret not in json.dumps(listed)


def test_the_secret_is_stored_encrypted(client, session, owner):
    data = created(client, owner)
    secret = data["attributes"]["secret"]

    row = stored(session, data["id"])
    assert secret not in row.secret_ciphertext
    assert secret.removeprefix("whsec_") not in row.secret_ciphertext
    assert data_keys.decrypt(row.secret_ciphertext) == secret


def test_two_endpoints_have_different_secrets(client, owner):
    assert created(client, owner)["attributes"]["secret"] != created(client, owner)["attributes"]["secret"]


def test_a_secret_the_client_sends_is_not_the_endpoints(client, session, owner):
    chosen = "whsec_" + base64.b64encode(b"k" * 32).decode()

    data = created(client, owner, secret=chosen)

    assert data["attributes"]["secret"] != chosen
    assert webhooks.secret_of(stored(session, data["id"])) == data["attributes"]["secret"]


def test_the_secret_verifies_the_signature_of_a_real_delivery(
    client, session, owner, receiver, make_customer
):
    secret = created(client, owner, url=receiver.url())["attributes"]["secret"]
    customer_id = make_customer(name="Roy Bao")

    ((_, answer),) = deliver_due()

    assert answer.status == 200
    (request,) = receiver.received
    payload = request.verified(secret)
    assert payload["type"] == "customer.created"
    assert payload["data"]["id"] == customer_id
    with pytest.raises(WebhookVerificationError):
        request.verified(created(client, owner)["attributes"]["secret"])  # another endpoint's


def test_the_list_is_the_accounts_endpoints_oldest_first_and_pages(client, owner):
    ids = [created(client, owner, description=f"#{n}")["id"] for n in range(3)]

    body = client.get(ENDPOINTS, headers=owner).get_json()
    assert [e["id"] for e in body["data"]] == ids
    assert body["meta"] == {"totalCount": 3, "allCount": 3}
    second = client.get(ENDPOINTS, query_string={"page[size]": 2, "page[number]": 2}, headers=owner)
    assert [e["id"] for e in second.get_json()["data"]] == ids[2:]


def test_patch_changes_what_it_names_and_keeps_the_rest(client, session, owner):
    data = created(client, owner, description="old", events=["customer.created"])
    secret = data["attributes"]["secret"]

    response = patch(
        client,
        owner,
        data["id"],
        url="https://other.example.com/in",
        events=["order.created", "order.created", "customer.deleted"],
        enabled=False,
    )

    assert response.status_code == 200, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert "secret" not in attributes
    assert attributes["url"] == "https://other.example.com/in"
    assert attributes["events"] == ["customer.deleted", "order.created"]
    assert (attributes["enabled"], attributes["description"]) == (False, "old")
    assert read(client, owner, data["id"]).get_json()["data"]["attributes"] == attributes
    assert webhooks.secret_of(stored(session, data["id"])) == secret  # a change keeps the secret


def test_events_with_a_star_are_all_of_them(client, owner):
    assert created(client, owner, events=["customer.created", "*"])["attributes"]["events"] == ["*"]


def test_delete_removes_the_endpoint_and_its_deliveries(client, session, owner, make_customer):
    endpoint_id = created(client, owner)["id"]
    make_customer()
    endpoint_key = uuid.UUID(endpoint_id)
    count = (
        select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_key)
    )
    assert session.scalar(count) == 1

    assert_no_content(client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=owner))

    assert error_code(read(client, owner, endpoint_id), 404) == "not_found"
    assert session.scalar(count) == 0
    assert client.get(ENDPOINTS, headers=owner).get_json()["data"] == []


# Tenancy and roles


def test_another_accounts_endpoint_and_deliveries_are_not_found(
    client, auth, session, owner, other_account, make_customer
):
    endpoint_id = created(client, owner)["id"]
    make_customer()
    (delivery_id,) = [d["id"] for d in deliveries(client, owner, endpoint_id)["data"]]
    other = auth.headers(auth.owner(other_account))

    assert read(client, other, endpoint_id).status_code == 404
    assert patch(client, other, endpoint_id, enabled=False).status_code == 404
    assert client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=other).status_code == 404
    assert client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=other).status_code == 404
    assert retry(client, other, delivery_id).status_code == 404
    assert client.get(ENDPOINTS, headers=other).get_json()["data"] == []
    assert stored(session, endpoint_id).enabled is True


@pytest.mark.parametrize("endpoint_id", ["not-a-uuid", str(uuid.UUID(int=0))])
def test_an_unknown_endpoint_or_delivery_is_not_found(client, owner, endpoint_id):
    assert error_code(read(client, owner, endpoint_id), 404) == "not_found"
    assert error_code(retry(client, owner, endpoint_id), 404) == "not_found"


@pytest.mark.parametrize("role", ["owner", "administrator", "developer"])
def test_owners_administrators_and_developers_manage_endpoints(client, headers_as, role):
    headers = headers_as(role)
    endpoint_id = created(client, headers)["id"]

    assert read(client, headers, endpoint_id).status_code == 200
    assert [e["id"] for e in client.get(ENDPOINTS, headers=headers).get_json()["data"]] == [endpoint_id]
    assert patch(client, headers, endpoint_id, enabled=False).status_code == 200
    assert deliveries(client, headers, endpoint_id)["data"] == []
    assert_no_content(client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=headers))


def machine_headers(client, runner, account, role: str) -> dict:
    """Authorization of a machine client of the account with role (client_credentials)."""
    machine = create_client(runner, account, f"Integrations {role}", "--confidential", "--role", role)
    response = client.post(
        "/v1/token",
        data={"grant_type": "client_credentials"},
        headers=basic(machine["clientId"], machine["clientSecret"]),
    )
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_a_developer_machine_client_manages_endpoints(client, runner, account):
    headers = machine_headers(client, runner, account, "developer")

    endpoint_id = created(client, headers)["id"]

    assert read(client, headers, endpoint_id).status_code == 200
    assert patch(client, headers, endpoint_id, description="by a machine").status_code == 200


def test_a_manager_machine_client_is_refused(client, runner, account):
    headers = machine_headers(client, runner, account, "manager")

    assert error_code(create(client, headers), 403) == "access_denied"
    assert client.get(ENDPOINTS, headers=headers).status_code == 403


@pytest.mark.parametrize("role", ["manager", "support_specialist", "read_only", "customer", "guest"])
def test_other_roles_are_refused(client, owner, headers_as, register, role):
    if role == "customer":
        register()
    endpoint_id = created(client, owner)["id"]
    headers = headers_as(role)

    assert error_code(create(client, headers), 403) == "access_denied"
    assert client.get(ENDPOINTS, headers=headers).status_code == 403
    assert read(client, headers, endpoint_id).status_code == 403
    assert patch(client, headers, endpoint_id, enabled=False).status_code == 403
    assert client.delete(f"{ENDPOINTS}/{endpoint_id}", headers=headers).status_code == 403
    assert client.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=headers).status_code == 403
    assert read(client, owner, endpoint_id).get_json()["data"]["attributes"]["enabled"] is True


def test_no_token_is_401(client):
    assert create(client, {}).status_code == 401


# Validation

URL_POINTER = ("invalid", "/data/attributes/url")
EVENTS_POINTER = ("invalid", "/data/attributes/events")


@pytest.mark.parametrize(
    ("attributes", "errors"),
    [
        ({"url": None}, {("required", "/data/attributes/url")}),
        ({"events": None}, {("required", "/data/attributes/events")}),
        (
            {"url": None, "events": None},
            {("required", "/data/attributes/url"), ("required", "/data/attributes/events")},
        ),
        ({"url": "ftp://hooks.example.com/in"}, {URL_POINTER}),
        ({"url": "http://hooks.example.com/in"}, {URL_POINTER}),
        ({"url": "http://10.0.0.1/in"}, {URL_POINTER}),
        ({"url": "hooks.example.com/in"}, {URL_POINTER}),
        ({"url": "https://"}, {URL_POINTER}),
        ({"url": ""}, {URL_POINTER}),
        ({"url": "https://user:pass@hooks.example.com/in"}, {URL_POINTER}),
        ({"url": "https://user@hooks.example.com/in"}, {URL_POINTER}),
        ({"url": "https://hooks.example.com/in#part"}, {URL_POINTER}),
        ({"url": "https://hooks.example.com/a b"}, {URL_POINTER}),
        ({"url": "https://hooks.example.com:99999/in"}, {URL_POINTER}),
        ({"url": "https://" + "a" * 2030 + ".example.com/"}, {("length", "/data/attributes/url")}),
        ({"events": []}, {EVENTS_POINTER}),
        ({"events": ["customer.exploded"]}, {EVENTS_POINTER}),
        ({"events": ["customer.created", "Customer.Created"]}, {EVENTS_POINTER}),
        ({"events": "customer.created"}, {EVENTS_POINTER}),
        ({"events": [*WEBHOOK_EVENTS, "*"]}, {EVENTS_POINTER}),
        ({"description": "x" * 256}, {("length", "/data/attributes/description")}),
    ],
    ids=lambda value: json.dumps(value)[:60] if isinstance(value, dict) else "",
)
def test_invalid_endpoints_are_422(client, session, owner, attributes, errors):
    document = {"url": URL, "events": ["*"], **attributes}
    document = {key: value for key, value in document.items() if value is not None}
    response = client.post(ENDPOINTS, json=endpoint_document(**document), headers=owner)

    assert errors_of(response) == errors
    assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_a_url_of_2048_characters_is_accepted_and_one_more_is_not(client, owner):
    url = "https://hooks.example.com/" + "a" * (2048 - len("https://hooks.example.com/"))
    assert created(client, owner, url=url)["attributes"]["url"] == url
    assert errors_of(create(client, owner, url=url + "a")) == {("length", "/data/attributes/url")}


def test_patch_is_checked_as_create_is(client, owner):
    endpoint_id = created(client, owner)["id"]

    assert errors_of(patch(client, owner, endpoint_id, url="http://hooks.example.com/")) == {URL_POINTER}
    assert errors_of(patch(client, owner, endpoint_id, events=[])) == {EVENTS_POINTER}
    assert read(client, owner, endpoint_id).get_json()["data"]["attributes"]["url"] == URL


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/in", "http://[::1]/in", "http://localhost:3000/in", "https://10.0.0.1/in"]
)
def test_outside_production_loopback_and_private_addresses_are_accepted(client, owner, url):
    assert created(client, owner, url=url)["attributes"]["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/in",
        "https://127.0.0.1/in",
        "https://169.254.169.254/latest/meta-data",
        "https://192.168.1.1/in",
        "https://[::1]/in",
        "https://[::ffff:127.0.0.1]/in",
        "https://[fd00::1]/in",
        "https://0.0.0.0/in",
        "https://224.0.0.1/in",
        "http://127.0.0.1:8000/in",
        "http://localhost/in",
        "http://hooks.example.com/in",
    ],
)
def test_production_refuses_http_and_addresses_that_are_not_public(
    client, owner, webhooks_in_production, url
):
    assert errors_of(create(client, owner, url=url)) == {URL_POINTER}


def test_production_accepts_https_to_a_name_or_a_public_address(client, owner, webhooks_in_production):
    created(client, owner, url="https://hooks.example.com/in")
    created(client, owner, url="https://93.184.215.14/in")


def test_an_account_has_at_most_16_endpoints(client, owner):
    for _ in range(webhooks.MAX_ENDPOINTS):
        created(client, owner)

    assert errors_of(create(client, owner)) == {("limit", "/data/attributes/url")}
    assert client.get(ENDPOINTS, headers=owner).get_json()["meta"]["totalCount"] == 16


@pytest.mark.parametrize("field", ["url", "description"])
@pytest.mark.parametrize(
    "value",
    [
        "https://hooks.example.com/\x00",
        "https://hooks.example.com/\ud800",
        "https://h.example.com/" + "x" * 100_000,
    ],
    ids=["nul", "lone-surrogate", "100kB"],
)
def test_hostile_strings_are_refused_with_a_4xx(client, session, owner, field, value):
    endpoint_id = created(client, owner)["id"]
    body = json.dumps(endpoint_document(**{"url": URL, "events": ["*"], field: value}))

    answered = client.post(ENDPOINTS, data=body, content_type=MEDIA_TYPE, headers=owner)
    body = json.dumps(endpoint_document(endpoint_id, **{field: value}))
    patched = client.patch(f"{ENDPOINTS}/{endpoint_id}", data=body, content_type=MEDIA_TYPE, headers=owner)

    assert 400 <= answered.status_code < 500, answered.get_json()
    assert 400 <= patched.status_code < 500, patched.get_json()
    assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1
    assert read(client, owner, endpoint_id).get_json()["data"]["attributes"]["url"] == URL


# Deliveries and retry


def test_the_deliveries_log_shows_each_attempt_newest_event_first_and_pages(
    client, owner, receiver, make_customer
):
    endpoint_id = created(client, owner, url=receiver.url())["id"]
    make_customer(name="First")
    make_customer(name="Second")
    make_customer(name="Third")
    receiver.reply(Reply(500, b"down for maintenance"))

    deliver_due()

    body = deliveries(client, owner, endpoint_id, **{"page[size]": 2})
    assert body["meta"] == {"totalCount": 3, "allCount": 3}
    newest, middle = body["data"]
    assert newest["type"] == "WebhookDelivery"
    assert newest["relationships"]["endpoint"]["data"] == {"type": "WebhookEndpoint", "id": endpoint_id}
    assert (newest["attributes"]["status"], newest["attributes"]["attempts"]) == ("succeeded", 1)
    assert newest["attributes"]["responseCode"] == 200
    assert newest["attributes"]["eventType"] == "customer.created"
    assert newest["attributes"]["eventId"].startswith("msg_")
    assert newest["attributes"]["nextAttemptAt"] is None
    (oldest,) = deliveries(client, owner, endpoint_id, **{"page[size]": 2, "page[number]": 2})["data"]
    failed = oldest["attributes"]
    assert (failed["status"], failed["attempts"], failed["responseCode"]) == ("pending", 1, 500)
    assert failed["responseBody"] == "down for maintenance"
    assert failed["nextAttemptAt"] > failed["lastAttemptAt"]
    assert isinstance(failed["durationMs"], int)
    assert middle["attributes"]["status"] == "succeeded"
    sent = [request.headers["webhook-id"] for request in receiver.received]  # oldest event first
    assert [d["attributes"]["eventId"] for d in (oldest, middle, newest)] == sent


def test_a_retry_makes_a_failed_delivery_pending_again_and_it_is_sent(
    client, session, owner, receiver, make_customer
):
    endpoint = created(client, owner, url=receiver.url())
    customer_id = make_customer()
    receiver.reply(Reply(503))
    session.execute(update(WebhookDelivery).values(give_up_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    deliver_due()
    (delivery,) = session.scalars(select(WebhookDelivery).execution_options(populate_existing=True)).all()
    assert delivery.status == "failed"

    response = retry(client, owner, delivery.id)

    assert response.status_code == 202, response.get_json()
    attributes = response.get_json()["data"]["attributes"]
    assert (attributes["status"], attributes["attempts"]) == ("pending", 1)
    assert attributes["nextAttemptAt"] is not None
    ((_, answer),) = deliver_due()
    assert answer.status == 200
    first, second = receiver.received
    assert second.headers["webhook-id"] == first.headers["webhook-id"]  # the same event, again
    assert second.verified(endpoint["attributes"]["secret"])["data"]["id"] == customer_id
    (shown,) = deliveries(client, owner, endpoint["id"])["data"]
    assert (shown["attributes"]["status"], shown["attributes"]["attempts"]) == ("succeeded", 2)
