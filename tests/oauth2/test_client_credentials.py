"""The client_credentials grant (API.md 12): machine clients with a staff role, no user."""

import json
import logging
import uuid
from datetime import timedelta

import pytest

from freshcom_customers.models import Client
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import access_tokens, customers, users
from tests.conftest import create_client, customer_document
from tests.logcapture import access_line, app_factory, events, json_lines
from tests.oauth2.conftest import assert_no_store, basic

TOKEN, REVOKE, INTROSPECT = "/v1/token", "/v1/token/revoke", "/v1/token/introspect"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def machine(runner, account):
    """Create a machine client of the account with a role; return {clientId, clientSecret, role}."""

    def machine(role="owner", of=account, name="Back office"):
        return create_client(runner, of, name, "--confidential", "--role", role)

    return machine


@pytest.fixture
def issue(client):
    """POST client_credentials as the machine (HTTP Basic); return the token endpoint's answer."""

    def issue(created: dict, **params):
        headers = basic(created["clientId"], created["clientSecret"])
        return client.post(TOKEN, data={**GRANT, **params}, headers=headers)

    return issue


@pytest.fixture
def token_of(issue):
    """The access token of a machine (HTTP Basic), as Authorization headers."""

    def token_of(created: dict, **params) -> dict:
        response = issue(created, **params)
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    return token_of


def stored_client(session, created: dict) -> Client:
    return session.get(Client, uuid.UUID(created["clientId"]), populate_existing=True)


def assert_oauth_error(response, status: int, error: str):
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"] == error
    assert_no_store(response)


def assert_token_answer(response, account_id) -> dict:
    assert response.status_code == 200, response.get_json()
    assert_no_store(response)
    answer = response.get_json()
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh_token
    assert (answer["token_type"], answer["expires_in"]) == ("bearer", 3600)
    assert answer["scope"] == f"aid:{account_id}"
    return answer


# The grant


def test_client_secret_basic_gives_a_token_of_the_role_without_a_user(account, machine, issue):
    created = machine("manager")
    answer = assert_token_answer(issue(created), account.live.id)
    claims = access_tokens.decode(answer["access_token"])
    assert (claims["typ"], claims["role"], claims["client_id"]) == ("client", "manager", created["clientId"])
    assert claims["aid"] == str(account.live.id)
    assert "sub" not in claims and "fid" not in claims and "cid" not in claims
    principal = access_tokens.authenticate(answer["access_token"])
    assert (principal.role, principal.user, principal.account.id) == ("manager", None, account.live.id)
    assert principal.is_machine and str(principal.machine_client_id) == created["clientId"]


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_client_secret_post_gives_a_token(client, account, machine, encoding):
    created = machine("read_only")
    body = {**GRANT, "client_id": created["clientId"], "client_secret": created["clientSecret"]}
    sent = {"data": body} if encoding == "form" else {"json": body}
    answer = assert_token_answer(client.post(TOKEN, **sent), account.live.id)
    assert access_tokens.authenticate(answer["access_token"]).role == "read_only"


def test_a_wrong_secret_with_basic_is_401_invalid_client_with_a_basic_challenge(client, machine):
    created = machine()
    response = client.post(TOKEN, data=GRANT, headers=basic(created["clientId"], "wrong-secret"))
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("secret", ["wrong-secret", None], ids=["wrong secret", "no secret"])
def test_a_wrong_or_missing_secret_with_post_is_invalid_client(client, machine, secret):
    created = machine()
    body = {**GRANT, "client_id": created["clientId"]}
    if secret:
        body["client_secret"] = secret
    assert_oauth_error(client.post(TOKEN, data=body), 401, "invalid_client")


def test_an_unknown_client_is_invalid_client(client):
    response = client.post(TOKEN, data=GRANT, headers=basic(str(uuid.uuid4()), "secret"))
    assert_oauth_error(response, 401, "invalid_client")


def test_no_client_at_all_is_refused(client, account):
    # The default client stands in for SDKs that name none; it is public, no machine.
    response = client.post(TOKEN, data={**GRANT, "scope": f"aid:{account.live.id}"})
    assert_oauth_error(response, 401, "invalid_client")


def test_a_public_client_is_invalid_client(client, runner, account):
    public = create_client(runner, account, "Storefront")
    assert_oauth_error(
        client.post(TOKEN, data={**GRANT, "client_id": public["clientId"]}), 401, "invalid_client"
    )
    default_id = str(account.live.id)  # not a client id: still no token
    assert client.post(TOKEN, data={**GRANT, "client_id": default_id}).status_code == 401


def test_a_confidential_client_without_a_role_is_unauthorized_client(client, runner, account):
    backend = create_client(runner, account, "Backend", "--confidential")
    response = client.post(TOKEN, data=GRANT, headers=basic(backend["clientId"], backend["clientSecret"]))
    assert_oauth_error(response, 400, "unauthorized_client")


def test_a_machine_client_without_the_grant_is_unauthorized_client(session, machine, issue):
    created = machine()
    stored_client(session, created).grant_types = "password refresh_token"
    session.commit()
    assert_oauth_error(issue(created), 400, "unauthorized_client")


def test_a_machine_client_may_not_use_the_password_grant(client, account, machine):
    created = machine()
    body = {
        "grant_type": "password",
        "username": account.owner.username,
        "password": account.owner_password,
    }
    response = client.post(TOKEN, data=body, headers=basic(created["clientId"], created["clientSecret"]))
    assert_oauth_error(response, 400, "unauthorized_client")


def test_the_test_twin_scope_gives_a_token_of_the_twin(client, account, machine, issue):
    created = machine("manager")
    answer = assert_token_answer(issue(created, scope=f"aid:{account.test.id}"), account.test.id)
    principal = access_tokens.authenticate(answer["access_token"])
    assert (principal.account.id, principal.role) == (account.test.id, "manager")
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    shown = client.get("/v1/account", headers=headers)
    assert shown.status_code == 200, shown.get_json()
    assert shown.get_json()["data"]["id"] == str(account.test.id)
    # The own account's scope, spelled any way, is the live account.
    assert_token_answer(issue(created, scope="aid:acme"), account.live.id)


def test_the_test_twins_token_does_not_reach_live_rows(client, account, session, machine, token_of):
    live_customer = customers.create_customer(account.live, {"status": "guest", "email": "gia@example.com"})
    session.commit()
    headers = token_of(machine("owner"), scope=f"aid:{account.test.id}")
    assert client.get(f"/v1/customers/{live_customer.id}", headers=headers).status_code == 404


@pytest.mark.parametrize("scope", ["other", "unknown", "malformed"])
def test_another_accounts_or_an_unknown_scope_is_invalid_grant(machine, issue, other_account, scope):
    scopes = {
        "other": f"aid:{other_account.live.id}",
        "unknown": f"aid:{uuid.uuid4()}",
        "malformed": "aid:%%%",
    }
    assert_oauth_error(issue(machine(), scope=scopes[scope]), 400, "invalid_grant")


def test_another_accounts_test_twin_is_invalid_grant(machine, issue, other_account):
    assert_oauth_error(issue(machine(), scope=f"aid:{other_account.test.id}"), 400, "invalid_grant")


def test_issuing_is_a_security_event_naming_the_client(account, machine, issue, caplog):
    created = machine("support_specialist", name="Zendesk sync")
    with caplog.at_level(logging.INFO, logger="freshcom_customers.security"):
        answer = assert_token_answer(issue(created), account.live.id)
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None) == "client_token_issued"]
    assert event.fields["client_id"] == created["clientId"]
    assert event.fields["client_name"] == "Zendesk sync"
    assert event.fields["role"] == "support_specialist"
    assert created["clientSecret"] not in repr(event.__dict__)
    assert answer["access_token"] not in repr(event.__dict__)


# Staff routes by role: a machine with a role is let through where a staff user with it is

MATRIX_ROLES = ["read_only", "support_specialist", "manager", "owner"]


def matrix_requests(tag: str, targets: dict) -> list[tuple]:
    """(method, path, body) of representative staff routes; tag keeps created rows apart."""
    created_user = {"username": f"made-by-{tag}@example.com", "password": "made-password-1"}
    return [
        ("GET", "/v1/customers", None),
        (
            "POST",
            "/v1/customers",
            customer_document(status="registered", email=f"new-{tag}@example.com", password="new-password-1"),
        ),
        ("GET", f"/v1/customers/{targets['read']}", None),
        ("PATCH", f"/v1/customers/{targets['patch']}", _patch(targets["patch"])),
        ("DELETE", f"/v1/customers/{targets['delete']}", None),
        ("GET", "/v1/orders", None),
        ("GET", "/v1/account", None),
        ("GET", "/v1/refresh_token", None),
        (
            "POST",
            "/v1/users",
            {"data": {"type": "User", "attributes": {**created_user, "role": "read_only"}}},
        ),
        ("GET", f"/v1/users/{targets['user']}", None),
    ]


def _route(path: str) -> str:
    """The path with its id as :id, so that the user's and the machine's requests compare."""
    parts = path.split("/")
    return "/".join(parts[:3] + [":id"] * (len(parts) > 3))


def _patch(customer_id: str) -> dict:
    return {"data": {"type": "Customer", "id": customer_id, "attributes": {"firstName": "Changed"}}}


def answers(client, requests: list[tuple], headers: dict) -> dict:
    found = {}
    for method, path, body in requests:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code < 500, (method, path, response.get_data()[:300])
        found[f"{method} {_route(path)}"] = response.status_code
    return found


def targets_for(account, session, tag: str) -> dict:
    """Rows the requests act on, apart for each caller: a deleted customer stays deleted."""
    made = {
        purpose: customers.create_customer(
            account.live, {"status": "guest", "email": f"{purpose}-{tag}@example.com"}
        )
        for purpose in ("read", "patch", "delete")
    }
    made["user"] = users.create_managed_user(
        account.live, username=f"clerk-{tag}", password="clerk-password-1", role="read_only"
    )
    session.commit()
    return {purpose: str(row.id) for purpose, row in made.items()}


@pytest.mark.parametrize("role", MATRIX_ROLES)
def test_a_machine_token_is_allowed_and_refused_as_a_staff_user_of_its_role(
    client, account, session, machine, token_of, headers_as, role
):
    as_user = answers(
        client, matrix_requests("user", targets_for(account, session, "user")), headers_as(role)
    )
    machine_headers = token_of(machine(role))
    as_machine = answers(
        client, matrix_requests("machine", targets_for(account, session, "machine")), machine_headers
    )
    assert as_machine == as_user
    if role == "owner":
        assert all(200 <= status < 300 for status in as_machine.values()), str(as_machine)
    if role == "read_only":
        assert as_machine["GET /v1/customers"] == 200
        assert as_machine["POST /v1/customers"] == 403
        assert as_machine["DELETE /v1/customers/:id"] == 403


def test_a_machines_erasure_names_the_client(client, account, session, machine, token_of, caplog):
    created = machine("manager")
    target = customers.create_customer(account.live, {"status": "guest", "email": "gone@example.com"})
    session.commit()
    with caplog.at_level(logging.INFO, logger="freshcom_customers.security"):
        response = client.delete(f"/v1/customers/{target.id}?erase=true", headers=token_of(created))
    assert response.status_code == 204, response.get_json()
    erased = [
        r for r in caplog.records if r.name == "freshcom_customers.security" and "client_id" in r.fields
    ]
    assert any(r.fields["client_id"] == created["clientId"] for r in erased), [r.fields for r in erased]


USER_ROUTES = [
    ("GET", "/v1/user", None),
    ("PATCH", "/v1/user", {"data": {"type": "User", "attributes": {"name": "Bot"}}}),
    ("GET", "/v1/sessions", None),
    ("DELETE", "/v1/sessions", None),
    ("DELETE", f"/v1/sessions/{uuid.uuid4()}", None),
    ("GET", "/v1/passkeys", None),
    ("POST", "/v1/passkey_registrations", {"data": {"type": "PasskeyRegistration", "attributes": {}}}),
    ("POST", "/v1/totp_enrollments", {"data": {"type": "TotpEnrollment", "attributes": {}}}),
    (
        "POST",
        "/v1/phone_verification_codes",
        {"data": {"type": "PhoneVerificationCode", "attributes": {"phoneNumber": "+15555550100"}}},
    ),
    ("POST", "/v1/email_verification_tokens", {"data": {"type": "EmailVerificationToken"}}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), USER_ROUTES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_routes_that_need_a_user_answer_403_to_a_machine(client, machine, token_of, method, path, body):
    response = client.open(path, method=method, json=body, headers=token_of(machine("owner")))
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["errors"][0]["code"]


def test_a_machine_sends_an_email_verification_to_a_named_user(client, account, session, machine, token_of):
    clerk = users.create_managed_user(
        account.live,
        username="clerk@acme.test",
        email="clerk@acme.test",
        password="clerk-password-1",
        role="read_only",
    )
    session.commit()
    document = {
        "data": {
            "type": "EmailVerificationToken",
            "relationships": {"user": {"data": {"type": "User", "id": str(clerk.id)}}},
        }
    }
    response = client.post("/v1/email_verification_tokens", json=document, headers=token_of(machine("owner")))
    assert response.status_code < 300, response.get_json()


# Ending tokens: revocation, a changed role, a deleted client


def revoke(client, token: str, headers=None, **params):
    return client.post(REVOKE, data={"token": token, **params}, headers=headers or {})


def bearer_of(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_revoking_by_its_own_client_ends_every_token_of_that_client(client, machine, token_of):
    created, other = machine(), machine(name="Other job")
    first, second, others = token_of(created), token_of(created), token_of(other)
    response = revoke(client, bearer_of(first), basic(created["clientId"], created["clientSecret"]))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {}
    for ended in (first, second):
        answer = client.get("/v1/customers", headers=ended)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert client.get("/v1/customers", headers=others).status_code == 200
    # The client itself goes on: a new token works.
    assert client.get("/v1/customers", headers=token_of(created)).status_code == 200


def test_revoking_a_revoked_token_again_changes_nothing(client, machine, token_of):
    """RFC 7009 2.2: a token already invalid is answered 200 and nothing else happens; a retried
    revocation must not end the tokens the client got since."""
    created = machine()
    credentials = basic(created["clientId"], created["clientSecret"])
    old = bearer_of(token_of(created))
    assert revoke(client, old, credentials).status_code == 200
    fresh = token_of(created)
    assert revoke(client, old, credentials).status_code == 200
    assert client.get("/v1/customers", headers=fresh).status_code == 200


def test_revoking_with_client_secret_post_works(client, machine, token_of):
    created = machine()
    headers = token_of(created)
    response = revoke(
        client, bearer_of(headers), client_id=created["clientId"], client_secret=created["clientSecret"]
    )
    assert response.status_code == 200, response.get_json()
    assert client.get("/v1/customers", headers=headers).status_code == 401


@pytest.mark.parametrize("revoker", ["default client", "public client", "another confidential client"])
def test_no_other_client_can_revoke_a_machines_token(client, runner, account, machine, token_of, revoker):
    headers = token_of(machine())
    if revoker == "default client":
        response = revoke(client, bearer_of(headers))
    elif revoker == "public client":
        response = revoke(
            client, bearer_of(headers), client_id=create_client(runner, account, "Shop")["clientId"]
        )
    else:
        other = machine(name="Other job")
        response = revoke(client, bearer_of(headers), basic(other["clientId"], other["clientSecret"]))
    assert_oauth_error(response, 400, "invalid_grant")
    assert client.get("/v1/customers", headers=headers).status_code == 200


def test_the_machine_client_authenticates_to_revoke(client, machine, token_of):
    created = machine()
    headers = token_of(created)
    response = revoke(client, bearer_of(headers), client_id=created["clientId"])  # no secret
    assert_oauth_error(response, 401, "invalid_client")
    assert client.get("/v1/customers", headers=headers).status_code == 200


def test_a_revocation_of_a_machines_token_is_a_security_event(client, machine, token_of, caplog):
    created = machine()
    headers = token_of(created)
    with caplog.at_level(logging.WARNING, logger="freshcom_customers.security"):
        response = revoke(client, bearer_of(headers), basic(created["clientId"], created["clientSecret"]))
    assert response.status_code == 200
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None) == "token_revoked"]
    assert event.fields["client_id"] == created["clientId"]
    assert event.fields["kind"] == "access_token"
    assert bearer_of(headers) not in repr(event.__dict__)


def test_a_changed_role_ends_the_clients_tokens(client, session, machine, token_of):
    created = machine("owner")
    headers = token_of(created)
    stored_client(session, created).role = "read_only"
    session.commit()
    assert client.get("/v1/customers", headers=headers).status_code == 401
    fresh = token_of(created)
    assert access_tokens.authenticate(bearer_of(fresh)).role == "read_only"
    assert client.get("/v1/customers", headers=fresh).status_code == 200


def test_a_deleted_client_ends_its_tokens(client, session, machine, token_of):
    created = machine()
    headers = token_of(created)
    session.delete(stored_client(session, created))
    session.commit()
    assert client.get("/v1/customers", headers=headers).status_code == 401
    assert revoke(client, bearer_of(headers)).status_code in (200, 400)


def test_a_client_losing_its_role_ends_its_tokens(client, session, machine, token_of, issue):
    created = machine()
    headers = token_of(created)
    stored_client(session, created).role = None
    session.commit()
    assert client.get("/v1/customers", headers=headers).status_code == 401
    assert_oauth_error(issue(created), 400, "unauthorized_client")


# Introspection


@pytest.fixture
def backend(runner, account) -> dict:
    """Basic credentials of a confidential client (no role) of the account."""
    created = create_client(runner, account, "Backend", "--confidential")
    return basic(created["clientId"], created["clientSecret"])


def introspect(client, token: str, headers: dict) -> dict:
    response = client.post(INTROSPECT, data={"token": token}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert_no_store(response)
    return response.get_json()


def test_introspection_shows_the_client_and_role_and_no_user(
    app, client, account, machine, token_of, backend
):
    created = machine("support_specialist")
    token = bearer_of(token_of(created))
    claims = access_tokens.decode(token)
    assert introspect(client, token, backend) == {
        "active": True,
        "token_type": "bearer",
        "scope": f"aid:{account.live.id}",
        "client_id": created["clientId"],
        "iss": app.config["JWT_ISSUER"],
        "iat": claims["iat"],
        "exp": claims["exp"],
        "aid": str(account.live.id),
        "role": "support_specialist",
        "jti": claims["jti"],
    }


def test_introspection_of_a_revoked_or_foreign_machine_token(
    client, runner, machine, token_of, backend, other_account
):
    created = machine()
    token = bearer_of(token_of(created))
    foreign = create_client(runner, other_account, "Foreign backend", "--confidential")
    assert introspect(client, token, basic(foreign["clientId"], foreign["clientSecret"])) == {"active": False}
    assert revoke(client, token, basic(created["clientId"], created["clientSecret"])).status_code == 200
    assert introspect(client, token, backend) == {"active": False}


def test_a_machine_may_introspect_tokens_of_its_account(client, auth, account, machine):
    created = machine("read_only")
    answer = introspect(client, auth.owner(account), basic(created["clientId"], created["clientSecret"]))
    assert (answer["active"], answer["role"]) == (True, "owner")


# Rotating the secret


def rotate(runner, account, created: dict, grace: int) -> dict:
    result = runner.invoke(
        args=[
            "clients",
            "rotate-secret",
            "--account",
            str(account.live.id),
            "--client",
            created["clientId"],
            "--grace",
            str(grace),
        ]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the security event is logged to stderr


def test_after_a_rotation_both_secrets_work_until_the_grace_ends(runner, account, session, machine, issue):
    old = machine()
    rotated = rotate(runner, account, old, 3600)
    new = {**old, "clientSecret": rotated["clientSecret"]}
    assert rotated["clientSecret"] != old["clientSecret"]
    assert_token_answer(issue(old), account.live.id)
    assert_token_answer(issue(new), account.live.id)
    stored_client(session, old).previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert_oauth_error(issue(old), 401, "invalid_client")
    assert_token_answer(issue(new), account.live.id)


def test_a_rotation_without_grace_ends_the_old_secret_at_once(client, runner, account, machine, issue):
    old = machine()
    rotated = rotate(runner, account, old, 0)
    assert rotated["previousSecretExpiresAt"] is None
    assert_oauth_error(issue(old), 401, "invalid_client")
    post = {**GRANT, "client_id": old["clientId"], "client_secret": old["clientSecret"]}
    assert_oauth_error(client.post(TOKEN, data=post), 401, "invalid_client")
    assert_token_answer(issue({**old, "clientSecret": rotated["clientSecret"]}), account.live.id)


def test_a_second_rotation_ends_the_first_secret(runner, account, machine, issue):
    first = machine()
    second = {**first, "clientSecret": rotate(runner, account, first, 3600)["clientSecret"]}
    third = {**first, "clientSecret": rotate(runner, account, second, 3600)["clientSecret"]}
    assert_oauth_error(issue(first), 401, "invalid_client")
    assert_token_answer(issue(second), account.live.id)
    assert_token_answer(issue(third), account.live.id)


def test_tokens_issued_before_a_rotation_keep_working(client, runner, account, machine, token_of):
    created = machine()
    headers = token_of(created)
    rotate(runner, account, created, 0)
    assert client.get("/v1/customers", headers=headers).status_code == 200


# The access log


@pytest.fixture
def json_client(app, app_config):
    with app_factory(app, app_config) as make:
        yield make(LOG_FORMAT="json").test_client()


def test_the_access_log_names_the_machine_client(json_client, account, machine, capsys):
    created = machine("read_only")
    issued = json_client.post(TOKEN, data=GRANT, headers=basic(created["clientId"], created["clientSecret"]))
    assert issued.status_code == 200, issued.get_json()
    headers = {"Authorization": f"Bearer {issued.get_json()['access_token']}"}
    as_machine = json_client.get("/v1/customers", headers=headers)
    refused = json_client.post("/v1/customers", json=customer_document(status="guest"), headers=headers)
    owner = json_client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": account.owner.username,
            "password": account.owner_password,
        },
    ).get_json()["access_token"]
    as_user = json_client.get("/v1/customers", headers={"Authorization": f"Bearer {owner}"})
    lines = json_lines(capsys.readouterr().err)
    assert access_line(lines, as_machine)["client_id"] == created["clientId"]
    assert access_line(lines, refused)["status"] == 403
    assert access_line(lines, refused)["client_id"] == created["clientId"]
    assert "client_id" not in access_line(lines, as_user)
    (event,) = events(lines, "client_token_issued")
    assert event["fields"]["client_id"] == created["clientId"]
    assert event["fields"]["client_name"] == "Back office"
    assert event["fields"]["role"] == "read_only"
