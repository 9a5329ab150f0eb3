"""Every operation of /openapi.json called with an owner-role machine token (API.md 12).

A client_credentials token has a role and no user: a route that needs one refuses it (4xx),
and no route may fail on the missing user (5xx). The requests are the hostile-input suite's
valid bases (tests/test_hostile_inputs.py), with the machine's token in Authorization instead
of the caller's credential; operations that read another credential (a publishable key, a Chec
JWT, client Basic, the metrics token) are called with the machine's token beside it, and with
it alone.
"""

import logging
from dataclasses import replace

import pytest

from tests import test_hostile_inputs as hostile
from tests.conftest import create_client
from tests.oauth2.conftest import basic

# The hostile-input suite's fixtures: real credentials and live one-time tokens of one account.
credentials = hostile.credentials
context = hostile.context


@pytest.fixture
def machine(runner, account) -> dict:
    """An owner-role machine client of the account: {clientId, clientSecret, role}."""
    return create_client(runner, account, "Sweep", "--confidential", "--role", "owner")


def token_of(client, machine: dict, scope: str) -> str:
    response = client.post(
        "/v1/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic(machine["clientId"], machine["clientSecret"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def machine_calls(operation, context, token: str, machine: dict):
    """(label, call) of the operation's bases, in each body encoding, with the machine's token.

    The token endpoints get the machine's own client credentials too, about its own token.
    """
    bearer = f"Bearer {token}"
    for base in hostile.bases_of(operation, context):
        for encoding in operation.body_schemas() or [None]:
            call = hostile.base_call(operation, base, encoding, context)
            label = " ".join(filter(None, (base.name, encoding and encoding[0])))
            yield label, replace(call, headers={**call.headers, "Authorization": bearer})
            if "X-Authorization" in call.headers:
                alone = {k: v for k, v in call.headers.items() if k != "X-Authorization"}
                yield f"{label} (token alone)", replace(call, headers={**alone, "Authorization": bearer})
            if operation.path.startswith("/v1/token") and not base.name:
                yield f"{label} (the machine, its token)", own_token_call(call, token, machine)
    if operation.label == "POST /v1/token":
        for encoding in operation.body_schemas():
            call = hostile.base_call(operation, hostile.Base(), encoding, context)
            yield f"client_credentials {encoding[0]}", own_token_call(call, token, machine)


def own_token_call(call, token: str, machine: dict):
    """The call by the machine (client Basic): about its own token, or for a new one."""
    body = {"token": token}
    if call.path == "/v1/token":
        body = {"grant_type": "client_credentials"}
    headers = {**call.headers, **basic(machine["clientId"], machine["clientSecret"])}
    return replace(call, body=body, headers=headers)


@pytest.mark.parametrize("mode", ["live", "test"])
def test_no_operation_fails_on_a_machine_token(client, session, account, context, machine, caplog, mode):
    caplog.set_level(logging.ERROR, logger="freshcom_customers.access")
    caplog.set_level(logging.ERROR, logger="freshcom_customers.security")
    token = token_of(client, machine, f"aid:{getattr(account, mode).id}")
    operations = hostile.operations_of(client.get("/openapi.json").get_json())
    run = hostile.Run(client, session)
    statuses = {}
    for operation in operations:
        for label, call in machine_calls(operation, context, token, machine):
            response = run.send(operation, call)
            statuses[f"{operation.label} {label}".strip()] = response.status_code
            if response.status_code >= 500:
                excerpt = " ".join(response.get_data()[:300].decode("utf-8", "replace").split())
                failure = hostile.Failure(
                    operation.label, label or "base", mode, 500, "server error", excerpt
                )
                run.failures.append(failure)
    assert all(run.sent[operation.label] for operation in operations), run.sent
    # The token does get through: staff routes answer it as the owner, the token endpoints as
    # its client; routes that need a user refuse it.
    assert statuses["GET /v1/customers"] == 200
    assert statuses["GET /v1/account"] == 200
    assert statuses["POST /v1/token client_credentials form"] == 200
    assert statuses["POST /v1/token/introspect form (the machine, its token)"] == 200
    assert statuses["POST /v1/token/revoke form (the machine, its token)"] == 200
    assert statuses["GET /v1/user"] == 403
    if run.failures:
        pytest.fail(run.report(), pytrace=False)
