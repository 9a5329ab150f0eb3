"""Schemathesis against the live app: every operation of /openapi.json, positive and negative data.

The app is driven in process over WSGI (schemathesis.openapi.from_wsgi), inside the suite's
rolled-back transaction, with real credentials fetched the way clients fetch them: a guest
token from the publishable key, customer and staff tokens from the password grant, a Chec
JWT from a magic link sent by email and exchanged, a confidential client's secret from the
CLI. Each operation gets FUZZ_EXAMPLES cases of each kind (derandomized: the same cases on
every run), and the five checks of issue 7 must pass on every one. The total is printed at
the end of the run (tests/conftest.py) and must reach MIN_CASES.

Failures it has found are kept as regression tests beside the code's own tests (see
docs/decisions.md, "OpenAPI document and fuzzing").
"""

import base64
import os
import uuid
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from freshcom_customers.chec import ids
from freshcom_customers.openapi import BEARER, CHEC_BEARER, CLIENT_BASIC, PUBLISHABLE_KEY
from freshcom_customers.services import users
from freshcom_customers.services.mail import outbox
from tests.chec.conftest import Chec, link_of, token_of
from tests.conftest import REGISTRATION, create_client
from tests.mailbox import DELIVERY_TIMEOUT

CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
]
# Per operation and per kind of data; hypothesis stops sooner where an operation has fewer inputs.
FUZZ_EXAMPLES = int(os.environ.get("FRESHCOM_FUZZ_EXAMPLES", "100"))
MIN_CASES = int(os.environ.get("FRESHCOM_FUZZ_MIN_CASES", "5000"))
ONLY = os.environ.get("FRESHCOM_FUZZ_ONLY", "")  # a part of "METHOD /path", to fuzz fewer operations
CASES: Counter = Counter()  # by generation mode; read by tests/conftest.py's summary

# Who calls each native operation (the rest: the account's owner, a standard user).
ROLES = {
    ("POST", "/v1/customers"): "guest",
    ("GET", "/v1/customer"): "customer",
    ("GET", "/v1/user"): "customer",
    ("PATCH", "/v1/user"): "customer",
    ("GET", "/v1/orders"): "customer",
}


@pytest.fixture
def credentials(client, auth, account, runner, register, mailbox, session) -> dict:
    """Real credentials and ids of one account, fetched as clients fetch them."""
    customer, _ = register()
    owner = auth.owner(account)
    order = client.post(
        "/v1/orders",
        json={
            "data": {
                "type": "Order",
                "attributes": {"code": "FUZZ-1", "currency": "USD"},
                "relationships": {"customer": {"data": {"type": "Customer", "id": customer["id"]}}},
            }
        },
        headers=auth.headers(owner),
    )
    assert order.status_code == 201, order.get_json()
    chec = Chec(client, account.prt)
    before = len(mailbox.messages)
    assert chec.email_token(REGISTRATION["email"]).get_json() == {"success": True}
    link = link_of(mailbox, mailbox.wait_for(before + 1)[-1])
    exchanged = chec.exchange(token_of(link))
    assert exchanged.status_code == 200, exchanged.get_json()
    staff_user = users.create_managed_user(
        account.live, username="fuzz-support", password="support-password", role="support_specialist"
    )
    session.commit()
    confidential = create_client(runner, account, "Fuzzing backend", "--confidential")
    basic = f"{confidential['clientId']}:{confidential['clientSecret']}"
    return {
        "prt": account.prt,
        "guest": auth.guest(account),
        "customer": auth.login(account, REGISTRATION["email"], REGISTRATION["password"])["access_token"],
        "owner": owner,
        "chec": exchanged.get_json()["jwt"],
        "basic": "Basic " + base64.b64encode(basic.encode()).decode(),
        # Real ids for positive cases, so that they reach past the lookup.
        "native_ids": {
            "customer_id": customer["id"],
            "order_id": order.get_json()["data"]["id"],
            "user_id": str(staff_user.id),
        },
        "chec_ids": {
            "customer_id": exchanged.get_json()["customer_id"],
            "order_id": ids.order_id(uuid.UUID(order.get_json()["data"]["id"])),
        },
    }


def api_schema(app, credentials: dict):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    @schema.auth()
    class Credentials:
        """Set the credential the operation's security scheme names, and real ids on positive cases."""

        def get(self, case, ctx):
            return credentials

        def set(self, case, data, ctx):
            operation = case.operation
            schemes = {
                name for requirement in operation.definition.raw.get("security", []) for name in requirement
            }
            chec_face = operation.path.startswith("/chec/")
            if PUBLISHABLE_KEY in schemes:
                case.headers = {**(case.headers or {}), "X-Authorization": data["prt"]}
            elif CHEC_BEARER in schemes:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data['chec']}"}
            elif CLIENT_BASIC in schemes and operation.path == "/v1/token/introspect":
                case.headers = {**(case.headers or {}), "Authorization": data["basic"]}
            elif BEARER in schemes:
                role = ROLES.get((operation.method.upper(), operation.path), "owner")
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data[role]}"}
            positive = case.meta is None or case.meta.generation.mode.is_positive
            if positive and case.path_parameters and operation.method.upper() != "DELETE":
                known = data["chec_ids"] if chec_face else data["native_ids"]
                case.path_parameters = {
                    **case.path_parameters,
                    **{name: known[name] for name in case.path_parameters if name in known},
                }

    return schema


def fuzz(operation, mode: GenerationMode) -> None:
    """Run the operation's cases of one kind; raise on the first that fails a check."""

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        CASES[mode.value] += 1
        case.call_and_validate(checks=CHECKS)
        # Mail goes out on a background thread, whose MIME boundaries draw on the global random:
        # let it finish before hypothesis draws the next case (hypothesis forbids that use).
        assert outbox.wait(DELIVERY_TIMEOUT)

    run()


def describe(error: BaseException) -> str:
    """What went wrong, down to the failed checks inside hypothesis's and schemathesis's groups."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(describe(inner) for inner in error.exceptions)
    return str(error)


def test_every_operation_passes_the_checks(app, credentials):
    schema = api_schema(app, credentials)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if ONLY not in operation.label:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing in it can be invalid
            except BaseExceptionGroup as error:  # every operation's failures, not only the first's
                failures.append(f"{mode.value} {operation.label}: {describe(error)}")
    assert not failures, "\n\n".join(failures)
    assert sum(CASES.values()) >= MIN_CASES, CASES
